/* SPDX-License-Identifier: Apache-2.0 */
/*
 * POST /enroll/v1: a device trades an enrollment token and a CSR for its
 * certificate. This handler turns the JSON body into a core enrollment
 * request and the result into the answer; the rules and the flow (reserve
 * a use, sign without holding a lock, record or give the use back) are in
 * core/enroll.c. An Idempotency-Key makes a retry after a lost answer
 * return the first answer instead of spending another use. Runs on job
 * threads; the body, the token and the CSR are untrusted, and the body's
 * copies of the token are wiped before they are freed. The CSR policy is
 * enforced by the ca process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "core/enroll.h"
#include "log.h"

static void
enroll_refused(struct api_call *c, enum enroll_rc rc, const char *err)
{
	switch (rc) {
	case ENROLL_BAD_CSR_SIZE:
		api_problem(c->resp, 400, "csr-rejected",
			    "the CSR is empty, too large or holds a NUL byte");
		break;
	case ENROLL_BAD_TEXT:
		api_problem_field(c->resp, "model",
				  "model and serial are strings up to 255 "
				  "bytes");
		break;
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
	case ENROLL_TOKEN_UNKNOWN:
		api_problem(c->resp, 401, "token-invalid",
			    "unknown enrollment token");
		break;
	case ENROLL_CSR_REJECTED:
		api_problem(c->resp, 400, "csr-rejected",
			    err[0] ? err : "the CSR was refused");
		break;
	case ENROLL_SIGNER_UNAVAILABLE:
		api_problem(c->resp, 503, "service-unavailable",
			    "the certificate authority is unavailable");
		break;
	case ENROLL_IDEM_MISMATCH:
		api_problem(c->resp, 409, "conflict",
			    "Idempotency-Key was used with another request");
		break;
	case ENROLL_IDEM_TAKEN:
		api_problem(c->resp, 409, "conflict",
			    "a concurrent request used this Idempotency-Key");
		break;
	case ENROLL_ERR_STORE:
		api_store_failed(c);
		break;
	default:
		api_problem(c->resp, 500, "internal-error", NULL);
	}
}

static json_t *
enroll_doc(const struct enroll_result *res, const struct api_env *env)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "device_id", res->device_id,
			 "certificate", res->issued.cert_pem, "chain",
			 env->chain_pem, "device_server",
			 env->device_server_url);
}

/* The answer recorded for a retry with the same Idempotency-Key. */
static char *
enroll_render(const struct enroll_result *res, void *arg)
{
	json_t *doc = enroll_doc(res, arg);
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;

	json_decref(doc);
	return text;
}

/* Reads the body into req; answers 400 and returns -1 on a bad field. */
static int
enroll_read(struct api_call *c, const json_t *body, struct enroll_request *req)
{
	json_t *v;

	/* Unknown members are ignored here (unlike the admin API): agents
	 * in the field may be newer than the server they enroll with. */
	req->token = json_string_value(json_object_get(body, "token"));
	if (req->token == NULL) {
		api_problem_field(c->resp, "token", "token must be a string");
		return -1;
	}
	v = json_object_get(body, "csr");
	if (!json_is_string(v)) {
		api_problem_field(c->resp, "csr", "csr must be a PEM string");
		return -1;
	}
	req->csr = json_string_value(v);
	req->csr_len = json_string_length(v);
	v = json_object_get(body, "labels");
	if (v != NULL && !json_is_null(v) &&
	    api_labels_read(c, v, "labels", &req->labels) != 0)
		return -1;
	if (api_opt_string(c, body, "model", ENROLL_TEXT_MAX, &req->model) !=
		    0 ||
	    api_opt_string(c, body, "serial", ENROLL_TEXT_MAX, &req->serial) !=
		    0)
		return -1;
	req->peer = c->req->peer;
	return 0;
}

void
api_enroll(struct api_call *c)
{
	const struct api_env *env = c->ctx->env;
	struct enroll_request req;
	struct enroll_result res;
	struct enroll_idem idem, *idemp = NULL;
	json_t *body = NULL;
	char err[256] = "";
	enum enroll_rc rc;

	memset(&req, 0, sizeof(req));
	memset(&res, 0, sizeof(res));
	memset(&idem, 0, sizeof(idem));
	if (api_body_object(c, &body) != 0)
		return;
	if (enroll_read(c, body, &req) != 0)
		goto out;
	if (c->req->idempotency_key != NULL) {
		if (!idem_key_valid(c->req->idempotency_key)) {
			api_problem_field(c->resp, "Idempotency-Key",
					  "1..255 visible characters");
			goto out;
		}
		idem.key = c->req->idempotency_key;
		idem.method = c->req->method;
		idem.path = c->req->path;
		idem.body = c->req->body;
		idem.body_len = c->req->body_len;
		idem.render = enroll_render;
		idem.arg = (void *)(uintptr_t)env;
		idemp = &idem;
	}
	rc = enroll_device(c->ctx->store, c->ctx->signer, &req,
			   env->cert_validity_s, api_now(), idemp, &res, err,
			   sizeof(err));
	if (rc == ENROLL_REPLAY) {
		api_response_free(c->resp);
		c->resp->body = idem.replay_body;
		c->resp->body_len = strlen(idem.replay_body);
		c->resp->status = idem.replay_status;
		c->resp->content_type = "application/json";
		idem.replay_body = NULL;
		goto out;
	}
	if (rc != ENROLL_OK) {
		enroll_refused(c, rc, err);
		goto out;
	}
	snprintf(c->resp->location, sizeof(c->resp->location),
		 "/api/v1/devices/%s", res.device_id);
	api_json(c->resp, 201, enroll_doc(&res, env));
	log_write(LOG_LEVEL_INFO, c->req->request_id,
		  "enrolled device %s with token %s", res.device_id,
		  res.token_id);
out:
	/* The body's token: wipe jansson's copy before it is freed. */
	api_json_string_cleanse(json_object_get(body, "token"));
	free(idem.replay_body);
	json_decref(body);
	enroll_request_clear(&req);
	enroll_result_clear(&res);
}
