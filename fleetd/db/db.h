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

/* After a failed query: true if the connection is gone (answer 503). */
bool db_lost(struct db *db);

/* Runs a command without results ("BEGIN", "COMMIT", "ROLLBACK"). 0/-1.
 * A "COMMIT" that the server turned into a rollback (a statement of the
 * transaction had failed) is -1. */
int db_exec(PGconn *conn, const char *sql);

#endif
