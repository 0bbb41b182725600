/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Presence and the device channel's queries: net workers register
 * themselves, own the sessions of the devices connected to them, refresh
 * them in one statement per tick, and sweep the rows of workers that died.
 * Run on job threads and the channel's listener thread.
 */
#ifndef FLEETD_DB_PRESENCE_H
#define FLEETD_DB_PRESENCE_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

/* Removes earlier incarnations of (host, slot) and their sessions, then
 * registers worker_id. 0 or -1. */
int db_presence_register(PGconn *conn, const char *worker_id, const char *host,
			 long pid, int slot);

/*
 * One tick: refresh the worker and the sessions it holds (live: a uuid[]
 * literal of their device ids, "{}" for none); rows of this worker for
 * other devices are not refreshed and go once older than timeout_s (a lost
 * or reordered close); drop workers silent for longer than timeout_s (with
 * their sessions). 0 or -1.
 */
int db_presence_tick(PGconn *conn, const char *worker_id, const char *live,
		     long timeout_s);

/* Removes the worker and its sessions (clean shutdown). */
int db_presence_unregister(PGconn *conn, const char *worker_id);

/*
 * Opens a session if the device is active and the certificate is not
 * revoked; *allowed says which. 0 or -1 (database error).
 */
int db_presence_open(PGconn *conn, const char *device_id, const char *worker_id,
		     const char *serial, const char *peer, bool *allowed);

/* Ends the session if this worker still owns it; stamps last_seen. */
int db_presence_close(PGconn *conn, const char *device_id,
		      const char *worker_id);

/* Stores what a hello reports (validated by the caller). 0 or -1. */
int db_presence_hello(PGconn *conn, const char *device_id, const json_t *hello);

/*
 * Serials of revoked certificates that have not expired yet, sorted. The
 * array and strings are malloc'd; free with db_serials_free().
 */
int db_revoked_serials(PGconn *conn, char ***serials, size_t *n);
void db_serials_free(char **serials, size_t n);

#endif
