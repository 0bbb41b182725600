/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetctl's command runner: the one argv parser every command uses
 * (global options, --help, usage errors, its own options, positional
 * arguments), and the shapes most commands are: a list (GET every page,
 * print a table or JSON), and an action on one resource by id (show,
 * revoke, decommission: one call, print the answer). A command file then
 * only says what differs: its help, path, columns and printer.
 */
#include <string.h>

#include "ctl.h"

#define CTL_MAX_OPTS 32

/* Local options, then the global ones (without --token if the command
 * has its own, as enroll does). */
static int
build_opts(const struct option *local, struct option *all, size_t max)
{
	static const struct option global[] = {CTL_LONGOPTS_GLOBAL};
	bool own_token = false;
	size_t n = 0;

	for (; local != NULL && local->name != NULL; local++) {
		if (n + 1 >= max)
			return -1;
		own_token = own_token || strcmp(local->name, "token") == 0;
		all[n++] = *local;
	}
	for (size_t i = 0; i < sizeof(global) / sizeof(global[0]); i++) {
		if (own_token && global[i].val == CTL_OPT_TOKEN)
			continue;
		if (n + 1 >= max)
			return -1;
		all[n++] = global[i];
	}
	memset(&all[n], 0, sizeof(all[n]));
	return 0;
}

int
ctl_parse(struct ctl *ctl, const struct ctl_help *h, int argc, char **argv,
	  const struct ctl_optset *local, int nargs)
{
	struct option opts[CTL_MAX_OPTS];
	int c, rc;

	if (build_opts(local != NULL ? local->opts : NULL, opts,
		       CTL_MAX_OPTS) != 0)
		return ctl_fail("%s: too many options", h->cmd);
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, CTL_SHORTOPTS, opts, NULL)) != -1) {
		if (local != NULL && c >= CTL_OPT_FIRST_LOCAL)
			rc = local->on_opt(local->arg, c, optarg);
		else
			rc = ctl_opt_common(ctl, c, h, argv);
		if (rc != CTL_CONTINUE)
			return rc;
	}
	if (nargs >= 0) {
		rc = ctl_want_args(h, argc, argv, nargs);
		if (rc != 0)
			return rc;
	}
	return CTL_CONTINUE;
}

int
ctl_print_items(struct ctl *ctl, const json_t *items,
		const struct ctl_column *cols, size_t ncols)
{
	const char *headers[CTL_MAX_COLUMNS];
	struct ctl_table *t;
	int rc = CTL_EXIT_OK;

	if (ctl->output == CTL_OUT_JSON)
		return ctl_print_json(items) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
	if (ncols > CTL_MAX_COLUMNS)
		return ctl_fail("too many columns");
	for (size_t i = 0; i < ncols; i++)
		headers[i] = cols[i].header;
	t = ctl_table_new(ncols, headers);
	if (t == NULL)
		return ctl_fail("out of memory");
	for (size_t i = 0; i < json_array_size(items); i++) {
		const json_t *item = json_array_get(items, i);
		char bufs[CTL_MAX_COLUMNS][CTL_CELL_MAX];
		const char *row[CTL_MAX_COLUMNS];

		for (size_t j = 0; j < ncols; j++) {
			if (cols[j].key != NULL)
				row[j] = ctl_text(item, cols[j].key, bufs[j],
						  sizeof(bufs[j]));
			else if (cols[j].cell != NULL)
				row[j] = cols[j].cell(item, bufs[j],
						      sizeof(bufs[j]));
			else
				row[j] = cols[j].word(item);
		}
		if (ctl_table_add(t, row) != 0)
			rc = CTL_EXIT_FAIL;
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
	return rc == CTL_EXIT_OK ? rc : ctl_fail("out of memory");
}

int
ctl_list_items(struct ctl *ctl, const struct ctl_list *l, const char *query,
	       size_t max)
{
	json_t *items = NULL;
	int rc;

	if (ctl_api_list(ctl, l->path, query, max, &items) != 0)
		return CTL_EXIT_FAIL;
	rc = ctl_print_items(ctl, items, l->cols, l->ncols);
	json_decref(items);
	return rc;
}

int
ctl_run_list(struct ctl *ctl, const struct ctl_list *l, int argc, char **argv)
{
	int rc = ctl_parse(ctl, l->help, argc, argv, NULL, 0);

	if (rc != CTL_CONTINUE)
		return rc;
	return ctl_list_items(ctl, l, "", 0);
}

int
ctl_run_action(struct ctl *ctl, const struct ctl_action *a, int argc,
	       char **argv)
{
	char path[512];
	json_t *doc = NULL;
	const char *id;
	int rc = ctl_parse(ctl, a->help, argc, argv, NULL, 1);

	if (rc != CTL_CONTINUE)
		return rc;
	id = argv[optind];
	if (ctl_path_id(path, sizeof(path), a->collection, id, a->suffix) !=
		    0 ||
	    ctl_api(ctl, a->method, path, NULL, NULL, true, &doc) != 0)
		return CTL_EXIT_FAIL;
	if (ctl->output == CTL_OUT_JSON) {
		ctl_print_json(doc);
	} else {
		if (a->done != NULL)
			printf("%s %s\n", a->done, ctl_sanitize(argv[optind]));
		if (a->print != NULL)
			a->print(doc);
	}
	json_decref(doc);
	return CTL_EXIT_OK;
}

const char *
ctl_cell_labels(const json_t *item, char *buf, size_t buflen)
{
	return ctl_labels_text(json_object_get(item, "labels"), buf, buflen);
}
