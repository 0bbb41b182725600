/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Enrollment on the device: a CSR for the device's own key (which never
 * leaves it), POST /enroll/v1 with the token over common/https.h, and a
 * check of the answer. Blocking; runs before the event loop (fleet-agent)
 * or on a small thread pool (fleet-sim). The answer is untrusted: sizes
 * are bounded by the HTTPS client and every field is checked before use.
 *
 * A lost answer (the connection cut after the server committed) must not
 * cost a second token use or make a second device. So the request is made
 * once and kept in state_dir/enroll.json (atomic write, 0600) before the
 * first attempt: a random Idempotency-Key and the body without the token
 * (the CSR: ECDSA signatures are randomised, so a CSR made again would
 * differ, and the server compares the body byte for byte). Every retry,
 * also after a restart or a kill, sends the same key and the same bytes
 * and gets the first answer again. The file is removed once identity.json
 * is written. The token itself is never written to the state directory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "agent_int.h"
#include "atomicfile.h"
#include "https.h"

#define ENROLL_MAX_BODY (256u * 1024u)
#define ENROLL_TIMEOUT_MS 30000
#define ENROLL_PENDING_MAX (64u * 1024u)
/* Key order is fixed (sorted) so that the same request gives the same
 * bytes in every run and every agent version that reads enroll.json. */
#define ENROLL_JSON_FLAGS (JSON_COMPACT | JSON_SORT_KEYS)

void
agent_enroll_answer_clear(struct agent_enroll_answer *a)
{
	if (a == NULL)
		return;
	free(a->certificate);
	free(a->chain);
	free(a->device_server);
	memset(a, 0, sizeof(*a));
}

void
agent_enroll_pending_clear(struct agent_enroll_pending *p)
{
	if (p == NULL)
		return;
	json_decref(p->request);
	memset(p, 0, sizeof(*p));
}

/* 1 when csr is a valid CSR for key's public key, else 0. */
static int
csr_is_for_key(const char *csr, EVP_PKEY *key)
{
	struct pki_policy policy;
	struct pki_error perr;
	X509_REQ *req = NULL;
	int ok;

	pki_policy_default(&policy);
	if (pki_csr_parse_check(csr, strlen(csr), &policy, &req, &perr) !=
	    PKI_OK)
		return 0;
	ok = EVP_PKEY_eq(X509_REQ_get0_pubkey(req), key) == 1;
	X509_REQ_free(req);
	return ok;
}

/*
 * Reads dir/enroll.json: 1 (*out filled), 0 when absent or unusable
 * (reason in err, empty when absent), -1 when it cannot be read.
 */
static int
pending_load(const char *path, EVP_PKEY *key, struct agent_enroll_pending *out,
	     char *err, size_t errlen)
{
	json_t *doc = NULL, *req, *v;
	json_error_t jerr;
	char *text = NULL;
	const char *s;
	size_t len;
	int rc = 0;

	if (access(path, F_OK) != 0 && errno == ENOENT) {
		err[0] = '\0';
		return 0;
	}
	if (read_file_bounded(path, ENROLL_PENDING_MAX, &text, &len, err,
			      errlen) != 0)
		return -1;
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL) {
		snprintf(err, errlen, "%s: %s", path, jerr.text);
		goto out;
	}
	s = json_string_value(json_object_get(doc, "idempotency_key"));
	req = json_object_get(doc, "request");
	if (json_integer_value(json_object_get(doc, "version")) != 1 ||
	    s == NULL || !secret_is_uuid(s) || !json_is_object(req)) {
		snprintf(err, errlen, "%s: not a version 1 pending enrollment",
			 path);
		goto out;
	}
	v = json_object_get(req, "csr");
	if (!json_is_string(v) || json_object_get(req, "token") != NULL) {
		snprintf(err, errlen, "%s: no CSR", path);
		goto out;
	}
	/* A new device.key (the old one was lost) needs a new request. */
	if (!csr_is_for_key(json_string_value(v), key)) {
		snprintf(err, errlen, "%s: the CSR is not for device.key",
			 path);
		goto out;
	}
	memcpy(out->idem_key, s, SECRET_UUID_LEN);
	out->request = json_incref(req);
	rc = 1;
out:
	json_decref(doc);
	free(text);
	return rc;
}

/* Makes a new request (key, CSR, model, labels) and writes it to path. */
static int
pending_create(const char *path, EVP_PKEY *key, const char *model,
	       json_t *labels, struct agent_enroll_pending *out, char *err,
	       size_t errlen)
{
	char idem[SECRET_UUID_LEN];
	struct pki_error perr;
	json_t *req = NULL, *doc = NULL;
	char *csr = NULL, *text = NULL;
	size_t csr_len = 0;
	int rc = -1;

	if (secret_uuid_v4(idem) != 0) {
		snprintf(err, errlen, "no random Idempotency-Key");
		return -1;
	}
	/* The server keeps only the public key; the subject is a hint. */
	if (pki_csr_create(key, "fleet-device", &csr, &csr_len, &perr) !=
	    PKI_OK) {
		snprintf(err, errlen, "CSR: %s", perr.msg);
		return -1;
	}
	req = json_pack("{s:s, s:s}", "csr", csr, "model",
			model != NULL ? model : "generic");
	if (req == NULL ||
	    (labels != NULL && json_object_set(req, "labels", labels) != 0)) {
		snprintf(err, errlen,
			 "enrollment request: bad model or labels");
		goto out;
	}
	doc = json_pack("{s:i, s:s, s:O}", "version", 1, "idempotency_key",
			idem, "request", req);
	text = doc != NULL ? json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS)
			   : NULL;
	if (text == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/* Durable before the first attempt: a kill after the server commits
	 * must find the same key and body at the next start. */
	if (atomic_write_file(path, text, strlen(text), 0600, err, errlen) != 0)
		goto out;
	memcpy(out->idem_key, idem, SECRET_UUID_LEN);
	out->request = req;
	req = NULL;
	rc = 0;
out:
	json_decref(req);
	json_decref(doc);
	free(text);
	free(csr);
	return rc;
}

int
agent_enroll_pending_open(const char *dir, EVP_PKEY *key, const char *model,
			  json_t *labels, struct agent_enroll_pending *out,
			  char *err, size_t errlen)
{
	struct agent_enroll_pending p;
	char path[AGENT_PATH_MAX];
	int rc;

	memset(&p, 0, sizeof(p));
	if (agent_path(path, sizeof(path), dir, AGENT_ENROLL_FILE) != 0) {
		snprintf(err, errlen, "state directory path too long");
		return -1;
	}
	rc = pending_load(path, key, &p, err, errlen);
	if (rc < 0)
		return -1;
	if (rc == 0 &&
	    pending_create(path, key, model, labels, &p, err, errlen) != 0)
		return -1;
	*out = p;
	return rc;
}

int
agent_enroll_pending_remove(const char *dir, char *err, size_t errlen)
{
	char path[AGENT_PATH_MAX];

	if (agent_path(path, sizeof(path), dir, AGENT_ENROLL_FILE) != 0) {
		snprintf(err, errlen, "state directory path too long");
		return -1;
	}
	if (unlink(path) != 0 && errno != ENOENT) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * The body: the stored request (no secret in it) as compact JSON with
 * sorted keys, and the token spliced in as the last member by hand, so
 * that no jansson buffer ever holds the token (jansson grows its output
 * buffer with malloc/free and would leave partial copies unwiped). The
 * only copy is the returned buffer, sized exactly, which the caller wipes.
 */
char *
agent_enroll_body(const struct agent_enroll_pending *p, const char *token)
{
	static const char member[] = "\"token\":\"";
	char *req = NULL, *out = NULL;
	size_t rlen, tlen = 0, n, i, o;

	for (i = 0; token[i] != '\0'; i++) {
		/* Tokens are printable; a control byte is a broken file. */
		if ((unsigned char)token[i] < 0x20)
			return NULL;
		tlen += token[i] == '"' || token[i] == '\\' ? 2 : 1;
	}
	req = json_dumps(p->request, ENROLL_JSON_FLAGS);
	if (req == NULL)
		return NULL;
	rlen = strlen(req);
	if (rlen < 2 || req[rlen - 1] != '}')
		goto out;
	/* req without '}', ',' unless it was "{}", member, token, "\"}" */
	n = rlen - 1 + 1 + sizeof(member) - 1 + tlen + 2 + 1;
	out = malloc(n);
	if (out == NULL)
		goto out;
	o = rlen - 1;
	memcpy(out, req, o);
	if (rlen > 2)
		out[o++] = ',';
	memcpy(out + o, member, sizeof(member) - 1);
	o += sizeof(member) - 1;
	for (i = 0; token[i] != '\0'; i++) {
		if (token[i] == '"' || token[i] == '\\')
			out[o++] = '\\';
		out[o++] = token[i];
	}
	out[o++] = '"';
	out[o++] = '}';
	out[o] = '\0';
out:
	free(req);
	return out;
}

static char *
dup_field(json_t *doc, const char *name)
{
	const char *s = json_string_value(json_object_get(doc, name));

	return s != NULL ? strdup(s) : NULL;
}

int
agent_enroll_request(const struct agent_enroll_request *r,
		     const struct agent_enroll_pending *p,
		     struct agent_enroll_answer *out, bool *permanent,
		     char *err, size_t errlen)
{
	struct https_header headers[3] = {{"Content-Type", "application/json"},
					  {"Accept", "application/json"},
					  {"Idempotency-Key", p->idem_key}};
	struct https_options opts = {0};
	struct https_client *client = NULL;
	struct agent_enroll_answer ans;
	struct https_response resp;
	struct https_request req;
	struct https_url url;
	json_t *doc = NULL;
	char *text = NULL;
	const char *s;
	int rc = -1;

	memset(&ans, 0, sizeof(ans));
	memset(&resp, 0, sizeof(resp));
	*permanent = false;
	if (https_url_parse(r->api_url, &url, err, errlen) != 0) {
		*permanent = true;
		return -1;
	}
	text = agent_enroll_body(p, r->token);
	if (text == NULL) {
		snprintf(err, errlen,
			 "enrollment request: out of memory or a control "
			 "character in the token");
		*permanent = true;
		goto out;
	}
	opts.ca_file = r->ca_file;
	opts.timeout_ms = ENROLL_TIMEOUT_MS;
	opts.max_body = ENROLL_MAX_BODY;
	client = https_client_new(&opts, err, errlen);
	if (client == NULL) {
		*permanent = true;
		goto out;
	}
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.path = "/enroll/v1";
	req.headers = headers;
	req.n_headers = sizeof(headers) / sizeof(headers[0]);
	req.body = text;
	req.body_len = strlen(text);
	if (https_request(client, &url, &req, &resp, err, errlen) != 0)
		goto out;
	doc = json_loadb(resp.body != NULL ? resp.body : "", resp.body_len, 0,
			 NULL);
	if (resp.status != 201) {
		s = json_string_value(json_object_get(doc, "type"));
		snprintf(err, errlen, "enrollment refused: HTTP %d %s",
			 resp.status, s != NULL ? s : "");
		/* 4xx: the same request will be refused again (the token
		 * is wrong, used up or expired); 5xx and 429: try later.
		 * 409: our first attempt is still running on the server
		 * (the retry replays its answer once it is recorded). */
		*permanent = resp.status >= 400 && resp.status < 500 &&
			     resp.status != 429 && resp.status != 408 &&
			     resp.status != 409;
		goto out;
	}
	s = json_string_value(json_object_get(doc, "device_id"));
	if (s == NULL || !secret_is_uuid(s)) {
		snprintf(err, errlen, "enrollment answer has no device_id");
		goto out;
	}
	memcpy(ans.device_id, s, SECRET_UUID_LEN);
	ans.certificate = dup_field(doc, "certificate");
	ans.chain = dup_field(doc, "chain");
	ans.device_server = dup_field(doc, "device_server");
	if (ans.certificate == NULL) {
		snprintf(err, errlen, "enrollment answer has no certificate");
		goto out;
	}
	*out = ans;
	memset(&ans, 0, sizeof(ans));
	rc = 0;
out:
	if (text != NULL) {
		/* The body holds the token: wipe it. */
		OPENSSL_cleanse(text, strlen(text));
		free(text);
	}
	json_decref(doc);
	https_response_free(&resp);
	https_client_free(client);
	agent_enroll_answer_clear(&ans);
	return rc;
}
