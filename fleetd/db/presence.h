/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Presence on PostgreSQL: implements core/store_presence.h. What is left
 * here is the hello store of the dispatch table, until it goes through
 * core. Runs on the channel's job threads.
 */
#ifndef FLEETD_DB_PRESENCE_H
#define FLEETD_DB_PRESENCE_H

#include <jansson.h>
#include <libpq-fe.h>

/* Stores what a hello reports (validated by the caller). 0 or -1. */
int db_presence_hello(PGconn *conn, const char *device_id, const json_t *hello);

#endif
