/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetctl devices: list (with selectors, sorted, with a count), show,
 * label (JSON merge patch of the labels) and decommission (revokes the
 * device's certificates and closes its session), one device by id or id
 * prefix, or every device a selector matches (a dry run first, --yes to
 * go on).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static void
print_device(const json_t *d)
{
	const json_t *cert = json_object_get(d, "certificate");
	char b[256], labels[1024], certtext[512];

	ctl_print_field("ID:", ctl_text(d, "id", b, sizeof(b)));
	ctl_print_field("STATUS:", ctl_text(d, "status", b, sizeof(b)));
	ctl_print_field("ONLINE:", ctl_text(d, "online", b, sizeof(b)));
	ctl_print_field("LAST SEEN:", ctl_text(d, "last_seen", b, sizeof(b)));
	ctl_print_field("CONNECTED AT:",
			ctl_text(d, "connected_at", b, sizeof(b)));
	ctl_print_field("MODEL:", ctl_text(d, "model", b, sizeof(b)));
	ctl_print_field("SERIAL:", ctl_text(d, "serial", b, sizeof(b)));
	ctl_print_field("FIRMWARE:", ctl_text(d, "fw_version", b, sizeof(b)));
	ctl_print_field("AGENT:", ctl_text(d, "agent_version", b, sizeof(b)));
	ctl_print_field("LABELS:", ctl_labels_text(json_object_get(d, "labels"),
						   labels, sizeof(labels)));
	ctl_print_field("CREATED:", ctl_text(d, "created_at", b, sizeof(b)));
	ctl_print_field("DECOMMISSIONED:",
			ctl_text(d, "decommissioned_at", b, sizeof(b)));
	ctl_print_field("REVISION:", ctl_text(d, "revision", b, sizeof(b)));
	if (json_is_object(cert)) {
		char s[128], nb[64], na[64], st[64];

		snprintf(certtext, sizeof(certtext),
			 "serial %s, valid %s to %s, %s",
			 ctl_text_or_dash(cert, "serial", s, sizeof(s)),
			 ctl_text_or_dash(cert, "not_before", nb, sizeof(nb)),
			 ctl_text_or_dash(cert, "not_after", na, sizeof(na)),
			 ctl_text_or_dash(cert, "status", st, sizeof(st)));
		ctl_print_field("CERTIFICATE:", certtext);
	} else {
		ctl_print_field("CERTIFICATE:", NULL);
	}
	ctl_print_field(
		"INVENTORY:",
		ctl_json_text(json_object_get(d, "inventory"), b, sizeof(b)));
}

static const struct ctl_help list_help = {
	"devices list",
	"[--selector S] [--online | --offline] [--all] [--sort KEY] "
	"[--limit N]",
	"Lists devices (all pages, or the first N), then how many of how many\n"
	"matched. Decommissioned devices are left out unless --all is given "
	"or\n"
	"the selector names status (status=decommissioned).\n"
	"\n"
	"Options:\n"
	"  --selector S      only devices matching S, e.g.\n"
	"                    'site=b7,model in (a,b),!retired'; keys are "
	"labels\n"
	"                    and id, model, fw_version, online, status (the\n"
	"                    grammar: docs/selectors.md)\n"
	"  --online          only devices connected now\n"
	"  --offline         only devices not connected now\n"
	"  --all             decommissioned devices too\n"
	"  --sort KEY        created (default), last_seen or cert_expiry; a\n"
	"                    leading - for newest first (-last_seen)\n"
	"  --limit N         at most N devices\n"};

/* ONLINE: yes/no, or "decom" for a decommissioned device (which is not
 * "offline": it will never come back). */
static const char *
online_cell(const json_t *d, char *buf, size_t buflen)
{
	const char *status = json_string_value(json_object_get(d, "status"));

	if (status != NULL && strcmp(status, "decommissioned") == 0)
		return "decom";
	return ctl_text(d, "online", buf, buflen);
}

static const char *
cert_expiry_cell(const json_t *d, char *buf, size_t buflen)
{
	const json_t *cert = json_object_get(d, "certificate");

	return json_is_object(cert) ? ctl_text(cert, "not_after", buf, buflen)
				    : NULL;
}

static const struct ctl_column list_cols[] = {
	CTL_COL_KEY("ID", "id"),
	CTL_COL_CELL("ONLINE", online_cell),
	CTL_COL_KEY("MODEL", "model"),
	CTL_COL_KEY("FW", "fw_version"),
	CTL_COL_CELL("LABELS", ctl_cell_labels),
	CTL_COL_KEY("LAST SEEN", "last_seen"),
	CTL_COL_CELL("CERT EXPIRES", cert_expiry_cell),
	CTL_COL_KEY("ADDRESS", "address"),
};

enum {
	OPT_SELECTOR = CTL_OPT_FIRST_LOCAL,
	OPT_ONLINE,
	OPT_OFFLINE,
	OPT_ALL,
	OPT_SORT,
	OPT_LIMIT,
	OPT_YES,
	OPT_REMOVE,
};

struct list_args {
	const char *selector, *online, *sort;
	bool all;
	long limit;
};

static int
list_opt(void *arg, int c, const char *val)
{
	static const char *const sorts[] = {
		"created",    "-created",    "last_seen",
		"-last_seen", "cert_expiry", "-cert_expiry",
	};
	struct list_args *a = arg;
	size_t i;

	switch (c) {
	case OPT_SELECTOR:
		a->selector = val;
		return CTL_CONTINUE;
	case OPT_ALL:
		a->all = true;
		return CTL_CONTINUE;
	case OPT_LIMIT:
		if (ctl_parse_long(val, 1, 100000000, &a->limit) != 0)
			return ctl_usage(&list_help,
					 "--limit must be a positive number, "
					 "not '%s'",
					 val);
		return CTL_CONTINUE;
	case OPT_SORT:
		for (i = 0; i < sizeof(sorts) / sizeof(sorts[0]); i++)
			if (strcmp(val, sorts[i]) == 0)
				break;
		if (i == sizeof(sorts) / sizeof(sorts[0]))
			return ctl_usage(&list_help,
					 "--sort must be created, last_seen or "
					 "cert_expiry (a leading - for newest "
					 "first), not '%s'",
					 val);
		a->sort = val;
		return CTL_CONTINUE;
	default:
		break;
	}
	if (a->online != NULL)
		return ctl_usage(&list_help, "give --online or --offline once");
	a->online = c == OPT_ONLINE ? "true" : "false";
	return CTL_CONTINUE;
}

/* Appends "&name=" and value percent-encoded. 0 or -1. */
static int
query_add(struct buf *q, const char *name, const char *value)
{
	if (buf_printf(q, "%s%s=", q->len > 0 ? "&" : "", name) != 0)
		return -1;
	return ctl_urlencode(q, value);
}

/* "1,234" into buf: counts a person reads at a glance. */
static const char *
thousands(long long v, char *buf, size_t buflen)
{
	char digits[32];
	size_t n, i, o = 0;

	snprintf(digits, sizeof(digits), "%lld", v < 0 ? 0 : v);
	n = strlen(digits);
	for (i = 0; i < n && o + 2 < buflen; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

static int
devices_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"selector", required_argument, NULL, OPT_SELECTOR},
		{"online", no_argument, NULL, OPT_ONLINE},
		{"offline", no_argument, NULL, OPT_OFFLINE},
		{"all", no_argument, NULL, OPT_ALL},
		{"sort", required_argument, NULL, OPT_SORT},
		{"limit", required_argument, NULL, OPT_LIMIT},
		{0}};
	struct list_args a = {NULL, NULL, NULL, false, 0};
	struct ctl_optset local = {opts, list_opt, &a};
	struct buf query, sel;
	json_t *items = NULL;
	long long total = -1;
	bool exact = true;
	char shown[32], all[32];
	int rc = ctl_parse(ctl, &list_help, argc, argv, &local, 0);

	if (rc != CTL_CONTINUE)
		return rc;
	buf_init(&query, 8192);
	buf_init(&sel, 8192);
	/* --all: a status term, so the server lists both states. */
	if ((a.selector != NULL && buf_printf(&sel, "%s", a.selector) != 0) ||
	    (a.all && buf_printf(&sel, "%sstatus in (active,decommissioned)",
				 sel.len > 0 ? "," : "") != 0) ||
	    (sel.len > 0 && query_add(&query, "selector", sel.data) != 0) ||
	    (a.online != NULL && query_add(&query, "online", a.online) != 0) ||
	    (a.sort != NULL && query_add(&query, "sort", a.sort) != 0)) {
		rc = ctl_usage(&list_help, "--selector is too long");
		goto out;
	}
	rc = CTL_EXIT_FAIL;
	/* total and exact from the first page: the server counts up to a
	 * bound unless asked for the exact count (docs/api.md). */
	if (ctl_api_list_total(ctl, "/api/v1/devices",
			       query.data != NULL ? query.data : "",
			       (size_t)a.limit, &items, &total, &exact) != 0)
		goto out;
	/* Every page read: the list itself is the exact count. */
	if (!exact &&
	    (a.limit == 0 || json_array_size(items) < (size_t)a.limit)) {
		total = (long long)json_array_size(items);
		exact = true;
	}
	rc = ctl_print_items(ctl, items, list_cols,
			     sizeof(list_cols) / sizeof(list_cols[0]));
	/* The count goes to stderr, so the table stays a table for
	 * scripts that cut it. A total the server did not count to the
	 * end reads "1,000+". */
	if (rc == CTL_EXIT_OK && ctl->output == CTL_OUT_TABLE && total >= 0)
		fprintf(stderr, "%s of %s%s devices\n",
			thousands((long long)json_array_size(items), shown,
				  sizeof(shown)),
			thousands(total, all, sizeof(all)), exact ? "" : "+");
out:
	json_decref(items);
	buf_free(&query);
	buf_free(&sel);
	return rc;
}

static const struct ctl_help show_help = {
	"devices show", "ID",
	"Shows one device: state, labels, versions, certificate. ID is the\n"
	"device id or a unique prefix of it (at least 8 characters).\n"};

static const struct ctl_action show = {&show_help, "GET", "devices",
				       "",	   NULL,  print_device};

/* ---- bulk: --selector S, a dry run unless --yes ------------------------- */

/*
 * POST body to /api/v1/devices/<action> as a dry run, or for real with
 * --yes, and prints what matched ("3 devices match 'S'") with a sample,
 * then what was done or how to go on. verb: "label", "decommission".
 */
static int
bulk_run(struct ctl *ctl, const char *action, const char *verb,
	 const char *done, json_t *body, bool yes)
{
	char path[64], b[64];
	const char *sel = json_string_value(json_object_get(body, "selector"));
	json_t *doc = NULL, *sample;
	json_int_t matched;
	size_t i;
	int rc = CTL_EXIT_FAIL;

	snprintf(path, sizeof(path), "/api/v1/devices/%s", action);
	if (json_object_set_new(body, "dry_run", json_boolean(!yes)) != 0 ||
	    ctl_api(ctl, "POST", path, body, NULL, true, &doc) != 0)
		goto out;
	if (ctl->output == CTL_OUT_JSON) {
		ctl_print_json(doc);
		rc = CTL_EXIT_OK;
		goto out;
	}
	matched = json_integer_value(json_object_get(doc, "matched"));
	sample = json_object_get(doc, "sample");
	if (yes)
		printf("%s %" JSON_INTEGER_FORMAT " device%s matching '%s'\n",
		       done, matched, matched == 1 ? "" : "s", sel);
	else
		printf("%" JSON_INTEGER_FORMAT
		       " device%s match%s '%s' (dry run: "
		       "nothing changed)\n",
		       matched, matched == 1 ? "" : "s",
		       matched == 1 ? "es" : "", sel);
	for (i = 0; i < json_array_size(sample); i++) {
		const char *id = json_string_value(json_array_get(sample, i));

		snprintf(b, sizeof(b), "%s", id != NULL ? id : "-");
		printf("  %s\n", ctl_sanitize(b));
	}
	if ((json_int_t)json_array_size(sample) < matched)
		printf("  ... and %" JSON_INTEGER_FORMAT " more\n",
		       matched - (json_int_t)json_array_size(sample));
	if (json_object_get(doc, "revoked_certificates") != NULL)
		printf("certificates revoked: %s\n",
		       ctl_text_or_dash(doc, "revoked_certificates", b,
					sizeof(b)));
	if (!yes && matched > 0)
		printf("run again with --yes to %s them\n", verb);
	rc = CTL_EXIT_OK;
out:
	json_decref(doc);
	return rc;
}

static const struct ctl_help label_help = {
	"devices label", "ID|--selector S [k=v]... [--remove k]... [--yes]",
	"Sets and removes labels of a device (a JSON merge patch: other "
	"labels\n"
	"are kept). Keys: [A-Za-z0-9._/-]{1,63}; values up to 255 bytes.\n"
	"ID is the device id or a unique prefix of it (8+ characters).\n"
	"With --selector, every active device the selector matches: first a\n"
	"dry run that shows how many and a sample, --yes to apply the patch\n"
	"to all of them in one transaction.\n"
	"\n"
	"Options:\n"
	"  --remove k        remove label k (repeatable)\n"
	"  --selector S      the devices S matches instead of one ID\n"
	"  --yes             with --selector: do it (default: dry run)\n"};

struct label_args {
	json_t *labels;
	const char *selector;
	bool yes;
};

static int
label_opt(void *arg, int c, const char *val)
{
	struct label_args *a = arg;

	if (c == OPT_SELECTOR) {
		a->selector = val;
		return CTL_CONTINUE;
	}
	if (c == OPT_YES) {
		a->yes = true;
		return CTL_CONTINUE;
	}
	if (val[0] == '\0' || strchr(val, '=') != NULL)
		return ctl_usage(&label_help,
				 "--remove takes a label key, not '%s'", val);
	json_object_set_new(a->labels, val, json_null());
	return CTL_CONTINUE;
}

static int
devices_label(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"remove", required_argument, NULL, OPT_REMOVE},
		{"selector", required_argument, NULL, OPT_SELECTOR},
		{"yes", no_argument, NULL, OPT_YES},
		{0}};
	struct label_args a = {json_object(), NULL, false};
	json_t *patch = NULL, *d = NULL;
	struct ctl_optset local = {opts, label_opt, &a};
	char path[512];
	const char *id = NULL;
	int rc, first;

	if (a.labels == NULL)
		return ctl_fail("out of memory");
	rc = ctl_parse(ctl, &label_help, argc, argv, &local, -1);
	if (rc != CTL_CONTINUE)
		goto out;
	first = optind;
	if (a.selector == NULL) {
		if (optind >= argc) {
			rc = ctl_usage(&label_help,
				       "missing device ID (or --selector S)");
			goto out;
		}
		id = argv[first++];
	} else if (a.selector[0] == '\0') {
		rc = ctl_usage(&label_help, "--selector must not be empty");
		goto out;
	}
	if (a.yes && a.selector == NULL) {
		rc = ctl_usage(&label_help, "--yes goes with --selector");
		goto out;
	}
	for (int i = first; i < argc; i++) {
		if (ctl_parse_label(a.labels, argv[i]) != 0) {
			rc = ctl_usage(&label_help,
				       "labels are key=value, not '%s'",
				       argv[i]);
			goto out;
		}
	}
	if (json_object_size(a.labels) == 0) {
		rc = ctl_usage(&label_help, "nothing to change: give k=v or "
					    "--remove k");
		goto out;
	}
	if (a.selector != NULL) {
		patch = json_pack("{s:s, s:O}", "selector", a.selector,
				  "labels", a.labels);
		rc = patch == NULL ? ctl_fail("out of memory")
				   : bulk_run(ctl, "bulk-label", "label",
					      "labeled", patch, a.yes);
		goto out;
	}
	patch = json_pack("{s:O}", "labels", a.labels);
	rc = CTL_EXIT_FAIL;
	if (patch == NULL ||
	    ctl_path_id(path, sizeof(path), "devices", id, "") != 0 ||
	    ctl_api(ctl, "PATCH", path, patch, "application/merge-patch+json",
		    true, &d) != 0)
		goto out;
	if (ctl->output == CTL_OUT_JSON)
		ctl_print_json(d);
	else
		print_device(d);
	rc = CTL_EXIT_OK;
out:
	json_decref(a.labels);
	json_decref(patch);
	json_decref(d);
	return rc;
}

static const struct ctl_help decom_help = {
	"devices decommission", "ID|--selector S [--yes]",
	"Decommissions a device: its certificates are revoked at once, its\n"
	"session is closed and the CRL is re-signed. It cannot be undone; the\n"
	"device must enroll again to come back. ID is the device id or a\n"
	"unique prefix of it (8+ characters). With --selector, every active\n"
	"device the selector matches: first a dry run that shows how many and\n"
	"a sample, --yes to decommission all of them in one transaction.\n"
	"\n"
	"Options:\n"
	"  --selector S      the devices S matches instead of one ID\n"
	"  --yes             with --selector: do it (default: dry run)\n"};

struct decom_args {
	const char *selector;
	bool yes;
};

static int
decom_opt(void *arg, int c, const char *val)
{
	struct decom_args *a = arg;

	if (c == OPT_SELECTOR)
		a->selector = val;
	else
		a->yes = true;
	return CTL_CONTINUE;
}

static int
devices_decommission(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"selector", required_argument, NULL, OPT_SELECTOR},
		{"yes", no_argument, NULL, OPT_YES},
		{0}};
	struct decom_args a = {NULL, false};
	struct ctl_optset local = {opts, decom_opt, &a};
	json_t *body = NULL, *d = NULL;
	char path[512], b[64];
	int rc = ctl_parse(ctl, &decom_help, argc, argv, &local, -1);

	if (rc != CTL_CONTINUE)
		return rc;
	if (a.selector != NULL) {
		if (optind != argc)
			return ctl_usage(&decom_help,
					 "give an ID or --selector, not both");
		if (a.selector[0] == '\0')
			return ctl_usage(&decom_help,
					 "--selector must not be empty");
		body = json_pack("{s:s}", "selector", a.selector);
		rc = body == NULL ? ctl_fail("out of memory")
				  : bulk_run(ctl, "bulk-decommission",
					     "decommission", "decommissioned",
					     body, a.yes);
		json_decref(body);
		return rc;
	}
	if (a.yes)
		return ctl_usage(&decom_help, "--yes goes with --selector");
	rc = ctl_want_args(&decom_help, argc, argv, 1);
	if (rc != 0)
		return rc;
	if (ctl_path_id(path, sizeof(path), "devices", argv[optind],
			"/decommission") != 0 ||
	    ctl_api(ctl, "POST", path, NULL, NULL, true, &d) != 0)
		return CTL_EXIT_FAIL;
	if (ctl->output == CTL_OUT_JSON)
		ctl_print_json(d);
	else
		printf("decommissioned device %s\n",
		       ctl_text_or_dash(d, "id", b, sizeof(b)));
	json_decref(d);
	return CTL_EXIT_OK;
}

static const struct ctl_subcmd subs[] = {
	{"list", "list devices, optionally by selector", devices_list, NULL,
	 NULL},
	{"show", "show one device", NULL, NULL, &show},
	{"label", "set or remove labels of a device", devices_label, NULL,
	 NULL},
	{"decommission", "revoke a device and close its session",
	 devices_decommission, NULL, NULL},
	{"config", "a device's configuration: show, set",
	 ctl_cmd_devices_config, NULL, NULL},
	{"certificates", "a device's certificates and their status",
	 ctl_cmd_devices_certificates, NULL, NULL},
	{"rotate", "a new key and certificate for a device, now",
	 ctl_cmd_devices_rotate, NULL, NULL},
};

int
ctl_cmd_devices(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, "devices",
			    "Devices: viewer reads, operator labels and "
			    "decommissions.",
			    subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
