/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_schema_missing on PostgreSQL (core/store_ready.h): one query that
 * compares the shipped migration numbers with schema_migrations. Job
 * threads; the numbers are ours (compiled in), sent as one bound array.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/store_ready.h"
#include "db/query.h"
#include "db/store.h"
#include "buf.h"

enum store_rc
store_schema_missing(struct store *st, const int *versions, size_t n,
		     size_t *missing, int *first_missing)
{
	PGconn *conn = store_conn(st);
	const char *params[1];
	PGresult *res = NULL;
	struct buf arr;
	enum store_rc rc = STORE_ERR;
	size_t i;

	if (conn == NULL)
		return STORE_ERR;
	buf_init(&arr, 4096);
	if (buf_append(&arr, "{", 1) != 0)
		goto out;
	for (i = 0; i < n; i++)
		if (buf_printf(&arr, "%s%d", i ? "," : "", versions[i]) != 0)
			goto out;
	if (buf_append(&arr, "}", 1) != 0)
		goto out;
	params[0] = arr.data;
	res = db_query(conn,
		       "SELECT count(*), coalesce(min(v), 0) FROM "
		       "unnest($1::int[]) AS v WHERE v NOT IN "
		       "(SELECT version FROM schema_migrations)",
		       1, params);
	if (res == NULL || PQntuples(res) != 1)
		goto out;
	*missing = (size_t)db_int(res, 0, 0);
	if (first_missing != NULL)
		*first_missing = (int)db_int(res, 0, 1);
	rc = STORE_OK;
out:
	PQclear(res);
	buf_free(&arr);
	return rc;
}
