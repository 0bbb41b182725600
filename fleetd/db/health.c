/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_ping on PostgreSQL (core/store_health.h): one round trip on the
 * thread's connection, reconnecting first if it was lost. Job threads.
 */
#include "core/store_health.h"

#include "db/query.h"
#include "db/store.h"

enum store_rc
store_ping(struct store *st)
{
	PGconn *conn = store_conn(st);

	if (conn == NULL)
		return STORE_ERR;
	return db_command(conn, "SELECT 1", 0, NULL);
}
