/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One PostgreSQL connection owned by one thread, reconnected on demand.
 * Each job thread, the listener and the CLI commands hold their own. When
 * the server is unreachable, db_conn() returns NULL and callers answer 503;
 * the next call tries again, so fleetd rides out a PostgreSQL restart.
 */
#ifndef FLEETD_DB_H
#define FLEETD_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

struct db;

/* conninfo is a libpq connection string; copied. Does not connect yet. */
struct db *db_new(const char *conninfo);
void db_free(struct db *db);

/* A healthy connection or NULL (logged, rate-limited) when unreachable. */
PGconn *db_conn(struct db *db);

/* Which server session db_conn() last handed out: it changes with every
 * connect and reconnect, so two calls on the same session can be told. */
uint64_t db_session(const struct db *db);

/* After a failed query: true if the connection is gone, or if this
 * thread's unit of work (since its db_conn()) failed for a reason of
 * db_failure (answer 503). */
bool db_lost(struct db *db);

/* Runs a command without results ("BEGIN", "COMMIT", "ROLLBACK"). 0/-1.
 * A "COMMIT" is -1 when the server turned it into a rollback (a statement
 * of the transaction had failed) and when it did not return within the
 * commit timeout (below): the write may exist, but it is not known to be
 * on a synchronous standby, so it must not be acknowledged. */
int db_exec(PGconn *conn, const char *sql);

/* This thread's unit of work (since its db_conn()) had a COMMIT that no
 * standby confirmed within the commit timeout. */
bool db_commit_unconfirmed(void);

/* Why a unit of work failed, as db_lost() sees it, for a group commit's
 * leader to hand to the callers whose records it wrote: they adopt it on
 * their own thread (db_failure_adopt), so that their answer is the 503
 * the leader's would be. */
enum db_failure {
	DB_FAILURE_NONE = 0,
	DB_FAILURE_LOST, /* the connection is gone */
	DB_FAILURE_UNCONFIRMED, /* no standby confirmed the commit in time */
};
enum db_failure db_failure(const struct db *db);
void db_failure_adopt(enum db_failure f);

/* A statement sent outside a transaction commits itself, and waits for a
 * standby as a COMMIT does: db_bounded() says whether conn is there (and a
 * commit timeout set); then send it (PQsendQuery*) and take its result
 * from db_bounded_result(), which cancels it past the timeout and then
 * returns NULL, the unit of work failed as unconfirmed. */
bool db_bounded(PGconn *conn);
PGresult *db_bounded_result(PGconn *conn);

/* How long a COMMIT, or a statement outside a transaction, may take, in
 * seconds (0: for ever, the default): with synchronous replication it
 * waits for a standby, and when none answers it would wait until one
 * does. Call once per process before the threads that use the database
 * start. */
void db_commit_timeout_set(long seconds);

#endif
