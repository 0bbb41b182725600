/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetctl enroll: enrolls this host as a device by hand (the agent does
 * the same at first start). Loads the device's private key (which never
 * leaves the host), makes a CSR with libfleetpki, presents it with an
 * enrollment token to POST /enroll/v1, checks that the certificate it gets
 * back is for that key, and writes the certificate and chain atomically.
 */
#include <string.h>

#include <openssl/x509.h>

#include "atomicfile.h"
#include "ctl.h"
#include "pki.h"

static const struct ctl_help enroll_help = {
	"enroll",
	"--token T --key KEY --out CERT [--chain FILE] [--label k=v]...\n"
	"                [--model M] [--serial S]",
	"Enrolls a device: makes a CSR for the private key KEY (P-256, P-384\n"
	"or Ed25519 PEM), sends it with the enrollment token T and writes the\n"
	"device certificate to CERT. Prints the new device id. No admin token\n"
	"is needed or sent.\n"
	"\n"
	"Options:\n"
	"  --token T         enrollment token (fle_...; env "
	"FLEET_ENROLL_TOKEN)\n"
	"  --key KEY         the device private key, PEM\n"
	"  --out CERT        where to write the device certificate, PEM\n"
	"  --chain FILE      where to write the CA chain (issuing CA, root)\n"
	"  --label k=v       label asked for (the token's labels win;\n"
	"                    repeatable)\n"
	"  --model M         hardware model\n"
	"  --serial S        serial number\n"};

static int
write_pem(const char *path, const char *pem, const char *what)
{
	char err[512];

	if (pem == NULL || strstr(pem, "-----BEGIN CERTIFICATE-----") == NULL)
		return ctl_fail("the server sent no %s", what);
	if (atomic_write_file(path, pem, strlen(pem), 0644, err, sizeof(err)) !=
	    0)
		return ctl_fail("%s", err);
	return 0;
}

/* The certificate must carry our public key, or it is useless. */
static int
check_cert_key(const char *pem, EVP_PKEY *key)
{
	struct pki_error perr;
	X509 *cert = NULL;
	int ok;

	if (pem == NULL)
		return ctl_fail("the server sent no certificate");
	if (pki_cert_parse(pem, strlen(pem), &cert, &perr) != PKI_OK)
		return ctl_fail("the server sent an unreadable certificate: %s",
				perr.msg);
	ok = X509_check_private_key(cert, key);
	X509_free(cert);
	if (ok != 1)
		return ctl_fail("the server's certificate is not for the key "
				"sent");
	return 0;
}

enum {
	OPT_ETOKEN = CTL_OPT_FIRST_LOCAL,
	OPT_KEY,
	OPT_OUT,
	OPT_CHAIN,
	OPT_LABEL,
	OPT_MODEL,
	OPT_SERIAL
};

struct enroll_args {
	const char *token, *key_path, *out, *chain, *model, *serial;
	json_t *labels;
};

static int
enroll_opt(void *arg, int c, const char *val)
{
	struct enroll_args *a = arg;

	switch (c) {
	case OPT_ETOKEN:
		a->token = val;
		break;
	case OPT_KEY:
		a->key_path = val;
		break;
	case OPT_OUT:
		a->out = val;
		break;
	case OPT_CHAIN:
		a->chain = val;
		break;
	case OPT_LABEL:
		if (ctl_parse_label(a->labels, val) != 0)
			return ctl_usage(&enroll_help,
					 "--label must be key=value, not '%s'",
					 val);
		break;
	case OPT_MODEL:
		a->model = val;
		break;
	default:
		a->serial = val;
	}
	return CTL_CONTINUE;
}

int
ctl_cmd_enroll(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{"token", required_argument, NULL, OPT_ETOKEN},
		{"key", required_argument, NULL, OPT_KEY},
		{"out", required_argument, NULL, OPT_OUT},
		{"chain", required_argument, NULL, OPT_CHAIN},
		{"label", required_argument, NULL, OPT_LABEL},
		{"model", required_argument, NULL, OPT_MODEL},
		{"serial", required_argument, NULL, OPT_SERIAL},
		{0}};
	struct enroll_args a = {getenv("FLEET_ENROLL_TOKEN"),
				NULL,
				NULL,
				NULL,
				NULL,
				NULL,
				json_object()};
	struct ctl_optset local = {opts, enroll_opt, &a};
	json_t *body = NULL, *resp = NULL;
	struct pki_error perr;
	EVP_PKEY *key = NULL;
	char *csr = NULL;
	size_t csr_len = 0;
	int rc;

	if (a.labels == NULL)
		return ctl_fail("out of memory");
	rc = ctl_parse(ctl, &enroll_help, argc, argv, &local, 0);
	if (rc != CTL_CONTINUE)
		goto out;
	if (a.token == NULL || a.token[0] == '\0' || a.key_path == NULL ||
	    a.out == NULL) {
		rc = ctl_usage(&enroll_help, "%s is required",
			       a.token == NULL || a.token[0] == '\0' ? "--token"
			       : a.key_path == NULL		     ? "--key"
								     : "--out");
		goto out;
	}
	rc = CTL_EXIT_FAIL;
	if (pki_key_load_private(a.key_path, &key, &perr) != PKI_OK) {
		ctl_fail("%s", perr.msg);
		goto out;
	}
	/* The server keeps only the public key; the subject is a hint. */
	if (pki_csr_create(key, a.serial != NULL ? a.serial : "fleet-device",
			   &csr, &csr_len, &perr) != PKI_OK) {
		ctl_fail("CSR: %s", perr.msg);
		goto out;
	}
	body = json_pack("{s:s, s:s, s:O}", "token", a.token, "csr", csr,
			 "labels", a.labels);
	if (body == NULL ||
	    (a.model != NULL &&
	     json_object_set_new(body, "model", json_string(a.model)) != 0) ||
	    (a.serial != NULL &&
	     json_object_set_new(body, "serial", json_string(a.serial)) != 0)) {
		ctl_fail("--token, --model and --serial must be UTF-8 text");
		goto out;
	}
	if (ctl_api(ctl, "POST", "/enroll/v1", body, NULL, false, &resp) != 0)
		goto out;
	if (!json_is_string(json_object_get(resp, "device_id"))) {
		ctl_fail("the server's answer has no device_id");
		goto out;
	}
	if (check_cert_key(
		    json_string_value(json_object_get(resp, "certificate")),
		    key) != 0 ||
	    write_pem(a.out,
		      json_string_value(json_object_get(resp, "certificate")),
		      "certificate") != 0)
		goto out;
	if (a.chain != NULL &&
	    write_pem(a.chain,
		      json_string_value(json_object_get(resp, "chain")),
		      "CA chain") != 0)
		goto out;
	if (ctl->output == CTL_OUT_JSON) {
		ctl_print_json(resp);
	} else {
		char b[256];

		ctl_print_field("DEVICE ID:",
				ctl_text(resp, "device_id", b, sizeof(b)));
		ctl_print_field("CERTIFICATE:", a.out);
		if (a.chain != NULL)
			ctl_print_field("CHAIN:", a.chain);
		ctl_print_field("DEVICE SERVER:",
				ctl_text(resp, "device_server", b, sizeof(b)));
	}
	rc = CTL_EXIT_OK;
out:
	/* body holds the enrollment token and key the private key: jansson
	 * and OpenSSL wipe them as they free them (secmem.c). */
	json_decref(a.labels);
	json_decref(body);
	json_decref(resp);
	EVP_PKEY_free(key);
	free(csr);
	return rc;
}
