/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Admin token queries. Runs on job threads (every API call authenticates
 * here) and in `fleetd token create`. Only hashes reach SQL.
 */
#include "db/admin_tokens.h"

#include <stdio.h>
#include <string.h>

#define ADMIN_TOKEN_DOC                                            \
	"json_build_object('id', id, 'role', role, 'name', name, " \
	"'created_at', fleet_ts(created_at), "                     \
	"'last_used_at', fleet_ts(last_used_at), "                 \
	"'revoked_at', fleet_ts(revoked_at))::text"

int
db_admin_token_create(PGconn *conn, const char *id, const char *token_sha256,
		      const char *role, const char *name,
		      const char *created_by, json_t **out)
{
	const char *params[5] = {id, token_sha256, role, name, created_by};

	return db_query_doc(conn,
			    "INSERT INTO admin_tokens (id, token_sha256, role, "
			    "name, created_by) VALUES ($1, $2, $3, $4, $5) "
			    "RETURNING " ADMIN_TOKEN_DOC,
			    5, params, out);
}

int
db_admin_token_get(PGconn *conn, const char *id, json_t **out)
{
	const char *params[1] = {id};

	return db_query_doc(conn,
			    "SELECT " ADMIN_TOKEN_DOC
			    " FROM admin_tokens WHERE id = $1::uuid",
			    1, params, out);
}

int
db_admin_token_list(PGconn *conn, const struct db_page *page, json_t **items,
		    char next[DB_CURSOR_MAX])
{
	char limit[16];
	const char *params[2];

	snprintf(limit, sizeof(limit), "%d", page->limit + 1);
	params[0] = limit;
	params[1] = page->after;
	return db_page_query(
		conn,
		"SELECT " ADMIN_TOKEN_DOC ", fleet_cursor(created_at, id) "
		"FROM admin_tokens WHERE $2::text IS NULL OR "
		"(created_at, id) > (fleet_cursor_ts(split_part($2, ' ', "
		"1)::bigint), split_part($2, ' ', 2)::uuid) "
		"ORDER BY created_at, id LIMIT $1::int",
		2, params, page, items, next);
}

int
db_admin_token_revoke(PGconn *conn, const char *id, json_t **out)
{
	const char *params[1] = {id};
	json_t *doc = NULL;
	int rc;

	rc = db_query_doc(conn,
			  "UPDATE admin_tokens SET revoked_at = now() "
			  "WHERE id = $1::uuid AND revoked_at IS NULL "
			  "RETURNING " ADMIN_TOKEN_DOC,
			  1, params, out);
	if (rc != DB_NOTFOUND)
		return rc;
	rc = db_admin_token_get(conn, id, &doc);
	json_decref(doc);
	return rc == DB_OK ? DB_CONFLICT : rc;
}

int
db_admin_token_authenticate(PGconn *conn, const char *token_sha256,
			    char id[SECRET_UUID_LEN], char role[16])
{
	const char *params[1] = {token_sha256};
	PGresult *res;

	res = db_query(
		conn,
		"WITH t AS (SELECT id, role, last_used_at FROM admin_tokens "
		"WHERE token_sha256 = $1 AND revoked_at IS NULL), "
		"u AS (UPDATE admin_tokens a SET last_used_at = now() FROM t "
		"WHERE a.id = t.id AND (t.last_used_at IS NULL OR "
		"t.last_used_at < now() - interval '60 seconds')) "
		"SELECT id, role FROM t",
		1, params);
	if (res == NULL)
		return DB_ERR;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return DB_NOTFOUND;
	}
	snprintf(id, SECRET_UUID_LEN, "%s", PQgetvalue(res, 0, 0));
	snprintf(role, 16, "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	return DB_OK;
}
