/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals shared by the API handlers (one file per resource): the call
 * state, problem+json answers, body and query parsing, pagination,
 * transactions and Idempotency-Key handling. Everything runs on a job
 * thread; every input is untrusted.
 */
#ifndef FLEETD_API_INT_H
#define FLEETD_API_INT_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/api.h"
#include "db/query.h"
#include "secret.h"

enum api_role {
	API_ROLE_NONE = 0,
	API_ROLE_VIEWER,
	API_ROLE_OPERATOR,
	API_ROLE_ADMIN,
};

struct api_call {
	struct api_ctx *ctx;
	const struct api_request *req;
	struct api_response *resp;
	PGconn *conn; /* NULL until api_connect() */
	enum api_role role; /* of the bearer token, if any */
	char actor[64]; /* "token:<uuid>" for audit rows */
};

#define API_LIMIT_DEFAULT 100
#define API_LIMIT_MAX 1000
#define API_LABEL_VALUE_MAX 255
#define API_LABELS_MAX 64
#define API_TEXT_MAX 255

/* problem.c: every 4xx/5xx goes through here. detail may be NULL. */
void api_problem(struct api_response *resp, int status, const char *slug,
		 const char *detail);
/* 400 invalid-field naming the field. */
void api_problem_field(struct api_response *resp, const char *field,
		       const char *detail);
/* 405 with Allow. */
void api_method_not_allowed(struct api_response *resp, const char *allow);
/* 503 when the connection is gone, else 500; after a failed query. */
void api_db_failed(struct api_call *c);

/* util.c */
/* Steals doc; serialises it as the response body. */
void api_json(struct api_response *resp, int status, json_t *doc);
/* Connects this thread's database; on failure answers 503 and returns -1. */
int api_connect(struct api_call *c);
int api_begin(struct api_call *c);
/* On failure answers (503/500) and returns -1. */
int api_commit(struct api_call *c);
void api_rollback(struct api_call *c);
/*
 * Checks the content type and parses the body as a JSON object. On
 * failure answers 415/400 and returns -1. *out owned by the caller.
 */
int api_body_object(struct api_call *c, json_t **out);
/*
 * Finds name in the raw query string and percent-decodes it into out.
 * 1 found, 0 absent, -1 malformed or longer than outlen - 1.
 */
int api_query_param(const char *query, const char *name, char *out,
		    size_t outlen);
/*
 * Reads ?limit and ?cursor. Cursors are opaque base64url of the db
 * cursor; numeric selects the audit form (an id). Answers 400 on error.
 */
int api_page(struct api_call *c, bool numeric, struct db_page *page,
	     char after[DB_CURSOR_MAX]);
/* Answers 200 {"items": items, "next_cursor": ...}; steals items. */
void api_list(struct api_call *c, json_t *items, const char *next);
/* Validates a labels object; allow_null for merge patches. Answers 400. */
int api_labels_check(struct api_call *c, const json_t *labels,
		     const char *field, bool allow_null);
/* Optional string member up to max bytes; *out borrowed. Answers 400. */
int api_opt_string(struct api_call *c, const json_t *obj, const char *field,
		   size_t max, const char **out);
/* If-Match as a revision; -1 when absent. Answers 412 when unparsable. */
int api_if_match(struct api_call *c, int64_t *revision);
/* "/<uuid>" + rest: copies the id, points *rest after it; -1 if none. */
int api_path_id(const char *path, char id[SECRET_UUID_LEN], const char **rest);

/* A token collection (enrollment or admin tokens): create, list, show and
 * revoke share one shape of routes. */
struct api_token_ops {
	void (*create)(struct api_call *c);
	int (*list)(PGconn *conn, const struct db_page *page, json_t **items,
		    char next[DB_CURSOR_MAX]);
	int (*get)(PGconn *conn, const char *id, json_t **out);
	void (*revoke)(struct api_call *c, const char *id);
};

/* Routes "", "/{id}" and "/{id}/revoke" under the collection. */
void api_token_collection(struct api_call *c, const char *rest,
			  const struct api_token_ops *ops);

/*
 * Idempotency-Key for creating POSTs. api_idem_begin: 0 to go on (hash
 * filled, or "" without a key), 1 when it has answered (replay, 409, 400).
 * api_idem_finish stores the answer inside the transaction; 0 or -1
 * (answered).
 */
int api_idem_begin(struct api_call *c, char hash[SECRET_SHA256_HEX]);
int api_idem_finish(struct api_call *c, const char *hash, int status,
		    const json_t *doc);

/* Handlers. rest is the path after the resource prefix. */
void api_enroll(struct api_call *c);
void api_tokens(struct api_call *c, const char *rest);
void api_admin_tokens(struct api_call *c, const char *rest);
void api_devices(struct api_call *c, const char *rest);
void api_audit(struct api_call *c, const char *rest);
void api_pki_ca(struct api_call *c);
void api_pki_crl(struct api_call *c);
void api_health(struct api_call *c);

#endif
