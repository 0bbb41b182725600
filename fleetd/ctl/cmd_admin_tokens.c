/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetctl admin-tokens: bearer tokens for the API (admin role only).
 * The first admin token is made on the server host with `fleetd token
 * create`; these commands make, list and revoke the others.
 */
#include <string.h>

#include "ctl.h"

static const char *
admin_token_status(const json_t *t)
{
	const json_t *revoked = json_object_get(t, "revoked_at");

	return revoked != NULL && !json_is_null(revoked) ? "revoked" : "active";
}

static const struct ctl_help create_help = {
	"admin-tokens create", "--role viewer|operator|admin --name NAME",
	"Creates an API token. Roles: viewer (read only), operator (also\n"
	"devices and enrollment tokens), admin (everything). The token is\n"
	"shown once: store it now.\n"
	"\n"
	"Options:\n"
	"  --role R          viewer, operator or admin\n"
	"  --name N          what the token is for (\"ci\", \"alice\")\n"};

static int
admin_tokens_create(struct ctl *ctl, int argc, char **argv)
{
	enum { OPT_ROLE = CTL_OPT_FIRST_LOCAL, OPT_NAME };
	static const struct option opts[] = {
		{"role", required_argument, NULL, OPT_ROLE},
		{"name", required_argument, NULL, OPT_NAME},
		CTL_LONGOPTS_GLOBAL,
		{0}};
	const char *role = NULL, *name = NULL;
	json_t *body = NULL, *tok = NULL;
	int c, rc;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, CTL_SHORTOPTS, opts, NULL)) != -1) {
		switch (c) {
		case OPT_ROLE:
			role = optarg;
			break;
		case OPT_NAME:
			name = optarg;
			break;
		default:
			rc = ctl_opt_common(ctl, c, &create_help, argv);
			if (rc != CTL_CONTINUE)
				return rc;
		}
	}
	rc = ctl_want_args(&create_help, argc, argv, 0);
	if (rc != 0)
		return rc;
	if (role == NULL || name == NULL)
		return ctl_usage(&create_help, "%s is required",
				 role == NULL ? "--role" : "--name");
	if (strcmp(role, "viewer") != 0 && strcmp(role, "operator") != 0 &&
	    strcmp(role, "admin") != 0)
		return ctl_usage(&create_help,
				 "--role must be viewer, operator or admin, "
				 "not '%s'",
				 role);
	body = json_pack("{s:s, s:s}", "role", role, "name", name);
	if (body == NULL)
		return ctl_fail("--name must be UTF-8 text");
	rc = ctl_api(ctl, "POST", "/api/v1/admin-tokens", body, NULL, true,
		     &tok);
	json_decref(body);
	if (rc != 0)
		return CTL_EXIT_FAIL;
	if (ctl->output == CTL_OUT_JSON) {
		ctl_print_json(tok);
	} else {
		char b[64];

		ctl_print_secret(
			"Admin token",
			json_string_value(json_object_get(tok, "token")));
		ctl_print_field("ID:", ctl_text(tok, "id", b, sizeof(b)));
		ctl_print_field("NAME:", ctl_text(tok, "name", b, sizeof(b)));
		ctl_print_field("ROLE:", ctl_text(tok, "role", b, sizeof(b)));
		ctl_print_field("CREATED:",
				ctl_text(tok, "created_at", b, sizeof(b)));
	}
	json_decref(tok);
	return CTL_EXIT_OK;
}

static const struct ctl_help list_help = {
	"admin-tokens list", "",
	"Lists API tokens (all pages): id, name, role, when last used.\n"};

static int
admin_tokens_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {CTL_LONGOPTS_GLOBAL, {0}};
	static const char *const headers[] = {"ID",	"NAME",	   "ROLE",
					      "STATUS", "CREATED", "LAST USED"};
	struct ctl_table *t = NULL;
	json_t *items = NULL;
	int c, rc;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, CTL_SHORTOPTS, opts, NULL)) != -1) {
		rc = ctl_opt_common(ctl, c, &list_help, argv);
		if (rc != CTL_CONTINUE)
			return rc;
	}
	rc = ctl_want_args(&list_help, argc, argv, 0);
	if (rc != 0)
		return rc;
	if (ctl_api_list(ctl, "/api/v1/admin-tokens", "", 0, &items) != 0)
		return CTL_EXIT_FAIL;
	if (ctl->output == CTL_OUT_JSON) {
		ctl_print_json(items);
		json_decref(items);
		return CTL_EXIT_OK;
	}
	t = ctl_table_new(6, headers);
	rc = t != NULL ? CTL_EXIT_OK : CTL_EXIT_FAIL;
	for (size_t i = 0; t != NULL && i < json_array_size(items); i++) {
		const json_t *tok = json_array_get(items, i);
		char b[5][64];
		const char *row[6];

		row[0] = ctl_text(tok, "id", b[0], sizeof(b[0]));
		row[1] = ctl_text(tok, "name", b[1], sizeof(b[1]));
		row[2] = ctl_text(tok, "role", b[2], sizeof(b[2]));
		row[3] = admin_token_status(tok);
		row[4] = ctl_text(tok, "created_at", b[3], sizeof(b[3]));
		row[5] = ctl_text(tok, "last_used_at", b[4], sizeof(b[4]));
		if (ctl_table_add(t, row) != 0)
			rc = CTL_EXIT_FAIL;
	}
	if (t != NULL)
		ctl_table_print(t, stdout);
	ctl_table_free(t);
	json_decref(items);
	return rc == CTL_EXIT_OK ? rc : ctl_fail("out of memory");
}

static const struct ctl_help revoke_help = {
	"admin-tokens revoke", "ID",
	"Revokes an API token at once; its next request gets 401.\n"};

static int
admin_tokens_revoke(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {CTL_LONGOPTS_GLOBAL, {0}};
	char path[512];
	json_t *tok = NULL;
	int c, rc;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, CTL_SHORTOPTS, opts, NULL)) != -1) {
		rc = ctl_opt_common(ctl, c, &revoke_help, argv);
		if (rc != CTL_CONTINUE)
			return rc;
	}
	rc = ctl_want_args(&revoke_help, argc, argv, 1);
	if (rc != 0)
		return rc;
	if (ctl_path_id(path, sizeof(path), "admin-tokens", argv[optind],
			"/revoke") != 0 ||
	    ctl_api(ctl, "POST", path, NULL, NULL, true, &tok) != 0)
		return CTL_EXIT_FAIL;
	if (ctl->output == CTL_OUT_JSON)
		ctl_print_json(tok);
	else
		printf("revoked admin token %s\n", ctl_sanitize(argv[optind]));
	json_decref(tok);
	return CTL_EXIT_OK;
}

static const struct ctl_subcmd subs[] = {
	{"create", "create an API token (shown once)", admin_tokens_create},
	{"list", "list API tokens", admin_tokens_list},
	{"revoke", "revoke an API token", admin_tokens_revoke},
};

int
ctl_cmd_admin_tokens(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, "admin-tokens",
			    "API tokens and their roles (admin role).", subs,
			    sizeof(subs) / sizeof(subs[0]), argc, argv);
}
