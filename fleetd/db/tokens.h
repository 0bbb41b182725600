/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Enrollment tokens: created by operators, consumed by enrolling devices.
 * Only the SHA-256 of a token is stored. Documents are the JSON objects of
 * docs/api.md without the token itself; callers own returned json_t.
 */
#ifndef FLEETD_DB_TOKENS_H
#define FLEETD_DB_TOKENS_H

#include <jansson.h>
#include <libpq-fe.h>

#include "db/query.h"
#include "secret.h"

/* Returns DB_OK and the new document. labels_json is a JSON object. */
int db_enroll_token_create(PGconn *conn, const char *id,
			   const char *token_sha256, long uses,
			   long expires_in_s, const char *labels_json,
			   const char *profile, const char *created_by,
			   json_t **out);

int db_enroll_token_get(PGconn *conn, const char *id, json_t **out);

int db_enroll_token_list(PGconn *conn, const struct db_page *page,
			 json_t **items, char next[DB_CURSOR_MAX]);

/* DB_OK (now revoked), DB_NOTFOUND or DB_CONFLICT (already revoked). */
int db_enroll_token_revoke(PGconn *conn, const char *id, json_t **out);

/* Why a token cannot be used, from the most to the least specific. */
enum enroll_token_refusal {
	ENROLL_TOKEN_UNKNOWN = 1,
	ENROLL_TOKEN_REVOKED,
	ENROLL_TOKEN_EXPIRED,
	ENROLL_TOKEN_EXHAUSTED,
};

struct enroll_grant {
	char id[SECRET_UUID_LEN];
	char *labels_json; /* malloc'd JSON object text */
	char *profile; /* malloc'd or NULL */
};

/*
 * Takes one use of the token inside the caller's transaction; the row
 * lock it takes serialises concurrent enrollments on the same token until
 * the transaction ends. Returns DB_OK and fills grant (release with
 * enroll_grant_clear), a positive enum enroll_token_refusal, or DB_ERR.
 */
int db_enroll_token_consume(PGconn *conn, const char *token_sha256,
			    struct enroll_grant *grant);
void enroll_grant_clear(struct enroll_grant *grant);

#endif
