/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tokens on PostgreSQL: the store port functions of core/store_tokens.h
 * and the token half of core/store_enroll.h (find; the use itself is
 * taken by the enrollment record, db/enroll.c).
 * Both token tables go through one set of functions; a kind selects the
 * table's SQL. Runs on API job threads and in `fleetd token create`.
 * Every mutation commits its audit row (and Idempotency-Key record) in
 * the same transaction (db_unit).
 */
#include "db/tokens.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/query.h"
#include "db/store.h"

/*
 * Columns 0..3 are common; 4.. depend on the kind (see token_row).
 * Column 3 is the page cursor, which only a list reads. The lookups of
 * one token (an enrollment's, every API request's admin token) select
 * NULL there: fleet_cursor() is a SQL function the planner does not
 * inline (it is IMMUTABLE, its extract(epoch FROM timestamptz) STABLE),
 * so every execution planned its body again, 8 % of PostgreSQL's CPU
 * during enrollments (docs/internals/enroll-rate.md).
 */
#define TOKEN_HEAD_COLS \
	"id, " DB_EPOCH("created_at") ", " DB_EPOCH("revoked_at")
#define ENROLL_TAIL_COLS                      \
	", uses_total, uses_left, " DB_EPOCH( \
		"expires_at") ", labels::text, profile"
#define ADMIN_TAIL_COLS \
	", role, name, " DB_EPOCH("last_used_at") ", " DB_EPOCH("expires_at")
#define TOKEN_CURSOR_COL ", fleet_cursor(created_at, id)"
#define ENROLL_COLS TOKEN_HEAD_COLS TOKEN_CURSOR_COL ENROLL_TAIL_COLS
#define ADMIN_COLS TOKEN_HEAD_COLS TOKEN_CURSOR_COL ADMIN_TAIL_COLS
/* The same columns for lookups of one token: no cursor. */
#define ENROLL_ONE_COLS TOKEN_HEAD_COLS ", NULL" ENROLL_TAIL_COLS
#define ADMIN_ONE_COLS TOKEN_HEAD_COLS ", NULL" ADMIN_TAIL_COLS

#define PAGE_WHERE                                                     \
	" WHERE $2::text IS NULL OR (created_at, id) > "               \
	"(fleet_cursor_ts(split_part($2, ' ', 1)::bigint), "           \
	"split_part($2, ' ', 2)::uuid) ORDER BY created_at, id LIMIT " \
	"$1::int"

static const struct token_sql {
	const char *insert;
	int insert_params;
	const char *get;
	const char *list;
	const char *revoke;
	const char *exists;
} token_sql[] = {
	[TOKEN_ENROLL] =
		{
			"INSERT INTO enrollment_tokens (id, token_sha256, "
			"uses_total, uses_left, expires_at, labels, profile, "
			"created_by, created_at) VALUES ($1, $2, $3::int, "
			"$3::int, to_timestamp($4::bigint), $5::jsonb, $6, "
			"$7, to_timestamp($8::bigint))",
			8,
			"SELECT " ENROLL_COLS
			" FROM enrollment_tokens WHERE id = $1::uuid",
			"SELECT " ENROLL_COLS
			" FROM enrollment_tokens" PAGE_WHERE,
			"UPDATE enrollment_tokens SET revoked_at = "
			"to_timestamp($2::bigint) WHERE id = $1::uuid AND "
			"revoked_at IS NULL RETURNING " ENROLL_COLS,
			"SELECT 1 FROM enrollment_tokens WHERE id = $1::uuid",
		},
	[TOKEN_ADMIN] =
		{
			"INSERT INTO admin_tokens (id, token_sha256, role, "
			"name, created_by, created_at, expires_at) VALUES "
			"($1, $2, $3, $4, $5, to_timestamp($6::bigint), "
			"to_timestamp(nullif($7::bigint, 0)))",
			7,
			"SELECT " ADMIN_COLS
			" FROM admin_tokens WHERE id = $1::uuid",
			"SELECT " ADMIN_COLS " FROM admin_tokens" PAGE_WHERE,
			"UPDATE admin_tokens SET revoked_at = "
			"to_timestamp($2::bigint) WHERE id = $1::uuid AND "
			"revoked_at IS NULL RETURNING " ADMIN_COLS,
			"SELECT 1 FROM admin_tokens WHERE id = $1::uuid",
		},
};

/* Fills out from a row of ENROLL_COLS / ADMIN_COLS; *cursor points into
 * res (column 3). */
static enum store_rc
token_row(const PGresult *res, int row, enum token_kind kind, struct token *out)
{
	struct token tok;
	int failed = 0;

	memset(&tok, 0, sizeof(tok));
	tok.kind = kind;
	snprintf(tok.id, sizeof(tok.id), "%s", PQgetvalue(res, row, 0));
	tok.created_at = db_int(res, row, 1);
	tok.revoked_at = db_int(res, row, 2);
	if (kind == TOKEN_ENROLL) {
		tok.uses_total = (long)db_int(res, row, 4);
		tok.uses_left = (long)db_int(res, row, 5);
		tok.expires_at = db_int(res, row, 6);
		tok.profile = db_text(res, row, 8, &failed);
		if (!failed && db_labels_parse(PQgetvalue(res, row, 7),
					       &tok.labels) != STORE_OK)
			failed = 1;
	} else {
		tok.role = token_role_parse(PQgetvalue(res, row, 4));
		tok.name = db_text(res, row, 5, &failed);
		tok.last_used_at = db_int(res, row, 6);
		tok.expires_at = db_int(res, row, 7);
	}
	if (failed) {
		token_clear(&tok);
		return STORE_ERR;
	}
	*out = tok;
	return STORE_OK;
}

/* Runs a query expected to return at most one token row. */
static enum store_rc
token_query_one(PGconn *conn, enum token_kind kind, const char *sql, int n,
		const char *const *params, struct token *out)
{
	PGresult *res = db_query_prepared(conn, sql, n, params);
	enum store_rc rc;

	if (res == NULL)
		return STORE_ERR;
	rc = PQntuples(res) == 1 ? token_row(res, 0, kind, out)
				 : STORE_NOTFOUND;
	PQclear(res);
	return rc;
}

/* A one-token query on st's connection with parameters (key) or, when
 * now is not NULL, (key, now as epoch seconds). */
static enum store_rc
token_lookup(struct store *st, enum token_kind kind, const char *sql,
	     const char *key, const int64_t *now, struct token *out)
{
	char ts[24] = "";
	const char *params[2] = {key, ts};
	PGconn *conn = store_conn(st);

	if (conn == NULL)
		return STORE_ERR;
	if (now != NULL)
		snprintf(ts, sizeof(ts), "%" PRId64, *now);
	return token_query_one(conn, kind, sql, now != NULL ? 2 : 1, params,
			       out);
}

struct token_create_args {
	const struct token *tok;
	const char *sha256;
	const char *actor;
};

static enum store_rc
token_create_tx(PGconn *conn, void *arg)
{
	const struct token_create_args *a = arg;
	const struct token *t = a->tok;
	char n1[24], n2[24], created[24];
	char *labels = NULL;
	const char *params[8];
	enum store_rc rc;

	snprintf(created, sizeof(created), "%" PRId64, t->created_at);
	params[0] = t->id;
	params[1] = a->sha256;
	if (t->kind == TOKEN_ENROLL) {
		labels = db_labels_json(&t->labels);
		if (labels == NULL)
			return STORE_ERR;
		snprintf(n1, sizeof(n1), "%ld", t->uses_total);
		snprintf(n2, sizeof(n2), "%" PRId64, t->expires_at);
		params[2] = n1;
		params[3] = n2;
		params[4] = labels;
		params[5] = t->profile;
		params[6] = a->actor;
		params[7] = created;
	} else {
		params[2] = token_role_name(t->role);
		params[3] = t->name ? t->name : "";
		params[4] = a->actor;
		params[5] = created;
		snprintf(n2, sizeof(n2), "%" PRId64, t->expires_at);
		params[6] = n2;
	}
	rc = db_command_prepared(conn, token_sql[t->kind].insert,
				 token_sql[t->kind].insert_params, params);
	free(labels);
	return rc;
}

enum store_rc
store_token_create(struct store *st, const struct token *tok,
		   const char *sha256, const struct audit_entry *audit,
		   const struct idem_record *idem)
{
	struct token_create_args a = {tok, sha256, audit->actor};

	return db_unit(st, token_create_tx, &a, audit, idem);
}

enum store_rc
store_token_get(struct store *st, enum token_kind kind, const char *id,
		struct token *out)
{
	return token_lookup(st, kind, token_sql[kind].get, id, NULL, out);
}

enum store_rc
store_token_list(struct store *st, enum token_kind kind,
		 const struct page *page, struct token **items, size_t *n,
		 char next[PAGE_CURSOR_MAX])
{
	char limit[16];
	const char *params[2] = {limit, page->after};
	struct token *arr = NULL;
	PGconn *conn = store_conn(st);
	PGresult *res;
	int i, rows;

	next[0] = '\0';
	if (conn == NULL)
		return STORE_ERR;
	snprintf(limit, sizeof(limit), "%d", page->limit + 1);
	res = db_query_prepared(conn, token_sql[kind].list, 2, params);
	if (res == NULL)
		return STORE_ERR;
	rows = PQntuples(res);
	if (rows > page->limit) {
		snprintf(next, PAGE_CURSOR_MAX, "%s",
			 PQgetvalue(res, page->limit - 1, 3));
		rows = page->limit;
	}
	arr = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*arr));
	for (i = 0; arr != NULL && i < rows; i++) {
		if (token_row(res, i, kind, &arr[i]) != STORE_OK) {
			tokens_free(arr, (size_t)i);
			arr = NULL;
		}
	}
	PQclear(res);
	if (arr == NULL)
		return STORE_ERR;
	*items = arr;
	*n = (size_t)rows;
	return STORE_OK;
}

struct token_revoke_args {
	enum token_kind kind;
	const char *id;
	int64_t now;
	struct token *out;
};

static enum store_rc
token_revoke_tx(PGconn *conn, void *arg)
{
	struct token_revoke_args *a = arg;
	char now[24];
	const char *params[2] = {a->id, now};
	enum store_rc rc;
	PGresult *res;

	snprintf(now, sizeof(now), "%" PRId64, a->now);
	rc = token_query_one(conn, a->kind, token_sql[a->kind].revoke, 2,
			     params, a->out);
	if (rc == STORE_NOTFOUND) {
		/* Unknown, or already revoked? */
		res = db_query_prepared(conn, token_sql[a->kind].exists, 1,
					params);
		if (res == NULL)
			return STORE_ERR;
		rc = PQntuples(res) == 1 ? STORE_CONFLICT : STORE_NOTFOUND;
		PQclear(res);
		return rc;
	}
	return rc;
}

enum store_rc
store_token_revoke(struct store *st, enum token_kind kind, const char *id,
		   int64_t now, const struct audit_entry *audit,
		   struct token *out)
{
	struct token_revoke_args a = {kind, id, now, out};
	enum store_rc rc;

	memset(out, 0, sizeof(*out));
	rc = db_unit(st, token_revoke_tx, &a, audit, NULL);

	/* out was filled before a failed audit row or COMMIT */
	if (rc != STORE_OK)
		token_clear(out);
	return rc;
}

enum store_rc
store_admin_token_authenticate(struct store *st, const char *sha256,
			       int64_t now, struct token *out)
{
	/* One round trip: find it (revoked and expired ones too, so core
	 * can say why it is refused) and note the use of a valid one at
	 * most once a minute. */
	return token_lookup(
		st, TOKEN_ADMIN,
		"WITH t AS (SELECT * FROM admin_tokens WHERE token_sha256 = "
		"$1), "
		"u AS (UPDATE admin_tokens a SET "
		"last_used_at = to_timestamp($2::bigint) FROM t WHERE "
		"a.id = t.id AND t.revoked_at IS NULL AND (t.expires_at IS "
		"NULL OR t.expires_at > to_timestamp($2::bigint)) AND "
		"(t.last_used_at IS NULL OR t.last_used_at < "
		"to_timestamp($2::bigint) - interval '60 seconds')) "
		"SELECT " ADMIN_ONE_COLS " FROM t",
		sha256, &now, out);
}

enum store_rc
store_enroll_token_find(struct store *st, const char *sha256, struct token *out)
{
	return token_lookup(st, TOKEN_ENROLL,
			    "SELECT " ENROLL_ONE_COLS " FROM enrollment_tokens "
			    "WHERE token_sha256 = $1",
			    sha256, NULL, out);
}
