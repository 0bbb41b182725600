/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Presence queries (see presence.h). Every parameter is bound. A device
 * shows online only while a live worker refreshes its session row: the
 * API's online test is "session row seen within heartbeat_timeout".
 */
#include "db/presence.h"

#include "db/query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
exec_params(PGconn *conn, const char *sql, int n, const char *const *params)
{
	PGresult *res = db_query(conn, sql, n, params);
	int rc = res != NULL ? 0 : -1;

	PQclear(res);
	return rc;
}

int
db_presence_register(PGconn *conn, const char *worker_id, const char *host,
		     long pid, int slot)
{
	char pidtext[32], slottext[16];
	const char *del[2] = {host, slottext};
	const char *ins[4] = {worker_id, host, pidtext, slottext};

	snprintf(pidtext, sizeof(pidtext), "%ld", pid);
	snprintf(slottext, sizeof(slottext), "%d", slot);
	if (exec_params(conn,
			"DELETE FROM workers WHERE host = $1 AND slot = $2", 2,
			del) != 0)
		return -1;
	return exec_params(conn,
			   "INSERT INTO workers (id, host, pid, slot) "
			   "VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO "
			   "UPDATE SET heartbeat_at = now()",
			   4, ins);
}

int
db_presence_tick(PGconn *conn, const char *worker_id, const char *live,
		 long timeout_s)
{
	char timeout[32];
	const char *one[1] = {worker_id};
	const char *held[2] = {worker_id, live};
	const char *stale[3] = {worker_id, live, timeout};
	const char *sweep[1] = {timeout};

	snprintf(timeout, sizeof(timeout), "%ld", timeout_s);
	if (exec_params(conn,
			"UPDATE workers SET heartbeat_at = now() WHERE id = $1",
			1, one) != 0 ||
	    exec_params(conn,
			"UPDATE device_sessions SET last_seen = now() "
			"WHERE worker_id = $1 AND device_id = ANY($2::uuid[])",
			2, held) != 0 ||
	    exec_params(conn,
			"DELETE FROM device_sessions WHERE worker_id = $1 "
			"AND device_id <> ALL($2::uuid[]) AND last_seen < "
			"now() - $3::double precision * interval '1 second'",
			3, stale) != 0)
		return -1;
	/* Sessions of dead workers go with them (ON DELETE CASCADE). */
	return exec_params(conn,
			   "DELETE FROM workers WHERE heartbeat_at < now() - "
			   "$1::double precision * interval '1 second'",
			   1, sweep);
}

int
db_presence_unregister(PGconn *conn, const char *worker_id)
{
	const char *one[1] = {worker_id};

	return exec_params(conn, "DELETE FROM workers WHERE id = $1", 1, one);
}

int
db_presence_open(PGconn *conn, const char *device_id, const char *worker_id,
		 const char *serial, const char *peer, bool *allowed)
{
	const char *params[4] = {device_id, worker_id, serial, peer};
	PGresult *res;

	/* One statement: the row appears only for an active device whose
	 * certificate is still good. */
	res = db_query(conn,
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
		       "last_seen = now() RETURNING device_id",
		       4, params);
	if (res == NULL)
		return -1;
	*allowed = PQntuples(res) == 1;
	PQclear(res);
	if (*allowed) {
		const char *one[1] = {device_id};

		return exec_params(conn,
				   "UPDATE devices SET last_seen = now() "
				   "WHERE id = $1::uuid",
				   1, one);
	}
	return 0;
}

int
db_presence_close(PGconn *conn, const char *device_id, const char *worker_id)
{
	const char *params[2] = {device_id, worker_id};

	if (exec_params(conn,
			"DELETE FROM device_sessions WHERE device_id = "
			"$1::uuid AND worker_id = $2",
			2, params) != 0)
		return -1;
	return exec_params(conn,
			   "UPDATE devices SET last_seen = now() WHERE id = "
			   "$1::uuid",
			   1, params);
}

static const char *
text_or_null(const json_t *obj, const char *key)
{
	const char *v = json_string_value(json_object_get(obj, key));

	return v != NULL && v[0] != '\0' ? v : NULL;
}

int
db_presence_hello(PGconn *conn, const char *device_id, const json_t *hello)
{
	json_t *inventory = json_object();
	char *inv_text = NULL;
	const char *params[6];
	int rc = -1;

	if (inventory == NULL)
		return -1;
	/* The inventory shown to operators: what the agent reported. */
	json_object_set(inventory, "reported",
			json_object_get(hello, "inventory"));
	json_object_set(inventory, "uptime", json_object_get(hello, "uptime"));
	json_object_set(inventory, "addresses",
			json_object_get(hello, "addresses"));
	json_object_set(inventory, "config_version",
			json_object_get(hello, "config_version"));
	json_object_set(inventory, "config_hash",
			json_object_get(hello, "config_hash"));
	inv_text = json_dumps(inventory, JSON_COMPACT);
	if (inv_text == NULL)
		goto out;
	params[0] = device_id;
	params[1] = text_or_null(hello, "fw_version");
	params[2] = text_or_null(hello, "agent_version");
	params[3] = text_or_null(hello, "model");
	params[4] = text_or_null(hello, "boot_id");
	params[5] = inv_text;
	rc = exec_params(conn,
			 "UPDATE devices SET fw_version = $2, "
			 "agent_version = $3, model = coalesce($4, model), "
			 "boot_id = $5, inventory = $6::jsonb, "
			 "last_seen = now() WHERE id = $1::uuid "
			 "AND status = 'active'",
			 6, params);
out:
	free(inv_text);
	json_decref(inventory);
	return rc;
}

int
db_revoked_serials(PGconn *conn, char ***serials, size_t *n)
{
	PGresult *res;
	char **list = NULL;
	size_t count;

	res = db_query(conn,
		       "SELECT serial FROM certificates WHERE status = "
		       "'revoked' AND not_after > now() "
		       "ORDER BY serial COLLATE \"C\"",
		       0, NULL);
	if (res == NULL)
		return -1;
	count = (size_t)PQntuples(res);
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
	return 0;
fail:
	db_serials_free(list, count);
	PQclear(res);
	return -1;
}

void
db_serials_free(char **serials, size_t n)
{
	if (serials == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(serials[i]);
	free(serials);
}
