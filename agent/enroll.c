/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Enrollment on the device: a CSR for the device's own key (which never
 * leaves it), POST /enroll/v1 with the token over common/https.h, and a
 * check of the answer. Blocking; runs before the event loop (fleet-agent)
 * or on a small thread pool (fleet-sim). The answer is untrusted: sizes
 * are bounded by the HTTPS client and every field is checked before use.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "https.h"

#define ENROLL_MAX_BODY (256u * 1024u)
#define ENROLL_TIMEOUT_MS 30000

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

static char *
dup_field(json_t *doc, const char *name)
{
	const char *s = json_string_value(json_object_get(doc, name));

	return s != NULL ? strdup(s) : NULL;
}

int
agent_enroll_request(const struct agent_enroll_request *r, EVP_PKEY *key,
		     struct agent_enroll_answer *out, bool *permanent,
		     char *err, size_t errlen)
{
	static const struct https_header json_ct[] = {
		{"Content-Type", "application/json"},
		{"Accept", "application/json"}};
	struct https_options opts = {0};
	struct https_client *client = NULL;
	struct agent_enroll_answer ans;
	struct https_response resp;
	struct https_request req;
	struct https_url url;
	struct pki_error perr;
	json_t *body = NULL, *doc = NULL;
	char *csr = NULL, *text = NULL;
	const char *s;
	size_t csr_len = 0;
	int rc = -1;

	memset(&ans, 0, sizeof(ans));
	memset(&resp, 0, sizeof(resp));
	*permanent = false;
	if (https_url_parse(r->api_url, &url, err, errlen) != 0) {
		*permanent = true;
		return -1;
	}
	/* The server keeps only the public key; the subject is a hint. */
	if (pki_csr_create(key, "fleet-device", &csr, &csr_len, &perr) !=
	    PKI_OK) {
		snprintf(err, errlen, "CSR: %s", perr.msg);
		return -1;
	}
	body = json_pack("{s:s, s:s, s:s}", "token", r->token, "csr", csr,
			 "model", r->model != NULL ? r->model : "generic");
	if (body == NULL || (r->labels != NULL &&
			     json_object_set(body, "labels", r->labels) != 0)) {
		snprintf(err, errlen, "enrollment request: bad token or model");
		*permanent = true;
		goto out;
	}
	text = json_dumps(body, JSON_COMPACT);
	if (text == NULL) {
		snprintf(err, errlen, "out of memory");
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
	req.headers = json_ct;
	req.n_headers = 2;
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
		 * is wrong, used up or expired); 5xx and 429: try later. */
		*permanent = resp.status >= 400 && resp.status < 500 &&
			     resp.status != 429 && resp.status != 408;
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
	if (body != NULL)
		json_object_del(body, "token");
	json_decref(body);
	json_decref(doc);
	https_response_free(&resp);
	https_client_free(client);
	agent_enroll_answer_clear(&ans);
	free(csr);
	return rc;
}
