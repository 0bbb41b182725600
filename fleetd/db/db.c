/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One PostgreSQL connection per thread, (re)connected on demand. Runs on
 * job threads of the net workers and in CLI commands. db_conn() never
 * sleeps: when the server is down it fails at once (libpq's own connect
 * timeout bounds a hanging TCP connect) and the next call tries again.
 * Failures are logged at most once every few seconds per connection.
 */
#include "db/db.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "clock.h"
#include "core/metrics.h"
#include "log.h"

#define DB_LOG_EVERY_MS 5000

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

static void
db_quiet_notices(void *arg, const char *message)
{
	(void)arg;
	log_debug("postgresql: %s", message);
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
	if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK)
		db_notice_hangup(db->conn);
	if (db->conn == NULL) {
		db->conn = PQconnectdb(db->conninfo);
		metrics_add(METRIC_DB_CONNECTIONS, db->conn != NULL ? 1 : 0,
			    NULL);
		if (db->conn != NULL)
			PQsetNoticeProcessor(db->conn, db_quiet_notices, NULL);
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
db_lost(struct db *db)
{
	return db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK;
}

int
db_exec(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	int rc = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		log_warn("postgresql: %s: %s", sql, PQresultErrorMessage(res));
		metrics_add(METRIC_DB_ERRORS, 1, "kind", "statement", NULL);
		rc = -1;
	} else if (strcmp(sql, "COMMIT") == 0 &&
		   strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
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
