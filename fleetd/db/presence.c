/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Presence on PostgreSQL: the store_presence_* functions of
 * core/store_presence.h (see there). A session's open and close commit
 * without waiting for the WAL flush (DB_ASYNC_COMMIT): a reconnect storm
 * is thousands of them a second, nothing acknowledged rests on them, and
 * after a crash the workers' ticks write every live session again. Runs on the channel's job threads,
 * its presence thread and its listener thread. Every parameter is bound. A device
 * shows online only while a live worker refreshes its session row: the
 * API's online test is "session row seen within heartbeat_timeout", and
 * the row's last_seen is the time of the device's last frame.
 */
#include "core/store_presence.h"
#include "db/db.h"
#include "db/query.h"
#include "db/store.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum store_rc
rollback(PGconn *conn)
{
	if (PQstatus(conn) == CONNECTION_OK)
		(void)db_exec(conn, "ROLLBACK");
	return STORE_ERR;
}

enum store_rc
store_presence_register(struct store *st, const struct presence_worker *w)
{
	PGconn *conn = store_conn(st);
	char pidtext[32], slottext[16];
	const char *del[3] = {w->host, slottext, w->id};
	const char *ins[4] = {w->id, w->host, pidtext, slottext};

	if (conn == NULL)
		return STORE_ERR;
	snprintf(pidtext, sizeof(pidtext), "%ld", w->pid);
	snprintf(slottext, sizeof(slottext), "%d", w->slot);
	if (db_exec(conn, "BEGIN") != 0)
		return STORE_ERR;
	if (db_command_prepared(
		    conn,
		    "DELETE FROM workers WHERE host = $1 AND slot = $2 "
		    "AND id <> $3",
		    3, del) != 0 ||
	    db_command_prepared(conn,
				"INSERT INTO workers (id, host, pid, slot) "
				"VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO "
				"UPDATE SET heartbeat_at = now()",
				4, ins) != 0 ||
	    db_exec(conn, "COMMIT") != 0)
		return rollback(conn);
	return STORE_OK;
}

enum store_rc
store_presence_unregister(struct store *st, const char *worker_id)
{
	PGconn *conn = store_conn(st);
	const char *one[1] = {worker_id};

	if (conn == NULL)
		return STORE_ERR;
	return db_command_prepared(conn, "DELETE FROM workers WHERE id = $1", 1,
				   one) == 0
		       ? STORE_OK
		       : STORE_ERR;
}

enum store_rc
store_presence_open(struct store *st, const char *worker_id,
		    const struct presence_session *s, bool *allowed)
{
	PGconn *conn = store_conn(st);
	const char *params[4] = {s->device_id, worker_id, s->serial, s->peer};
	PGresult *res;
	bool ok;

	if (conn == NULL)
		return STORE_ERR;
	/* One statement: the row appears only for an active device whose own
	 * certificate is still good; it replaces the row of an older session
	 * of the device, wherever that is (the newest session wins). */
	res = db_query_prepared(
		conn,
		"WITH opened AS ("
		"INSERT INTO device_sessions (device_id, worker_id, "
		"cert_serial, peer) "
		"SELECT d.id, $2, $3, $4 FROM devices d "
		"JOIN certificates c ON c.device_id = d.id "
		"WHERE d.id = $1::uuid AND d.status = 'active' "
		"AND c.serial = $3 AND c.status <> 'revoked' "
		"ON CONFLICT (device_id) DO UPDATE SET "
		"worker_id = EXCLUDED.worker_id, "
		"cert_serial = EXCLUDED.cert_serial, "
		"peer = EXCLUDED.peer, connected_at = now(), "
		"last_seen = now() RETURNING device_id) "
		/* in_session and session_seen as the trigger of 0021 would
		 * set them, in the write of the row this statement makes
		 * anyway: the trigger then finds nothing to do. */
		"UPDATE devices SET last_seen = now(), in_session = true, "
		"session_seen = date_bin('60 seconds', now(), "
		"timestamptz 'epoch') FROM "
		"opened, " DB_ASYNC_COMMIT
		" WHERE devices.id = opened.device_id "
		"RETURNING devices.id",
		4, params);
	if (res == NULL)
		return STORE_ERR;
	ok = PQntuples(res) == 1;
	PQclear(res);
	*allowed = ok;
	return STORE_OK;
}

enum store_rc
store_presence_close(struct store *st, const char *worker_id,
		     const char *device_id, uint64_t idle_ms)
{
	PGconn *conn = store_conn(st);
	char idle[32];
	const char *params[3] = {device_id, worker_id, idle};

	if (conn == NULL)
		return STORE_ERR;
	snprintf(idle, sizeof(idle), "%llu", (unsigned long long)idle_ms);
	/* The device's last_seen is its last frame, not this moment: a
	 * frozen device dropped for silence was last seen before. */
	return db_command_prepared(
		       conn,
		       "WITH gone AS (DELETE FROM device_sessions WHERE "
		       "device_id = $1::uuid AND worker_id = $2) "
		       "UPDATE devices SET last_seen = greatest(last_seen, "
		       "now() - $3::bigint * interval '1 millisecond') "
		       "FROM " DB_ASYNC_COMMIT " WHERE id = $1::uuid",
		       3, params) == 0
		       ? STORE_OK
		       : STORE_ERR;
}

/* The sessions as one JSON parameter: [{"d":, "s":, "p":, "i":}, ...]. */
static char *
sessions_json(const struct presence_session *sessions, size_t n)
{
	json_t *list = json_array();
	char *text = NULL;

	if (list == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const struct presence_session *s = &sessions[i];

		if (json_array_append_new(
			    list, json_pack("{s:s, s:s, s:s, s:I}", "d",
					    s->device_id, "s", s->serial, "p",
					    s->peer != NULL ? s->peer : "", "i",
					    (json_int_t)s->idle_ms)) != 0)
			goto out;
	}
	text = json_dumps(list, JSON_COMPACT);
out:
	json_decref(list);
	return text;
}

static int
collect_lost(PGresult *res, char ***lost, size_t *nlost)
{
	size_t count = (size_t)PQntuples(res);
	char **list;

	*lost = NULL;
	*nlost = 0;
	if (count == 0)
		return 0;
	list = calloc(count, sizeof(*list));
	if (list == NULL)
		return -1;
	for (size_t i = 0; i < count; i++) {
		list[i] = strdup(PQgetvalue(res, (int)i, 0));
		if (list[i] == NULL) {
			for (size_t j = 0; j < i; j++)
				free(list[j]);
			free(list);
			return -1;
		}
	}
	*lost = list;
	*nlost = count;
	return 0;
}

#define TICK_SESSIONS                                             \
	"WITH s AS (SELECT * FROM jsonb_to_recordset($2::jsonb) " \
	"AS x(d uuid, s text, p text, i bigint)) "

enum store_rc
store_presence_tick(struct store *st, const struct presence_worker *w,
		    const struct presence_session *sessions, size_t n,
		    long timeout_s, bool sweep, char ***lost, size_t *nlost)
{
	PGconn *conn = store_conn(st);
	char pidtext[32], slottext[16], timeout[32];
	char *json = NULL;
	const char *worker[4] = {w->id, w->host, pidtext, slottext};
	const char *held[3] = {w->id, NULL, timeout};
	const char *sweepp[2] = {timeout, w->id};
	PGresult *res = NULL;
	enum store_rc rc = STORE_ERR;

	if (conn == NULL)
		return STORE_ERR;
	json = sessions_json(sessions, n);
	if (json == NULL)
		return STORE_ERR;
	held[1] = json;
	snprintf(pidtext, sizeof(pidtext), "%ld", w->pid);
	snprintf(slottext, sizeof(slottext), "%d", w->slot);
	snprintf(timeout, sizeof(timeout), "%ld", timeout_s);
	/* Soft state only, as the session opens and closes: after a crash
	 * the next tick writes it again, so no WAL flush is waited for
	 * while this transaction holds the rows of the worker's sessions. */
	if (db_exec(conn, "BEGIN; SET LOCAL synchronous_commit TO off") != 0) {
		(void)rollback(conn);
		goto out;
	}
	/* Upsert: after an outage another worker may have swept this one. */
	if (db_command_prepared(conn,
				"INSERT INTO workers (id, host, pid, slot) "
				"VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO "
				"UPDATE SET heartbeat_at = now()",
				4, worker) != 0)
		goto fail;
	/* Held sessions: their rows say when the device last sent a frame;
	 * rows swept meanwhile come back (unless another session of the
	 * device owns the row now, or the device may no longer connect).
	 * A row is written only when the device's last frame is more than
	 * a second newer than the row says: between two frames (a
	 * heartbeat interval, two ticks) the value would not change, and a
	 * write would lock the row against the device's reconnect for the
	 * rest of this transaction. The row may lag by under a second. */
	if (db_command_prepared(
		    conn,
		    TICK_SESSIONS
		    "UPDATE device_sessions ds SET last_seen = now() - "
		    "s.i * interval '1 millisecond' FROM s "
		    "WHERE ds.device_id = s.d AND ds.worker_id = $1 "
		    "AND ds.last_seen < now() - (s.i + 1000) * "
		    "interval '1 millisecond'",
		    2, held) != 0 ||
	    db_command_prepared(
		    conn,
		    TICK_SESSIONS
		    "INSERT INTO device_sessions (device_id, worker_id, "
		    "cert_serial, peer, last_seen) "
		    "SELECT s.d, $1, s.s, s.p, now() - s.i * "
		    "interval '1 millisecond' FROM s "
		    "JOIN devices d ON d.id = s.d "
		    "JOIN certificates c ON c.serial = s.s "
		    "AND c.device_id = s.d WHERE d.status = 'active' "
		    "AND c.status <> 'revoked' "
		    "ON CONFLICT (device_id) DO NOTHING",
		    2, held) != 0 ||
	    /* devices.last_seen follows, written at most once per timeout
	     * per device (it is read when no session row is left). */
	    db_command_prepared(
		    conn,
		    TICK_SESSIONS
		    "UPDATE devices d SET last_seen = now() - s.i * "
		    "interval '1 millisecond' FROM s WHERE d.id = s.d "
		    "AND (d.last_seen IS NULL OR d.last_seen < now() - "
		    "s.i * interval '1 millisecond' - $3::double "
		    "precision * interval '1 second') AND EXISTS (SELECT 1 "
		    "FROM device_sessions ds WHERE ds.device_id = s.d AND "
		    "ds.worker_id = $1)",
		    3, held) != 0)
		goto fail;
	res = db_query_prepared(
		conn,
		TICK_SESSIONS
		"SELECT s.d FROM s WHERE NOT EXISTS (SELECT 1 FROM "
		"device_sessions ds WHERE ds.device_id = s.d AND "
		"ds.worker_id = $1)",
		2, held);
	if (res == NULL || collect_lost(res, lost, nlost) != 0)
		goto fail;
	/* Rows of this worker for sessions it no longer holds (a lost or
	 * reordered close) go once stale. */
	if (db_command_prepared(
		    conn,
		    TICK_SESSIONS
		    "DELETE FROM device_sessions ds WHERE ds.worker_id = "
		    "$1 AND NOT EXISTS (SELECT 1 FROM s WHERE s.d = "
		    "ds.device_id) AND ds.last_seen < now() - "
		    "$3::double precision * interval '1 second'",
		    3, held) != 0)
		goto fail_lost;
	/* Sessions of dead workers go with them (ON DELETE CASCADE). */
	if (sweep &&
	    db_command_prepared(conn,
				"DELETE FROM workers WHERE heartbeat_at < "
				"now() - $1::double precision * interval "
				"'1 second' AND id <> $2",
				2, sweepp) != 0)
		goto fail_lost;
	if (db_exec(conn, "COMMIT") != 0)
		goto fail_lost;
	rc = STORE_OK;
	goto out;
fail_lost:
	for (size_t i = 0; i < *nlost; i++)
		free((*lost)[i]);
	free(*lost);
	*lost = NULL;
	*nlost = 0;
fail:
	(void)rollback(conn);
out:
	PQclear(res);
	free(json);
	return rc;
}

/* The refused serials, with the generation of the same snapshot: all
 * that have not expired, or those stamped after a generation
 * (migration 0020). One row at least (serial NULL when none match). The
 * generation is a subquery, not a join: a join with the one-row table,
 * which the planner takes for thousands of rows until it is analysed,
 * cost enough to be JIT-compiled, 20 ms a load. */
#define REFUSED_SELECT                                                    \
	"SELECT c.serial, (SELECT generation FROM crl_generation) FROM "  \
	"(SELECT 1) one LEFT JOIN certificates c ON c.not_after > now() " \
	"AND "
#define REFUSED_ORDER " ORDER BY c.serial COLLATE \"C\""

enum store_rc
store_refused_serials(struct store *st, int64_t after_generation,
		      char ***serials, size_t *n, int64_t *generation)
{
	PGconn *conn = store_conn(st);
	char after[32];
	const char *params[1] = {after};
	PGresult *res;
	char **list = NULL;
	size_t count = 0;

	if (conn == NULL)
		return STORE_ERR;
	snprintf(after, sizeof(after), "%" PRId64, after_generation);
	/* Exact: the transaction that stamped generation G committed before
	 * the one that stamped G+1 could take the crl_generation row
	 * (db/certificates.c, refused_stamp), so the snapshot that reads G
	 * holds every row stamped up to G, and none after it is missed by
	 * the next delta. A delta reads the partial index of 0020. */
	if (after_generation <= 0)
		res = db_query_prepared(
			conn,
			REFUSED_SELECT
			"c.status IN ('revoked', 'superseded')" REFUSED_ORDER,
			0, NULL);
	else
		res = db_query_prepared(
			conn,
			REFUSED_SELECT
			"c.refused_generation > $1::bigint" REFUSED_ORDER,
			1, params);
	if (res == NULL)
		return STORE_ERR;
	count = (size_t)PQntuples(res);
	if (count == 0) {
		PQclear(res);
		return STORE_ERR; /* crl_generation has its one row */
	}
	*generation = db_int(res, 0, 1);
	if (PQgetisnull(res, 0, 0))
		count = 0;
	list = calloc(count + 1, sizeof(*list));
	if (list == NULL)
		goto fail;
	for (size_t i = 0; i < count; i++) {
		list[i] = strdup(PQgetvalue(res, (int)i, 0));
		if (list[i] == NULL)
			goto fail;
	}
	PQclear(res);
	*serials = list;
	*n = count;
	return STORE_OK;
fail:
	for (size_t i = 0; list != NULL && i < count; i++)
		free(list[i]);
	free(list);
	PQclear(res);
	return STORE_ERR;
}

/* The channel of each topic (core/store_presence.h). */
static const struct {
	unsigned topic;
	const char *channel;
} topics[] = {
	{STORE_TOPIC_DEVICES, "fleet_devices"},
	{STORE_TOPIC_CONFIG, "fleet_config"},
	{STORE_TOPIC_CERTS, "fleet_certs"},
	{STORE_TOPIC_UPDATE, "fleet_update"},
	{STORE_TOPIC_KEYS, "fleet_keys"},
};

enum store_rc
store_presence_listen(struct store *st, long *token)
{
	PGconn *conn = store_conn(st);

	if (conn == NULL ||
	    db_exec(conn, "LISTEN fleet_devices; LISTEN fleet_config; "
			  "LISTEN fleet_certs; LISTEN fleet_update; "
			  "LISTEN fleet_keys") != 0)
		return STORE_ERR;
	/* A reconnect (store_conn resets a broken connection) gives another
	 * backend, which does not listen: the token tells them apart. */
	*token = PQbackendPID(conn);
	return STORE_OK;
}

/* A fleet_devices payload that is a CRL generation (db/certificates.c,
 * refused_stamp); -1 for anything else (a device id, "bulk"). */
static int64_t
payload_generation(const char *extra)
{
	char *end = NULL;
	long long g;

	if (extra == NULL || extra[0] < '0' || extra[0] > '9')
		return -1;
	errno = 0;
	g = strtoll(extra, &end, 10);
	if (errno != 0 || *end != '\0' || g <= 0)
		return -1;
	return (int64_t)g;
}

/* *generation: the largest generation the fleet_devices notes carried
 * when every one of them carried one, else -1. */
static unsigned
drain_notifies(PGconn *conn, int64_t *generation)
{
	unsigned fired = 0;
	bool other = false;
	PGnotify *note;

	*generation = -1;
	while ((note = PQnotifies(conn)) != NULL) {
		for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]);
		     i++) {
			if (strcmp(note->relname, topics[i].channel) != 0)
				continue;
			fired |= topics[i].topic;
			if (topics[i].topic == STORE_TOPIC_DEVICES) {
				int64_t g = payload_generation(note->extra);

				if (g < 0)
					other = true;
				else if (g > *generation)
					*generation = g;
			}
		}
		PQfreemem(note);
	}
	if (other)
		*generation = -1;
	return fired;
}

enum store_rc
store_presence_wait(struct store *st, long token, int timeout_ms,
		    unsigned *fired, int64_t *devices_generation)
{
	PGconn *conn = store_conn(st);
	struct pollfd pfd;

	*fired = 0;
	*devices_generation = -1;
	if (conn == NULL || PQbackendPID(conn) != token)
		return STORE_ERR;
	if (PQconsumeInput(conn) == 0)
		return STORE_ERR;
	*fired = drain_notifies(conn, devices_generation);
	if (*fired != 0)
		return STORE_OK;
	pfd.fd = PQsocket(conn);
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (pfd.fd < 0)
		return STORE_ERR;
	if (poll(&pfd, 1, timeout_ms) <= 0)
		return STORE_OK;
	if (PQconsumeInput(conn) == 0 || PQstatus(conn) != CONNECTION_OK)
		return STORE_ERR;
	*fired = drain_notifies(conn, devices_generation);
	return STORE_OK;
}
