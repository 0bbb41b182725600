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

json_t *
db_audit_details(const struct audit_entry *e)
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
	json_t *details = db_audit_details(e);
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

/*
 * The actor's name: an admin token's name for "token:<uuid>" (the join
 * compares text, so an actor that is not a token matches nothing).
 * Filters are parameters; an unset one is NULL and holds for every row.
 */
#define AUDIT_LIST_SQL                                                         \
	"SELECT a.id, " DB_EPOCH(                                              \
		"a.at") ", a.actor, nullif(t.name, ''), "                      \
			"a.action, a.target, a.details::text FROM audit_log "  \
			"a LEFT JOIN "                                         \
			"admin_tokens t ON a.actor = 'token:' || t.id::text "  \
			"WHERE ($2::bigint IS NULL OR a.id < $2::bigint) "     \
			"AND ($3::text IS NULL OR a.actor = $3 OR a.actor IN " \
			"(SELECT "                                             \
			"'token:' || id::text FROM admin_tokens WHERE name = " \
			"$3)) "                                                \
			"AND ($4::text IS NULL OR a.action = $4 OR "           \
			"(right($4, 2) = '.*' "                                \
			"AND starts_with(a.action, left($4, -1)))) "           \
			"AND ($5::text IS NULL OR a.target = $5) "             \
			"AND ($6::bigint IS NULL OR a.at >= "                  \
			"to_timestamp($6::bigint)) "                           \
			"AND ($7::bigint IS NULL OR a.at < "                   \
			"to_timestamp($7::bigint)) "                           \
			"ORDER BY a.id DESC LIMIT $1::int"

enum store_rc
store_audit_list(struct store *st, const struct audit_filter *f,
		 const struct page *page, struct audit_row **rows, size_t *n,
		 char next[PAGE_CURSOR_MAX])
{
	char limit[16], since[24], until[24];
	const char *params[7] = {limit,	    page->after, f->actor, f->action,
				 f->target, NULL,	 NULL};
	struct audit_row *arr = NULL;
	PGconn *conn = store_conn(st);
	PGresult *res;
	int i, count, failed = 0;

	next[0] = '\0';
	if (conn == NULL)
		return STORE_ERR;
	snprintf(limit, sizeof(limit), "%d", page->limit + 1);
	snprintf(since, sizeof(since), "%lld", (long long)f->since);
	snprintf(until, sizeof(until), "%lld", (long long)f->until);
	params[5] = f->since != 0 ? since : NULL;
	params[6] = f->until != 0 ? until : NULL;
	res = db_query(conn, AUDIT_LIST_SQL, 7, params);
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
		arr[i].actor_name = db_text(res, i, 3, &failed);
		arr[i].action = db_text(res, i, 4, &failed);
		arr[i].target = db_text(res, i, 5, &failed);
		arr[i].details_json = db_text(res, i, 6, &failed);
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
