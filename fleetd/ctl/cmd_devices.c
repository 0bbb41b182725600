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

static int
devices_list(struct ctl *ctl, int argc, char **argv)
{
	enum { OPT_SELECTOR = CTL_OPT_FIRST_LOCAL, OPT_ONLINE, OPT_OFFLINE };
	static const struct option opts[] = {
		{"selector", required_argument, NULL, OPT_SELECTOR},
		{"online", no_argument, NULL, OPT_ONLINE},
		{"offline", no_argument, NULL, OPT_OFFLINE},
		CTL_LONGOPTS_GLOBAL,
		{0}};
	static const char *const headers[] = {"ID", "ONLINE", "MODEL",
					      "FW", "LABELS", "LAST SEEN"};
	const char *selector = NULL, *online = NULL;
	struct ctl_table *t = NULL;
	json_t *items = NULL;
	struct buf query;
	int c, rc;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, CTL_SHORTOPTS, opts, NULL)) != -1) {
		switch (c) {
		case OPT_SELECTOR:
			selector = optarg;
			break;
		case OPT_ONLINE:
		case OPT_OFFLINE:
			if (online != NULL)
				return ctl_usage(&list_help,
						 "give --online or --offline "
						 "once");
			online = c == OPT_ONLINE ? "true" : "false";
			break;
		default:
			rc = ctl_opt_common(ctl, c, &list_help, argv);
			if (rc != CTL_CONTINUE)
				return rc;
		}
	}
	rc = ctl_want_args(&list_help, argc, argv, 0);
	if (rc != 0)
		return rc;
	buf_init(&query, 4096);
	if ((selector != NULL && (buf_printf(&query, "selector=") != 0 ||
				  ctl_urlencode(&query, selector) != 0)) ||
	    (online != NULL &&
	     buf_printf(&query, "%sonline=%s", query.len > 0 ? "&" : "",
			online) != 0)) {
		buf_free(&query);
		return ctl_usage(&list_help, "--selector is too long");
	}
	rc = ctl_api_list(ctl, "/api/v1/devices",
			  query.data != NULL ? query.data : "", 0, &items);
	buf_free(&query);
	if (rc != 0)
		return CTL_EXIT_FAIL;
	if (ctl->output == CTL_OUT_JSON) {
		ctl_print_json(items);
		json_decref(items);
		return CTL_EXIT_OK;
	}
	t = ctl_table_new(6, headers);
	rc = t != NULL ? CTL_EXIT_OK : CTL_EXIT_FAIL;
	for (size_t i = 0; t != NULL && i < json_array_size(items); i++) {
		const json_t *d = json_array_get(items, i);
		char b[5][128], labels[256];
		const char *row[6];
		const char *status =
			json_string_value(json_object_get(d, "status"));

		row[0] = ctl_text(d, "id", b[0], sizeof(b[0]));
		row[1] = ctl_text(d, "online", b[1], sizeof(b[1]));
		if (status != NULL && strcmp(status, "decommissioned") == 0)
			row[1] = "decom";
		row[2] = ctl_text(d, "model", b[2], sizeof(b[2]));
		row[3] = ctl_text(d, "fw_version", b[3], sizeof(b[3]));
		row[4] = ctl_labels_text(json_object_get(d, "labels"), labels,
					 sizeof(labels));
		row[5] = ctl_text(d, "last_seen", b[4], sizeof(b[4]));
		if (ctl_table_add(t, row) != 0)
			rc = CTL_EXIT_FAIL;
	}
	if (t != NULL)
		ctl_table_print(t, stdout);
	ctl_table_free(t);
	json_decref(items);
	return rc == CTL_EXIT_OK ? rc : ctl_fail("out of memory");
}

static const struct ctl_help show_help = {
	"devices show", "ID",
	"Shows one device: state, labels, versions, certificate.\n"};

static int
devices_show(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {CTL_LONGOPTS_GLOBAL, {0}};
	char path[512];
	json_t *d = NULL;
	int c, rc;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, CTL_SHORTOPTS, opts, NULL)) != -1) {
		rc = ctl_opt_common(ctl, c, &show_help, argv);
		if (rc != CTL_CONTINUE)
			return rc;
	}
	rc = ctl_want_args(&show_help, argc, argv, 1);
	if (rc != 0)
		return rc;
	if (ctl_path_id(path, sizeof(path), "devices", argv[optind], "") != 0 ||
	    ctl_api(ctl, "GET", path, NULL, NULL, true, &d) != 0)
		return CTL_EXIT_FAIL;
	if (ctl->output == CTL_OUT_JSON)
		ctl_print_json(d);
	else
		print_device(d);
	json_decref(d);
	return CTL_EXIT_OK;
}

static const struct ctl_help label_help = {
	"devices label", "ID [k=v]... [--remove k]...",
	"Sets and removes labels of a device (a JSON merge patch: other "
	"labels\n"
	"are kept). Keys: [A-Za-z0-9._/-]{1,63}; values up to 255 bytes.\n"
	"\n"
	"Options:\n"
	"  --remove k        remove label k (repeatable)\n"};

static int
devices_label(struct ctl *ctl, int argc, char **argv)
{
	enum { OPT_REMOVE = CTL_OPT_FIRST_LOCAL };
	static const struct option opts[] = {
		{"remove", required_argument, NULL, OPT_REMOVE},
		CTL_LONGOPTS_GLOBAL,
		{0}};
	json_t *labels = json_object(), *patch = NULL, *d = NULL;
	char path[512];
	const char *id;
	int c, rc = CTL_EXIT_FAIL;

	if (labels == NULL)
		return ctl_fail("out of memory");
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, CTL_SHORTOPTS, opts, NULL)) != -1) {
		if (c == OPT_REMOVE) {
			if (optarg[0] == '\0' || strchr(optarg, '=') != NULL) {
				rc = ctl_usage(&label_help,
					       "--remove takes a label key, "
					       "not '%s'",
					       optarg);
				goto out;
			}
			json_object_set_new(labels, optarg, json_null());
			continue;
		}
		rc = ctl_opt_common(ctl, c, &label_help, argv);
		if (rc != CTL_CONTINUE)
			goto out;
	}
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

static int
devices_decommission(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {CTL_LONGOPTS_GLOBAL, {0}};
	char path[512];
	json_t *d = NULL;
	int c, rc;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, CTL_SHORTOPTS, opts, NULL)) != -1) {
		rc = ctl_opt_common(ctl, c, &decom_help, argv);
		if (rc != CTL_CONTINUE)
			return rc;
	}
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
		       ctl_sanitize(argv[optind]));
	json_decref(d);
	return CTL_EXIT_OK;
}

static const struct ctl_subcmd subs[] = {
	{"list", "list devices, optionally by selector", devices_list},
	{"show", "show one device", devices_show},
	{"label", "set or remove labels of a device", devices_label},
	{"decommission", "revoke a device and close its session",
	 devices_decommission},
};

int
ctl_cmd_devices(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, "devices",
			    "Devices: viewer reads, operator labels and "
			    "decommissions.",
			    subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
