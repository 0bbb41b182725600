/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Certificates of devices (issue 10, docs/api.md "Certificates"):
 *   GET  /api/v1/devices/{id}/certificates    a device's certificates
 *   POST /api/v1/devices/{id}/rotate          ask for a new key now
 *   POST /api/v1/certificates/{serial}/revoke revoke one certificate
 * JSON <-> core/cert_lifecycle.c; runs on API job threads; input untrusted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "api/api_int.h"
#include "core/cert_lifecycle.h"
#include "core/store_certificates.h"
#include "pki.h"

/* The issuer's subject (RFC 2253) of a stored PEM, or JSON null. */
static json_t *
issuer_of(const char *pem)
{
	struct pki_error err;
	X509 *cert = NULL;
	BIO *bio = NULL;
	char *text = NULL;
	long len;
	json_t *out;

	if (pem == NULL ||
	    pki_cert_parse(pem, strlen(pem), &cert, &err) != PKI_OK)
		return json_null();
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL || X509_NAME_print_ex(bio, X509_get_issuer_name(cert),
					      0, XN_FLAG_RFC2253) < 0) {
		out = json_null();
		goto out;
	}
	len = BIO_get_mem_data(bio, &text);
	out = len > 0 ? json_stringn(text, (size_t)len) : json_null();
out:
	BIO_free(bio);
	X509_free(cert);
	return out != NULL ? out : json_null();
}

static json_t *
cert_doc(const struct cert_row *r, int64_t now)
{
	int stored = cert_status_parse(r->status);
	enum cert_status shown = cert_status_shown(
		stored >= 0 ? (enum cert_status)stored : CERT_REVOKED,
		r->not_after, now);

	return json_pack(
		"{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
		"serial", r->serial, "status", cert_status_name(shown),
		"not_before", api_time(r->not_before), "not_after",
		api_time(r->not_after), "issuer", issuer_of(r->pem),
		"issued_at", api_time(r->created_at), "installed_at",
		api_time(r->installed_at), "superseded_at",
		api_time(r->superseded_at), "revoked_at",
		api_time(r->revoked_at), "revocation_reason",
		r->revoke_reason >= 0
			? json_string(cert_reason_name(r->revoke_reason))
			: json_null(),
		"public_key_sha256",
		r->key_sha256[0] != '\0' ? json_string(r->key_sha256)
					 : json_null());
}

void
api_device_certificates(struct api_call *c, const char *id, const char *tail)
{
	struct cert_row *rows = NULL;
	size_t n = 0;
	json_t *items;
	enum store_rc rc;
	int64_t now = api_now();

	if (tail[0] != '\0') {
		api_problem(c->resp, 404, "not-found", NULL);
		return;
	}
	if (strcmp(c->req->method, "GET") != 0) {
		api_method_not_allowed(c->resp, "GET");
		return;
	}
	rc = store_cert_list(c->ctx->store, id, &rows, &n);
	if (rc == STORE_NOTFOUND) {
		api_problem(c->resp, 404, "not-found", "no such device");
		return;
	}
	if (rc != STORE_OK) {
		api_store_failed(c);
		return;
	}
	items = json_array();
	for (size_t i = 0; items != NULL && i < n; i++) {
		if (json_array_append_new(items, cert_doc(&rows[i], now)) !=
		    0) {
			json_decref(items);
			items = NULL;
		}
	}
	cert_rows_free(rows, n);
	if (items == NULL) {
		api_problem(c->resp, 500, "internal-error", "out of memory");
		return;
	}
	api_json(c->resp, 200,
		 json_pack("{s:s, s:o}", "device_id", id, "items", items));
}

/* An optional JSON object body with at most the given fields. */
static int
optional_body(struct api_call *c, const char *const *fields, json_t **out)
{
	*out = NULL;
	if (c->req->body_len == 0)
		return 0;
	if (api_body_object(c, out) != 0)
		return -1;
	if (api_only_fields(c, *out, fields) != 0) {
		json_decref(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

void
api_device_rotate(struct api_call *c, const char *id, const char *tail)
{
	static const char *const fields[] = {NULL};
	char rid[SECRET_UUID_LEN];
	bool created = false;
	json_t *body = NULL;
	enum cert_op_rc rc;

	if (tail[0] != '\0') {
		api_problem(c->resp, 404, "not-found", NULL);
		return;
	}
	if (strcmp(c->req->method, "POST") != 0) {
		api_method_not_allowed(c->resp, "POST");
		return;
	}
	if (optional_body(c, fields, &body) != 0)
		return;
	json_decref(body);
	rc = cert_rotation_request(c->ctx->store, id, "operator", c->actor, rid,
				   &created);
	switch (rc) {
	case CERT_OP_OK:
		api_json(c->resp, 202,
			 json_pack("{s:s, s:s, s:s, s:b}", "rotation_id", rid,
				   "device_id", id, "status", "pending",
				   "created", created));
		return;
	case CERT_OP_NOTFOUND:
		api_problem(c->resp, 404, "not-found", "no such device");
		return;
	case CERT_OP_CONFLICT:
		api_problem(c->resp, 409, "conflict",
			    "the device is decommissioned");
		return;
	default:
		api_store_failed(c);
		return;
	}
}

static void
certificate_revoke(struct api_call *c, const char *serial)
{
	static const char *const fields[] = {"reason", NULL};
	char norm[CERT_SERIAL_MAX], device_id[SECRET_UUID_LEN];
	const json_t *reason_j;
	json_t *body = NULL;
	enum cert_op_rc rc;
	int reason;

	if (!cert_serial_normalize(serial, norm)) {
		api_problem_field(c->resp, "serial",
				  "a certificate serial is 1 to 40 hex digits");
		return;
	}
	if (api_body_object(c, &body) != 0)
		return;
	if (api_only_fields(c, body, fields) != 0)
		goto out;
	reason_j = json_object_get(body, "reason");
	reason = json_is_string(reason_j)
			 ? cert_reason_parse(json_string_value(reason_j))
			 : -1;
	if (reason < 0) {
		api_problem_field(
			c->resp, "reason",
			"an RFC 5280 CRLReason: unspecified, keyCompromise, "
			"cACompromise, affiliationChanged, superseded, "
			"cessationOfOperation, privilegeWithdrawn, "
			"aACompromise");
		goto out;
	}
	rc = cert_revoke(c->ctx->store, norm, reason, c->actor, device_id);
	switch (rc) {
	case CERT_OP_OK:
		api_json(c->resp, 200,
			 json_pack("{s:s, s:s, s:s, s:s}", "serial", norm,
				   "device_id", device_id, "status", "revoked",
				   "revocation_reason",
				   cert_reason_name(reason)));
		break;
	case CERT_OP_NOTFOUND:
		api_problem(c->resp, 404, "not-found", "no such certificate");
		break;
	case CERT_OP_CONFLICT:
		api_problem(c->resp, 409, "conflict",
			    "the certificate is revoked already");
		break;
	case CERT_OP_BAD_INPUT:
		api_problem_field(c->resp, "serial",
				  "not a certificate serial");
		break;
	default:
		api_store_failed(c);
		break;
	}
out:
	json_decref(body);
}

void
api_certificates(struct api_call *c, const char *rest)
{
	char serial[64];
	const char *slash = rest[0] == '/' ? strchr(rest + 1, '/') : NULL;
	size_t n;

	/* rest: "/{serial}/revoke" */
	if (slash == NULL || strcmp(slash, "/revoke") != 0) {
		api_problem(c->resp, 404, "not-found", NULL);
		return;
	}
	n = (size_t)(slash - (rest + 1));
	if (n == 0 || n >= sizeof(serial)) {
		api_problem_field(c->resp, "serial",
				  "a certificate serial is 1 to 40 hex digits");
		return;
	}
	memcpy(serial, rest + 1, n);
	serial[n] = '\0';
	if (strcmp(c->req->method, "POST") != 0) {
		api_method_not_allowed(c->resp, "POST");
		return;
	}
	certificate_revoke(c, serial);
}
