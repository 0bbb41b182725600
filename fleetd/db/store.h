/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PostgreSQL adapter of the store port (core/store.h): a struct store
 * is one thread's database connection. The db modules implement the
 * store_* functions of core/store_*.h on it.
 */
#ifndef FLEETD_DB_STORE_H
#define FLEETD_DB_STORE_H

#include <libpq-fe.h>

#include "core/store.h"

/* conninfo is a libpq connection string (copied); does not connect yet.
 * NULL when out of memory. */
struct store *store_new(const char *conninfo);
void store_free(struct store *st);

/* A healthy connection, or NULL when PostgreSQL is unreachable. */
PGconn *store_conn(struct store *st);

struct group_commit;

/* Why the unit of work on st failed (enum db_failure, db/db.h), without
 * touching the connection: what a group commit's run puts in a failed
 * slot's why. */
int store_failure(const struct store *st);

/* group_commit() for a store function: a record that another caller's
 * batch failed to write fails on this thread for the same reason, so
 * that store_unavailable() answers for it as for the leader's. */
enum store_rc store_group_commit(struct group_commit *q, struct store *st,
				 const void *record);

#endif
