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

static int
tokens_create(struct ctl *ctl, int argc, char **argv)
{
	enum {
		OPT_USES = CTL_OPT_FIRST_LOCAL,
		OPT_EXPIRES,
		OPT_LABEL,
		OPT_PROFILE
	};
	static const struct option opts[] = {
		{"uses", required_argument, NULL, OPT_USES},
		{"expires", required_argument, NULL, OPT_EXPIRES},
		{"label", required_argument, NULL, OPT_LABEL},
		{"profile", required_argument, NULL, OPT_PROFILE},
		CTL_LONGOPTS_GLOBAL,
		{0}};
	json_t *labels = json_object(), *body = NULL, *tok = NULL;
	const char *profile = NULL;
	long uses = -1, expires = -1;
	int c, rc = CTL_EXIT_FAIL;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, CTL_SHORTOPTS, opts, NULL)) != -1) {
		switch (c) {
		case OPT_USES:
			if (ctl_parse_long(optarg, 1, 1000000, &uses) != 0) {
				rc = ctl_usage(&create_help,
					       "--uses must be a number from 1 "
					       "to 1000000, not '%s'",
					       optarg);
				goto out;
			}
			break;
		case OPT_EXPIRES:
			if (config_parse_duration(optarg, &expires) != 0 ||
			    expires <= 0) {
				rc = ctl_usage(&create_help,
					       "--expires must be a duration "
					       "such as 30m, 24h or 7d, not "
					       "'%s'",
					       optarg);
				goto out;
			}
			break;
		case OPT_LABEL:
			if (ctl_parse_label(labels, optarg) != 0) {
				rc = ctl_usage(&create_help,
					       "--label must be key=value, not "
					       "'%s'",
					       optarg);
				goto out;
			}
			break;
		case OPT_PROFILE:
			profile = optarg;
			break;
		default:
			rc = ctl_opt_common(ctl, c, &create_help, argv);
			if (rc != CTL_CONTINUE)
				goto out;
		}
	}
	rc = ctl_want_args(&create_help, argc, argv, 0);
	if (rc != 0)
		goto out;
	if (uses < 0 || expires < 0) {
		rc = ctl_usage(&create_help, "%s is required",
			       uses < 0 ? "--uses" : "--expires");
		goto out;
	}
	body = json_pack("{s:I, s:I, s:O}", "uses", (json_int_t)uses,
			 "expires_in", (json_int_t)expires, "labels", labels);
	if (body == NULL ||
	    (profile != NULL &&
	     json_object_set_new(body, "profile", json_string(profile)) != 0)) {
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
	json_decref(labels);
	json_decref(body);
	json_decref(tok);
	return rc;
}

static const struct ctl_help list_help = {
	"tokens list", "",
	"Lists enrollment tokens (all pages). Their secrets are never shown\n"
	"again.\n"};

static int
tokens_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {CTL_LONGOPTS_GLOBAL, {0}};
	static const char *const headers[] = {"ID",	 "STATUS",  "USES",
					      "EXPIRES", "PROFILE", "LABELS"};
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
	if (ctl_api_list(ctl, "/api/v1/tokens", "", 0, &items) != 0)
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
		char b1[64], b2[64], b3[64], b4[64], uses[160], labels[256];
		const char *row[6];

		snprintf(uses, sizeof(uses), "%s/%s",
			 ctl_text_or_dash(tok, "uses_left", b1, sizeof(b1)),
			 ctl_text_or_dash(tok, "uses_total", b2, sizeof(b2)));
		row[0] = ctl_text(tok, "id", b3, sizeof(b3));
		row[1] = token_status(tok);
		row[2] = uses;
		row[3] = ctl_text(tok, "expires_at", b4, sizeof(b4));
		row[4] = ctl_text(tok, "profile", b1, sizeof(b1));
		row[5] = ctl_labels_text(json_object_get(tok, "labels"), labels,
					 sizeof(labels));
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
	"tokens revoke", "ID",
	"Revokes an enrollment token at once: no device can enroll with it\n"
	"any more. Devices that enrolled with it are not affected.\n"};

static int
tokens_revoke(struct ctl *ctl, int argc, char **argv)
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
	if (ctl_path_id(path, sizeof(path), "tokens", argv[optind],
			"/revoke") != 0 ||
	    ctl_api(ctl, "POST", path, NULL, NULL, true, &tok) != 0)
		return CTL_EXIT_FAIL;
	if (ctl->output == CTL_OUT_JSON) {
		ctl_print_json(tok);
	} else {
		char b[64];

		printf("revoked enrollment token %s\n",
		       ctl_sanitize(argv[optind]));
		ctl_print_field("REVOKED:",
				ctl_text(tok, "revoked_at", b, sizeof(b)));
	}
	json_decref(tok);
	return CTL_EXIT_OK;
}

static const struct ctl_subcmd subs[] = {
	{"create", "create an enrollment token (shown once)", tokens_create},
	{"list", "list enrollment tokens", tokens_list},
	{"revoke", "revoke an enrollment token", tokens_revoke},
};

int
ctl_cmd_tokens(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, "tokens",
			    "Enrollment tokens: what devices present to "
			    "POST /enroll/v1 (operator role).",
			    subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
