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

static const char *
details_cell(const json_t *e, char *buf, size_t buflen)
{
	/* Details are shown up to 80 bytes; "{}" says nothing. */
	const char *text = ctl_json_text(json_object_get(e, "details"), buf,
					 buflen < 81 ? buflen : 81);

	return text != NULL && strcmp(text, "{}") == 0 ? NULL : text;
}

static const struct ctl_column list_cols[] = {
	CTL_COL_KEY("AT", "at"),
	CTL_COL_KEY("ACTOR", "actor"),
	CTL_COL_KEY("ACTION", "action"),
	CTL_COL_KEY("TARGET", "target"),
	CTL_COL_CELL("DETAILS", details_cell),
};

static const struct ctl_list list = {&list_help, "/api/v1/audit", list_cols,
				     sizeof(list_cols) / sizeof(list_cols[0])};

static int
limit_opt(void *arg, int c, const char *val)
{
	(void)c;
	if (ctl_parse_long(val, 1, 100000000, arg) != 0)
		return ctl_usage(&list_help,
				 "--limit must be a positive number, not '%s'",
				 val);
	return CTL_CONTINUE;
}

static int
audit_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"limit", required_argument, NULL, CTL_OPT_FIRST_LOCAL}, {0}};
	long limit = 0;
	struct ctl_optset local = {opts, limit_opt, &limit};
	int rc = ctl_parse(ctl, &list_help, argc, argv, &local, 0);

	if (rc != CTL_CONTINUE)
		return rc;
	return ctl_list_items(ctl, &list, "", (size_t)limit);
}

static const struct ctl_subcmd subs[] = {
	{"list", "list audit entries, newest first", audit_list, NULL, NULL},
};

int
ctl_cmd_audit(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, "audit",
			    "The audit log: one entry per accepted mutation "
			    "(viewer role).",
			    subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
