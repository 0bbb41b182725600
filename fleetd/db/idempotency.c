/* SPDX-License-Identifier: Apache-2.0 */
/* Idempotency-Key storage. Runs on job threads. */
#include "db/idempotency.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
db_idempotency_get(PGconn *conn, const char *actor, const char *key,
		   const char *request_sha256, int *status, char **body)
{
	const char *params[2] = {actor, key};
	PGresult *res;
	int rc;

	res = db_query(conn,
		       "SELECT request_sha256, status, body FROM "
		       "idempotency_keys WHERE actor = $1 AND key = $2",
		       2, params);
	if (res == NULL)
		return DB_ERR;
	if (PQntuples(res) == 0) {
		rc = DB_NOTFOUND;
	} else if (strcmp(PQgetvalue(res, 0, 0), request_sha256) != 0) {
		rc = DB_CONFLICT;
	} else {
		*status = (int)strtol(PQgetvalue(res, 0, 1), NULL, 10);
		*body = strdup(PQgetvalue(res, 0, 2));
		rc = *body ? DB_OK : DB_ERR;
	}
	PQclear(res);
	return rc;
}

int
db_idempotency_put(PGconn *conn, const char *actor, const char *key,
		   const char *request_sha256, int status, const char *body)
{
	char status_s[16];
	const char *params[5] = {actor, key, request_sha256, status_s, body};
	PGresult *res;
	int rc;

	snprintf(status_s, sizeof(status_s), "%d", status);
	res = db_query(conn,
		       "INSERT INTO idempotency_keys (actor, key, "
		       "request_sha256, status, body) VALUES ($1, $2, $3, "
		       "$4::int, $5) ON CONFLICT DO NOTHING",
		       5, params);
	if (res == NULL)
		return DB_ERR;
	rc = strcmp(PQcmdTuples(res), "1") == 0 ? DB_OK : DB_CONFLICT;
	PQclear(res);
	return rc;
}
