/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetctl admin-tokens: bearer tokens for the API (admin role only).
 * The first admin token is made on the server host with `fleetd token
 * create`; these commands make, list and revoke the others.
 */
#include <string.h>
#include <time.h>

#include "clock.h"
#include "conffile.h"
#include "ctl.h"

/* The server's RFC 3339 UTC times sort as text; compare with now's. */
static bool
time_passed(const json_t *t)
{
	char now[32];

	if (!json_is_string(t))
		return false;
	clock_format_rfc3339(time(NULL), now, sizeof(now));
	return strcmp(json_string_value(t), now) <= 0;
}

static const char *
admin_token_status(const json_t *t)
{
	const json_t *revoked = json_object_get(t, "revoked_at");

	if (revoked != NULL && !json_is_null(revoked))
		return "revoked";
	return time_passed(json_object_get(t, "expires_at")) ? "expired"
							     : "active";
}

static const struct ctl_help create_help = {
	"admin-tokens create",
	"--role viewer|operator|admin --name NAME [--expires DURATION]",
	"Creates an API token. Roles: viewer (read only), operator (also\n"
	"devices and enrollment tokens), admin (everything). The token is\n"
	"shown once: store it now.\n"
	"\n"
	"Options:\n"
	"  --role R          viewer, operator or admin\n"
	"  --name N          what the token is for (\"ci\", \"alice\")\n"
	"  --expires D       it stops working after D: seconds or 30m, 24h,\n"
	"                    90d (at most 366 days); default: never\n"};

enum { OPT_ROLE = CTL_OPT_FIRST_LOCAL, OPT_NAME, OPT_EXPIRES };

struct create_args {
	const char *role, *name;
	long expires; /* seconds; 0: never */
};

static int
create_opt(void *arg, int c, const char *val)
{
	struct create_args *a = arg;

	if (c == OPT_ROLE) {
		a->role = val;
	} else if (c == OPT_NAME) {
		a->name = val;
	} else if (config_parse_duration(val, &a->expires) != 0 ||
		   a->expires <= 0 || a->expires > 366L * 86400) {
		return ctl_usage(&create_help,
				 "--expires must be a duration such as 30m, "
				 "24h or 90d (at most 366 days), not '%s'",
				 val);
	}
	return CTL_CONTINUE;
}

static void
print_created(const json_t *tok)
{
	const char *expires;
	char b[64];

	ctl_print_secret("Admin token",
			 json_string_value(json_object_get(tok, "token")));
	ctl_print_field("ID:", ctl_text(tok, "id", b, sizeof(b)));
	ctl_print_field("NAME:", ctl_text(tok, "name", b, sizeof(b)));
	ctl_print_field("ROLE:", ctl_text(tok, "role", b, sizeof(b)));
	ctl_print_field("CREATED:", ctl_text(tok, "created_at", b, sizeof(b)));
	expires = ctl_text(tok, "expires_at", b, sizeof(b));
	ctl_print_field("EXPIRES:", expires != NULL ? expires : "never");
}

static int
admin_tokens_create(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"role", required_argument, NULL, OPT_ROLE},
		{"name", required_argument, NULL, OPT_NAME},
		{"expires", required_argument, NULL, OPT_EXPIRES},
		{0}};
	struct create_args a = {NULL, NULL, 0};
	struct ctl_optset local = {opts, create_opt, &a};
	json_t *body = NULL, *tok = NULL;
	int rc = ctl_parse(ctl, &create_help, argc, argv, &local, 0);

	if (rc != CTL_CONTINUE)
		return rc;
	if (a.role == NULL || a.name == NULL)
		return ctl_usage(&create_help, "%s is required",
				 a.role == NULL ? "--role" : "--name");
	if (strcmp(a.role, "viewer") != 0 && strcmp(a.role, "operator") != 0 &&
	    strcmp(a.role, "admin") != 0)
		return ctl_usage(&create_help,
				 "--role must be viewer, operator or admin, "
				 "not '%s'",
				 a.role);
	body = json_pack("{s:s, s:s}", "role", a.role, "name", a.name);
	if (body == NULL)
		return ctl_fail("--name must be UTF-8 text");
	if (a.expires > 0 &&
	    json_object_set_new(body, "expires_in",
				json_integer((json_int_t)a.expires)) != 0) {
		json_decref(body);
		return ctl_fail("out of memory");
	}
	rc = ctl_api(ctl, "POST", "/api/v1/admin-tokens", body, NULL, true,
		     &tok);
	json_decref(body);
	if (rc != 0)
		return CTL_EXIT_FAIL;
	if (ctl->output == CTL_OUT_JSON)
		ctl_print_json(tok);
	else
		print_created(tok);
	json_decref(tok);
	return CTL_EXIT_OK;
}

static const struct ctl_help list_help = {
	"admin-tokens list", "",
	"Lists API tokens (all pages): id, name, role, when last used.\n"};

static const struct ctl_column list_cols[] = {
	CTL_COL_KEY("ID", "id"),
	CTL_COL_KEY("NAME", "name"),
	CTL_COL_KEY("ROLE", "role"),
	CTL_COL_WORD("STATUS", admin_token_status),
	CTL_COL_KEY("CREATED", "created_at"),
	CTL_COL_KEY("EXPIRES", "expires_at"),
	CTL_COL_KEY("LAST USED", "last_used_at"),
};

static const struct ctl_list list = {&list_help, "/api/v1/admin-tokens",
				     list_cols,
				     sizeof(list_cols) / sizeof(list_cols[0])};

static const struct ctl_help revoke_help = {
	"admin-tokens revoke", "ID",
	"Revokes an API token at once; its next request gets 401.\n"};

static const struct ctl_action revoke = {&revoke_help,		"POST",
					 "admin-tokens",	"/revoke",
					 "revoked admin token", NULL};

static const struct ctl_subcmd subs[] = {
	{"create", "create an API token (shown once)", admin_tokens_create,
	 NULL, NULL},
	{"list", "list API tokens", NULL, &list, NULL},
	{"revoke", "revoke an API token", NULL, NULL, &revoke},
};

int
ctl_cmd_admin_tokens(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, "admin-tokens",
			    "API tokens and their roles (admin role).", subs,
			    sizeof(subs) / sizeof(subs[0]), argc, argv);
}
