/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One PostgreSQL connection per thread, (re)connected on demand. Runs on
 * job threads of the net workers and in CLI commands. db_conn() never
 * sleeps: when the server is down it fails at once (libpq's own connect
 * timeout bounds a hanging TCP connect) and the next call tries again.
 * Failures are logged at most once every few seconds per connection.
 */
#include "db/db.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "clock.h"
#include "core/metrics.h"
#include "log.h"

#define DB_LOG_EVERY_MS 5000

/* Set once per process before the threads start (db_commit_timeout_set). */
static _Atomic long commit_timeout_s;

/* A WARNING (SQLSTATE 01000) arrived on this thread's connection during
 * the statement being waited for, or fleetd cancelled it. The notice
 * receiver runs on the thread that reads the answer, and each connection
 * belongs to one thread. */
static _Thread_local bool warned;

/* Why this thread's unit of work failed when its own connection cannot
 * tell: a commit that no standby confirmed in time, or the failure a
 * group commit's leader handed over (db_failure_adopt). A 503 (retry
 * later), not a 500. Cleared by db_conn(), which starts every unit of
 * work. */
static _Thread_local enum db_failure failure;

struct db {
	char *conninfo;
	PGconn *conn;
	uint64_t session; /* grows with every new server session */
	uint64_t last_log_ms;
};

struct db *
db_new(const char *conninfo)
{
	struct db *db = calloc(1, sizeof(*db));

	if (db == NULL)
		return NULL;
	db->conninfo = strdup(conninfo);
	if (db->conninfo == NULL) {
		free(db);
		return NULL;
	}
	return db;
}

void
db_free(struct db *db)
{
	if (db == NULL)
		return;
	if (db->conn != NULL)
		PQfinish(db->conn);
	metrics_add(METRIC_DB_CONNECTIONS, db->conn != NULL ? -1 : 0, NULL);
	/* the conninfo may hold a password */
	OPENSSL_cleanse(db->conninfo, strlen(db->conninfo));
	free(db->conninfo);
	free(db);
}

static void
db_log_failure(struct db *db, const char *what)
{
	uint64_t now = clock_mono_ms();
	const char *msg = db->conn ? PQerrorMessage(db->conn) : "out of memory";
	size_t len = strlen(msg);

	if (db->last_log_ms != 0 && now - db->last_log_ms < DB_LOG_EVERY_MS)
		return;
	db->last_log_ms = now;
	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
		len--;
	log_warn("postgresql %s failed: %.*s", what, (int)len, msg);
}

/* Notices are logged at debug level; a WARNING is remembered for db_exec:
 * during a COMMIT it is the server saying "canceling wait for synchronous
 * replication": committed here, maybe not on the standby. */
static void
db_notices(void *arg, const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	(void)arg;
	if (state != NULL && strcmp(state, "01000") == 0)
		warned = true;
	log_debug("postgresql: %s", PQresultErrorMessage(res));
}

void
db_commit_timeout_set(long seconds)
{
	if (seconds >= 0)
		atomic_store(&commit_timeout_s, seconds);
}

/*
 * An idle connection whose server went away (restart, failover) still says
 * CONNECTION_OK until it is used. The server's goodbye makes the socket
 * readable: consume it without blocking, so the status tells the truth and
 * the request that follows a PostgreSQL restart gets a fresh connection
 * instead of a 503.
 */
static void
db_notice_hangup(PGconn *conn)
{
	/* The goodbye message and the end of the stream may come apart. */
	for (int i = 0; i < 4 && PQstatus(conn) == CONNECTION_OK; i++) {
		struct pollfd pfd = {PQsocket(conn), POLLIN, 0};

		if (pfd.fd < 0 || poll(&pfd, 1, 0) <= 0 ||
		    PQconsumeInput(conn) == 0)
			break;
	}
}

PGconn *
db_conn(struct db *db)
{
	failure = DB_FAILURE_NONE;
	if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK)
		db_notice_hangup(db->conn);
	if (db->conn == NULL) {
		db->conn = PQconnectdb(db->conninfo);
		metrics_add(METRIC_DB_CONNECTIONS, db->conn != NULL ? 1 : 0,
			    NULL);
		if (db->conn != NULL)
			PQsetNoticeReceiver(db->conn, db_notices, NULL);
		db->session++;
	} else if (PQstatus(db->conn) != CONNECTION_OK) {
		PQreset(db->conn);
		db->session++;
	}
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
		db_log_failure(db, "connection");
		metrics_add(METRIC_DB_ERRORS, 1, "kind", "connection", NULL);
		return NULL;
	}
	/* A COMMIT given up on (db_commit) may still be running: start
	 * over on a new server session. */
	if (PQtransactionStatus(db->conn) == PQTRANS_ACTIVE) {
		log_warn("postgresql: connection still busy with a cancelled "
			 "COMMIT; reconnecting");
		PQreset(db->conn);
		db->session++;
		if (PQstatus(db->conn) != CONNECTION_OK) {
			db_log_failure(db, "connection");
			return NULL;
		}
	}
	/* A handler that bailed out mid-transaction must not leak it. */
	if (PQtransactionStatus(db->conn) != PQTRANS_IDLE) {
		log_warn("postgresql: connection left in a transaction; "
			 "rolling back");
		if (db_exec(db->conn, "ROLLBACK") != 0 &&
		    PQstatus(db->conn) != CONNECTION_OK)
			return NULL;
	}
	return db->conn;
}

uint64_t
db_session(const struct db *db)
{
	return db->session;
}

bool
db_commit_unconfirmed(void)
{
	return failure == DB_FAILURE_UNCONFIRMED;
}

enum db_failure
db_failure(const struct db *db)
{
	if (failure != DB_FAILURE_NONE)
		return failure;
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK)
		return DB_FAILURE_LOST;
	return DB_FAILURE_NONE;
}

bool
db_lost(struct db *db)
{
	return db_failure(db) != DB_FAILURE_NONE;
}

void
db_failure_adopt(enum db_failure f)
{
	if (f != DB_FAILURE_NONE)
		failure = f;
}

/* wait_readable: until the connection has input or ms pass. 1, 0 (time
 * is up) or -1 (the connection failed). */
static int
wait_readable(PGconn *conn, uint64_t deadline_ms)
{
	uint64_t now = clock_mono_ms();
	struct pollfd pfd = {PQsocket(conn), POLLIN, 0};
	int n;

	if (pfd.fd < 0)
		return -1;
	if (now >= deadline_ms)
		return 0;
	n = poll(&pfd, 1, (int)(deadline_ms - now));
	if (n < 0)
		return errno == EINTR ? 1 : -1;
	return n > 0;
}

/* The last result of the statement sent, or NULL when the connection
 * failed or gave no answer by deadline_ms (late then). */
static PGresult *
last_result(PGconn *conn, uint64_t deadline_ms, bool *late)
{
	PGresult *res, *last = NULL;
	int ready;

	*late = false;
	while (PQisBusy(conn)) {
		ready = wait_readable(conn, deadline_ms);
		if (ready <= 0) {
			*late = ready == 0;
			return NULL;
		}
		if (PQconsumeInput(conn) == 0)
			return NULL;
	}
	while ((res = PQgetResult(conn)) != NULL) {
		PQclear(last);
		last = res;
	}
	return last;
}

/*
 * The result of the statement just sent, within the commit timeout. With
 * synchronous replication the server waits for a standby after a commit
 * record is flushed, that of a COMMIT or of a statement outside a
 * transaction; when none answers it would wait for ever. Past the timeout
 * the statement is cancelled: the server stops waiting and answers with
 * success and a WARNING ("canceling wait for synchronous replication"),
 * or, if it had not reached its commit, with an error. Either way `warned`
 * is set. (The server's statement_timeout cannot do this: it is disarmed
 * before the commit runs.) A server that does not answer the cancel
 * within another timeout leaves the connection busy: db_conn() then
 * replaces it.
 */
static PGresult *
bounded_result(PGconn *conn, long timeout_s)
{
	PGcancel *cancel;
	PGresult *res;
	char err[256];
	bool late;

	res = last_result(conn, clock_mono_ms() + timeout_s * 1000, &late);
	if (!late)
		return res;
	cancel = PQgetCancel(conn);
	if (cancel == NULL || PQcancel(cancel, err, sizeof(err)) == 0)
		log_warn("postgresql: cancelling a statement: %s",
			 cancel == NULL ? "out of memory" : err);
	PQfreeCancel(cancel);
	warned = true; /* cancelled: not known to be on a standby */
	return last_result(conn, clock_mono_ms() + timeout_s * 1000, &late);
}

/* After a warned statement: logged, counted, and this thread's unit of
 * work failed as unconfirmed. */
static void
unconfirmed(const char *what)
{
	log_warn("postgresql: %s did not return within %ld s (no synchronous "
		 "standby answered): it may be on the primary only, so it is "
		 "not acknowledged",
		 what, atomic_load(&commit_timeout_s));
	metrics_add(METRIC_DB_ERRORS, 1, "kind", "commit_timeout", NULL);
	failure = DB_FAILURE_UNCONFIRMED;
}

bool
db_bounded(PGconn *conn)
{
	return atomic_load(&commit_timeout_s) > 0 &&
	       PQtransactionStatus(conn) == PQTRANS_IDLE;
}

PGresult *
db_bounded_result(PGconn *conn)
{
	PGresult *res;

	warned = false;
	res = bounded_result(conn, atomic_load(&commit_timeout_s));
	if (warned) {
		unconfirmed("a statement");
		PQclear(res);
		return NULL;
	}
	return res;
}

/* A COMMIT, bounded by the commit timeout when there is one. */
static PGresult *
db_commit(PGconn *conn)
{
	long timeout_s = atomic_load(&commit_timeout_s);

	if (timeout_s == 0)
		return PQexec(conn, "COMMIT");
	if (PQsendQuery(conn, "COMMIT") == 0)
		return NULL;
	return bounded_result(conn, timeout_s);
}

int
db_exec(PGconn *conn, const char *sql)
{
	bool commit = strcmp(sql, "COMMIT") == 0;
	PGresult *res;
	int rc = 0;

	warned = false;
	res = commit ? db_commit(conn) : PQexec(conn, sql);
	if (commit && warned) {
		/* Cancelled while it waited for a standby (db_commit), or
		 * the server warned otherwise: not acknowledged. */
		unconfirmed("COMMIT");
		rc = -1;
	} else if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		log_warn("postgresql: %s: %s", sql,
			 res != NULL ? PQresultErrorMessage(res)
				     : PQerrorMessage(conn));
		metrics_add(METRIC_DB_ERRORS, 1, "kind", "statement", NULL);
		rc = -1;
	} else if (commit && strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
		/* The server answers the COMMIT of a transaction in which a
		 * statement failed with success and the tag ROLLBACK: nothing
		 * was written, whatever the caller made of that statement. */
		log_warn("postgresql: COMMIT rolled back: a statement of the "
			 "transaction had failed");
		metrics_add(METRIC_DB_ERRORS, 1, "kind", "statement", NULL);
		rc = -1;
	}
	PQclear(res);
	return rc;
}
