/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The presence part of the store port (core/store.h): net workers register
 * themselves, own the sessions of the devices connected to them, refresh
 * them once per tick and sweep the rows of workers that died; the
 * channel's listener thread learns revocations. Implemented on PostgreSQL
 * by fleetd/db/presence.c. Each function is one atomic unit of work.
 *
 * Times are ages in milliseconds ("the last frame from this device arrived
 * idle_ms ago"), so the adapter stamps them with its own clock and worker
 * and database clocks never need to agree.
 */
#ifndef FLEETD_CORE_STORE_PRESENCE_H
#define FLEETD_CORE_STORE_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/store.h"

/* A net worker: id is "host:slot:pid". */
struct presence_worker {
	const char *id;
	const char *host;
	long pid;
	int slot;
};

/* One live session of a worker, as its tick reports it. */
struct presence_session {
	const char *device_id; /* uuid text, from the verified certificate */
	const char *serial; /* certificate serial (hex) */
	const char *peer; /* remote address, for operators */
	uint64_t idle_ms; /* since the last frame (or pong) from the device */
};

/* Removes earlier incarnations of (host, slot) and their sessions, then
 * registers worker_id. */
enum store_rc store_presence_register(struct store *st,
				      const struct presence_worker *w);

/* Removes the worker and its sessions (clean shutdown). */
enum store_rc store_presence_unregister(struct store *st,
					const char *worker_id);

/*
 * Opens a session row if the device is active and the certificate is its
 * own and not revoked; *allowed says which. A row of another session of
 * the device (on any worker) is taken over: the newest session wins.
 */
enum store_rc store_presence_open(struct store *st, const char *worker_id,
				  const struct presence_session *s,
				  bool *allowed);

/* Ends the session row if this worker still owns it; the device's
 * last_seen becomes the time of its last frame (idle_ms ago). */
enum store_rc store_presence_close(struct store *st, const char *worker_id,
				   const char *device_id, uint64_t idle_ms);

/*
 * One presence tick of a worker holding n live sessions:
 * - the worker row is upserted (a worker that was swept while PostgreSQL
 *   was away registers again), and its sessions' rows are refreshed to the
 *   time of their last frame, or inserted again when they are gone (unless
 *   another session of the device owns the row, or the device is no
 *   longer active or the certificate revoked);
 * - rows of this worker for devices it no longer holds go once older than
 *   timeout_s (a lost or reordered close);
 * - when sweep is true, workers silent for longer than timeout_s are
 *   removed with their sessions.
 * *lost (malloc'd array of malloc'd device ids, free each and the array;
 * NULL when none) lists the sessions whose row belongs to another session
 * now or whose device is refused: the caller closes them.
 */
enum store_rc store_presence_tick(struct store *st,
				  const struct presence_worker *w,
				  const struct presence_session *sessions,
				  size_t n, long timeout_s, bool sweep,
				  char ***lost, size_t *nlost);

/*
 * The serials a device handshake refuses: revoked and superseded
 * certificates that have not expired yet, sorted (strcmp order).
 * after_generation 0: all of them; otherwise only those refused by a
 * transaction that bumped the CRL generation past after_generation: an
 * exact delta (every certificate refused since the load that returned
 * after_generation, none twice). *generation gets the CRL generation of
 * the same snapshot, for the next delta. The array and its strings are
 * malloc'd: free each string and the array.
 */
enum store_rc store_refused_serials(struct store *st, int64_t after_generation,
				    char ***serials, size_t *n,
				    int64_t *generation);

/*
 * What the listener thread watches: one PostgreSQL connection per worker
 * LISTENs on every channel below (DESIGN.md §2), and a wait says which of
 * them fired, as a bitmask. A notification only says "look again"
 * (level-triggered); the one payload read is the CRL generation that a
 * change of the refused certificates carries on fleet_devices, so that a
 * worker whose set is that recent already does not look again.
 */
enum store_topic {
	STORE_TOPIC_DEVICES = 1u << 0, /* fleet_devices: decommission,
					  revocation */
	STORE_TOPIC_CONFIG = 1u << 1, /* fleet_config: desired configuration
					 changed (one per change set) */
	STORE_TOPIC_CERTS = 1u << 2, /* fleet_certs: certificate lifecycle */
	STORE_TOPIC_UPDATE = 1u << 3, /* fleet_update: deployments */
	STORE_TOPIC_KEYS = 1u << 4, /* fleet_keys: release key sets */
};
#define STORE_TOPIC_ALL                                                 \
	(STORE_TOPIC_DEVICES | STORE_TOPIC_CONFIG | STORE_TOPIC_CERTS | \
	 STORE_TOPIC_UPDATE | STORE_TOPIC_KEYS)

/*
 * The listener thread's watch: store_presence_listen LISTENs on every
 * topic on the store's connection and gives a token; store_presence_wait
 * waits up to timeout_ms and sets *fired to the topics notified since the
 * last wait (0: timeout) and *devices_generation to the largest CRL
 * generation the fleet_devices notifications carried when each of them
 * carried one (-1 otherwise: look again whatever the set's generation),
 * and fails (STORE_ERR) once the connection that
 * listens is gone. Then listen again and treat every topic as fired
 * (STORE_TOPIC_ALL): notifications may have been missed meanwhile.
 */
enum store_rc store_presence_listen(struct store *st, long *token);
enum store_rc store_presence_wait(struct store *st, long token, int timeout_ms,
				  unsigned *fired, int64_t *devices_generation);

#endif
