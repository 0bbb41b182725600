/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetctl devices: list (with selectors), show, label (JSON merge patch
 * of the labels) and decommission (revokes the device's certificates and
 * closes its session).
 */
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
	"devices list", "[--selector S] [--online | --offline]",
	"Lists devices (all pages).\n"
	"\n"
	"Options:\n"
	"  --selector S      only devices matching S, e.g.\n"
	"                    'site=b7,model in (a,b),!retired' (DESIGN.md §9)\n"
	"  --online          only devices connected now\n"
	"  --offline         only devices not connected now\n"};

static const char *
online_cell(const json_t *d, char *buf, size_t buflen)
{
	const char *status = json_string_value(json_object_get(d, "status"));

	if (status != NULL && strcmp(status, "decommissioned") == 0)
		return "decom";
	return ctl_text(d, "online", buf, buflen);
}

static const struct ctl_column list_cols[] = {
	CTL_COL_KEY("ID", "id"),
	CTL_COL_CELL("ONLINE", online_cell),
	CTL_COL_KEY("MODEL", "model"),
	CTL_COL_KEY("FW", "fw_version"),
	CTL_COL_CELL("LABELS", ctl_cell_labels),
	CTL_COL_KEY("LAST SEEN", "last_seen"),
};

static const struct ctl_list list = {&list_help, "/api/v1/devices", list_cols,
				     sizeof(list_cols) / sizeof(list_cols[0])};

enum { OPT_SELECTOR = CTL_OPT_FIRST_LOCAL, OPT_ONLINE, OPT_OFFLINE };

struct list_args {
	const char *selector, *online;
};

static int
list_opt(void *arg, int c, const char *val)
{
	struct list_args *a = arg;

	if (c == OPT_SELECTOR) {
		a->selector = val;
		return CTL_CONTINUE;
	}
	if (a->online != NULL)
		return ctl_usage(&list_help, "give --online or --offline once");
	a->online = c == OPT_ONLINE ? "true" : "false";
	return CTL_CONTINUE;
}

static int
devices_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"selector", required_argument, NULL, OPT_SELECTOR},
		{"online", no_argument, NULL, OPT_ONLINE},
		{"offline", no_argument, NULL, OPT_OFFLINE},
		{0}};
	struct list_args a = {NULL, NULL};
	struct ctl_optset local = {opts, list_opt, &a};
	struct buf query;
	int rc = ctl_parse(ctl, &list_help, argc, argv, &local, 0);

	if (rc != CTL_CONTINUE)
		return rc;
	buf_init(&query, 4096);
	if ((a.selector != NULL && (buf_printf(&query, "selector=") != 0 ||
				    ctl_urlencode(&query, a.selector) != 0)) ||
	    (a.online != NULL &&
	     buf_printf(&query, "%sonline=%s", query.len > 0 ? "&" : "",
			a.online) != 0)) {
		buf_free(&query);
		return ctl_usage(&list_help, "--selector is too long");
	}
	rc = ctl_list_items(ctl, &list, query.data != NULL ? query.data : "",
			    0);
	buf_free(&query);
	return rc;
}

static const struct ctl_help show_help = {
	"devices show", "ID",
	"Shows one device: state, labels, versions, certificate.\n"};

static const struct ctl_action show = {&show_help, "GET", "devices",
				       "",	   NULL,  print_device};

static const struct ctl_help label_help = {
	"devices label", "ID [k=v]... [--remove k]...",
	"Sets and removes labels of a device (a JSON merge patch: other "
	"labels\n"
	"are kept). Keys: [A-Za-z0-9._/-]{1,63}; values up to 255 bytes.\n"
	"\n"
	"Options:\n"
	"  --remove k        remove label k (repeatable)\n"};

static int
remove_opt(void *arg, int c, const char *val)
{
	(void)c;
	if (val[0] == '\0' || strchr(val, '=') != NULL)
		return ctl_usage(&label_help,
				 "--remove takes a label key, not '%s'", val);
	json_object_set_new(arg, val, json_null());
	return CTL_CONTINUE;
}

static int
devices_label(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"remove", required_argument, NULL, CTL_OPT_FIRST_LOCAL}, {0}};
	json_t *labels = json_object(), *patch = NULL, *d = NULL;
	struct ctl_optset local = {opts, remove_opt, labels};
	char path[512];
	const char *id;
	int rc;

	if (labels == NULL)
		return ctl_fail("out of memory");
	rc = ctl_parse(ctl, &label_help, argc, argv, &local, -1);
	if (rc != CTL_CONTINUE)
		goto out;
	if (optind >= argc) {
		rc = ctl_usage(&label_help, "missing device ID");
		goto out;
	}
	id = argv[optind];
	for (int i = optind + 1; i < argc; i++) {
		if (ctl_parse_label(labels, argv[i]) != 0) {
			rc = ctl_usage(&label_help,
				       "labels are key=value, not '%s'",
				       argv[i]);
			goto out;
		}
	}
	if (json_object_size(labels) == 0) {
		rc = ctl_usage(&label_help, "nothing to change: give k=v or "
					    "--remove k");
		goto out;
	}
	patch = json_pack("{s:O}", "labels", labels);
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
	json_decref(labels);
	json_decref(patch);
	json_decref(d);
	return rc;
}

static const struct ctl_help decom_help = {
	"devices decommission", "ID",
	"Decommissions a device: its certificates are revoked at once, its\n"
	"session is closed and the CRL is re-signed. It cannot be undone; the\n"
	"device must enroll again to come back.\n"};

static const struct ctl_action decommission = {&decom_help,
					       "POST",
					       "devices",
					       "/decommission",
					       "decommissioned device",
					       NULL};

static const struct ctl_subcmd subs[] = {
	{"list", "list devices, optionally by selector", devices_list, NULL,
	 NULL},
	{"show", "show one device", NULL, NULL, &show},
	{"label", "set or remove labels of a device", devices_label, NULL,
	 NULL},
	{"decommission", "revoke a device and close its session", NULL, NULL,
	 &decommission},
	{"config", "a device's configuration: show, set",
	 ctl_cmd_devices_config, NULL, NULL},
};

int
ctl_cmd_devices(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, "devices",
			    "Devices: viewer reads, operator labels and "
			    "decommissions.",
			    subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
