/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Audit rows: who (actor), did what (action), to what (target), with which
 * details. Runs on job threads and in `fleetd token create`.
 */
#include "db/audit.h"

#include <stdio.h>
#include <stdlib.h>

int
audit_write(PGconn *conn, const char *actor, const char *action,
	    const char *target, const json_t *details)
{
	char *det = NULL;
	const char *params[4];
	PGresult *res;

	det = details ? json_dumps(details, JSON_COMPACT) : NULL;
	params[0] = actor;
	params[1] = action;
	params[2] = target;
	params[3] = det ? det : "{}";
	res = db_query(conn,
		       "INSERT INTO audit_log (actor, action, target, details) "
		       "VALUES ($1, $2, $3, $4::jsonb)",
		       4, params);
	free(det);
	if (res == NULL)
		return DB_ERR;
	PQclear(res);
	return DB_OK;
}

int
audit_list(PGconn *conn, const struct db_page *page, json_t **items,
	   char next[DB_CURSOR_MAX])
{
	char limit[16];
	const char *params[2];

	snprintf(limit, sizeof(limit), "%d", page->limit + 1);
	params[0] = limit;
	params[1] = page->after;
	return db_page_query(
		conn,
		"SELECT json_build_object('id', id, 'at', fleet_ts(at), "
		"'actor', actor, 'action', action, 'target', target, "
		"'details', details)::text, id::text FROM audit_log "
		"WHERE $2::bigint IS NULL OR id < $2::bigint "
		"ORDER BY audit_log.id DESC LIMIT $1::int",
		2, params, page, items, next);
}
