/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetctl's certificate commands (docs/fleetctl.md, docs/pki.md):
 * `devices certificates ID` (a device's certificates with their status),
 * `devices rotate ID` (a new key and certificate now, or when the device
 * comes back) and `certificates revoke SERIAL --reason R` (one
 * certificate, with an RFC 5280 reason). Thin over the API.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

enum { OPT_REASON = CTL_OPT_FIRST_LOCAL };

/* ---- devices certificates ID ------------------------------------------ */

static const struct ctl_help certs_help = {
	"devices certificates", "ID",
	"Lists a device's certificates, newest first, with their status:\n"
	"active (accepted at the handshake), superseded (the device installed\n"
	"a newer one), revoked (with its RFC 5280 reason) or expired. During "
	"a\n"
	"rotation two are active until the device has installed the new one.\n"
	"ID is the device id or a unique prefix of it (8+ characters).\n"};

static const char *
revoked_cell(const json_t *item, char *buf, size_t buflen)
{
	const char *reason =
		json_string_value(json_object_get(item, "revocation_reason"));

	if (reason == NULL)
		return "-";
	snprintf(buf, buflen, "%s", reason);
	return buf;
}

static const struct ctl_column cert_cols[] = {
	CTL_COL_KEY("SERIAL", "serial"),
	CTL_COL_KEY("STATUS", "status"),
	CTL_COL_KEY("NOT BEFORE", "not_before"),
	CTL_COL_KEY("NOT AFTER", "not_after"),
	CTL_COL_CELL("REVOKED", revoked_cell),
};

static int
devices_certificates(struct ctl *ctl, int argc, char **argv)
{
	char path[512];
	json_t *doc = NULL;
	int rc = ctl_parse(ctl, &certs_help, argc, argv, NULL, 1);

	if (rc != CTL_CONTINUE)
		return rc;
	if (ctl_path_id(path, sizeof(path), "devices", argv[optind],
			"/certificates") != 0 ||
	    ctl_api(ctl, "GET", path, NULL, NULL, true, &doc) != 0)
		return CTL_EXIT_FAIL;
	rc = ctl_print_items(ctl, json_object_get(doc, "items"), cert_cols,
			     sizeof(cert_cols) / sizeof(cert_cols[0]));
	json_decref(doc);
	return rc;
}

/* ---- devices rotate ID --------------------------------------------------- */

static const struct ctl_help rotate_help = {
	"devices rotate", "ID",
	"Asks the device for a new key and certificate now (after a suspected\n"
	"key leak, for example): the worker holding its session sends\n"
	"cert.rotate at once; an offline device rotates when it comes back.\n"
	"The old certificate is refused once the device has installed the new\n"
	"one. Asking again while a rotation is pending returns that one.\n"};

static void
print_rotation(const json_t *doc)
{
	char b1[64], b2[16];

	ctl_print_field("ROTATION:",
			ctl_text_or_dash(doc, "rotation_id", b1, sizeof(b1)));
	ctl_print_field("STATUS:",
			ctl_text_or_dash(doc, "status", b2, sizeof(b2)));
	if (json_is_false(json_object_get(doc, "created")))
		printf("(a rotation was already pending)\n");
}

static const struct ctl_action rotate = {&rotate_help,
					 "POST",
					 "devices",
					 "/rotate",
					 "rotation requested for device",
					 print_rotation};

/* ---- certificates revoke SERIAL --reason R ------------------------------ */

static const struct ctl_help revoke_help = {
	"certificates revoke", "SERIAL --reason R",
	"Revokes one certificate (serial in hex, as openssl prints it): the\n"
	"sessions presenting it are closed, the handshake refuses it and the\n"
	"CRL is re-signed. The device keeps any other active certificate;\n"
	"to take a device off the fleet, decommission it instead.\n"
	"\n"
	"Options:\n"
	"  --reason R        an RFC 5280 reason: unspecified, keyCompromise,\n"
	"                    cACompromise, affiliationChanged, superseded,\n"
	"                    cessationOfOperation, privilegeWithdrawn,\n"
	"                    aACompromise\n"};

static int
reason_opt(void *arg, int c, const char *val)
{
	(void)c;
	*(const char **)arg = val;
	return CTL_CONTINUE;
}

static int
certificates_revoke(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"reason", required_argument, NULL, OPT_REASON}, {0}};
	const char *reason = NULL;
	struct ctl_optset local = {opts, reason_opt, &reason};
	char path[512], b1[64], b2[64];
	json_t *body = NULL, *doc = NULL;
	int rc = ctl_parse(ctl, &revoke_help, argc, argv, &local, 1);

	if (rc != CTL_CONTINUE)
		return rc;
	if (reason == NULL || reason[0] == '\0')
		return ctl_usage(&revoke_help, "--reason R is required");
	body = json_pack("{s:s}", "reason", reason);
	rc = CTL_EXIT_FAIL;
	if (body == NULL ||
	    ctl_path_id(path, sizeof(path), "certificates", argv[optind],
			"/revoke") != 0 ||
	    ctl_api(ctl, "POST", path, body, NULL, true, &doc) != 0)
		goto out;
	if (ctl->output == CTL_OUT_JSON) {
		ctl_print_json(doc);
	} else {
		printf("revoked certificate %s of device %s (%s)\n",
		       ctl_text_or_dash(doc, "serial", b1, sizeof(b1)),
		       ctl_text_or_dash(doc, "device_id", b2, sizeof(b2)),
		       reason);
	}
	rc = CTL_EXIT_OK;
out:
	json_decref(body);
	json_decref(doc);
	return rc;
}

/* ---- the groups ----------------------------------------------------------- */

int
ctl_cmd_devices_certificates(struct ctl *ctl, int argc, char **argv)
{
	return devices_certificates(ctl, argc, argv);
}

int
ctl_cmd_devices_rotate(struct ctl *ctl, int argc, char **argv)
{
	return ctl_run_action(ctl, &rotate, argc, argv);
}

static const struct ctl_subcmd subs[] = {
	{"revoke", "revoke one certificate with an RFC 5280 reason",
	 certificates_revoke, NULL, NULL},
};

int
ctl_cmd_certificates(struct ctl *ctl, int argc, char **argv)
{
	return ctl_dispatch(ctl, "certificates",
			    "Device certificates: operator revokes one.", subs,
			    sizeof(subs) / sizeof(subs[0]), argc, argv);
}
