/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Query helpers for the per-domain modules. Runs on job threads and in CLI
 * commands. All SQL uses bound parameters; nothing here builds SQL text.
 */
#include "db/query.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

PGresult *
db_query(PGconn *conn, const char *sql, int n, const char *const *params)
{
	PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	log_warn("postgresql query failed: %s", PQresultErrorMessage(res));
	PQclear(res);
	return NULL;
}

json_t *
db_json(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return json_loads(PQgetvalue(res, row, col), JSON_DECODE_ANY, NULL);
}

int
db_page_query(PGconn *conn, const char *sql, int n, const char *const *params,
	      const struct db_page *page, json_t **items,
	      char next[DB_CURSOR_MAX])
{
	PGresult *res = NULL;
	json_t *arr = NULL, *doc = NULL;
	int i, rows;

	next[0] = '\0';
	res = db_query(conn, sql, n, params);
	if (res == NULL)
		return DB_ERR;
	arr = json_array();
	if (arr == NULL)
		goto fail;
	rows = PQntuples(res);
	for (i = 0; i < rows && i < page->limit; i++) {
		doc = db_json(res, i, 0);
		if (doc == NULL || json_array_append_new(arr, doc) != 0)
			goto fail;
	}
	if (rows > page->limit)
		snprintf(next, DB_CURSOR_MAX, "%s",
			 PQgetvalue(res, page->limit - 1, 1));
	PQclear(res);
	*items = arr;
	return DB_OK;
fail:
	log_error("out of memory building a page");
	json_decref(arr);
	PQclear(res);
	return DB_ERR;
}

int
db_query_doc(PGconn *conn, const char *sql, int n, const char *const *params,
	     json_t **out)
{
	PGresult *res = db_query(conn, sql, n, params);
	json_t *doc;

	if (res == NULL)
		return DB_ERR;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return DB_NOTFOUND;
	}
	doc = db_json(res, 0, 0);
	PQclear(res);
	if (doc == NULL)
		return DB_ERR;
	*out = doc;
	return DB_OK;
}
