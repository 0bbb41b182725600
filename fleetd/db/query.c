/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Query helpers for the per-domain modules. Runs on job threads and in CLI
 * commands. All SQL uses bound parameters; nothing here builds SQL text.
 */
#include "db/query.h"

#include <inttypes.h>
#include <libpq-events.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "db/audit.h"
#include "db/db.h"
#include "db/idempotency.h"
#include "core/metrics.h"
#include "core/page.h"
#include "db/store.h"
#include "log.h"
#include "secret.h"

/* res if the statement succeeded; else logs, counts, clears, NULL. NULL
 * in: already logged (db_bounded_result) or out of memory. */
static PGresult *
query_checked(PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	if (res != NULL) {
		log_warn("postgresql query failed: %s",
			 PQresultErrorMessage(res));
		metrics_add(METRIC_DB_ERRORS, 1, "kind", "statement", NULL);
	}
	PQclear(res);
	return NULL;
}

/* Outside a transaction a statement commits itself, and may wait for a
 * standby as a COMMIT does: it is bounded as one (db.h). */
static PGresult *
exec_params(PGconn *conn, const char *sql, int n, const char *const *params,
	    const int *lengths, const int *formats)
{
	if (!db_bounded(conn))
		return PQexecParams(conn, sql, n, NULL, params, lengths,
				    formats, 0);
	if (PQsendQueryParams(conn, sql, n, NULL, params, lengths, formats,
			      0) == 0)
		return NULL;
	return db_bounded_result(conn);
}

static PGresult *
exec_prepared(PGconn *conn, const char *name, int n, const char *const *params)
{
	if (!db_bounded(conn))
		return PQexecPrepared(conn, name, n, params, NULL, NULL, 0);
	if (PQsendQueryPrepared(conn, name, n, params, NULL, NULL, 0) == 0)
		return NULL;
	return db_bounded_result(conn);
}

PGresult *
db_query(PGconn *conn, const char *sql, int n, const char *const *params)
{
	return query_checked(exec_params(conn, sql, n, params, NULL, NULL));
}

PGresult *
db_query_binary(PGconn *conn, const char *sql, int n, const char *const *params,
		const int *lengths, const int *formats)
{
	return query_checked(
		exec_params(conn, sql, n, params, lengths, formats));
}

enum store_rc
db_command(PGconn *conn, const char *sql, int n, const char *const *params)
{
	PGresult *res = db_query(conn, sql, n, params);

	if (res == NULL)
		return STORE_ERR;
	PQclear(res);
	return STORE_OK;
}

/* ---- prepared statements of a connection ------------------------------ */

/* A statement's name: its text's SHA-256, so a name always means one text
 * and two literals with the same text share one prepared statement. */
#define PREPARED_NAME_LEN (3 + 32)

struct prepared_set {
	size_t n;
	const char *sql[DB_PREPARED_MAX]; /* literal addresses */
	char name[DB_PREPARED_MAX][PREPARED_NAME_LEN + 1];
};

static int
prepared_event(PGEventId id, void *info, void *pass)
{
	(void)pass;
	switch (id) {
	case PGEVT_REGISTER: {
		PGEventRegister *e = info;
		struct prepared_set *set = calloc(1, sizeof(*set));

		return set != NULL &&
		       PQsetInstanceData(e->conn, prepared_event, set) != 0;
	}
	case PGEVT_CONNRESET: {
		PGEventConnReset *e = info;
		struct prepared_set *set =
			PQinstanceData(e->conn, prepared_event);

		if (set != NULL)
			set->n = 0; /* a new session has prepared nothing */
		return 1;
	}
	case PGEVT_CONNDESTROY: {
		PGEventConnDestroy *e = info;

		free(PQinstanceData(e->conn, prepared_event));
		return 1;
	}
	default:
		return 1;
	}
}

static struct prepared_set *
prepared_set_of(PGconn *conn)
{
	struct prepared_set *set = PQinstanceData(conn, prepared_event);

	if (set == NULL && PQregisterEventProc(conn, prepared_event,
					       "fleet-prepared", NULL) != 0)
		set = PQinstanceData(conn, prepared_event);
	return set;
}

/* The name sql is prepared under on conn, preparing it first if needed;
 * NULL when it cannot be (set full, no memory, or the statement failed:
 * db_query then runs it and logs why). */
static const char *
prepared_name(PGconn *conn, const char *sql, int n)
{
	struct prepared_set *set = prepared_set_of(conn);
	char hex[SECRET_SHA256_HEX], name[PREPARED_NAME_LEN + 1];
	PGresult *res;
	size_t i;

	if (set == NULL)
		return NULL;
	for (i = 0; i < set->n; i++)
		if (set->sql[i] == sql)
			return set->name[i];
	if (set->n == DB_PREPARED_MAX)
		return NULL;
	secret_sha256_hex(sql, strlen(sql), hex);
	snprintf(name, sizeof(name), "fq_%.32s", hex);
	for (i = 0; i < set->n; i++)
		if (strcmp(set->name[i], name) == 0)
			break;
	if (i == set->n) {
		res = PQprepare(conn, name, sql, n, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			PQclear(res);
			return NULL;
		}
		PQclear(res);
	}
	set->sql[set->n] = sql;
	memcpy(set->name[set->n], name, sizeof(name));
	return set->name[set->n++];
}

PGresult *
db_query_prepared(PGconn *conn, const char *sql, int n,
		  const char *const *params)
{
	const char *name = prepared_name(conn, sql, n);

	if (name == NULL)
		return db_query(conn, sql, n, params);
	return query_checked(exec_prepared(conn, name, n, params));
}

enum store_rc
db_command_prepared(PGconn *conn, const char *sql, int n,
		    const char *const *params)
{
	PGresult *res = db_query_prepared(conn, sql, n, params);

	if (res == NULL)
		return STORE_ERR;
	PQclear(res);
	return STORE_OK;
}

enum store_rc
db_unit(struct store *st, enum store_rc (*fn)(PGconn *conn, void *arg),
	void *arg, const struct audit_entry *audit,
	const struct idem_record *idem)
{
	PGconn *conn = store_conn(st);
	enum store_rc rc = STORE_OK;

	if (conn == NULL)
		return STORE_ERR;
	if (db_exec(conn, "BEGIN") != 0)
		return STORE_ERR;
	if (idem != NULL)
		rc = (enum store_rc)db_idem_insert(conn, idem);
	if (rc == STORE_OK)
		rc = fn(conn, arg);
	if (rc == STORE_OK && audit != NULL &&
	    db_audit_insert(conn, audit) != DB_OK)
		rc = STORE_ERR;
	if (rc == STORE_OK) {
		if (db_exec(conn, "COMMIT") != 0)
			rc = STORE_ERR;
		return rc;
	}
	(void)db_exec(conn, "ROLLBACK");
	return rc;
}

int64_t
db_int(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return 0;
	return (int64_t)strtoll(PQgetvalue(res, row, col), NULL, 10);
}

char *
db_text(const PGresult *res, int row, int col, int *failed)
{
	char *s;

	if (PQgetisnull(res, row, col))
		return NULL;
	s = strdup(PQgetvalue(res, row, col));
	if (s == NULL)
		*failed = 1;
	return s;
}

char *
db_labels_json(const struct label_set *labels)
{
	json_t *obj = json_object();
	char *text = NULL;
	size_t i;

	if (obj == NULL)
		return NULL;
	for (i = 0; i < labels->n; i++)
		if (json_object_set_new(obj, labels->items[i].key,
					json_string(labels->items[i].value)) !=
		    0)
			goto out;
	text = json_dumps(obj, JSON_COMPACT);
out:
	json_decref(obj);
	return text;
}

enum store_rc
db_labels_parse(const char *text, struct label_set *out)
{
	struct label_set set = {0, NULL};
	json_t *obj = json_loads(text, 0, NULL), *v;
	const char *key;

	if (!json_is_object(obj))
		goto fail;
	set.items = calloc(json_object_size(obj) + 1, sizeof(*set.items));
	if (set.items == NULL)
		goto fail;
	json_object_foreach(obj, key, v)
	{
		struct label *l = &set.items[set.n];

		if (!json_is_string(v))
			goto fail;
		l->key = strdup(key);
		l->value = strdup(json_string_value(v));
		set.n++;
		if (l->key == NULL || l->value == NULL)
			goto fail;
	}
	json_decref(obj);
	*out = set;
	return STORE_OK;
fail:
	log_warn("postgresql: a stored label set is not valid");
	json_decref(obj);
	label_set_clear(&set);
	return STORE_ERR;
}

void
db_mask_to_text(uint64_t mask, char *out, size_t cap)
{
	int64_t v;

	memcpy(&v, &mask, sizeof(v));
	snprintf(out, cap, "%" PRId64, v);
}

uint64_t
db_mask_from_text(const char *text)
{
	int64_t v = strtoll(text, NULL, 10);
	uint64_t m;

	memcpy(&m, &v, sizeof(m));
	return m;
}

char *
db_uuid_array(const char *const *ids, size_t n)
{
	struct buf b;
	size_t len;

	buf_init(&b, 64 + n * 40);
	if (buf_append(&b, "{", 1) != 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if (strlen(ids[i]) != 36 ||
		    strspn(ids[i], "0123456789abcdef-") != 36)
			goto fail;
		if (buf_printf(&b, "%s\"%s\"", i > 0 ? "," : "", ids[i]) != 0)
			goto fail;
	}
	if (buf_append(&b, "}", 1) != 0)
		goto fail;
	return buf_detach(&b, &len);
fail:
	buf_free(&b);
	return NULL;
}

int
db_json_page(const PGresult *res, const struct page *page, int col, int ccol,
	     json_t **items, char *next, size_t nextlen)
{
	int rows = PQntuples(res);
	json_t *arr = json_array();

	next[0] = '\0';
	if (rows > page->limit) {
		snprintf(next, nextlen, "%s",
			 PQgetvalue(res, page->limit - 1, ccol));
		rows = page->limit;
	}
	for (int i = 0; arr != NULL && i < rows; i++) {
		json_t *v = json_loads(PQgetvalue(res, i, col), 0, NULL);

		if (v == NULL || json_array_append_new(arr, v) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	*items = arr;
	return arr != NULL ? 0 : -1;
}
