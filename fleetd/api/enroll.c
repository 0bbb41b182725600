/* SPDX-License-Identifier: Apache-2.0 */
/*
 * POST /enroll/v1: a device trades an enrollment token and a CSR for its
 * certificate. The hot path of provisioning: BEGIN, take one use of the
 * token (the row lock makes "k uses give k devices" hold under any
 * concurrency), ask the ca process to sign, insert device + certificate +
 * audit row in one statement, COMMIT. A refused CSR rolls everything back.
 * Runs on job threads; the body, the token and the CSR are untrusted. The
 * CSR policy (signature, key type and size) is enforced by the ca process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "ca/signer_client.h"
#include "db/devices.h"
#include "db/tokens.h"
#include "log.h"

#define ENROLL_TOKEN_PREFIX "fle_"
#define CSR_MAX 16384

static bool
enroll_token_shape_ok(const char *tok)
{
	size_t i, n = strlen(ENROLL_TOKEN_PREFIX);

	if (strncmp(tok, ENROLL_TOKEN_PREFIX, n) != 0 || strlen(tok) != n + 64)
		return false;
	for (i = n; i < n + 64; i++)
		if (!((tok[i] >= '0' && tok[i] <= '9') ||
		      (tok[i] >= 'a' && tok[i] <= 'f')))
			return false;
	return true;
}

static void
refuse_token(struct api_call *c, int why)
{
	switch (why) {
	case ENROLL_TOKEN_REVOKED:
		api_problem(c->resp, 401, "token-revoked",
			    "the enrollment token was revoked");
		break;
	case ENROLL_TOKEN_EXPIRED:
		api_problem(c->resp, 401, "token-expired",
			    "the enrollment token has expired");
		break;
	case ENROLL_TOKEN_EXHAUSTED:
		api_problem(c->resp, 401, "token-exhausted",
			    "the enrollment token has no uses left");
		break;
	default:
		api_problem(c->resp, 401, "token-invalid",
			    "unknown enrollment token");
	}
}

void
api_enroll(struct api_call *c)
{
	const struct api_env *env = c->ctx->env;
	json_t *body = NULL, *labels = NULL, *doc = NULL, *details = NULL;
	const char *token, *csr, *model = NULL, *serial = NULL;
	char hash[SECRET_SHA256_HEX], id[SECRET_UUID_LEN], actor[64];
	char err[256], *labels_text = NULL, *details_text = NULL;
	struct enroll_grant grant;
	struct signer_issued issued;
	struct device_enrollment e;
	enum signer_status st;
	int rc;

	memset(&grant, 0, sizeof(grant));
	memset(&issued, 0, sizeof(issued));
	if (api_body_object(c, &body) != 0)
		return;
	token = json_string_value(json_object_get(body, "token"));
	csr = json_string_value(json_object_get(body, "csr"));
	if (token == NULL) {
		api_problem_field(c->resp, "token", "token must be a string");
		goto out;
	}
	if (csr == NULL) {
		api_problem_field(c->resp, "csr", "csr must be a PEM string");
		goto out;
	}
	if (strlen(csr) > CSR_MAX) {
		api_problem(c->resp, 400, "csr-rejected",
			    "the CSR is too large");
		goto out;
	}
	labels = json_object_get(body, "labels");
	if (labels != NULL && !json_is_null(labels) &&
	    api_labels_check(c, labels, "labels", false) != 0)
		goto out;
	if (api_opt_string(c, body, "model", API_TEXT_MAX, &model) != 0 ||
	    api_opt_string(c, body, "serial", API_TEXT_MAX, &serial) != 0)
		goto out;
	if (!enroll_token_shape_ok(token)) {
		refuse_token(c, ENROLL_TOKEN_UNKNOWN);
		goto out;
	}
	secret_sha256_hex(token, strlen(token), hash);
	labels_text = json_is_object(labels) ? json_dumps(labels, JSON_COMPACT)
					     : strdup("{}");
	if (labels_text == NULL || secret_uuid_v4(id) != 0) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	if (api_connect(c) != 0 || api_begin(c) != 0)
		goto out;
	rc = db_enroll_token_consume(c->conn, hash, &grant);
	if (rc == DB_ERR) {
		api_db_failed(c);
		goto out;
	}
	if (rc != DB_OK) {
		api_rollback(c);
		refuse_token(c, rc);
		goto out;
	}
	err[0] = '\0';
	st = signer_issue_device(c->ctx->signer, csr, strlen(csr), id,
				 env->cert_validity_s, &issued, err,
				 sizeof(err));
	if (st != SIGNER_OK) {
		api_rollback(c);
		if (st == SIGNER_REJECTED)
			api_problem(c->resp, 400, "csr-rejected",
				    err[0] ? err : "the CSR was refused");
		else
			api_problem(c->resp, 503, "service-unavailable",
				    "the certificate authority is unavailable");
		goto out;
	}
	snprintf(actor, sizeof(actor), "device:%s", id);
	details = json_pack("{s:s, s:s, s:s?}", "enrollment_token", grant.id,
			    "certificate_serial", issued.serial, "peer",
			    c->req->peer);
	details_text = details ? json_dumps(details, JSON_COMPACT) : NULL;
	if (details_text == NULL) {
		api_problem(c->resp, 500, "internal-error", NULL);
		goto out;
	}
	memset(&e, 0, sizeof(e));
	e.id = id;
	e.token_id = grant.id;
	e.token_labels_json = grant.labels_json;
	e.request_labels_json = labels_text;
	e.model = model;
	e.serial = serial;
	e.profile = grant.profile;
	e.cert_serial = issued.serial;
	e.not_before = issued.not_before;
	e.not_after = issued.not_after;
	e.audit_actor = actor;
	e.audit_details_json = details_text;
	if (db_device_enroll(c->conn, &e) != DB_OK) {
		api_db_failed(c);
		goto out;
	}
	if (api_commit(c) != 0)
		goto out;
	doc = json_pack("{s:s, s:s, s:s, s:s}", "device_id", id, "certificate",
			issued.cert_pem, "chain", env->chain_pem,
			"device_server", env->device_server_url);
	snprintf(c->resp->location, sizeof(c->resp->location),
		 "/api/v1/devices/%s", id);
	api_json(c->resp, 201, doc);
	log_write(LOG_LEVEL_INFO, c->req->request_id,
		  "enrolled device %s with token %s", id, grant.id);
out:
	json_decref(body);
	json_decref(details);
	free(labels_text);
	free(details_text);
	enroll_grant_clear(&grant);
	signer_issued_free(&issued);
}
