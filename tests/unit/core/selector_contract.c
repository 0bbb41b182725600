/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The selector contract: the devices of selector_cases.h are written to a
 * real PostgreSQL database (sessions aged as the table says), and every
 * selector of the table is run through fleetd/db (store_device_list, in
 * pages of 3 so the cursor is exercised) and through the in-memory match
 * of core; both must select exactly the expected devices. The "online"
 * rule is checked the same way: device_online() on the session age the
 * store reports must agree with the SQL filter online=true/false. Also a
 * selector of exactly SELECTOR_MAX_LEN bytes.
 *
 * Usage: selector_contract CONNINFO (a migrated, empty database). Driven
 * by tests/integration/test_devices.sh. Prints "ok"/"FAIL" lines; exits 1
 * on any failure.
 */
#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/device.h"
#include "core/selector.h"
#include "core/store_devices.h"
#include "db/store.h"
#include "selector_cases.h"

static int failures;
static int mirror_disagreements;
/* Pages whose total differs from the number of devices listed. */
static int total_disagreements;

static void
result(bool ok, const char *what, const char *detail)
{
	printf("%s - %s%s%s\n", ok ? "ok" : "FAIL", what, detail[0] ? ": " : "",
	       detail);
	if (!ok)
		failures++;
}

static char
letter_of(const char *id)
{
	size_t i;

	for (i = 0; i < SC_NDEVICES; i++)
		if (strcmp(sc_devices[i].id, id) == 0)
			return sc_devices[i].letter;
	return '?';
}

static int
exec_sql(PGconn *conn, const char *sql, int n, const char *const *params)
{
	PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);

	PQclear(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return 0;
	fprintf(stderr, "%s: %s\n", sql, PQerrorMessage(conn));
	return -1;
}

/* Writes the table: devices in table order (created_at ascending), one
 * worker, and sessions whose last_seen is age ms before now. */
static int
load(PGconn *conn)
{
	char order[16], age[24], *labels;
	json_t *obj;
	size_t i, j;

	if (exec_sql(conn,
		     "INSERT INTO workers (id, host, pid, slot) VALUES "
		     "('contract:1:1', 'contract', 1, 1)",
		     0, NULL) != 0)
		return -1;
	for (i = 0; i < SC_NDEVICES; i++) {
		const struct sc_device *d = &sc_devices[i];

		obj = json_object();
		for (j = 0; j < SC_LABELS && d->labels[j][0] != NULL; j++)
			json_object_set_new(obj, d->labels[j][0],
					    json_string(d->labels[j][1]));
		labels = json_dumps(obj, JSON_COMPACT);
		json_decref(obj);
		snprintf(order, sizeof(order), "%zu", i);
		{
			const char *p[6] = {d->id,  d->model, d->fw_version,
					    labels, order,    d->status};

			if (exec_sql(conn,
				     "INSERT INTO devices (id, model, "
				     "fw_version, labels, created_at, status, "
				     "decommissioned_at) VALUES "
				     "($1::uuid, $2, $3, $4::jsonb, "
				     "now() - interval '1 hour' + $5::int * "
				     "interval '1 second', coalesce($6, "
				     "'active'), CASE WHEN $6 IS NULL THEN "
				     "NULL ELSE now() END)",
				     6, p) != 0) {
				free(labels);
				return -1;
			}
		}
		free(labels);
		if (d->session_age_ms < 0)
			continue;
		snprintf(age, sizeof(age), "%lld",
			 (long long)d->session_age_ms);
		{
			const char *p[2] = {d->id, age};

			if (exec_sql(
				    conn,
				    "INSERT INTO device_sessions (device_id, "
				    "worker_id, cert_serial, last_seen) VALUES "
				    "($1::uuid, 'contract:1:1', '01', now() - "
				    "$2::bigint * interval '1 millisecond')",
				    2, p) != 0)
				return -1;
		}
	}
	return 0;
}

/* Sets every session back to its age in the table, so the time the test
 * takes never moves a device across the presence boundary. */
static int
age_sessions(PGconn *conn)
{
	char age[24];
	size_t i;

	for (i = 0; i < SC_NDEVICES; i++) {
		const char *p[2] = {sc_devices[i].id, age};

		if (sc_devices[i].session_age_ms < 0)
			continue;
		snprintf(age, sizeof(age), "%lld",
			 (long long)sc_devices[i].session_age_ms);
		if (exec_sql(conn,
			     "UPDATE device_sessions SET last_seen = now() - "
			     "$2::bigint * interval '1 millisecond' "
			     "WHERE device_id = $1::uuid",
			     2, p) != 0)
			return -1;
	}
	return 0;
}

/* The letters store_device_list gives for sel, all pages. */
static int
through_store(struct store *st, const struct selector *sel, char *out)
{
	char after[PAGE_CURSOR_MAX], next[PAGE_CURSOR_MAX];
	struct page page = {3, NULL};
	struct device *items = NULL;
	size_t i, n = 0, k = 0;
	int64_t total = -1, first_total = -1;

	for (;;) {
		if (store_device_list(st, sel, SELECTOR_CASES_HEARTBEAT_S, NULL,
				      &page, &items, &n, next, 0,
				      &total) != STORE_OK)
			return -1;
		if (first_total < 0)
			first_total = total;
		for (i = 0; i < n && k < SC_NDEVICES; i++) {
			out[k++] = letter_of(items[i].id);
			/* the rule and its SQL mirror, same row */
			if (device_online(items[i].session_age_us,
					  SELECTOR_CASES_HEARTBEAT_S) !=
			    items[i].store_online)
				mirror_disagreements++;
		}
		devices_free(items, n);
		if (next[0] == '\0')
			break;
		snprintf(after, sizeof(after), "%s", next);
		page.after = after;
	}
	out[k] = '\0';
	if (first_total != (int64_t)k)
		total_disagreements++;
	return 0;
}

/* The letters the in-memory match gives, with online computed by
 * device_online() from the session age the store reports. */
static int
in_memory(struct store *st, const struct selector *sel, char *out)
{
	struct selector_target t;
	struct device d;
	size_t i, k = 0;

	for (i = 0; i < SC_NDEVICES; i++) {
		memset(&d, 0, sizeof(d));
		if (store_device_get(st, sc_devices[i].id, &d) != STORE_OK)
			return -1;
		t.id = d.id;
		t.model = d.model;
		t.fw_version = d.fw_version;
		t.status = d.active ? "active" : "decommissioned";
		t.online = device_online(d.session_age_us,
					 SELECTOR_CASES_HEARTBEAT_S);
		t.labels = &d.labels;
		if (selector_match(sel, &t))
			out[k++] = sc_devices[i].letter;
		device_clear(&d);
	}
	out[k] = '\0';
	return 0;
}

static void
run(struct store *st, const char *text, const char *want, bool online_filter,
    bool online)
{
	struct selector *sel = NULL;
	char err[200] = "", db[SC_NDEVICES + 1], mem[SC_NDEVICES + 1];
	char what[160], detail[256];

	snprintf(what, sizeof(what), "selector '%.100s'%s", text,
		 online_filter ? (online ? " + online=true" : " + online=false")
			       : "");
	if (selector_parse(text, &sel, err, sizeof(err)) != 0) {
		result(false, what, err);
		return;
	}
	if (online_filter && selector_and_online(sel, online) != 0) {
		result(false, what, "out of memory");
		selector_free(sel);
		return;
	}
	if (age_sessions(store_conn(st)) != 0 ||
	    through_store(st, sel, db) != 0 || in_memory(st, sel, mem) != 0) {
		result(false, what, "store failed");
		selector_free(sel);
		return;
	}
	snprintf(detail, sizeof(detail), "postgresql '%s', memory '%s'%s%s%s",
		 db, mem, want ? ", want '" : "", want ? want : "",
		 want ? "'" : "");
	result(strcmp(db, mem) == 0 && (want == NULL || strcmp(db, want) == 0),
	       what, detail);
	selector_free(sel);
}

/* A 4096-byte selector: "site in (b7,<62 long values>,zzz...)". */
static void
run_max_len(struct store *st)
{
	char text[SELECTOR_MAX_LEN + 1];
	size_t n;
	int i;

	n = (size_t)snprintf(text, sizeof(text), "site in (b7");
	for (i = 1; i < SELECTOR_MAX_VALUES - 1; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
				      ",v%02d-%059d", i, 0);
	text[n++] = ',';
	while (n < SELECTOR_MAX_LEN - 1)
		text[n++] = 'z';
	text[n++] = ')';
	text[n] = '\0';
	run(st, text, "ACE", false, false);
}

int
main(int argc, char **argv)
{
	struct store *st = NULL;
	PGconn *conn;
	size_t i;

	if (argc != 2) {
		fprintf(stderr, "usage: selector_contract CONNINFO\n");
		return 2;
	}
	st = store_new(argv[1]);
	conn = st != NULL ? store_conn(st) : NULL;
	if (conn == NULL || load(conn) != 0) {
		fprintf(stderr, "cannot load the table\n");
		store_free(st);
		return 2;
	}
	for (i = 0; i < SC_NSELECTORS; i++)
		run(st, sc_selectors[i].text, sc_selectors[i].want, false,
		    false);
	/* ?online= beside a selector: each selector split by presence */
	for (i = 0; i < SC_NSELECTORS; i++) {
		run(st, sc_selectors[i].text, NULL, true, true);
		run(st, sc_selectors[i].text, NULL, true, false);
	}
	run_max_len(st);
	result(total_disagreements == 0,
	       "every list's total is the number of devices it pages through",
	       "");
	result(mirror_disagreements == 0,
	       "device_online() and its SQL mirror agree on every row", "");
	store_free(st);
	printf("%d failed\n", failures);
	return failures == 0 ? 0 : 1;
}
