/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Enrollment token queries. Runs on job threads. Token hashes arrive as
 * hex computed by the caller; the plaintext token never reaches SQL.
 */
#include "db/tokens.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_DOC                                                      \
	"json_build_object('id', id, 'uses_total', uses_total, "       \
	"'uses_left', uses_left, 'expires_at', fleet_ts(expires_at), " \
	"'labels', labels, 'profile', profile, "                       \
	"'created_at', fleet_ts(created_at), "                         \
	"'revoked_at', fleet_ts(revoked_at))::text"

int
db_enroll_token_create(PGconn *conn, const char *id, const char *token_sha256,
		       long uses, long expires_in_s, const char *labels_json,
		       const char *profile, const char *created_by,
		       json_t **out)
{
	char uses_s[24], exp_s[24];
	const char *params[7];

	snprintf(uses_s, sizeof(uses_s), "%ld", uses);
	snprintf(exp_s, sizeof(exp_s), "%ld", expires_in_s);
	params[0] = id;
	params[1] = token_sha256;
	params[2] = uses_s;
	params[3] = exp_s;
	params[4] = labels_json;
	params[5] = profile;
	params[6] = created_by;
	return db_query_doc(
		conn,
		"INSERT INTO enrollment_tokens (id, token_sha256, "
		"uses_total, uses_left, expires_at, labels, profile, "
		"created_by) VALUES ($1, $2, $3::int, $3::int, "
		"now() + $4::bigint * interval '1 second', $5::jsonb, "
		"$6, $7) RETURNING " TOKEN_DOC,
		7, params, out);
}

int
db_enroll_token_get(PGconn *conn, const char *id, json_t **out)
{
	const char *params[1] = {id};

	return db_query_doc(conn,
			    "SELECT " TOKEN_DOC
			    " FROM enrollment_tokens WHERE id = $1::uuid",
			    1, params, out);
}

int
db_enroll_token_list(PGconn *conn, const struct db_page *page, json_t **items,
		     char next[DB_CURSOR_MAX])
{
	char limit[16];
	const char *params[2];

	snprintf(limit, sizeof(limit), "%d", page->limit + 1);
	params[0] = limit;
	params[1] = page->after;
	return db_page_query(
		conn,
		"SELECT " TOKEN_DOC ", fleet_cursor(created_at, id) "
		"FROM enrollment_tokens WHERE $2::text IS NULL OR "
		"(created_at, id) > (fleet_cursor_ts(split_part($2, ' ', "
		"1)::bigint), split_part($2, ' ', 2)::uuid) "
		"ORDER BY created_at, id LIMIT $1::int",
		2, params, page, items, next);
}

int
db_enroll_token_revoke(PGconn *conn, const char *id, json_t **out)
{
	const char *params[1] = {id};
	json_t *doc = NULL;
	int rc;

	rc = db_query_doc(conn,
			  "UPDATE enrollment_tokens SET revoked_at = now() "
			  "WHERE id = $1::uuid AND revoked_at IS NULL "
			  "RETURNING " TOKEN_DOC,
			  1, params, out);
	if (rc != DB_NOTFOUND)
		return rc;
	rc = db_enroll_token_get(conn, id, &doc);
	json_decref(doc);
	return rc == DB_OK ? DB_CONFLICT : rc;
}

void
enroll_grant_clear(struct enroll_grant *grant)
{
	free(grant->labels_json);
	free(grant->profile);
	memset(grant, 0, sizeof(*grant));
}

int
db_enroll_token_consume(PGconn *conn, const char *token_sha256,
			struct enroll_grant *grant)
{
	const char *params[1] = {token_sha256};
	PGresult *res = NULL;
	int rc = DB_ERR;

	memset(grant, 0, sizeof(*grant));
	res = db_query(conn,
		       "UPDATE enrollment_tokens SET uses_left = uses_left - 1 "
		       "WHERE token_sha256 = $1 AND uses_left > 0 AND "
		       "expires_at > now() AND revoked_at IS NULL "
		       "RETURNING id, labels::text, profile",
		       1, params);
	if (res == NULL)
		return DB_ERR;
	if (PQntuples(res) == 1) {
		snprintf(grant->id, sizeof(grant->id), "%s",
			 PQgetvalue(res, 0, 0));
		grant->labels_json = strdup(PQgetvalue(res, 0, 1));
		if (!PQgetisnull(res, 0, 2))
			grant->profile = strdup(PQgetvalue(res, 0, 2));
		PQclear(res);
		if (grant->labels_json == NULL) {
			enroll_grant_clear(grant);
			return DB_ERR;
		}
		return DB_OK;
	}
	PQclear(res);
	/* The slow path: only refused enrollments pay for it. */
	res = db_query(conn,
		       "SELECT revoked_at IS NOT NULL, expires_at <= now(), "
		       "uses_left <= 0 FROM enrollment_tokens "
		       "WHERE token_sha256 = $1",
		       1, params);
	if (res == NULL)
		return DB_ERR;
	if (PQntuples(res) == 0)
		rc = ENROLL_TOKEN_UNKNOWN;
	else if (PQgetvalue(res, 0, 0)[0] == 't')
		rc = ENROLL_TOKEN_REVOKED;
	else if (PQgetvalue(res, 0, 1)[0] == 't')
		rc = ENROLL_TOKEN_EXPIRED;
	else
		rc = ENROLL_TOKEN_EXHAUSTED;
	PQclear(res);
	return rc;
}
