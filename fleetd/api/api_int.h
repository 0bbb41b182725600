/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals shared by the API handlers (one file per resource): the call
 * state, problem+json answers, body and query parsing, pagination, and
 * the mapping of core results to HTTP. Handlers turn JSON into core calls
 * and core results into JSON; they reach storage only through core and
 * the store port (c->ctx->store). Everything runs on a job thread; every
 * input is untrusted.
 */
#ifndef FLEETD_API_INT_H
#define FLEETD_API_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/api.h"
#include "api/input.h"
#include "core/idempotency.h"
#include "core/page.h"
#include "core/store.h"
#include "core/token.h"
#include "secret.h"

/* A role is a token role: viewer < operator < admin. */
enum api_role {
	API_ROLE_NONE = TOKEN_ROLE_NONE,
	API_ROLE_VIEWER = TOKEN_ROLE_VIEWER,
	API_ROLE_OPERATOR = TOKEN_ROLE_OPERATOR,
	API_ROLE_ADMIN = TOKEN_ROLE_ADMIN,
};

struct api_call {
	struct api_ctx *ctx;
	const struct api_request *req;
	struct api_response *resp;
	enum api_role role; /* of the bearer token, if any */
	char actor[64]; /* "token:<uuid>" for audit rows */
};

#define API_LIMIT_DEFAULT PAGE_LIMIT_DEFAULT
#define API_LIMIT_MAX PAGE_LIMIT_MAX
#define API_LABEL_VALUE_MAX LABEL_VALUE_MAX
#define API_LABELS_MAX LABELS_MAX
#define API_TEXT_MAX 255

/* problem.c: every 4xx/5xx goes through here. detail may be NULL. */
void api_problem(struct api_response *resp, int status, const char *slug,
		 const char *detail);
/* 400 invalid-field naming the field. */
void api_problem_field(struct api_response *resp, const char *field,
		       const char *detail);
/* 405 with Allow. */
void api_method_not_allowed(struct api_response *resp, const char *allow);
/* After STORE_ERR: 503 when storage is unreachable, else 500. */
void api_store_failed(struct api_call *c);

/*
 * Idempotency-Key of a creating POST answered with status: 0 to go on
 * (rec filled, rec->key NULL without a key), 1 when answered (a replay,
 * 409, 400, 503).
 */
int api_idem_begin(struct api_call *c, struct idem_record *rec, int status);

/* util.c */
/* Steals doc; serialises it as the response body. */
void api_json(struct api_response *resp, int status, json_t *doc);
/* Like api_json for an answer that carries a secret (a new token): the
 * serialised copy is wiped when the response is freed. */
void api_json_secret(struct api_response *resp, int status, json_t *doc);
/*
 * Checks the content type and parses the body as a strict RFC 8259 JSON
 * object (api/input.h). On failure answers 415/400 and returns -1. *out
 * owned by the caller.
 */
int api_body_object(struct api_call *c, json_t **out);
/*
 * Reads ?limit and ?cursor for a list whose cursors are of this kind.
 * Answers 400 (invalid-field) on anything the server did not produce.
 * page->after points into after.
 */
int api_page_parse(struct api_call *c, enum page_cursor_kind kind,
		   struct page *page, char after[PAGE_CURSOR_MAX]);
/* Answers 200 {"items": items, "next_cursor": ...}; steals items. */
void api_list(struct api_call *c, json_t *items, const char *next);
/* Validates a labels object; allow_null for merge patches. Answers 400. */
int api_labels_check(struct api_call *c, const json_t *labels,
		     const char *field, bool allow_null);
/* Reads a labels object into set (labels_check first). Answers 400. */
int api_labels_read(struct api_call *c, const json_t *labels, const char *field,
		    struct label_set *set);
/* Optional string member up to max bytes; *out borrowed. Answers 400. */
int api_opt_string(struct api_call *c, const json_t *obj, const char *field,
		   size_t max, const char **out);
/* Refuses members other than the NULL-terminated names. Answers 400. */
int api_only_fields(struct api_call *c, const json_t *obj,
		    const char *const *names);
/* If-Match as a revision; -1 when absent. Answers 412 when unparsable. */
int api_if_match(struct api_call *c, int64_t *revision);
/* "/<uuid>" + rest: copies the id, points *rest after it; -1 if none. */
int api_path_id(const char *path, char id[SECRET_UUID_LEN], const char **rest);
/* RFC 3339 UTC ("2026-12-01T09:00:00Z") of epoch seconds; JSON null
 * for 0. */
json_t *api_time(int64_t t);
/* The wall clock, epoch seconds. */
int64_t api_now(void);
/* Wipes a JSON string's bytes in place (a token read from a body). */
void api_json_string_cleanse(json_t *s);

/* Handlers. rest is the path after the resource prefix. */
void api_enroll(struct api_call *c);
void api_tokens(struct api_call *c, const char *rest);
void api_admin_tokens(struct api_call *c, const char *rest);
void api_devices(struct api_call *c, const char *rest);
/* certificates.c (issue 10) */
void api_certificates(struct api_call *c, const char *rest);
void api_device_certificates(struct api_call *c, const char *id,
			     const char *tail);
void api_device_rotate(struct api_call *c, const char *id, const char *tail);
void api_audit(struct api_call *c, const char *rest);
/* profiles.c, config.c: configuration profiles, device config, clone */
void api_profiles(struct api_call *c, const char *rest);
void api_config(struct api_call *c, const char *rest);
void api_device_config(struct api_call *c, const char *id, const char *tail);
/* est.c: RFC 7030 under /.well-known/est (rest: "/cacerts", ...) */
void api_est(struct api_call *c, const char *rest);
void api_pki_ca(struct api_call *c);
void api_pki_crl(struct api_call *c);
/* pki.c: GET /pki/v1/crl/{key_id}, the CRL of one issuing CA */
void api_pki_crl_issuer(struct api_call *c, const char *rest);
void api_health(struct api_call *c);
void api_ready(struct api_call *c); /* health.c: GET /readyz */
void api_metrics(struct api_call *c); /* metrics.c: GET /metrics */
void api_openapi(struct api_call *c); /* openapi.c */
/* artifacts.c (issue 11) */
void api_artifacts(struct api_call *c, const char *rest);
/* deployments.c, release_keysets.c (issue 11) */
void api_deployments(struct api_call *c, const char *rest);
void api_release_keysets(struct api_call *c, const char *rest);
/* campaigns.c (issue 12) */
void api_campaigns(struct api_call *c, const char *rest);
/* api.c: adds a member to the problem+json body in resp (after
 * api_problem); steals value. */
void api_problem_member(struct api_response *resp, const char *name,
			json_t *value);

#endif
