/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetctl tokens: enrollment tokens (POST/GET /api/v1/tokens). A new
 * token's secret is printed once, prominently; lists show what is left of
 * each token and whether it can still enroll.
 */
#include <string.h>
#include <time.h>

#include "clock.h"
#include "conffile.h"
#include "ctl.h"

/* active, revoked, exhausted or expired, from the token object. */
static const char *
token_status(const json_t *t)
{
	const json_t *left = json_object_get(t, "uses_left");
	const char *expires =
		json_string_value(json_object_get(t, "expires_at"));
	char now[32];

	if (!json_is_null(json_object_get(t, "revoked_at")) &&
	    json_object_get(t, "revoked_at") != NULL)
		return "revoked";
	if (json_is_integer(left) && json_integer_value(left) <= 0)
		return "exhausted";
	clock_format_rfc3339(time(NULL), now, sizeof(now));
	/* Both are RFC 3339 UTC: text order is time order. */
	if (expires != NULL && strcmp(expires, now) <= 0)
		return "expired";
	return "active";
}

static void
print_token(const json_t *t)
{
	char b1[64], b2[64], labels[512], uses[160];

	snprintf(uses, sizeof(uses), "%s of %s left",
		 ctl_text_or_dash(t, "uses_left", b1, sizeof(b1)),
		 ctl_text_or_dash(t, "uses_total", b2, sizeof(b2)));
	ctl_print_field("ID:", ctl_text(t, "id", b1, sizeof(b1)));
	ctl_print_field("STATUS:", token_status(t));
	ctl_print_field("USES:", uses);
	ctl_print_field("EXPIRES:", ctl_text(t, "expires_at", b1, sizeof(b1)));
	ctl_print_field("LABELS:", ctl_labels_text(json_object_get(t, "labels"),
						   labels, sizeof(labels)));
	ctl_print_field("PROFILE:", ctl_text(t, "profile", b1, sizeof(b1)));
	ctl_print_field("CREATED:", ctl_text(t, "created_at", b1, sizeof(b1)));
	ctl_print_field("REVOKED:", ctl_text(t, "revoked_at", b1, sizeof(b1)));
}

static const struct ctl_help create_help = {
	"tokens create",
	"--uses N --expires DUR [--label k=v]... [--profile P]",
	"Creates an enrollment token. Devices enroll with it (fleetctl "
	"enroll,\n"
	"fleet-agent) until it expires, runs out of uses or is revoked; they "
	"get\n"
	"its labels and profile. The token is shown once: store it now.\n"
	"\n"
	"Options:\n"
	"  --uses N          how many devices may enroll with it (1..1000000)\n"
	"  --expires DUR     lifetime: 30m, 24h, 7d, 2w or seconds\n"
	"  --label k=v       a label for enrolled devices (repeatable)\n"
	"  --profile P       configuration profile for enrolled devices\n"};

enum { OPT_USES = CTL_OPT_FIRST_LOCAL, OPT_EXPIRES, OPT_LABEL, OPT_PROFILE };

struct create_args {
	json_t *labels;
	const char *profile;
	long uses, expires;
};

static int
create_opt(void *arg, int c, const char *val)
{
	struct create_args *a = arg;

	if (c == OPT_USES && ctl_parse_long(val, 1, 1000000, &a->uses) != 0)
		return ctl_usage(&create_help,
				 "--uses must be a number from 1 to 1000000, "
				 "not '%s'",
				 val);
	if (c == OPT_EXPIRES &&
	    (config_parse_duration(val, &a->expires) != 0 || a->expires <= 0))
		return ctl_usage(&create_help,
				 "--expires must be a duration such as 30m, "
				 "24h or 7d, not '%s'",
				 val);
	if (c == OPT_LABEL && ctl_parse_label(a->labels, val) != 0)
		return ctl_usage(&create_help,
				 "--label must be key=value, not '%s'", val);
	if (c == OPT_PROFILE)
		a->profile = val;
	return CTL_CONTINUE;
}

static int
tokens_create(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"uses", required_argument, NULL, OPT_USES},
		{"expires", required_argument, NULL, OPT_EXPIRES},
		{"label", required_argument, NULL, OPT_LABEL},
		{"profile", required_argument, NULL, OPT_PROFILE},
		{0}};
	struct create_args a = {json_object(), NULL, -1, -1};
	struct ctl_optset local = {opts, create_opt, &a};
	json_t *body = NULL, *tok = NULL;
	int rc;

	if (a.labels == NULL)
		return ctl_fail("out of memory");
	rc = ctl_parse(ctl, &create_help, argc, argv, &local, 0);
	if (rc != CTL_CONTINUE)
		goto out;
	if (a.uses < 0 || a.expires < 0) {
		rc = ctl_usage(&create_help, "%s is required",
			       a.uses < 0 ? "--uses" : "--expires");
		goto out;
	}
	body = json_pack("{s:I, s:I, s:O}", "uses", (json_int_t)a.uses,
			 "expires_in", (json_int_t)a.expires, "labels",
			 a.labels);
	if (body == NULL ||
	    (a.profile != NULL &&
	     json_object_set_new(body, "profile", json_string(a.profile)) !=
		     0)) {
		rc = ctl_fail("out of memory");
		goto out;
	}
	rc = CTL_EXIT_FAIL;
	if (ctl_api(ctl, "POST", "/api/v1/tokens", body, NULL, true, &tok) != 0)
		goto out;
	if (ctl->output == CTL_OUT_JSON) {
		ctl_print_json(tok);
	} else {
		ctl_print_secret(
			"Enrollment token",
			json_string_value(json_object_get(tok, "token")));
		print_token(tok);
	}
	rc = CTL_EXIT_OK;
out:
	json_decref(a.labels);
	json_decref(body);
	json_decref(tok);
	return rc;
}

static const char *
uses_cell(const json_t *t, char *buf, size_t buflen)
{
	char left[64], total[64];

	snprintf(buf, buflen, "%s/%s",
		 ctl_text_or_dash(t, "uses_left", left, sizeof(left)),
		 ctl_text_or_dash(t, "uses_total", total, sizeof(total)));
	return buf;
}

static const struct ctl_help list_help = {
	"tokens list", "",
	"Lists enrollment tokens (all pages). Their secrets are never shown\n"
	"again.\n"};

static const struct ctl_column list_cols[] = {
	CTL_COL_KEY("ID", "id"),
	CTL_COL_WORD("STATUS", token_status),
	CTL_COL_CELL("USES", uses_cell),
	CTL_COL_KEY("EXPIRES", "expires_at"),
	CTL_COL_KEY("PROFILE", "profile"),
	CTL_COL_CELL("LABELS", ctl_cell_labels),
};

static const struct ctl_list list = {&list_help, "/api/v1/tokens", list_cols,
				     sizeof(list_cols) / sizeof(list_cols[0])};

static const struct ctl_help revoke_help = {
	"tokens revoke", "ID",
	"Revokes an enrollment token at once: no device can enroll with it\n"
	"any more. Devices that enrolled with it are not affected.\n"};

static void
print_revoked(const json_t *tok)
{
	char b[64];

	ctl_print_field("REVOKED:", ctl_text(tok, "revoked_at", b, sizeof(b)));
}

static const struct ctl_action revoke = {
	&revoke_help, "POST", "tokens", "/revoke", "revoked enrollment token",
	print_revoked};

static const struct ctl_subcmd subs[] = {
	{"create", "create an enrollment token (shown once)", tokens_create,
	 NULL, NULL},
	{"list", "list enrollment tokens", NULL, &list, NULL},
	{"revoke", "revoke an enrollment token", NULL, NULL, &revoke},
};

int
ctl_cmd_tokens(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, "tokens",
			    "Enrollment tokens: what devices present to "
			    "POST /enroll/v1 (operator role).",
			    subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
