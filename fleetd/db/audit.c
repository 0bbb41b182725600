/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Audit rows: who (actor), did what (action), to what (target), with which
 * details. Written by the store functions of the mutations, in their own
 * transaction; read newest first. Runs on job threads and in `fleetd token
 * create`.
 */
#include "db/audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/store.h"

/* The details object of an entry; NULL when out of memory. */
static json_t *
audit_details(const struct audit_entry *e)
{
	json_t *obj = json_object(), *v, *labels;
	size_t i, j;

	for (i = 0; obj != NULL && i < e->n; i++) {
		const struct audit_field *f = &e->fields[i];

		switch (f->kind) {
		case AUDIT_STR:
			v = f->str ? json_string(f->str) : json_null();
			break;
		case AUDIT_INT:
			v = json_integer((json_int_t)f->num);
			break;
		default:
			v = labels = json_object();
			for (j = 0; labels && f->labels && j < f->labels->n;
			     j++)
				json_object_set_new(
					labels, f->labels->items[j].key,
					json_string(f->labels->items[j].value));
			break;
		}
		if (v == NULL || json_object_set_new(obj, f->key, v) != 0) {
			json_decref(obj);
			return NULL;
		}
	}
	return obj;
}

int
db_audit_insert(PGconn *conn, const struct audit_entry *e)
{
	json_t *details = audit_details(e);
	int rc;

	if (details == NULL)
		return DB_ERR;
	rc = audit_write(conn, e->actor, e->action, e->target, details);
	json_decref(details);
	return rc;
}

int
audit_write(PGconn *conn, const char *actor, const char *action,
	    const char *target, const json_t *details)
{
	char *det = NULL;
	const char *params[4];
	enum store_rc rc;

	det = details ? json_dumps(details, JSON_COMPACT) : NULL;
	params[0] = actor;
	params[1] = action;
	params[2] = target;
	params[3] = det ? det : "{}";
	rc = db_command(conn,
			"INSERT INTO audit_log (actor, action, target, "
			"details) VALUES ($1, $2, $3, $4::jsonb)",
			4, params);
	free(det);
	return rc == STORE_OK ? DB_OK : DB_ERR;
}

enum store_rc
store_audit_list(struct store *st, const struct page *page,
		 struct audit_row **rows, size_t *n, char next[PAGE_CURSOR_MAX])
{
	char limit[16];
	const char *params[2] = {limit, page->after};
	struct audit_row *arr = NULL;
	PGconn *conn = store_conn(st);
	PGresult *res;
	int i, count, failed = 0;

	next[0] = '\0';
	if (conn == NULL)
		return STORE_ERR;
	snprintf(limit, sizeof(limit), "%d", page->limit + 1);
	res = db_query(
		conn,
		"SELECT id, " DB_EPOCH("at") ", actor, action, target, "
					     "details::text FROM audit_log "
					     "WHERE $2::bigint IS NULL "
					     "OR id < $2::bigint ORDER BY id "
					     "DESC LIMIT $1::int",
		2, params);
	if (res == NULL)
		return STORE_ERR;
	count = PQntuples(res);
	if (count > page->limit) {
		count = page->limit;
		snprintf(next, PAGE_CURSOR_MAX, "%s",
			 PQgetvalue(res, count - 1, 0));
	}
	arr = calloc(count > 0 ? (size_t)count : 1, sizeof(*arr));
	if (arr == NULL)
		failed = 1;
	for (i = 0; !failed && i < count; i++) {
		arr[i].id = db_int(res, i, 0);
		arr[i].at = db_int(res, i, 1);
		arr[i].actor = db_text(res, i, 2, &failed);
		arr[i].action = db_text(res, i, 3, &failed);
		arr[i].target = db_text(res, i, 4, &failed);
		arr[i].details_json = db_text(res, i, 5, &failed);
	}
	PQclear(res);
	if (failed) {
		audit_rows_free(arr, arr ? (size_t)count : 0);
		return STORE_ERR;
	}
	*rows = arr;
	*n = (size_t)count;
	return STORE_OK;
}
