/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetctl audit: the audit log (GET /api/v1/audit), newest first. Every
 * mutation the API accepts leaves one entry: who, what, on what, details.
 */
#include <string.h>

#include "ctl.h"

static const struct ctl_help list_help = {
	"audit list", "[--limit N]",
	"Lists audit entries, newest first.\n"
	"\n"
	"Options:\n"
	"  --limit N         at most N entries (default: all)\n"};

static int
audit_list(struct ctl *ctl, int argc, char **argv)
{
	enum { OPT_LIMIT = CTL_OPT_FIRST_LOCAL };
	static const struct option opts[] = {
		{"limit", required_argument, NULL, OPT_LIMIT},
		CTL_LONGOPTS_GLOBAL,
		{0}};
	static const char *const headers[] = {"AT", "ACTOR", "ACTION", "TARGET",
					      "DETAILS"};
	struct ctl_table *t = NULL;
	json_t *items = NULL;
	long limit = 0;
	int c, rc;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, CTL_SHORTOPTS, opts, NULL)) != -1) {
		if (c == OPT_LIMIT) {
			if (ctl_parse_long(optarg, 1, 100000000, &limit) != 0)
				return ctl_usage(&list_help,
						 "--limit must be a positive "
						 "number, not '%s'",
						 optarg);
			continue;
		}
		rc = ctl_opt_common(ctl, c, &list_help, argv);
		if (rc != CTL_CONTINUE)
			return rc;
	}
	rc = ctl_want_args(&list_help, argc, argv, 0);
	if (rc != 0)
		return rc;
	if (ctl_api_list(ctl, "/api/v1/audit", "", (size_t)limit, &items) != 0)
		return CTL_EXIT_FAIL;
	if (ctl->output == CTL_OUT_JSON) {
		ctl_print_json(items);
		json_decref(items);
		return CTL_EXIT_OK;
	}
	t = ctl_table_new(5, headers);
	rc = t != NULL ? CTL_EXIT_OK : CTL_EXIT_FAIL;
	for (size_t i = 0; t != NULL && i < json_array_size(items); i++) {
		const json_t *e = json_array_get(items, i);
		char b[4][128], details[81];
		const char *row[5];

		row[0] = ctl_text(e, "at", b[0], sizeof(b[0]));
		row[1] = ctl_text(e, "actor", b[1], sizeof(b[1]));
		row[2] = ctl_text(e, "action", b[2], sizeof(b[2]));
		row[3] = ctl_text(e, "target", b[3], sizeof(b[3]));
		row[4] = ctl_json_text(json_object_get(e, "details"), details,
				       sizeof(details));
		if (row[4] != NULL && strcmp(row[4], "{}") == 0)
			row[4] = NULL;
		if (ctl_table_add(t, row) != 0)
			rc = CTL_EXIT_FAIL;
	}
	if (t != NULL)
		ctl_table_print(t, stdout);
	ctl_table_free(t);
	json_decref(items);
	return rc == CTL_EXIT_OK ? rc : ctl_fail("out of memory");
}

static const struct ctl_subcmd subs[] = {
	{"list", "list audit entries, newest first", audit_list},
};

int
ctl_cmd_audit(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, "audit",
			    "The audit log: one entry per accepted mutation "
			    "(viewer role).",
			    subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
