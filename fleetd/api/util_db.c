/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Transitional helpers for handlers that still hold the raw PostgreSQL
 * connection (api_connect, api_begin, ...). They go away, with c->conn,
 * once every handler calls core through the store port; new code must
 * not use them. Runs on job threads.
 */
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "db/db.h"

int
api_connect(struct api_call *c)
{
	c->conn = db_conn(c->ctx->db);
	if (c->conn == NULL) {
		api_problem(c->resp, 503, "service-unavailable",
			    "the database is unreachable");
		return -1;
	}
	return 0;
}

int
api_begin(struct api_call *c)
{
	if (c->conn == NULL && api_connect(c) != 0)
		return -1;
	if (db_exec(c->conn, "BEGIN") != 0) {
		api_db_failed(c);
		return -1;
	}
	return 0;
}

int
api_commit(struct api_call *c)
{
	if (db_exec(c->conn, "COMMIT") != 0) {
		api_db_failed(c);
		return -1;
	}
	return 0;
}

void
api_rollback(struct api_call *c)
{
	if (c->conn != NULL && PQtransactionStatus(c->conn) != PQTRANS_IDLE)
		(void)db_exec(c->conn, "ROLLBACK");
}

void
api_db_failed(struct api_call *c)
{
	if (c->conn == NULL || db_lost(c->ctx->db))
		api_problem(c->resp, 503, "service-unavailable",
			    "the database is unreachable");
	else
		api_problem(c->resp, 500, "internal-error",
			    "a database query failed");
}

int
api_page(struct api_call *c, bool numeric, struct db_page *page,
	 char after[DB_CURSOR_MAX])
{
	struct page p;

	if (api_page_parse(c, numeric ? PAGE_CURSOR_ID : PAGE_CURSOR_TIME_ID,
			   &p, after) != 0)
		return -1;
	page->limit = p.limit;
	page->after = p.after;
	return 0;
}
