/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The artifacts store (core/store_artifacts.h) on PostgreSQL: releases
 * (artifacts), their bytes once per sha256 (artifact_blobs) in 1 MiB
 * chunks (artifact_chunks), migrations/0011. Runs on api job threads; all
 * SQL uses bound parameters, chunks travel as binary parameters.
 *
 * One upload of a sha256 at a time, across instances: the upload holds a
 * session-level advisory lock on the blob (pg_try_advisory_lock, key
 * derived from the sha256) from upload_begin to upload_end, across the
 * per-chunk transactions; a second upload gets ARTIFACT_BUSY, and a dead
 * instance's lock goes with its connection. Chunks of an upload that did
 * not finish are removed by upload_end, or by the next upload_begin when
 * the process died first. Only complete blobs are served.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/artifact.h"
#include "core/store_artifacts.h"
#include "db/audit.h"
#include "db/db.h"
#include "db/idempotency.h"
#include "db/query.h"
#include "db/store.h"
#include "log.h"

/* The advisory lock key of a blob's upload: a class id and the first 32
 * bits of the sha256 (collisions only serialise two uploads). */
#define LOCK_CLASS "1095914049" /* "ARTA" */
#define LOCK_KEY_SQL "('x' || substr($1, 1, 8))::bit(32)::int"

/* clang-format off */
#define ARTIFACT_COLS \
	"a.id::text, a.sha256, a.name, a.version, a.version_int, " \
	"array_to_json(a.hw)::text, a.installer, a.size, " \
	DB_EPOCH("a.expires_at") ", a.created_by, " \
	DB_EPOCH("a.created_at") ", b.complete"
/* clang-format on */
#define ARTIFACT_NCOLS 12

static enum artifact_rc
rollback(PGconn *conn, enum artifact_rc rc)
{
	(void)db_exec(conn, "ROLLBACK");
	return rc;
}

static void
copy_text(char *dst, size_t cap, const PGresult *res, int row, int col)
{
	snprintf(dst, cap, "%s", PQgetvalue(res, row, col));
}

static int
read_artifact(const PGresult *res, int row, struct artifact *a, bool with_docs)
{
	json_t *hw;
	size_t i;
	int failed = 0;

	memset(a, 0, sizeof(*a));
	copy_text(a->id, sizeof(a->id), res, row, 0);
	copy_text(a->sha256, sizeof(a->sha256), res, row, 1);
	copy_text(a->name, sizeof(a->name), res, row, 2);
	copy_text(a->version, sizeof(a->version), res, row, 3);
	a->version_int = db_int(res, row, 4);
	hw = json_loads(PQgetvalue(res, row, 5), 0, NULL);
	for (i = 0; json_is_array(hw) && i < json_array_size(hw) &&
		    i < ARTIFACT_HW_MAX;
	     i++)
		snprintf(a->hw[i], sizeof(a->hw[i]), "%s",
			 json_string_value(json_array_get(hw, i)) != NULL
				 ? json_string_value(json_array_get(hw, i))
				 : "");
	a->n_hw = i;
	json_decref(hw);
	copy_text(a->installer, sizeof(a->installer), res, row, 6);
	a->size = (uint64_t)db_int(res, row, 7);
	a->expires_at = db_int(res, row, 8);
	copy_text(a->created_by, sizeof(a->created_by), res, row, 9);
	a->created_at = db_int(res, row, 10);
	a->ready = strcmp(PQgetvalue(res, row, 11), "t") == 0;
	if (with_docs) {
		a->envelope = db_text(res, row, ARTIFACT_NCOLS, &failed);
		a->manifest = db_text(res, row, ARTIFACT_NCOLS + 1, &failed);
	}
	if (failed) {
		artifact_clear(a);
		return -1;
	}
	return 0;
}

/* ---- create, get, list, delete ----------------------------------------- */

/* Inside the create transaction: the blob row (new or locked), then the
 * artifact row and the audit row. */
static enum artifact_rc
create_rows(PGconn *conn, struct artifact *a, const char *actor,
	    const char *hw_text)
{
	char size[32], version_int[32], expires[32], chunk[16];
	PGresult *res;
	json_t *details;
	int ok;

	snprintf(size, sizeof(size), "%" PRIu64, a->size);
	snprintf(version_int, sizeof(version_int), "%" PRId64, a->version_int);
	snprintf(expires, sizeof(expires), "%" PRId64, a->expires_at);
	snprintf(chunk, sizeof(chunk), "%u", ARTIFACT_CHUNK_SIZE);
	{
		/* DO UPDATE locks the blob row (a concurrent delete of its
		 * last artifact waits, then sees this one), or inserts it
		 * again when that delete committed first. */
		const char *p[3] = {a->sha256, size, chunk};

		res = db_query(conn,
			       "INSERT INTO artifact_blobs (sha256, size, "
			       "chunk_size) VALUES ($1, $2::bigint, $3::int) "
			       "ON CONFLICT (sha256) DO UPDATE SET sha256 = "
			       "EXCLUDED.sha256 RETURNING size, complete",
			       3, p);
	}
	if (res == NULL || PQntuples(res) != 1) {
		PQclear(res);
		return ARTIFACT_ERR_STORE;
	}
	ok = (uint64_t)db_int(res, 0, 0) == a->size;
	a->ready = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	PQclear(res);
	if (!ok)
		return ARTIFACT_BLOB_MISMATCH;
	{
		const char *p[12] = {a->id,	   a->sha256,	a->name,
				     a->version,   version_int, hw_text,
				     a->installer, size,	expires,
				     a->envelope,  a->manifest, actor};

		res = db_query(
			conn,
			"INSERT INTO artifacts (id, sha256, name, version, "
			"version_int, hw, installer, size, expires_at, "
			"envelope, manifest, created_by) SELECT $1::uuid, $2, "
			"$3, $4, $5::bigint, ARRAY(SELECT "
			"jsonb_array_elements_text($6::jsonb)), $7, "
			"$8::bigint, to_timestamp($9::bigint), $10::jsonb, "
			"$11::jsonb, $12 ON CONFLICT (name, version_int, "
			"sha256) DO NOTHING RETURNING " DB_EPOCH("created_at"),
			12, p);
	}
	if (res == NULL)
		return ARTIFACT_ERR_STORE;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return ARTIFACT_EXISTS;
	}
	a->created_at = db_int(res, 0, 0);
	PQclear(res);
	snprintf(a->created_by, sizeof(a->created_by), "%s", actor);
	details =
		json_pack("{s:s,s:s,s:I,s:s,s:I}", "name", a->name, "version",
			  a->version, "version_int", (json_int_t)a->version_int,
			  "sha256", a->sha256, "size", (json_int_t)a->size);
	ok = details != NULL && audit_write(conn, actor, "artifact.create",
					    a->id, details) == DB_OK;
	json_decref(details);
	return ok ? ARTIFACT_OK : ARTIFACT_ERR_STORE;
}

enum artifact_rc
store_artifact_create(struct store *st, struct artifact *a, const char *actor,
		      const struct idem_record *idem)
{
	json_t *hw = json_array();
	char *hw_text = NULL;
	PGconn *conn = store_conn(st);
	enum artifact_rc rc = ARTIFACT_ERR_STORE;
	int irc;

	for (size_t i = 0; hw != NULL && i < a->n_hw; i++)
		json_array_append_new(hw, json_string(a->hw[i]));
	hw_text = hw != NULL ? json_dumps(hw, JSON_COMPACT) : NULL;
	json_decref(hw);
	if (hw_text == NULL)
		return ARTIFACT_ERR_NOMEM;
	if (conn == NULL || db_exec(conn, "BEGIN") != 0)
		goto out;
	if (idem != NULL) {
		irc = db_idem_insert(conn, idem);
		if (irc != DB_OK) {
			rc = rollback(conn, irc == DB_CONFLICT
						    ? ARTIFACT_IDEM_TAKEN
						    : ARTIFACT_ERR_STORE);
			goto out;
		}
	}
	rc = create_rows(conn, a, actor, hw_text);
	if (rc != ARTIFACT_OK) {
		rc = rollback(conn, rc);
		goto out;
	}
	if (db_exec(conn, "COMMIT") != 0)
		rc = rollback(conn, ARTIFACT_ERR_STORE);
out:
	free(hw_text);
	return rc;
}

enum artifact_rc
store_artifact_get(struct store *st, const char *id, struct artifact *out)
{
	const char *p[1] = {id};
	PGconn *conn = store_conn(st);
	PGresult *res;
	enum artifact_rc rc = ARTIFACT_ERR_STORE;

	if (conn == NULL)
		return ARTIFACT_ERR_STORE;
	res = db_query(conn,
		       "SELECT " ARTIFACT_COLS ", a.envelope::text, "
		       "a.manifest::text FROM artifacts a JOIN artifact_blobs "
		       "b ON b.sha256 = a.sha256 WHERE a.id = $1::uuid",
		       1, p);
	if (res == NULL)
		return ARTIFACT_ERR_STORE;
	if (PQntuples(res) == 0)
		rc = ARTIFACT_NOTFOUND;
	else if (read_artifact(res, 0, out, true) == 0)
		rc = ARTIFACT_OK;
	PQclear(res);
	return rc;
}

enum artifact_rc
store_artifact_list(struct store *st, const struct page *page, const char *name,
		    const char *version, struct artifact **items, size_t *n,
		    char next[PAGE_CURSOR_MAX])
{
	char limit[16];
	const char *p[4] = {limit, page->after, name, version};
	struct artifact *arr;
	PGconn *conn = store_conn(st);
	PGresult *res;
	int i, rows;

	next[0] = '\0';
	if (conn == NULL)
		return ARTIFACT_ERR_STORE;
	snprintf(limit, sizeof(limit), "%d", page->limit + 1);
	res = db_query(
		conn,
		"SELECT " ARTIFACT_COLS ", fleet_cursor(a.created_at, a.id) "
		"FROM artifacts a JOIN artifact_blobs b ON b.sha256 = "
		"a.sha256 WHERE ($2::text IS NULL OR (a.created_at, a.id) > "
		"(fleet_cursor_ts(split_part($2, ' ', 1)::bigint), "
		"split_part($2, ' ', 2)::uuid)) AND ($3::text IS NULL OR "
		"a.name = $3) AND ($4::text IS NULL OR a.version = $4) "
		"ORDER BY a.created_at, a.id LIMIT $1::int",
		4, p);
	if (res == NULL)
		return ARTIFACT_ERR_STORE;
	rows = PQntuples(res);
	if (rows > page->limit) {
		snprintf(next, PAGE_CURSOR_MAX, "%s",
			 PQgetvalue(res, page->limit - 1, ARTIFACT_NCOLS));
		rows = page->limit;
	}
	arr = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*arr));
	for (i = 0; arr != NULL && i < rows; i++) {
		if (read_artifact(res, i, &arr[i], false) != 0) {
			artifacts_free(arr, (size_t)i);
			arr = NULL;
		}
	}
	PQclear(res);
	if (arr == NULL)
		return ARTIFACT_ERR_NOMEM;
	*items = arr;
	*n = (size_t)rows;
	return ARTIFACT_OK;
}

/* Inside the delete transaction. */
static enum artifact_rc
delete_rows(PGconn *conn, const char *id, const char *actor)
{
	const char *p1[1] = {id};
	char sha256[ARTIFACT_SHA_LEN];
	PGresult *res;
	json_t *details;
	int ok;

	res = db_query(conn,
		       "SELECT a.sha256 FROM artifacts a WHERE a.id = "
		       "$1::uuid FOR UPDATE",
		       1, p1);
	if (res == NULL)
		return ARTIFACT_ERR_STORE;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return ARTIFACT_NOTFOUND;
	}
	copy_text(sha256, sizeof(sha256), res, 0, 0);
	PQclear(res);
	/* Lock the blob before counting its artifacts: a concurrent create
	 * of another release of the same file waits or is seen. */
	{
		const char *p[1] = {sha256};

		res = db_query(conn,
			       "SELECT 1 FROM artifact_blobs WHERE sha256 = $1 "
			       "FOR UPDATE",
			       1, p);
		if (res == NULL)
			return ARTIFACT_ERR_STORE;
		PQclear(res);
	}
	/* In use: a deployment still active with a device not finished. */
	res = db_query(conn,
		       "SELECT count(*) FROM deployments d WHERE "
		       "d.artifact_id = $1::uuid AND d.status = 'active' AND "
		       "EXISTS (SELECT 1 FROM deployment_devices dd WHERE "
		       "dd.deployment_id = d.id AND NOT dd.finished)",
		       1, p1);
	if (res == NULL)
		return ARTIFACT_ERR_STORE;
	ok = db_int(res, 0, 0) == 0;
	PQclear(res);
	if (!ok)
		return ARTIFACT_IN_USE;
	/* Finished deployments go with it (their rows name it); the audit
	 * log keeps what happened. */
	if (db_command(conn,
		       "DELETE FROM deployments WHERE artifact_id = $1::uuid",
		       1, p1) != STORE_OK ||
	    db_command(conn, "DELETE FROM artifacts WHERE id = $1::uuid", 1,
		       p1) != STORE_OK)
		return ARTIFACT_ERR_STORE;
	{
		const char *p[1] = {sha256};

		if (db_command(conn,
			       "DELETE FROM artifact_blobs b WHERE b.sha256 = "
			       "$1 AND NOT EXISTS (SELECT 1 FROM artifacts a "
			       "WHERE a.sha256 = $1)",
			       1, p) != STORE_OK)
			return ARTIFACT_ERR_STORE;
	}
	details = json_pack("{s:s}", "sha256", sha256);
	ok = details != NULL &&
	     audit_write(conn, actor, "artifact.delete", id, details) == DB_OK;
	json_decref(details);
	return ok ? ARTIFACT_OK : ARTIFACT_ERR_STORE;
}

enum artifact_rc
store_artifact_delete(struct store *st, const char *id, const char *actor)
{
	PGconn *conn = store_conn(st);
	enum artifact_rc rc;

	if (conn == NULL || db_exec(conn, "BEGIN") != 0)
		return ARTIFACT_ERR_STORE;
	rc = delete_rows(conn, id, actor);
	if (rc != ARTIFACT_OK)
		return rollback(conn, rc);
	if (db_exec(conn, "COMMIT") != 0)
		return rollback(conn, ARTIFACT_ERR_STORE);
	return ARTIFACT_OK;
}

/* ---- uploads -------------------------------------------------------------- */

enum artifact_rc
store_artifact_upload_begin(struct store *st, const char *sha256,
			    bool *complete)
{
	const char *p[1] = {sha256};
	PGconn *conn = store_conn(st);
	PGresult *res;
	bool locked, done;

	if (conn == NULL)
		return ARTIFACT_ERR_STORE;
	res = db_query(conn,
		       "SELECT pg_try_advisory_lock(" LOCK_CLASS
		       ", " LOCK_KEY_SQL ")",
		       1, p);
	if (res == NULL)
		return ARTIFACT_ERR_STORE;
	locked = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!locked)
		return ARTIFACT_BUSY;
	res = db_query(conn,
		       "SELECT complete FROM artifact_blobs WHERE sha256 = $1",
		       1, p);
	if (res == NULL || PQntuples(res) != 1) {
		enum artifact_rc rc =
			res == NULL ? ARTIFACT_ERR_STORE : ARTIFACT_NOTFOUND;

		PQclear(res);
		store_artifact_upload_end(st, sha256, false);
		return rc;
	}
	done = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	/* An earlier upload that died (instance killed) left chunks. */
	if (!done &&
	    db_command(conn, "DELETE FROM artifact_chunks WHERE sha256 = $1", 1,
		       p) != STORE_OK) {
		store_artifact_upload_end(st, sha256, false);
		return ARTIFACT_ERR_STORE;
	}
	/* The chunks before the last commit without waiting for the WAL
	 * flush: the last chunk's transaction (complete = true) commits
	 * synchronously, and WAL is flushed in order, so once the blob is
	 * complete on disk every chunk is; a crash before that leaves an
	 * incomplete blob, which the next upload starts over. */
	if (!done && db_command(conn, "SET synchronous_commit = off", 0,
				NULL) != STORE_OK) {
		store_artifact_upload_end(st, sha256, false);
		return ARTIFACT_ERR_STORE;
	}
	*complete = done;
	return ARTIFACT_OK;
}

/* INSERT of one chunk, the data as a binary parameter. */
static enum artifact_rc
chunk_insert(PGconn *conn, const char *sha256, uint32_t idx, const void *data,
	     size_t len)
{
	char idx_text[16];
	const char *values[3] = {sha256, idx_text, data};
	int lengths[3] = {0, 0, (int)len};
	int formats[3] = {0, 0, 1};
	PGresult *res;
	ExecStatusType rs;

	snprintf(idx_text, sizeof(idx_text), "%" PRIu32, idx);
	res = PQexecParams(conn,
			   "INSERT INTO artifact_chunks (sha256, idx, data) "
			   "VALUES ($1, $2::int, $3::bytea)",
			   3, NULL, values, lengths, formats, 0);
	rs = PQresultStatus(res);
	if (rs != PGRES_COMMAND_OK) {
		log_warn("artifact chunk %" PRIu32 " of %.12s: %s", idx, sha256,
			 PQresultErrorMessage(res));
		PQclear(res);
		return ARTIFACT_ERR_STORE;
	}
	PQclear(res);
	return ARTIFACT_OK;
}

enum artifact_rc
store_artifact_chunk_put(struct store *st, const char *sha256, uint32_t idx,
			 const void *data, size_t len)
{
	PGconn *conn = store_conn(st);

	if (conn == NULL)
		return ARTIFACT_ERR_STORE;
	return chunk_insert(conn, sha256, idx, data, len);
}

enum artifact_rc
store_artifact_upload_finish(struct store *st, const char *sha256, uint32_t idx,
			     const void *data, size_t len,
			     const struct audit_entry *audit)
{
	const char *p[1] = {sha256};
	PGconn *conn = store_conn(st);
	enum artifact_rc rc;

	if (conn == NULL || db_exec(conn, "RESET synchronous_commit") != 0 ||
	    db_exec(conn, "BEGIN") != 0)
		return ARTIFACT_ERR_STORE;
	rc = chunk_insert(conn, sha256, idx, data, len);
	if (rc != ARTIFACT_OK)
		return rollback(conn, rc);
	if (db_command(conn,
		       "UPDATE artifact_blobs SET complete = true WHERE "
		       "sha256 = $1",
		       1, p) != STORE_OK ||
	    (audit != NULL && db_audit_insert(conn, audit) != DB_OK) ||
	    db_exec(conn, "COMMIT") != 0)
		return rollback(conn, ARTIFACT_ERR_STORE);
	return ARTIFACT_OK;
}

void
store_artifact_upload_end(struct store *st, const char *sha256, bool failed)
{
	const char *p[1] = {sha256};
	PGconn *conn = store_conn(st);

	if (conn == NULL)
		return;
	if (failed)
		(void)db_command(conn,
				 "DELETE FROM artifact_chunks c WHERE c.sha256 "
				 "= $1 AND NOT (SELECT complete FROM "
				 "artifact_blobs b WHERE b.sha256 = $1)",
				 1, p);
	(void)db_exec(conn, "RESET synchronous_commit");
	(void)db_command(conn,
			 "SELECT pg_advisory_unlock(" LOCK_CLASS
			 ", " LOCK_KEY_SQL ")",
			 1, p);
}
