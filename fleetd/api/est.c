// SPDX-License-Identifier: Apache-2.0
/*
 * EST (RFC 7030, with the RFC 8951 clarifications) on the api listener,
 * under /.well-known/est/:
 *   GET  cacerts         the CA certificates (issuing CA(s), root) as a
 *                        certs-only PKCS#7, base64
 *   GET  csrattrs        what a CSR must be: ecdsa-with-SHA256, P-256
 *   POST simpleenroll    base64 PKCS#10 in, base64 PKCS#7 out; authorised
 *                        by an enrollment token (HTTP Basic password or
 *                        Bearer), with the rules and use accounting of
 *                        POST /enroll/v1 (core/enroll.c)
 *   POST simplereenroll  the same, authenticated by the TLS client
 *                        certificate (core/est.h: a NEW key; an expired
 *                        certificate within the grace window)
 * Runs on job threads. Everything is untrusted: the body (bounded base64,
 * strict DER, the CSR checked again by the ca), the Authorization header
 * (its copies are wiped), the client certificate (verified in the
 * handshake; its identity read here and checked against the store).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "api/api_int.h"
#include "core/cert_lifecycle.h"
#include "core/enroll.h"
#include "core/est.h"
#include "core/store_est.h"
#include "log.h"
#include "pki.h"

#define EST_PKCS7_TYPE "application/pkcs7-mime; smime-type=certs-only"
#define EST_CTE "content-transfer-encoding: base64\r\n"
#define EST_BASIC "www-authenticate: Basic realm=\"fleet-est\"\r\n"
#define EST_MAX_CA_CERTS 8
#define EST_TOKEN_MAX 256

/* CsrAttrs (RFC 7030 §4.5.2): ecdsa-with-SHA256, and id-ecPublicKey with
 * prime256v1: the enrollment policy's default key, as DER. */
static const unsigned char est_csrattrs_der[] = {
	0x30, 0x21, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
	0x30, 0x15, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x31,
	0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

/* 200 with base64 text of a content type (EST's answers). Takes b64. */
static void
est_answer(struct api_call *c, const char *type, char *b64, size_t len)
{
	api_response_free(c->resp);
	c->resp->body = b64;
	c->resp->body_len = len;
	c->resp->status = 200;
	c->resp->content_type = type;
	c->resp->extra_headers = EST_CTE;
}

/* 200 with certs as a base64 certs-only PKCS#7. */
static void
est_answer_certs(struct api_call *c, X509 *const *certs, size_t n)
{
	struct pki_error err;
	char *b64 = NULL;
	size_t len = 0;

	if (pki_pkcs7_certs_base64(certs, n, &b64, &len, &err) != PKI_OK) {
		log_write(LOG_LEVEL_WARN, c->req->request_id, "est: PKCS#7: %s",
			  err.msg);
		api_problem(c->resp, 500, "internal-error", NULL);
		return;
	}
	est_answer(c, EST_PKCS7_TYPE, b64, len);
}

/* The issued certificate (PEM) as the EST answer. */
static void
est_answer_pem(struct api_call *c, const char *pem)
{
	struct pki_error err;
	X509 *x = NULL;

	if (pki_cert_parse(pem, strlen(pem), &x, &err) != PKI_OK) {
		log_write(LOG_LEVEL_WARN, c->req->request_id,
			  "est: issued certificate: %s", err.msg);
		api_problem(c->resp, 500, "internal-error", NULL);
		return;
	}
	est_answer_certs(c, &x, 1);
	X509_free(x);
}

static void
est_cacerts(struct api_call *c)
{
	const char *pem = c->ctx->env->ca_bundle_pem;
	struct pki_error err;
	X509 **certs = NULL;
	size_t n = 0;

	if (pem == NULL ||
	    pki_certs_parse_pem(pem, strlen(pem), EST_MAX_CA_CERTS, &certs, &n,
				&err) != PKI_OK) {
		api_problem(c->resp, 500, "internal-error", NULL);
		return;
	}
	est_answer_certs(c, certs, n);
	pki_certs_free(certs, n);
}

static void
est_csrattrs(struct api_call *c)
{
	struct pki_error err;
	char *b64 = NULL;
	size_t len = 0;

	if (pki_base64_encode(est_csrattrs_der, sizeof(est_csrattrs_der), &b64,
			      &len, &err) != PKI_OK) {
		api_problem(c->resp, 500, "internal-error", NULL);
		return;
	}
	est_answer(c, "application/csrattrs", b64, len);
}

/* Content-Type is application/pkcs10 (parameters allowed). */
static bool
est_is_pkcs10(const char *ct)
{
	size_t n = strlen("application/pkcs10");

	return ct != NULL && strncasecmp(ct, "application/pkcs10", n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/*
 * The body: base64 of a DER PKCS#10 (RFC 8951: whitespace allowed),
 * turned into the PEM text the signer port carries. *pem malloc'd.
 * Answers 415/400 and returns -1 on bad input.
 */
static int
est_csr_pem(struct api_call *c, char **pem, size_t *pem_len)
{
	static const char begin[] = "-----BEGIN CERTIFICATE REQUEST-----\n";
	static const char end[] = "-----END CERTIFICATE REQUEST-----\n";
	struct pki_error err;
	unsigned char *der = NULL;
	char *b64 = NULL, *out = NULL;
	size_t der_len = 0, b64_len = 0, n;

	if (!est_is_pkcs10(c->req->content_type)) {
		api_problem(c->resp, 415, "unsupported-media-type",
			    "send the CSR as Content-Type: application/pkcs10 "
			    "(base64 DER)");
		return -1;
	}
	if (pki_base64_decode(c->req->body, c->req->body_len, ENROLL_CSR_MAX,
			      &der, &der_len, &err) != PKI_OK) {
		api_problem(c->resp, 400, "csr-rejected",
			    "the body is not base64 of a DER PKCS#10 CSR of "
			    "at most 16384 bytes");
		return -1;
	}
	if (pki_base64_encode(der, der_len, &b64, &b64_len, &err) != PKI_OK)
		goto nomem;
	free(der);
	der = NULL;
	n = sizeof(begin) - 1 + b64_len + sizeof(end);
	out = malloc(n);
	if (out == NULL)
		goto nomem;
	memcpy(out, begin, sizeof(begin) - 1);
	n = sizeof(begin) - 1;
	/* Our base64 ends lines in CRLF; PEM readers take either. */
	memcpy(out + n, b64, b64_len);
	n += b64_len;
	memcpy(out + n, end, sizeof(end));
	free(b64);
	*pem = out;
	*pem_len = n + sizeof(end) - 1;
	return 0;
nomem:
	free(der);
	free(b64);
	api_problem(c->resp, 500, "internal-error", NULL);
	return -1;
}

/*
 * The enrollment token of the request: the password of HTTP Basic (the
 * user name is ignored; RFC 7030 §3.2.3) or a Bearer token, copied into
 * tok[EST_TOKEN_MAX] (wiped by the caller). -1 when there is none.
 */
static int
est_token(const char *auth, char tok[EST_TOKEN_MAX])
{
	struct pki_error err;
	unsigned char *raw = NULL;
	size_t len = 0;
	const char *colon;
	int rc = -1;

	if (auth == NULL)
		return -1;
	if (strncasecmp(auth, "Bearer ", 7) == 0) {
		auth += 7;
		while (*auth == ' ')
			auth++;
		if (*auth == '\0' || strlen(auth) >= EST_TOKEN_MAX)
			return -1;
		snprintf(tok, EST_TOKEN_MAX, "%s", auth);
		return 0;
	}
	if (strncasecmp(auth, "Basic ", 6) != 0)
		return -1;
	auth += 6;
	while (*auth == ' ')
		auth++;
	if (pki_base64_decode(auth, strlen(auth), 2 * EST_TOKEN_MAX, &raw, &len,
			      &err) != PKI_OK)
		return -1;
	colon = memchr(raw, ':', len);
	if (colon != NULL && memchr(raw, '\0', len) == NULL) {
		size_t off = (size_t)(colon - (const char *)raw) + 1;

		if (len - off > 0 && len - off < EST_TOKEN_MAX) {
			memcpy(tok, raw + off, len - off);
			tok[len - off] = '\0';
			rc = 0;
		}
	}
	OPENSSL_cleanse(raw, len);
	free(raw);
	return rc;
}

/* An enroll refusal as EST answers it (the same types as /enroll/v1). */
static void
est_enroll_refused(struct api_call *c, enum enroll_rc rc, const char *err)
{
	static const struct {
		enum enroll_rc rc;
		int status;
		const char *slug, *detail;
	} map[] = {
		{ENROLL_BAD_CSR_SIZE, 400, "csr-rejected",
		 "the CSR is empty or too large"},
		{ENROLL_TOKEN_REVOKED, 401, "token-revoked",
		 "the enrollment token was revoked"},
		{ENROLL_TOKEN_EXPIRED, 401, "token-expired",
		 "the enrollment token has expired"},
		{ENROLL_TOKEN_EXHAUSTED, 401, "token-exhausted",
		 "the enrollment token has no uses left"},
		{ENROLL_TOKEN_UNKNOWN, 401, "token-invalid",
		 "unknown enrollment token"},
		{ENROLL_SIGNER_UNAVAILABLE, 503, "service-unavailable",
		 "the certificate authority is unavailable"},
	};

	if (rc == ENROLL_CSR_REJECTED) {
		api_problem(c->resp, 400, "csr-rejected",
			    err[0] ? err : "the CSR was refused");
		return;
	}
	if (rc == ENROLL_ERR_STORE) {
		api_store_failed(c);
		return;
	}
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (map[i].rc != rc)
			continue;
		api_problem(c->resp, map[i].status, map[i].slug, map[i].detail);
		if (map[i].status == 401)
			c->resp->extra_headers = EST_BASIC;
		return;
	}
	api_problem(c->resp, 500, "internal-error", NULL);
}

static void
est_simpleenroll(struct api_call *c)
{
	struct enroll_request req;
	struct enroll_result res;
	char tok[EST_TOKEN_MAX];
	char err[256] = "";
	char *pem = NULL;
	size_t pem_len = 0;
	enum enroll_rc rc;

	memset(&req, 0, sizeof(req));
	memset(&res, 0, sizeof(res));
	if (est_token(c->req->authorization, tok) != 0) {
		api_problem(c->resp, 401, "unauthorized",
			    "send an enrollment token as the HTTP Basic "
			    "password or as Authorization: Bearer");
		c->resp->extra_headers = EST_BASIC;
		goto out;
	}
	if (est_csr_pem(c, &pem, &pem_len) != 0)
		goto out;
	req.token = tok;
	req.csr = pem;
	req.csr_len = pem_len;
	req.peer = c->req->peer;
	rc = enroll_device(c->ctx->store, c->ctx->signer, &req,
			   c->ctx->env->cert_validity_s, api_now(), NULL, &res,
			   err, sizeof(err));
	if (rc != ENROLL_OK) {
		est_enroll_refused(c, rc, err);
		goto out;
	}
	log_write(LOG_LEVEL_INFO, c->req->request_id,
		  "est: enrolled device %s with token %s", res.device_id,
		  res.token_id);
	est_answer_pem(c, res.issued.cert_pem);
out:
	OPENSSL_cleanse(tok, sizeof(tok));
	req.token = NULL;
	req.csr = NULL;
	enroll_request_clear(&req);
	enroll_result_clear(&res);
	free(pem);
}

/* What re-enroll needs from the client certificate. */
struct est_client {
	char device_id[64];
	char serial[PKI_SERIAL_HEX_MAX];
	char key_id[PKI_KEY_ID_LEN];
	int64_t not_after;
};

static int
est_client_read(const struct api_request *req, struct est_client *cl)
{
	const unsigned char *p = req->client_cert_der;
	struct pki_error err;
	X509 *x = NULL;
	ASN1_TIME *epoch = NULL;
	int days = 0, secs = 0, rc = -1;

	if (p == NULL)
		return -1;
	x = d2i_X509(NULL, &p, (long)req->client_cert_der_len);
	if (x == NULL)
		return -1;
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
				      cl->device_id,
				      sizeof(cl->device_id)) <= 0 ||
	    !pki_device_id_valid(cl->device_id) ||
	    pki_cert_serial_hex(x, cl->serial, sizeof(cl->serial), &err) !=
		    PKI_OK ||
	    pki_key_id(X509_get0_pubkey(x), cl->key_id, &err) != PKI_OK)
		goto out;
	epoch = ASN1_TIME_set(NULL, 0);
	if (epoch == NULL ||
	    ASN1_TIME_diff(&days, &secs, epoch, X509_get0_notAfter(x)) != 1)
		goto out;
	cl->not_after = (int64_t)days * 86400 + secs;
	rc = 0;
out:
	ASN1_TIME_free(epoch);
	X509_free(x);
	return rc;
}

/* The CSR's key id and subject CN (the ca checks the CSR again). */
static int
est_csr_facts(const char *pem, size_t len, char key_id[PKI_KEY_ID_LEN],
	      char cn[80], char *err, size_t errlen)
{
	struct pki_policy policy;
	struct pki_error perr;
	X509_REQ *req = NULL;
	int rc = -1;

	pki_policy_default(&policy);
	if (pki_csr_parse_check(pem, len, &policy, &req, &perr) != PKI_OK) {
		snprintf(err, errlen, "%s", perr.msg);
		return -1;
	}
	if (pki_key_id(X509_REQ_get0_pubkey(req), key_id, &perr) != PKI_OK) {
		snprintf(err, errlen, "%s", perr.msg);
		goto out;
	}
	if (X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req),
				      NID_commonName, cn, 80) < 0)
		cn[0] = '\0';
	rc = 0;
out:
	X509_REQ_free(req);
	return rc;
}

static void
est_reenroll_refused(struct api_call *c, enum est_reenroll_verdict v)
{
	switch (v) {
	case EST_REENROLL_NO_CERT:
		api_problem(c->resp, 401, "est-client-certificate-required",
			    "re-enrollment is authenticated by the TLS client "
			    "certificate of the device");
		return;
	case EST_REENROLL_CERT_INVALID:
		api_problem(c->resp, 403, "est-client-certificate-invalid",
			    "the client certificate is not a device "
			    "certificate of this fleet");
		return;
	case EST_REENROLL_GRACE_DISABLED:
		api_problem(c->resp, 403, "est-grace-disabled",
			    "the client certificate has expired and renewal "
			    "after expiry is disabled (cert_grace = 0)");
		return;
	case EST_REENROLL_PAST_GRACE:
		api_problem(c->resp, 403, "certificate-expired-past-grace",
			    "the client certificate expired longer ago than "
			    "the grace window: enroll again with a token");
		return;
	case EST_REENROLL_NOT_NEWEST:
		api_problem(c->resp, 403, "certificate-not-newest",
			    "a newer certificate of this device exists; an "
			    "expired older one cannot renew");
		return;
	case EST_REENROLL_OK:
		break;
	}
	api_problem(c->resp, 500, "internal-error", NULL);
}

static void
est_renew_refused(struct api_call *c, const struct cert_renew_result *res)
{
	switch (res->verdict) {
	case CERT_RENEW_REFUSE_DEVICE:
		api_problem(c->resp, 403, "est-device-not-active",
			    "the device is decommissioned");
		return;
	case CERT_RENEW_REFUSE_SESSION:
		api_problem(c->resp, 403, "est-certificate-not-active",
			    "the client certificate is revoked or "
			    "superseded, or unknown to this fleet");
		return;
	case CERT_RENEW_REFUSE_NAME:
		api_problem(c->resp, 400, "csr-rejected",
			    "the CSR names another device");
		return;
	case CERT_RENEW_REFUSE_KEY:
		api_problem(c->resp, 400, "est-key-reused",
			    "re-enrollment needs a new key: the CSR's key was "
			    "certified before");
		return;
	default:
		api_problem(c->resp, 500, "internal-error", NULL);
	}
}

static void
est_simplereenroll(struct api_call *c)
{
	static const enum est_client_cert states[] = {
		[API_CLIENT_CERT_NONE] = EST_CERT_NONE,
		[API_CLIENT_CERT_VERIFIED] = EST_CERT_VERIFIED,
		[API_CLIENT_CERT_EXPIRED] = EST_CERT_EXPIRED,
		[API_CLIENT_CERT_INVALID] = EST_CERT_INVALID,
	};
	enum est_client_cert state = EST_CERT_INVALID;
	enum est_reenroll_verdict v;
	struct cert_renew_request rr;
	struct cert_renew_result res;
	struct est_client cl;
	char key_id[PKI_KEY_ID_LEN], cn[80], err[256] = "";
	char *pem = NULL;
	size_t pem_len = 0;
	bool known = false, newest = false;
	int64_t now = api_now();

	memset(&res, 0, sizeof(res));
	memset(&cl, 0, sizeof(cl));
	if ((unsigned)c->req->client_cert < sizeof(states) / sizeof(states[0]))
		state = states[c->req->client_cert];
	if (state != EST_CERT_NONE && state != EST_CERT_INVALID &&
	    est_client_read(c->req, &cl) != 0)
		state = EST_CERT_INVALID;
	if (state == EST_CERT_EXPIRED) {
		if (store_est_cert_newest(c->ctx->store, cl.device_id,
					  cl.serial, &known,
					  &newest) != STORE_OK) {
			api_store_failed(c);
			return;
		}
	}
	v = est_reenroll_rule(state, cl.not_after, now,
			      c->ctx->env->cert_grace_s, newest);
	if (v != EST_REENROLL_OK) {
		log_write(LOG_LEVEL_INFO, c->req->request_id,
			  "est: re-enroll of %s refused: %s",
			  cl.device_id[0] ? cl.device_id : "-",
			  est_reenroll_verdict_code(v));
		est_reenroll_refused(c, v);
		return;
	}
	if (est_csr_pem(c, &pem, &pem_len) != 0)
		return;
	if (est_csr_facts(pem, pem_len, key_id, cn, err, sizeof(err)) != 0) {
		api_problem(c->resp, 400, "csr-rejected", err);
		goto out;
	}
	memset(&rr, 0, sizeof(rr));
	rr.device_id = cl.device_id;
	rr.session_serial = cl.serial;
	rr.session_key_sha256 = cl.key_id;
	rr.csr_pem = pem;
	rr.csr_len = pem_len;
	rr.csr_key_sha256 = key_id;
	rr.csr_cn = cn;
	rr.validity_s = c->ctx->env->cert_validity_s;
	switch (cert_renew(c->ctx->store, c->ctx->signer, &rr, &res, err,
			   sizeof(err))) {
	case CERT_RENEW_ISSUED:
	case CERT_RENEW_REPEATED:
		log_write(LOG_LEVEL_INFO, c->req->request_id,
			  "est: re-enrolled device %s: %s -> %s%s",
			  cl.device_id, cl.serial, res.serial,
			  state == EST_CERT_EXPIRED ? " (after expiry, "
						      "within grace)"
						    : "");
		est_answer_pem(c, res.cert_pem);
		break;
	case CERT_RENEW_REFUSED:
		est_renew_refused(c, &res);
		break;
	case CERT_RENEW_CSR_REJECTED:
		api_problem(c->resp, 400, "csr-rejected",
			    err[0] ? err : "the CSR was refused");
		break;
	case CERT_RENEW_UNAVAILABLE:
	default:
		api_problem(c->resp, 503, "service-unavailable",
			    "the certificate authority or the database is "
			    "unavailable");
		break;
	}
out:
	cert_renew_result_clear(&res);
	free(pem);
}

void
api_est(struct api_call *c, const char *rest)
{
	static const struct {
		const char *name;
		const char *method;
		void (*fn)(struct api_call *c);
	} ops[] = {
		{"/cacerts", "GET", est_cacerts},
		{"/csrattrs", "GET", est_csrattrs},
		{"/simpleenroll", "POST", est_simpleenroll},
		{"/simplereenroll", "POST", est_simplereenroll},
	};

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (strcmp(rest, ops[i].name) != 0)
			continue;
		if (strcmp(c->req->method, ops[i].method) != 0) {
			api_method_not_allowed(c->resp, ops[i].method);
			return;
		}
		ops[i].fn(c);
		return;
	}
	api_problem(c->resp, 404, "not-found",
		    "EST operations: cacerts, csrattrs, simpleenroll, "
		    "simplereenroll");
}
