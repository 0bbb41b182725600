/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small helpers shared by the per-domain query modules (db/tokens.c,
 * db/devices.c, ...): bound-parameter queries with logging, and keyset
 * pages. Documents are built by PostgreSQL (json_build_object) and parsed
 * here with jansson, so one row is one round trip and one parse.
 */
#ifndef FLEETD_DB_QUERY_H
#define FLEETD_DB_QUERY_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdint.h>

#include "core/label_set.h"
#include "core/store.h"

enum db_rc {
	DB_OK = 0,
	DB_ERR = -1, /* query failed; see db_lost() */
	DB_NOTFOUND = 1, /* no such row */
	DB_CONFLICT = 2, /* state forbids it (e.g. already revoked) */
	DB_PRECONDITION = 3, /* If-Match revision differs */
};

/*
 * Runs sql with n text parameters. Returns the result (caller PQclear()s)
 * if it is COMMAND_OK or TUPLES_OK, else logs, clears and returns NULL.
 */
PGresult *db_query(PGconn *conn, const char *sql, int n,
		   const char *const *params);

/* db_query with parameter lengths and formats (1: binary), as
 * PQexecParams takes them; results in text. */
PGresult *db_query_binary(PGconn *conn, const char *sql, int n,
			  const char *const *params, const int *lengths,
			  const int *formats);

/* Runs a statement whose rows are not wanted: STORE_OK or STORE_ERR. */
enum store_rc db_command(PGconn *conn, const char *sql, int n,
			 const char *const *params);

/*
 * db_query and db_command for the fixed statements of hot paths
 * (enrollment, presence, reports, configuration status). sql must be a
 * string literal: its address identifies it. The statement is prepared on
 * its first use on a connection and executed by name afterwards, so
 * PostgreSQL parses and analyses it once per connection, and plans it once
 * when the plan does not depend on the parameters (a generic plan), instead
 * of on every call. The names a connection has prepared go with it (libpq
 * instance data, cleared on reset, freed with the connection). Past
 * DB_PREPARED_MAX statements per connection, or when preparing fails for
 * want of memory, the statement runs as db_query would.
 */
#define DB_PREPARED_MAX 64
PGresult *db_query_prepared(PGconn *conn, const char *sql, int n,
			    const char *const *params);
enum store_rc db_command_prepared(PGconn *conn, const char *sql, int n,
				  const char *const *params);

struct audit_entry;
struct idem_record;

/*
 * One unit of work of the store port: BEGIN; the Idempotency-Key record
 * when idem is not NULL (STORE_CONFLICT when a concurrent request holds
 * the key); fn(conn, arg); the audit row when audit is not NULL; COMMIT.
 * Anything but STORE_OK rolls everything back and is returned (STORE_ERR
 * when COMMIT failed or there is no connection).
 */
enum store_rc db_unit(struct store *st,
		      enum store_rc (*fn)(PGconn *conn, void *arg), void *arg,
		      const struct audit_entry *audit,
		      const struct idem_record *idem);

/* A FROM item that makes the autocommit statement it joins commit
 * without waiting for the WAL flush (SET LOCAL in the same round trip).
 * Only for writes that nothing acknowledged depends on, or that a later
 * durable commit flushes before anything is acknowledged. */
#define DB_ASYNC_COMMIT \
	"(SELECT set_config('synchronous_commit', 'off', true)) async"

/* The PostgreSQL side of plain values: epoch seconds of a timestamptz
 * column (NULL -> 0), and "to_timestamp" parameters. */
#define DB_EPOCH(col) "floor(extract(epoch FROM " col "))::bigint"
int64_t db_int(const PGresult *res, int row, int col);
/* A malloc'd copy of a text column, or NULL when SQL NULL. *failed is set
 * when out of memory. */
char *db_text(const PGresult *res, int row, int col, int *failed);

/* A label set as a JSON object text (malloc'd) and back. Stored sets are
 * read without the API's count limit: an enrollment may have merged more
 * than LABELS_MAX labels. */
char *db_labels_json(const struct label_set *labels);
enum store_rc db_labels_parse(const char *json, struct label_set *out);

/* A report window's 64-bit mask kept in a bigint: the same bits, as the
 * column's text and back. */
void db_mask_to_text(uint64_t mask, char *out, size_t cap);

/* Uuid texts as one uuid[] literal parameter {"a","b"}: each is checked
 * again (36 characters of hex and '-') before it is quoted, and the
 * literal is bound, never spliced into SQL. NULL when one is not a uuid
 * or out of memory; the caller frees. */
char *db_uuid_array(const char *const *ids, size_t n);
uint64_t db_mask_from_text(const char *text);

/*
 * A page of rows that are JSON texts (column col), from a query that asked
 * for page->limit + 1 rows: the first page->limit of them parsed into a
 * new array *items and, when there were more, the cursor (column ccol) of
 * the last one kept in next (else ""). -1 when a row is not JSON or out of
 * memory.
 */
struct page;
int db_json_page(const PGresult *res, const struct page *page, int col,
		 int ccol, json_t **items, char *next, size_t nextlen);

#endif
