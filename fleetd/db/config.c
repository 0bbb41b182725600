/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The configuration store (core/store_config.h) on PostgreSQL: profiles,
 * immutable versions, device assignments with their materialised desired
 * state, clones, publishes, change progress and drift. Runs on API job
 * threads (and in the contract tests); all SQL uses bound parameters.
 *
 * Set-based: a clone or a publish reads its targets in one statement
 * (under lock), computes their documents in C with core's
 * config_compute_targets (targets that share a base and overrides share
 * one merge), and writes every target, the change's members and the
 * change in a handful of statements whose arrays travel as parameters;
 * never one round trip per device. Documents are deduplicated in the
 * arrays (each target carries an index), so 10,000 devices on one
 * profile send the document once. One transaction, one audit row, one
 * pg_notify('fleet_config', change id) (the contract at the top of
 * migrations/0006_config.sql).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "core/config.h"
#include "core/store_config.h"
#include "db/audit.h"
#include "db/config_assign.h"
#include "db/db.h"
#include "db/idempotency.h"
#include "db/query.h"
#include "db/selector_sql.h"
#include "db/store.h"
#include "log.h"

/* Arrays of a clone over 100,000 devices stay far below this. */
#define ARRAY_TEXT_MAX (512u * 1024u * 1024u)

/*
 * The SQL mirror of device_online() (core/device.c), as
 * DB_DEVICE_ONLINE_SQL in db/devices.c: a session row refreshed less
 * than $1 seconds ago. The heartbeat is always $1 here.
 */
#define CONFIG_ONLINE_SQL                                        \
	"coalesce(s.last_seen > now() - $1::double precision * " \
	"interval '1 second', false)"

/*
 * The SQL mirror of config_classify() (core/config.c) for "not in sync":
 * a desired document whose hash was not reported applied (or drifted
 * back to it). The C rule then names the state of each row.
 */
#define CONFIG_DRIFT_SQL                                              \
	"(c.desired_sha256 IS NOT NULL AND NOT coalesce(r.status IN " \
	"('applied', 'drifted') AND r.sha256 = c.desired_sha256, false))"

/* The SQL mirror of config_member_classify() (core/config.c). */
#define CONFIG_MEMBER_SQL                                                    \
	"CASE WHEN r.device_id IS NOT NULL AND r.generation > m.generation " \
	"THEN 'applied' WHEN r.device_id IS NOT NULL AND r.generation = "    \
	"m.generation AND r.status = 'failed' THEN 'failed' "                \
	"WHEN r.device_id IS NOT NULL AND r.generation = m.generation "      \
	"THEN 'applied' WHEN c.desired_generation > m.generation THEN "      \
	"'superseded' WHEN " CONFIG_ONLINE_SQL " THEN 'pending' "            \
	"ELSE 'offline' END"

static const struct selector_columns config_columns = {
	.id = "d.id::text",
	.model = "d.model",
	.fw_version = "d.fw_version",
	.online = CONFIG_ONLINE_SQL,
	.labels = "d.labels",
};

/* --- small helpers ---------------------------------------------------- */

static enum config_rc
rollback(PGconn *conn, enum config_rc rc)
{
	(void)db_exec(conn, "ROLLBACK");
	return rc;
}

static void
copy_field(char *dst, size_t cap, const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		dst[0] = '\0';
	else
		snprintf(dst, cap, "%s", PQgetvalue(res, row, col));
}

static bool
is_true(const PGresult *res, int row, int col)
{
	return !PQgetisnull(res, row, col) &&
	       strcmp(PQgetvalue(res, row, col), "t") == 0;
}

/* Appends s as one element of a PostgreSQL array literal ("..." with
 * '"' and '\' escaped), or NULL. */
static int
array_elem(struct buf *b, const char *s)
{
	const char *p, *run;

	if (b->len > 1 && buf_append(b, ",", 1) != 0)
		return -1;
	if (s == NULL)
		return buf_append(b, "NULL", 4);
	if (buf_append(b, "\"", 1) != 0)
		return -1;
	for (p = run = s; *p != '\0'; p++) {
		if (*p != '"' && *p != '\\')
			continue;
		if (buf_append(b, run, (size_t)(p - run)) != 0 ||
		    buf_append(b, "\\", 1) != 0)
			return -1;
		run = p;
	}
	if (buf_append(b, run, (size_t)(p - run)) != 0)
		return -1;
	return buf_append(b, "\"", 1);
}

static void
array_open(struct buf *b)
{
	buf_init(b, ARRAY_TEXT_MAX);
	(void)buf_append(b, "{", 1);
}

static int
array_close(struct buf *b)
{
	return b->data != NULL ? buf_append(b, "}", 1) : -1;
}

static int
notify(PGconn *conn, const char *change_id)
{
	const char *params[1] = {change_id};

	return db_command(conn, "SELECT pg_notify('fleet_config', $1)", 1,
			  params) == STORE_OK
		       ? 0
		       : -1;
}

static enum config_rc
idem_taken_or_err(int rc)
{
	return rc == DB_CONFLICT ? CONFIG_IDEM_TAKEN : CONFIG_ERR_STORE;
}

/* --- profiles and versions ----------------------------------------------- */

/* clang-format off */
#define PROFILE_COLS \
	"p.id::text, p.name, p.description, p.latest_version, " \
	"(SELECT v.sha256 FROM config_versions v WHERE v.profile_id = p.id " \
	"AND v.version = p.latest_version), p.created_by, " \
	DB_EPOCH("p.created_at") ", " DB_EPOCH("p.updated_at")
/* clang-format on */

static int
read_profile(const PGresult *res, int row, struct config_profile *p)
{
	int failed = 0;

	memset(p, 0, sizeof(*p));
	copy_field(p->id, sizeof(p->id), res, row, 0);
	copy_field(p->name, sizeof(p->name), res, row, 1);
	p->description = db_text(res, row, 2, &failed);
	p->latest_version = (int)db_int(res, row, 3);
	copy_field(p->latest_sha256, sizeof(p->latest_sha256), res, row, 4);
	p->created_by = db_text(res, row, 5, &failed);
	p->created_at = db_int(res, row, 6);
	p->updated_at = db_int(res, row, 7);
	if (failed || p->description == NULL) {
		config_profile_clear(p);
		return -1;
	}
	return 0;
}

enum config_rc
store_config_profile_create(struct store *st, const struct config_profile *p,
			    const char *actor, const struct idem_record *idem)
{
	const char *params[4] = {p->id, p->name,
				 p->description ? p->description : "", actor};
	PGconn *conn = store_conn(st);
	PGresult *res;
	json_t *details;
	int ok, irc;

	if (conn == NULL || db_exec(conn, "BEGIN") != 0)
		return CONFIG_ERR_STORE;
	if (idem != NULL) {
		irc = db_idem_insert(conn, idem);
		if (irc != DB_OK)
			return rollback(conn, idem_taken_or_err(irc));
	}
	res = db_query(conn,
		       "INSERT INTO config_profiles (id, name, description, "
		       "created_by) VALUES ($1::uuid, $2, $3, $4) "
		       "ON CONFLICT (name) DO NOTHING",
		       4, params);
	if (res == NULL)
		return rollback(conn, CONFIG_ERR_STORE);
	ok = strcmp(PQcmdTuples(res), "1") == 0;
	PQclear(res);
	if (!ok)
		return rollback(conn, CONFIG_NAME_TAKEN);
	details = json_pack("{s:s}", "name", p->name);
	ok = details != NULL &&
	     audit_write(conn, actor, "config.profile.create", p->id,
			 details) == DB_OK;
	json_decref(details);
	if (!ok || db_exec(conn, "COMMIT") != 0)
		return rollback(conn, CONFIG_ERR_STORE);
	return CONFIG_OK;
}

enum config_rc
store_config_profile_get(struct store *st, const char *name,
			 struct config_profile *out)
{
	const char *params[1] = {name};
	PGconn *conn = store_conn(st);
	PGresult *res;
	enum config_rc rc = CONFIG_ERR_STORE;

	if (conn == NULL)
		return CONFIG_ERR_STORE;
	res = db_query(conn,
		       "SELECT " PROFILE_COLS
		       " FROM config_profiles p WHERE p.name = $1",
		       1, params);
	if (res == NULL)
		return CONFIG_ERR_STORE;
	if (PQntuples(res) == 0)
		rc = CONFIG_NOTFOUND;
	else if (read_profile(res, 0, out) == 0)
		rc = CONFIG_OK;
	PQclear(res);
	return rc;
}

enum config_rc
store_config_profile_list(struct store *st, const struct page *page,
			  struct config_profile **items, size_t *n,
			  char next[PAGE_CURSOR_MAX])
{
	char limit[16];
	const char *params[2] = {limit, page->after};
	struct config_profile *arr;
	PGconn *conn = store_conn(st);
	PGresult *res;
	int i, rows;

	next[0] = '\0';
	if (conn == NULL)
		return CONFIG_ERR_STORE;
	snprintf(limit, sizeof(limit), "%d", page->limit + 1);
	res = db_query(
		conn,
		"SELECT " PROFILE_COLS ", fleet_cursor(p.created_at, p.id) "
		"FROM config_profiles p WHERE ($2::text IS NULL OR "
		"(p.created_at, p.id) > (fleet_cursor_ts(split_part($2, ' ', "
		"1)::bigint), split_part($2, ' ', 2)::uuid)) "
		"ORDER BY p.created_at, p.id LIMIT $1::int",
		2, params);
	if (res == NULL)
		return CONFIG_ERR_STORE;
	rows = PQntuples(res);
	if (rows > page->limit) {
		snprintf(next, PAGE_CURSOR_MAX, "%s",
			 PQgetvalue(res, page->limit - 1, 8));
		rows = page->limit;
	}
	arr = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*arr));
	for (i = 0; arr != NULL && i < rows; i++) {
		if (read_profile(res, i, &arr[i]) != 0) {
			config_profiles_free(arr, (size_t)i);
			arr = NULL;
		}
	}
	PQclear(res);
	if (arr == NULL)
		return CONFIG_ERR_STORE;
	*items = arr;
	*n = (size_t)rows;
	return CONFIG_OK;
}

static int
read_version(const PGresult *res, int row, struct config_version *v,
	     bool with_doc)
{
	int failed = 0;

	memset(v, 0, sizeof(*v));
	v->version = (int)db_int(res, row, 0);
	copy_field(v->doc.sha256, sizeof(v->doc.sha256), res, row, 1);
	v->note = db_text(res, row, 2, &failed);
	v->created_by = db_text(res, row, 3, &failed);
	v->created_at = db_int(res, row, 4);
	if (with_doc) {
		v->doc.text = db_text(res, row, 5, &failed);
		v->doc.len = v->doc.text ? strlen(v->doc.text) : 0;
	}
	if (failed) {
		config_version_clear(v);
		return -1;
	}
	return 0;
}

#define VERSION_COLS \
	"v.version, v.sha256, v.note, v.created_by, " DB_EPOCH("v.created_at")

enum config_rc
store_config_version_get(struct store *st, const char *name, int version,
			 struct config_version *out)
{
	char ver[16];
	const char *params[2] = {name, ver};
	PGconn *conn = store_conn(st);
	PGresult *res;
	enum config_rc rc = CONFIG_ERR_STORE;

	if (conn == NULL)
		return CONFIG_ERR_STORE;
	snprintf(ver, sizeof(ver), "%d", version);
	res = db_query(conn,
		       "SELECT " VERSION_COLS ", v.document, p.latest_version "
		       "FROM config_profiles p LEFT JOIN config_versions v "
		       "ON v.profile_id = p.id AND v.version = CASE WHEN "
		       "$2::int = 0 THEN p.latest_version ELSE $2::int END "
		       "WHERE p.name = $1",
		       2, params);
	if (res == NULL)
		return CONFIG_ERR_STORE;
	if (PQntuples(res) == 0)
		rc = CONFIG_NOTFOUND;
	else if (PQgetisnull(res, 0, 0))
		rc = version == 0 ? CONFIG_NO_VERSION : CONFIG_VERSION_UNKNOWN;
	else if (read_version(res, 0, out, true) == 0)
		rc = CONFIG_OK;
	PQclear(res);
	return rc;
}

enum config_rc
store_config_version_list(struct store *st, const char *name,
			  const struct page *page,
			  struct config_version **items, size_t *n,
			  char next[PAGE_CURSOR_MAX])
{
	char limit[16];
	const char *params[3] = {name, limit, page->after};
	struct config_version *arr;
	PGconn *conn = store_conn(st);
	PGresult *res;
	int i, rows;

	next[0] = '\0';
	if (conn == NULL)
		return CONFIG_ERR_STORE;
	snprintf(limit, sizeof(limit), "%d", page->limit + 1);
	/* The profile row first (an unknown profile is a 404, not an
	 * empty list), then its versions. */
	res = db_query(conn,
		       "SELECT " VERSION_COLS " FROM config_profiles p "
		       "LEFT JOIN config_versions v ON v.profile_id = p.id "
		       "AND ($3::text IS NULL OR v.version < $3::bigint) "
		       "WHERE p.name = $1 ORDER BY v.version DESC NULLS LAST "
		       "LIMIT $2::int",
		       3, params);
	if (res == NULL)
		return CONFIG_ERR_STORE;
	rows = PQntuples(res);
	if (rows == 0) {
		PQclear(res);
		return CONFIG_NOTFOUND;
	}
	if (PQgetisnull(res, 0, 0))
		rows = 0;
	if (rows > page->limit) {
		snprintf(next, PAGE_CURSOR_MAX, "%s",
			 PQgetvalue(res, page->limit - 1, 0));
		rows = page->limit;
	}
	arr = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*arr));
	for (i = 0; arr != NULL && i < rows; i++) {
		if (read_version(res, i, &arr[i], false) != 0) {
			config_versions_free(arr, (size_t)i);
			arr = NULL;
		}
	}
	PQclear(res);
	if (arr == NULL)
		return CONFIG_ERR_STORE;
	*items = arr;
	*n = (size_t)rows;
	return CONFIG_OK;
}

/* --- writing targets ---------------------------------------------------- */

/* What a batch write gives every target. */
struct apply_spec {
	const char *change_id;
	bool assign; /* set profile_id/pinned_version from below */
	const char *profile_id; /* NULL: none */
	int pinned_version; /* 0: latest (NULL) */
	bool set_overrides; /* set overrides from each target */
	bool bump_revision; /* the assignment changed */
};

/* Index (1-based) of doc in the dedup list, appending it when new. */
static int
doc_index(const struct config_doc ***docs, size_t *n, size_t *cap,
	  const struct config_doc *doc)
{
	size_t i;

	if (doc == NULL)
		return 0;
	/* Documents repeat in runs (targets sharing a base and overrides
	 * share the pointer): look at the last few first. */
	for (i = *n; i > 0 && i + 8 > *n; i--)
		if ((*docs)[i - 1] == doc)
			return (int)i;
	for (i = 0; i < *n; i++)
		if ((*docs)[i] == doc)
			return (int)(i + 1);
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		void *p = realloc((void *)*docs, c * sizeof(**docs));

		if (p == NULL)
			return -1;
		*docs = p;
		*cap = c;
	}
	(*docs)[(*n)++] = doc;
	return (int)*n;
}

/*
 * Appends the devices of CTE `up` to the members of change CHANGE (a SQL
 * expression): up's device_id with the GEN and SHA expressions (migration
 * 0016: one row per change, parallel arrays). A change may append in
 * several statements; an empty `up` appends nothing.
 */
#define MEMBERS_APPEND(change, gen, sha)                                    \
	"INSERT INTO config_change_members AS m (change_id, device_ids, "   \
	"generations, sha256s) SELECT " change ", array_agg(device_id), "   \
	"array_agg(" gen "), array_agg(" sha "::text) FROM up HAVING "      \
	"count(*) > 0 ON CONFLICT (change_id) DO UPDATE SET device_ids = "  \
	"m.device_ids || EXCLUDED.device_ids, generations = m.generations " \
	"|| EXCLUDED.generations, sha256s = m.sha256s || EXCLUDED.sha256s"

/*
 * Writes every target (the rows are locked by the caller) and the change
 * members in one statement. Returns 0 or -1.
 */
static int
apply_targets(PGconn *conn, const struct apply_spec *spec,
	      const struct config_target *t, size_t n)
{
	struct buf ids, didx, oidx, changed, docs, shas;
	const struct config_doc **list = NULL;
	size_t nlist = 0, cap = 0, i;
	char pin[16], num[16];
	const char *params[12];
	int rc = -1;

	array_open(&ids);
	array_open(&didx);
	array_open(&oidx);
	array_open(&changed);
	array_open(&docs);
	array_open(&shas);
	for (i = 0; i < n; i++) {
		int d = doc_index(&list, &nlist, &cap, t[i].effective);
		int o = doc_index(&list, &nlist, &cap, t[i].new_overrides);

		if (d < 0 || o < 0 || array_elem(&ids, t[i].device_id) != 0)
			goto out;
		snprintf(num, sizeof(num), "%d", d);
		if (array_elem(&didx, num) != 0)
			goto out;
		snprintf(num, sizeof(num), "%d", o);
		if (array_elem(&oidx, num) != 0 ||
		    array_elem(&changed, t[i].changed ? "t" : "f") != 0)
			goto out;
	}
	for (i = 0; i < nlist; i++)
		if (array_elem(&docs, list[i]->text) != 0 ||
		    array_elem(&shas, list[i]->sha256) != 0)
			goto out;
	if (array_close(&ids) != 0 || array_close(&didx) != 0 ||
	    array_close(&oidx) != 0 || array_close(&changed) != 0 ||
	    array_close(&docs) != 0 || array_close(&shas) != 0)
		goto out;
	snprintf(pin, sizeof(pin), "%d", spec->pinned_version);
	params[0] = spec->change_id;
	params[1] = ids.data;
	params[2] = didx.data;
	params[3] = oidx.data;
	params[4] = changed.data;
	params[5] = docs.data;
	params[6] = shas.data;
	params[7] = spec->assign ? "t" : "f";
	params[8] = spec->profile_id != NULL && spec->profile_id[0] != '\0'
			    ? spec->profile_id
			    : NULL;
	params[9] = spec->pinned_version > 0 ? pin : NULL;
	params[10] = spec->set_overrides ? "t" : "f";
	params[11] = spec->bump_revision ? "t" : "f";
	rc = db_command(
		     conn,
		     "WITH t AS (SELECT * FROM unnest($2::uuid[], $3::int[], "
		     "$4::int[], $5::bool[]) AS t(id, doc, ovr, changed)), "
		     "docs AS (SELECT * FROM unnest($6::text[], $7::text[]) "
		     "WITH ORDINALITY AS x(doc, sha, ord)), "
		     "up AS (UPDATE device_config c SET "
		     "profile_id = CASE WHEN $8::bool THEN $9::uuid ELSE "
		     "c.profile_id END, "
		     "pinned_version = CASE WHEN $8::bool THEN $10::int ELSE "
		     "c.pinned_version END, "
		     "overrides = CASE WHEN $11::bool THEN od.doc ELSE "
		     "c.overrides END, "
		     "revision = c.revision + CASE WHEN $12::bool THEN 1 "
		     "ELSE 0 END, "
		     "desired_document = CASE WHEN t.changed THEN dd.doc "
		     "ELSE c.desired_document END, "
		     "desired_sha256 = CASE WHEN t.changed THEN dd.sha "
		     "ELSE c.desired_sha256 END, "
		     "desired_generation = c.desired_generation + CASE WHEN "
		     "t.changed THEN 1 ELSE 0 END, "
		     "desired_change_id = CASE WHEN t.changed THEN $1::uuid "
		     "ELSE c.desired_change_id END, "
		     "desired_at = CASE WHEN t.changed THEN now() ELSE "
		     "c.desired_at END, updated_at = now() "
		     "FROM t LEFT JOIN docs dd ON dd.ord = t.doc "
		     "LEFT JOIN docs od ON od.ord = t.ovr "
		     "WHERE c.device_id = t.id "
		     "RETURNING c.device_id, c.desired_generation, "
		     "c.desired_sha256) " MEMBERS_APPEND("$1::uuid",
							 "desired_generation",
							 "desired_sha256"),
		     12, params) == STORE_OK
		     ? 0
		     : -1;
out:
	free((void *)list);
	buf_free(&ids);
	buf_free(&didx);
	buf_free(&oidx);
	buf_free(&changed);
	buf_free(&docs);
	buf_free(&shas);
	return rc;
}

static int
insert_change(PGconn *conn, const char *id, const char *actor, const char *kind,
	      const json_t *source, const char *selector, size_t matched,
	      size_t changed)
{
	char m[24], c[24];
	char *src = json_dumps(source, JSON_COMPACT);
	const char *params[7] = {id, actor, kind, src, selector, m, c};
	int rc;

	if (src == NULL)
		return -1;
	snprintf(m, sizeof(m), "%zu", matched);
	snprintf(c, sizeof(c), "%zu", changed);
	rc = db_command(conn,
			"INSERT INTO config_changes (id, actor, kind, source, "
			"selector, matched, changed) VALUES ($1::uuid, $2, $3, "
			"$4::jsonb, $5, $6::int, $7::int)",
			7, params) == STORE_OK
		     ? 0
		     : -1;
	free(src);
	return rc;
}

/* The rows a batch reads: owned strings behind the borrowed pointers of
 * struct config_target. */
struct target_rows {
	PGresult *res;
	struct config_target *t;
	size_t n;
	char **base_keys; /* COPY: "profile_id:version" per row, or NULL */
	PGresult *bases; /* COPY: the distinct base documents */
};

static void
target_rows_clear(struct target_rows *r)
{
	size_t i;

	if (r->base_keys != NULL)
		for (i = 0; i < r->n; i++)
			free(r->base_keys[i]);
	free(r->base_keys);
	free(r->t);
	PQclear(r->res);
	PQclear(r->bases);
	memset(r, 0, sizeof(*r));
}

/*
 * Columns every target query returns, in this order: device id,
 * overrides, desired sha256, online, profile id, version in use.
 */
#define TARGET_COLS                                                     \
	"d.id::text, c.overrides, c.desired_sha256, " CONFIG_ONLINE_SQL \
	", c.profile_id::text, coalesce(c.pinned_version, p.latest_version)"

static int
read_targets(PGresult *res, struct target_rows *r)
{
	int i, rows = PQntuples(res);

	r->res = res;
	r->n = (size_t)rows;
	r->t = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*r->t));
	if (r->t == NULL)
		return -1;
	for (i = 0; i < rows; i++) {
		struct config_target *x = &r->t[i];

		x->device_id = PQgetvalue(res, i, 0);
		x->overrides =
			PQgetisnull(res, i, 1) ? NULL : PQgetvalue(res, i, 1);
		x->desired_sha256 =
			PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2);
		x->online = is_true(res, i, 3);
	}
	return 0;
}

/*
 * COPY mode: each target's base (the version it has now) and its
 * document, read AFTER the targets were locked, in a statement of its own
 * (a new snapshot under READ COMMITTED): a publish that committed while
 * this transaction waited for the rows is seen, so the overrides are
 * computed against the version the device really follows. One statement;
 * a document comes back once per distinct base.
 */
static int
read_bases(PGconn *conn, struct target_rows *r)
{
	struct buf ids;
	const char *params[1];
	size_t i = 0;
	int j, k, rows, nkeys = 0, *keys = NULL, rc = -1;

	r->base_keys = calloc(r->n > 0 ? r->n : 1, sizeof(*r->base_keys));
	if (r->base_keys == NULL)
		return -1;
	array_open(&ids);
	for (i = 0; i < r->n; i++)
		if (array_elem(&ids, r->t[i].device_id) != 0)
			goto out;
	if (array_close(&ids) != 0)
		goto out;
	params[0] = ids.data;
	r->bases = db_query(
		conn,
		"WITH k AS (SELECT c.device_id, c.profile_id, "
		"coalesce(c.pinned_version, p.latest_version) AS ver FROM "
		"device_config c JOIN config_profiles p ON p.id = c.profile_id "
		"WHERE c.device_id = ANY($1::uuid[])) "
		"SELECT k.device_id::text, k.profile_id::text || ':' || k.ver, "
		"CASE WHEN row_number() OVER (PARTITION BY k.profile_id, k.ver "
		"ORDER BY k.device_id) = 1 THEN v.document END FROM k JOIN "
		"config_versions v ON v.profile_id = k.profile_id AND "
		"v.version = k.ver ORDER BY k.device_id",
		1, params);
	if (r->bases == NULL)
		goto out;
	rows = PQntuples(r->bases);
	/* The distinct bases (few): the rows that carry a document. */
	keys = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*keys));
	if (keys == NULL)
		goto out;
	for (k = 0; k < rows; k++)
		if (!PQgetisnull(r->bases, k, 2))
			keys[nkeys++] = k;
	/* Both lists are in device id order (lowercase uuid text sorts as
	 * the uuids do): walk them together. */
	for (i = 0, j = 0; i < r->n && j < rows;) {
		int c = strcmp(r->t[i].device_id, PQgetvalue(r->bases, j, 0));

		if (c != 0) {
			if (c < 0)
				i++;
			else
				j++;
			continue;
		}
		r->base_keys[i] = strdup(PQgetvalue(r->bases, j, 1));
		if (r->base_keys[i] == NULL)
			goto out;
		r->t[i].base_key = r->base_keys[i];
		for (k = 0; k < nkeys; k++) {
			if (strcmp(PQgetvalue(r->bases, keys[k], 1),
				   r->base_keys[i]) == 0) {
				r->t[i].base = PQgetvalue(r->bases, keys[k], 2);
				break;
			}
		}
		i++;
		j++;
	}
	rc = 0;
out:
	free(keys);
	buf_free(&ids);
	return rc;
}

/* --- publish ---------------------------------------------------------------- */

enum config_rc
store_config_publish(struct store *st, const struct config_publish *req,
		     struct config_publish_result *out,
		     char failed_device[CONFIG_ID_LEN])
{
	char ver[16], hb[8] = "0";
	const char *params[6];
	struct config_compute cc;
	struct target_rows rows;
	struct config_source src;
	PGconn *conn = store_conn(st);
	PGresult *res = NULL;
	json_t *source = NULL, *details = NULL;
	enum config_rc rc = CONFIG_ERR_STORE;
	char profile_id[CONFIG_ID_LEN];
	int next;

	config_compute_init(&cc);
	memset(&rows, 0, sizeof(rows));
	memset(out, 0, sizeof(*out));
	failed_device[0] = '\0';
	if (conn == NULL || db_exec(conn, "BEGIN") != 0)
		return CONFIG_ERR_STORE;
	/* Serialises publishes of this profile; sets and clones that read
	 * its latest version take the row FOR SHARE. */
	params[0] = req->profile;
	res = db_query(conn,
		       "SELECT id::text, latest_version FROM config_profiles "
		       "WHERE name = $1 FOR UPDATE",
		       1, params);
	if (res == NULL)
		goto fail;
	if (PQntuples(res) == 0) {
		rc = CONFIG_NOTFOUND;
		goto fail;
	}
	copy_field(profile_id, sizeof(profile_id), res, 0, 0);
	next = config_next_version((int)db_int(res, 0, 1), req->if_match);
	PQclear(res);
	res = NULL;
	if (next == 0) {
		rc = CONFIG_PRECONDITION;
		goto fail;
	}
	snprintf(ver, sizeof(ver), "%d", next);
	params[0] = profile_id;
	params[1] = ver;
	params[2] = req->doc->text;
	params[3] = req->doc->sha256;
	params[4] = req->note != NULL ? req->note : "";
	params[5] = req->actor;
	res = db_query(conn,
		       "WITH v AS (INSERT INTO config_versions (profile_id, "
		       "version, document, sha256, note, created_by) VALUES "
		       "($1::uuid, $2::int, $3, $4, $5, $6) RETURNING "
		       "created_at) UPDATE config_profiles SET latest_version "
		       "= $2::int, updated_at = now() WHERE id = $1::uuid "
		       "RETURNING (SELECT " DB_EPOCH("created_at") " FROM v)",
		       6, params);
	if (res == NULL)
		goto fail;
	out->version = next;
	out->created_at = db_int(res, 0, 0);
	PQclear(res);
	/* The followers of latest, locked in device order. The online
	 * column needs a heartbeat; it is not used for a publish. */
	params[0] = hb;
	params[1] = profile_id;
	res = db_query(conn,
		       "SELECT " TARGET_COLS " FROM device_config c JOIN "
		       "devices d ON d.id = c.device_id LEFT JOIN "
		       "config_profiles p ON p.id = c.profile_id LEFT JOIN "
		       "device_sessions s ON s.device_id = d.id WHERE "
		       "c.profile_id = $2::uuid AND c.pinned_version IS NULL "
		       "AND d.status = 'active' ORDER BY c.device_id "
		       "FOR UPDATE OF c",
		       2, params);
	if (res == NULL || read_targets(res, &rows) != 0) {
		if (rows.res == NULL)
			PQclear(res);
		res = NULL;
		goto fail;
	}
	res = NULL;
	memset(&src, 0, sizeof(src));
	src.mode = CONFIG_CLONE_ASSIGN;
	src.base = req->doc->text;
	rc = config_compute_targets(&cc, &src, rows.t, rows.n);
	if (rc != CONFIG_OK) {
		if (cc.failed_device != NULL)
			snprintf(failed_device, CONFIG_ID_LEN, "%s",
				 cc.failed_device);
		goto fail;
	}
	rc = CONFIG_ERR_STORE;
	out->followers = cc.matched;
	out->changed = cc.changed;
	if (rows.n > 0) {
		struct apply_spec spec = {req->change_id, false, NULL, 0,
					  false,	  false};

		source = json_pack("{s:s, s:i}", "profile", req->profile,
				   "version", next);
		if (source == NULL ||
		    insert_change(conn, req->change_id, req->actor, "publish",
				  source, NULL, cc.matched, cc.changed) != 0 ||
		    apply_targets(conn, &spec, rows.t, rows.n) != 0 ||
		    notify(conn, req->change_id) != 0)
			goto fail;
		snprintf(out->change_id, sizeof(out->change_id), "%s",
			 req->change_id);
	}
	details = json_pack(
		"{s:s, s:i, s:s, s:I, s:I, s:o}", "profile", req->profile,
		"version", next, "sha256", req->doc->sha256, "followers",
		(json_int_t)cc.matched, "changed", (json_int_t)cc.changed,
		"change_id",
		rows.n > 0 ? json_string(req->change_id) : json_null());
	if (details == NULL ||
	    audit_write(conn, req->actor, "config.publish", profile_id,
			details) != DB_OK ||
	    db_exec(conn, "COMMIT") != 0)
		goto fail;
	rc = CONFIG_OK;
	goto out;
fail:
	(void)rollback(conn, rc);
	PQclear(res);
	if (rc == CONFIG_OK)
		rc = CONFIG_ERR_STORE;
out:
	json_decref(source);
	json_decref(details);
	target_rows_clear(&rows);
	config_compute_clear(&cc);
	return rc;
}

/* --- one device -------------------------------------------------------------- */

/* clang-format off */
#define DEVICE_CONFIG_COLS DEVICE_CONFIG_COLS_WITH("c.desired_document")
#define DEVICE_CONFIG_COLS_WITH(doc) \
	"d.id::text, d.status = 'active', p.name, c.pinned_version, " \
	"CASE WHEN c.profile_id IS NULL THEN NULL ELSE " \
	"coalesce(c.pinned_version, p.latest_version) END, c.overrides, " \
	"coalesce(c.revision, 1), " doc ", c.desired_sha256, " \
	"coalesce(c.desired_generation, 0), c.desired_change_id::text, " \
	DB_EPOCH("c.desired_at") ", r.status, r.generation, r.sha256, " \
	"r.reason, " DB_EPOCH("r.reported_at") ", " \
	"CASE WHEN s.device_id IS NULL THEN -1 ELSE greatest(0, " \
	"floor(extract(epoch FROM now() - s.last_seen) * 1000000))::bigint " \
	"END"
#define DEVICE_CONFIG_FROM \
	" FROM devices d LEFT JOIN device_config c ON c.device_id = d.id " \
	"LEFT JOIN config_profiles p ON p.id = c.profile_id " \
	"LEFT JOIN device_config_reported r ON r.device_id = d.id " \
	"LEFT JOIN device_sessions s ON s.device_id = d.id "
/* clang-format on */

static int
read_device_config(const PGresult *res, int row, struct device_config *c)
{
	int failed = 0;

	memset(c, 0, sizeof(*c));
	copy_field(c->device_id, sizeof(c->device_id), res, row, 0);
	c->active = is_true(res, row, 1);
	copy_field(c->profile, sizeof(c->profile), res, row, 2);
	c->pinned_version = (int)db_int(res, row, 3);
	c->version = (int)db_int(res, row, 4);
	c->overrides = db_text(res, row, 5, &failed);
	c->revision = db_int(res, row, 6);
	c->desired.text = db_text(res, row, 7, &failed);
	c->desired.len = c->desired.text ? strlen(c->desired.text) : 0;
	copy_field(c->desired.sha256, sizeof(c->desired.sha256), res, row, 8);
	c->desired_generation = db_int(res, row, 9);
	copy_field(c->desired_change_id, sizeof(c->desired_change_id), res, row,
		   10);
	c->desired_at = db_int(res, row, 11);
	c->reported_status =
		PQgetisnull(res, row, 12)
			? CONFIG_REPORTED_NONE
			: config_reported_parse(PQgetvalue(res, row, 12));
	c->reported_generation = db_int(res, row, 13);
	copy_field(c->reported_sha256, sizeof(c->reported_sha256), res, row,
		   14);
	c->reported_reason = db_text(res, row, 15, &failed);
	c->reported_at = db_int(res, row, 16);
	c->session_age_us = db_int(res, row, 17);
	if (failed) {
		device_config_clear(c);
		return -1;
	}
	return 0;
}

static enum config_rc
device_config_read(PGconn *conn, const char *id, struct device_config *out)
{
	const char *params[1] = {id};
	PGresult *res;
	enum config_rc rc = CONFIG_ERR_STORE;

	res = db_query(conn,
		       "SELECT " DEVICE_CONFIG_COLS DEVICE_CONFIG_FROM
		       "WHERE d.id = $1::uuid",
		       1, params);
	if (res == NULL)
		return CONFIG_ERR_STORE;
	if (PQntuples(res) == 0)
		rc = CONFIG_NOTFOUND;
	else if (read_device_config(res, 0, out) == 0)
		rc = CONFIG_OK;
	PQclear(res);
	return rc;
}

enum config_rc
store_config_device_get(struct store *st, const char *id,
			struct device_config *out)
{
	PGconn *conn = store_conn(st);

	if (conn == NULL)
		return CONFIG_ERR_STORE;
	return device_config_read(conn, id, out);
}

/*
 * The version a set or a clone assigns, read with its profile locked FOR
 * SHARE (a publish cannot move latest under it): *profile_id, *version in
 * use and its document (*res owns it; PQclear). version 0 means latest.
 */
static enum config_rc
resolve_version(PGconn *conn, const char *profile, int version, bool lock,
		char profile_id[CONFIG_ID_LEN], int *in_use, PGresult **res,
		const char **doc, const char **sha)
{
	char ver[16];
	const char *params[2] = {profile, ver};
	PGresult *r;

	snprintf(ver, sizeof(ver), "%d", version);
	/* The lock first, alone: a publish it waited for has committed when
	 * it returns, and the next statement (a new snapshot) sees the
	 * version that publish added. */
	if (lock) {
		r = db_query(conn,
			     "SELECT 1 FROM config_profiles WHERE name = $1 "
			     "FOR SHARE",
			     1, params);
		if (r == NULL)
			return CONFIG_ERR_STORE;
		PQclear(r);
	}
	r = db_query(conn,
		     "WITH p AS (SELECT id, latest_version FROM "
		     "config_profiles WHERE name = $1) "
		     "SELECT p.id::text, v.version, v.document, v.sha256 "
		     "FROM p LEFT JOIN config_versions v ON "
		     "v.profile_id = p.id AND v.version = CASE WHEN "
		     "$2::int = 0 THEN p.latest_version ELSE $2::int END",
		     2, params);
	if (r == NULL)
		return CONFIG_ERR_STORE;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return CONFIG_PROFILE_UNKNOWN;
	}
	if (PQgetisnull(r, 0, 1)) {
		PQclear(r);
		return version == 0 ? CONFIG_NO_VERSION
				    : CONFIG_VERSION_UNKNOWN;
	}
	copy_field(profile_id, CONFIG_ID_LEN, r, 0, 0);
	*in_use = (int)db_int(r, 0, 1);
	*doc = PQgetvalue(r, 0, 2);
	if (sha != NULL)
		*sha = PQgetvalue(r, 0, 3);
	*res = r;
	return CONFIG_OK;
}

enum config_rc
store_config_device_set(struct store *st, const struct config_set *req,
			struct device_config *out)
{
	char profile_id[CONFIG_ID_LEN] = "";
	const char *params[2], *base = NULL;
	struct config_target target;
	struct config_source src;
	struct config_compute cc;
	struct config_doc none;
	PGconn *conn = store_conn(st);
	PGresult *vres = NULL, *res = NULL;
	json_t *source = NULL, *details = NULL;
	enum config_rc rc = CONFIG_ERR_STORE;
	int in_use = 0;

	config_compute_init(&cc);
	memset(&target, 0, sizeof(target));
	memset(&none, 0, sizeof(none));
	if (conn == NULL || db_exec(conn, "BEGIN") != 0)
		return CONFIG_ERR_STORE;
	if (req->profile != NULL) {
		rc = resolve_version(conn, req->profile, req->version, true,
				     profile_id, &in_use, &vres, &base, NULL);
		if (rc != CONFIG_OK)
			goto fail;
	}
	params[0] = req->device_id;
	res = db_query(conn,
		       "SELECT status = 'active' FROM devices WHERE id = "
		       "$1::uuid FOR SHARE",
		       1, params);
	if (res == NULL) {
		rc = CONFIG_ERR_STORE;
		goto fail;
	}
	if (PQntuples(res) == 0 || !is_true(res, 0, 0)) {
		rc = PQntuples(res) == 0 ? CONFIG_NOTFOUND
					 : CONFIG_DECOMMISSIONED;
		goto fail;
	}
	PQclear(res);
	res = db_query(conn,
		       "INSERT INTO device_config (device_id) VALUES "
		       "($1::uuid) ON CONFLICT DO NOTHING",
		       1, params);
	if (res == NULL) {
		rc = CONFIG_ERR_STORE;
		goto fail;
	}
	PQclear(res);
	res = db_query(conn,
		       "SELECT revision, desired_sha256 FROM device_config "
		       "WHERE device_id = $1::uuid FOR UPDATE",
		       1, params);
	if (res == NULL || PQntuples(res) != 1) {
		rc = CONFIG_ERR_STORE;
		goto fail;
	}
	if (req->if_match >= 0 && db_int(res, 0, 0) != req->if_match) {
		rc = CONFIG_PRECONDITION;
		goto fail;
	}
	/* The new desired document: merge(version, overrides), or none
	 * without profile and overrides. */
	target.device_id = req->device_id;
	target.overrides = req->overrides;
	target.desired_sha256 =
		PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1);
	target.online = true;
	if (req->profile == NULL && req->overrides == NULL) {
		none.sha256[0] = '\0';
		target.effective = &none;
		target.changed = target.desired_sha256 != NULL;
	} else {
		memset(&src, 0, sizeof(src));
		src.mode = CONFIG_CLONE_ASSIGN;
		src.base = base;
		rc = config_compute_targets(&cc, &src, &target, 1);
		if (rc != CONFIG_OK)
			goto fail;
	}
	rc = CONFIG_ERR_STORE;
	source = json_pack("{s:o, s:o, s:b}", "profile",
			   req->profile ? json_string(req->profile)
					: json_null(),
			   "version",
			   req->profile == NULL ? json_null()
			   : req->version > 0	? json_integer(req->version)
						: json_string("latest"),
			   "overrides", req->overrides != NULL);
	if (source == NULL ||
	    insert_change(conn, req->change_id, req->actor, "set", source, NULL,
			  1, target.changed ? 1 : 0) != 0)
		goto fail;
	{
		struct apply_spec spec = {
			req->change_id, true,  req->profile ? profile_id : NULL,
			req->version,	false, true};
		/* The overrides column of one device is set here; the batch
		 * statement writes the rest. */
		params[1] = req->overrides;
		PQclear(res);
		res = db_query(conn,
			       "UPDATE device_config SET overrides = $2 WHERE "
			       "device_id = $1::uuid",
			       2, params);
		if (res == NULL)
			goto fail;
		if (target.effective == &none) {
			/* No document: clear desired (generation grows). */
			PQclear(res);
			params[1] = req->change_id;
			res = db_query(
				conn,
				"WITH up AS (UPDATE device_config SET "
				"profile_id = NULL, pinned_version = NULL, "
				"revision = revision + 1, desired_document = "
				"NULL, desired_sha256 = NULL, "
				"desired_generation = desired_generation + "
				"CASE WHEN desired_sha256 IS NULL THEN 0 "
				"ELSE 1 END, desired_change_id = CASE WHEN "
				"desired_sha256 IS NULL THEN "
				"desired_change_id ELSE $2::uuid END, "
				"desired_at = CASE WHEN desired_sha256 IS "
				"NULL THEN desired_at ELSE now() END, "
				"updated_at = now() WHERE device_id = "
				"$1::uuid RETURNING device_id, "
				"desired_generation) " MEMBERS_APPEND(
					"$2::uuid", "desired_generation",
					"NULL"),
				2, params);
			if (res == NULL)
				goto fail;
		} else if (apply_targets(conn, &spec, &target, 1) != 0) {
			goto fail;
		}
	}
	if (notify(conn, req->change_id) != 0)
		goto fail;
	details = json_pack("{s:o, s:o, s:b, s:s, s:o}", "profile",
			    req->profile ? json_string(req->profile)
					 : json_null(),
			    "version",
			    req->profile == NULL ? json_null()
			    : req->version > 0	 ? json_integer(req->version)
						 : json_string("latest"),
			    "overrides", req->overrides != NULL, "change_id",
			    req->change_id, "sha256",
			    target.effective->sha256[0] != '\0'
				    ? json_string(target.effective->sha256)
				    : json_null());
	if (details == NULL ||
	    audit_write(conn, req->actor, "device.config.set", req->device_id,
			details) != DB_OK)
		goto fail;
	rc = device_config_read(conn, req->device_id, out);
	if (rc != CONFIG_OK || db_exec(conn, "COMMIT") != 0) {
		if (rc == CONFIG_OK)
			device_config_clear(out);
		rc = CONFIG_ERR_STORE;
		goto fail;
	}
	goto out;
fail:
	(void)rollback(conn, rc);
out:
	PQclear(res);
	PQclear(vres);
	json_decref(source);
	json_decref(details);
	config_compute_clear(&cc);
	return rc;
}

/* --- clone ----------------------------------------------------------------------- */

struct clone_source {
	PGresult *res; /* owns the strings below */
	char profile_id[CONFIG_ID_LEN]; /* ASSIGN */
	int pinned; /* ASSIGN: 0 latest */
	int in_use; /* ASSIGN: the version */
	const char *base; /* ASSIGN: its document */
	struct config_doc effective; /* COPY (text borrowed from res) */
};

static enum config_rc
clone_source(PGconn *conn, const struct config_clone *req,
	     struct clone_source *s, struct config_clone_result *out)
{
	const char *params[1] = {req->source_device}, *sha = NULL;
	enum config_rc rc;
	PGresult *r;

	if (req->source_device == NULL) {
		rc = resolve_version(conn, req->source_profile,
				     req->source_version, !req->dry_run,
				     s->profile_id, &s->in_use, &s->res,
				     &s->base, &sha);
		if (rc != CONFIG_OK)
			return rc;
		s->pinned = req->source_version;
		/* COPY from a profile version: its document. */
		s->effective.text = (char *)(uintptr_t)s->base;
		s->effective.len = strlen(s->base);
		snprintf(s->effective.sha256, sizeof(s->effective.sha256), "%s",
			 sha);
		snprintf(out->profile, sizeof(out->profile), "%s",
			 req->source_profile);
		goto done;
	}
	/* A device: read without lock (its state as of now; a concurrent
	 * change of the source is not part of this clone). */
	r = db_query(conn,
		     "SELECT p.name, c.pinned_version, c.desired_document, "
		     "c.desired_sha256 FROM devices d LEFT JOIN device_config "
		     "c ON c.device_id = d.id LEFT JOIN config_profiles p ON "
		     "p.id = c.profile_id WHERE d.id = $1::uuid",
		     1, params);
	if (r == NULL)
		return CONFIG_ERR_STORE;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return CONFIG_NOTFOUND;
	}
	if (req->mode == CONFIG_CLONE_COPY) {
		if (PQgetisnull(r, 0, 2)) {
			PQclear(r);
			return CONFIG_SOURCE_EMPTY;
		}
		s->res = r;
		s->effective.text = PQgetvalue(r, 0, 2);
		s->effective.len = strlen(s->effective.text);
		snprintf(s->effective.sha256, sizeof(s->effective.sha256), "%s",
			 PQgetvalue(r, 0, 3));
		goto done;
	}
	if (PQgetisnull(r, 0, 0)) {
		PQclear(r);
		return CONFIG_SOURCE_EMPTY;
	}
	snprintf(out->profile, sizeof(out->profile), "%s", PQgetvalue(r, 0, 0));
	s->pinned = (int)db_int(r, 0, 1);
	PQclear(r);
	rc = resolve_version(conn, out->profile, s->pinned, !req->dry_run,
			     s->profile_id, &s->in_use, &s->res, &s->base,
			     &sha);
	if (rc != CONFIG_OK)
		return rc;
	snprintf(s->effective.sha256, sizeof(s->effective.sha256), "%s", sha);
done:
	if (req->mode == CONFIG_CLONE_ASSIGN) {
		out->pinned_version = s->pinned;
		out->version = s->in_use;
	} else {
		out->profile[0] = '\0';
	}
	snprintf(out->source_sha256, sizeof(out->source_sha256), "%s",
		 s->effective.sha256);
	return CONFIG_OK;
}

/* Reads the targets (created and locked unless dry_run). */
static enum config_rc
clone_targets(PGconn *conn, const struct config_clone *req,
	      struct target_rows *rows)
{
	char hb[24], err[160];
	const char **all = NULL;
	struct selector_sql q;
	PGresult *res = NULL;
	struct buf sql;
	enum config_rc rc = CONFIG_ERR_STORE;
	size_t i;

	memset(&q, 0, sizeof(q));
	buf_init(&sql, 128 * 1024);
	if (selector_to_sql(req->selector, &config_columns, 2, &q, err,
			    sizeof(err)) != 0) {
		log_warn("config clone: selector: %s", err);
		goto out;
	}
	all = calloc(q.nparams + 1, sizeof(*all));
	if (all == NULL)
		goto out;
	snprintf(hb, sizeof(hb), "%ld", req->heartbeat_timeout_s);
	all[0] = hb;
	for (i = 0; i < q.nparams; i++)
		all[1 + i] = q.params[i];
	/* Rows for targets that never had one, so that all can be locked.
	 * The anti-join skips the existing ones in one pass; ON CONFLICT
	 * alone tried each and cost 0.2 s for 10,000 that all existed. */
	if (!req->dry_run) {
		if (buf_printf(&sql,
			       "INSERT INTO device_config (device_id) SELECT "
			       "d.id FROM devices d LEFT JOIN device_sessions "
			       "s ON s.device_id = d.id WHERE d.status = "
			       "'active' AND $1::double precision IS NOT NULL "
			       "AND (%s) AND NOT EXISTS (SELECT 1 FROM "
			       "device_config x WHERE x.device_id = d.id) "
			       "ORDER BY d.id ON CONFLICT DO NOTHING",
			       q.where) != 0)
			goto out;
		res = db_query(conn, sql.data, (int)q.nparams + 1, all);
		if (res == NULL)
			goto out;
		PQclear(res);
		res = NULL;
		buf_reset(&sql);
	}
	if (buf_printf(&sql,
		       "SELECT " TARGET_COLS
		       " FROM devices d %s JOIN device_config c ON "
		       "c.device_id = d.id LEFT JOIN config_profiles p ON "
		       "p.id = c.profile_id LEFT JOIN device_sessions s ON "
		       "s.device_id = d.id WHERE d.status = 'active' AND (%s) "
		       "ORDER BY d.id%s",
		       req->dry_run ? "LEFT" : "", q.where,
		       req->dry_run ? "" : " FOR UPDATE OF c") != 0)
		goto out;
	res = db_query(conn, sql.data, (int)q.nparams + 1, all);
	if (res == NULL)
		goto out;
	if (read_targets(res, rows) != 0) {
		rows->res = NULL;
		goto out;
	}
	res = NULL;
	rc = CONFIG_OK;
out:
	PQclear(res);
	free(all);
	buf_free(&sql);
	selector_sql_free(&q);
	return rc;
}

/* A dry run: the current desired documents of up to CONFIG_SAMPLE_MAX
 * targets that would change, beside what they would get. */
static enum config_rc
clone_samples(PGconn *conn, const struct target_rows *rows,
	      struct config_clone_result *out)
{
	struct buf ids;
	const char *params[1];
	PGresult *res;
	size_t i, k = 0;
	int j, failed = 0;

	array_open(&ids);
	for (i = 0; i < rows->n && k < CONFIG_SAMPLE_MAX; i++) {
		if (!rows->t[i].changed)
			continue;
		snprintf(out->samples[k].device_id, CONFIG_ID_LEN, "%s",
			 rows->t[i].device_id);
		out->samples[k].next = strdup(rows->t[i].effective->text);
		out->nsamples = ++k;
		if (out->samples[k - 1].next == NULL ||
		    array_elem(&ids, rows->t[i].device_id) != 0) {
			buf_free(&ids);
			return CONFIG_ERR_NOMEM;
		}
	}
	if (k == 0 || array_close(&ids) != 0) {
		buf_free(&ids);
		return k == 0 ? CONFIG_OK : CONFIG_ERR_NOMEM;
	}
	params[0] = ids.data;
	res = db_query(conn,
		       "SELECT device_id::text, desired_document FROM "
		       "device_config WHERE device_id = ANY($1::uuid[])",
		       1, params);
	buf_free(&ids);
	if (res == NULL)
		return CONFIG_ERR_STORE;
	for (j = 0; j < PQntuples(res); j++)
		for (i = 0; i < k; i++)
			if (strcmp(out->samples[i].device_id,
				   PQgetvalue(res, j, 0)) == 0)
				out->samples[i].current =
					db_text(res, j, 1, &failed);
	PQclear(res);
	return failed ? CONFIG_ERR_NOMEM : CONFIG_OK;
}

enum config_rc
store_config_clone(struct store *st, const struct config_clone *req,
		   struct config_clone_result *out)
{
	struct clone_source s;
	struct target_rows rows;
	struct config_compute cc;
	struct config_source src;
	PGconn *conn = store_conn(st);
	json_t *source = NULL, *details = NULL;
	enum config_rc rc = CONFIG_ERR_STORE;
	int irc;

	memset(&s, 0, sizeof(s));
	memset(&rows, 0, sizeof(rows));
	memset(out, 0, sizeof(*out));
	config_compute_init(&cc);
	out->dry_run = req->dry_run;
	if (conn == NULL)
		return CONFIG_ERR_STORE;
	/* A dry run reads one snapshot and writes nothing. */
	if (db_exec(conn, req->dry_run
				  ? "BEGIN ISOLATION LEVEL REPEATABLE READ "
				    "READ ONLY"
				  : "BEGIN") != 0)
		return CONFIG_ERR_STORE;
	rc = clone_source(conn, req, &s, out);
	if (rc != CONFIG_OK)
		goto fail;
	rc = clone_targets(conn, req, &rows);
	if (rc != CONFIG_OK)
		goto fail;
	if (rows.n == 0) {
		rc = CONFIG_NO_MATCH;
		goto fail;
	}
	memset(&src, 0, sizeof(src));
	src.mode = req->mode;
	src.base = s.base;
	src.effective = &s.effective;
	if (req->mode == CONFIG_CLONE_COPY && read_bases(conn, &rows) != 0) {
		rc = CONFIG_ERR_STORE;
		goto fail;
	}
	rc = config_compute_targets(&cc, &src, rows.t, rows.n);
	if (rc != CONFIG_OK) {
		if (cc.failed_device != NULL)
			snprintf(out->failed_device, sizeof(out->failed_device),
				 "%s", cc.failed_device);
		goto fail;
	}
	out->matched = cc.matched;
	out->changed = cc.changed;
	out->unchanged = cc.unchanged;
	out->offline = cc.offline;
	if (req->dry_run) {
		rc = clone_samples(conn, &rows, out);
		(void)rollback(conn, rc);
		goto out;
	}
	rc = CONFIG_ERR_STORE;
	snprintf(out->change_id, sizeof(out->change_id), "%s", req->change_id);
	source = req->source_device != NULL
			 ? json_pack("{s:s, s:s}", "device", req->source_device,
				     "mode",
				     req->mode == CONFIG_CLONE_COPY ? "copy"
								    : "assign")
			 : json_pack("{s:s, s:o, s:s}", "profile",
				     req->source_profile, "version",
				     req->source_version > 0
					     ? json_integer(req->source_version)
					     : json_string("latest"),
				     "mode",
				     req->mode == CONFIG_CLONE_COPY ? "copy"
								    : "assign");
	if (source == NULL ||
	    insert_change(conn, req->change_id, req->actor, "clone", source,
			  req->selector_text, cc.matched, cc.changed) != 0)
		goto fail;
	{
		struct apply_spec spec = {req->change_id,
					  req->mode == CONFIG_CLONE_ASSIGN,
					  s.profile_id,
					  s.pinned,
					  req->mode == CONFIG_CLONE_COPY,
					  true};

		if (apply_targets(conn, &spec, rows.t, rows.n) != 0 ||
		    notify(conn, req->change_id) != 0)
			goto fail;
	}
	details = json_pack(
		"{s:O, s:s, s:s, s:I, s:I}", "source", source, "selector",
		req->selector_text ? req->selector_text : "", "change_id",
		req->change_id, "matched", (json_int_t)cc.matched, "changed",
		(json_int_t)cc.changed);
	if (details == NULL || audit_write(conn, req->actor, "config.clone",
					   req->change_id, details) != DB_OK)
		goto fail;
	if (req->idem != NULL) {
		free(req->idem->body);
		req->idem->body = config_clone_answer(out);
		if (req->idem->body == NULL)
			goto fail;
		irc = db_idem_insert(conn, req->idem);
		if (irc != DB_OK) {
			rc = idem_taken_or_err(irc);
			goto fail;
		}
	}
	if (db_exec(conn, "COMMIT") != 0)
		goto fail;
	rc = CONFIG_OK;
	goto out;
fail:
	(void)rollback(conn, rc);
out:
	if (rc != CONFIG_OK)
		out->change_id[0] = '\0';
	json_decref(source);
	json_decref(details);
	PQclear(s.res);
	target_rows_clear(&rows);
	config_compute_clear(&cc);
	return rc;
}

/* --- changes and drift --------------------------------------------------------- */

enum config_rc
store_config_change_get(struct store *st, const char *id,
			long heartbeat_timeout_s, struct config_change *out)
{
	char hb[24], lim[16];
	const char *params[3] = {hb, id, lim};
	PGconn *conn = store_conn(st);
	PGresult *res = NULL;
	enum config_rc rc = CONFIG_ERR_STORE;
	int failed = 0, i, rows;

	memset(out, 0, sizeof(*out));
	if (conn == NULL)
		return CONFIG_ERR_STORE;
	snprintf(hb, sizeof(hb), "%ld", heartbeat_timeout_s);
	snprintf(lim, sizeof(lim), "%d", CONFIG_FAILED_LIST_MAX + 1);
	/* One snapshot for the row, the counts and the failures. */
	if (db_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") !=
	    0)
		return CONFIG_ERR_STORE;
	res = db_query(
		conn,
		"SELECT x.id::text, x.kind, x.actor, x.source::text, "
		"x.selector, " DB_EPOCH(
			"x.created_at") ", x.matched, "
					"x.changed, k.pending, k.offline, "
					"k.applied, k.failed, "
					"k.superseded FROM config_changes x, "
					"LATERAL (SELECT "
					"count(*) FILTER (WHERE st = "
					"'pending') AS pending, "
					"count(*) FILTER (WHERE st = "
					"'offline') AS offline, "
					"count(*) FILTER (WHERE st = "
					"'applied') AS applied, "
					"count(*) FILTER (WHERE st = 'failed') "
					"AS failed, "
					"count(*) FILTER (WHERE st = "
					"'superseded') AS superseded "
					"FROM (SELECT " CONFIG_MEMBER_SQL
					" AS st FROM "
					"config_change_devices m LEFT JOIN "
					"device_config_reported r "
					"ON r.device_id = m.device_id LEFT "
					"JOIN device_config c ON "
					"c.device_id = m.device_id LEFT JOIN "
					"device_sessions s ON "
					"s.device_id = m.device_id WHERE "
					"m.change_id = x.id) y) k "
					"WHERE x.id = $2::uuid",
		2, params);
	if (res == NULL)
		goto out;
	if (PQntuples(res) == 0) {
		rc = CONFIG_NOTFOUND;
		goto out;
	}
	copy_field(out->id, sizeof(out->id), res, 0, 0);
	copy_field(out->kind, sizeof(out->kind), res, 0, 1);
	out->actor = db_text(res, 0, 2, &failed);
	out->source_json = db_text(res, 0, 3, &failed);
	out->selector = db_text(res, 0, 4, &failed);
	out->created_at = db_int(res, 0, 5);
	out->matched = (size_t)db_int(res, 0, 6);
	out->changed = (size_t)db_int(res, 0, 7);
	out->pending = (size_t)db_int(res, 0, 8);
	out->offline = (size_t)db_int(res, 0, 9);
	out->applied = (size_t)db_int(res, 0, 10);
	out->failed = (size_t)db_int(res, 0, 11);
	out->superseded = (size_t)db_int(res, 0, 12);
	PQclear(res);
	res = db_query(
		conn,
		"SELECT m.device_id::text, r.reason, "
		"" DB_EPOCH("r.reported_at") " FROM "
					     "config_change_devices m JOIN "
					     "device_config_reported r "
					     "ON r.device_id = m.device_id AND "
					     "r.generation = "
					     "m.generation AND r.status = "
					     "'failed' WHERE "
					     "m.change_id = $2::uuid AND "
					     "$1::text IS NOT NULL "
					     "ORDER BY r.reported_at, "
					     "m.device_id LIMIT $3::int",
		3, params);
	if (res == NULL || failed)
		goto out;
	rows = PQntuples(res);
	if (rows > CONFIG_FAILED_LIST_MAX)
		rows = CONFIG_FAILED_LIST_MAX;
	out->failures =
		calloc(rows > 0 ? (size_t)rows : 1, sizeof(*out->failures));
	if (out->failures == NULL)
		goto out;
	for (i = 0; i < rows; i++) {
		struct config_change_failure *f = &out->failures[i];

		copy_field(f->device_id, sizeof(f->device_id), res, i, 0);
		f->reason = db_text(res, i, 1, &failed);
		f->reported_at = db_int(res, i, 2);
		out->nfailures++;
	}
	if (!failed)
		rc = CONFIG_OK;
out:
	PQclear(res);
	(void)db_exec(conn, "COMMIT");
	if (rc != CONFIG_OK)
		config_change_clear(out);
	return rc;
}

/* The drift list: $1 heartbeat, $2 limit + 1, $3 cursor, then the
 * selector's parameters (its WHERE fragment is the %s). Documents are
 * not read (a page of 1000 could be 256 MiB). */
/* clang-format off */
#define DRIFT_LIST_SQL \
	"SELECT " DEVICE_CONFIG_COLS_WITH("NULL") \
	", fleet_cursor(d.created_at, d.id)" DEVICE_CONFIG_FROM \
	"WHERE ($3::text IS NULL OR (d.created_at, d.id) > " \
	"(fleet_cursor_ts(split_part($3, ' ', 1)::bigint), " \
	"split_part($3, ' ', 2)::uuid)) AND d.status = 'active' " \
	"AND $1::double precision IS NOT NULL AND " CONFIG_DRIFT_SQL \
	" AND (%s) ORDER BY d.created_at, d.id LIMIT $2::int"
/* clang-format on */

enum config_rc
store_config_drift_list(struct store *st, const struct selector *sel,
			long heartbeat_timeout_s, const struct page *page,
			struct device_config **items, size_t *n,
			char next[PAGE_CURSOR_MAX])
{
	char hb[24], limit[16], err[160];
	const char **all = NULL;
	struct selector_sql q;
	struct device_config *list = NULL;
	PGconn *conn = store_conn(st);
	PGresult *res = NULL;
	struct buf sql;
	enum config_rc rc = CONFIG_ERR_STORE;
	int i, rows, count = 0;

	memset(&q, 0, sizeof(q));
	buf_init(&sql, 128 * 1024);
	next[0] = '\0';
	if (conn == NULL)
		goto out;
	if (selector_to_sql(sel, &config_columns, 4, &q, err, sizeof(err)) != 0)
		goto out;
	all = calloc(q.nparams + 3, sizeof(*all));
	if (all == NULL)
		goto out;
	snprintf(hb, sizeof(hb), "%ld", heartbeat_timeout_s);
	snprintf(limit, sizeof(limit), "%d", page->limit + 1);
	all[0] = hb;
	all[1] = limit;
	all[2] = page->after;
	for (i = 0; i < (int)q.nparams; i++)
		all[3 + i] = q.params[i];
	if (buf_printf(&sql, DRIFT_LIST_SQL, q.where) != 0)
		goto out;
	res = db_query(conn, sql.data, (int)q.nparams + 3, all);
	if (res == NULL)
		goto out;
	rows = PQntuples(res);
	list = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*list));
	if (list == NULL)
		goto out;
	for (i = 0; i < rows && i < page->limit; i++) {
		if (read_device_config(res, i, &list[i]) != 0)
			goto out;
		count++;
	}
	if (rows > page->limit)
		snprintf(next, PAGE_CURSOR_MAX, "%s",
			 PQgetvalue(res, page->limit - 1, 18));
	*items = list;
	*n = (size_t)count;
	list = NULL;
	rc = CONFIG_OK;
out:
	device_configs_free(list, (size_t)count);
	PQclear(res);
	buf_free(&sql);
	free(all);
	selector_sql_free(&q);
	return rc;
}

/* The SQL mirror of config_classify() (core/config.c), as the state's
 * enum value. $1 is the heartbeat timeout. */
/* clang-format off */
#define CONFIG_STATE_COUNTS_SQL \
	"SELECT CASE WHEN c.desired_sha256 IS NULL THEN 0 " \
	"WHEN r.status = 'failed' AND r.generation = c.desired_generation " \
	"THEN 4 WHEN r.status IN ('applied', 'drifted') AND " \
	"r.sha256 = c.desired_sha256 THEN 1 WHEN r.device_id IS NOT NULL " \
	"AND r.generation >= c.desired_generation THEN 5 WHEN " \
	CONFIG_ONLINE_SQL " THEN 2 ELSE 3 END, count(*)" DEVICE_CONFIG_FROM \
	"WHERE d.status = 'active' GROUP BY 1"
/* clang-format on */

enum config_rc
store_config_state_counts(struct store *st, long heartbeat_timeout_s,
			  int64_t counts[CONFIG_STATE_COUNT])
{
	PGconn *conn = store_conn(st);
	PGresult *res;
	char hb[24];
	const char *params[1] = {hb};

	for (int i = 0; i < CONFIG_STATE_COUNT; i++)
		counts[i] = 0;
	if (conn == NULL)
		return CONFIG_ERR_STORE;
	snprintf(hb, sizeof(hb), "%ld", heartbeat_timeout_s);
	res = db_query(conn, CONFIG_STATE_COUNTS_SQL, 1, params);
	if (res == NULL)
		return CONFIG_ERR_STORE;
	for (int row = 0; row < PQntuples(res); row++) {
		int64_t state = db_int(res, row, 0);

		if (state >= 0 && state < CONFIG_STATE_COUNT)
			counts[state] = db_int(res, row, 1);
	}
	PQclear(res);
	return CONFIG_OK;
}

/* --- assignments for other db modules (db/config_assign.h) ---------- */

struct db_config_assign {
	PGresult *vres; /* owns base */
	const char *base; /* the version's document, or NULL */
	char profile_id[CONFIG_ID_LEN];
	int version; /* pinned, 0: latest */
	struct target_rows rows;
	struct config_compute cc;
};

void
db_config_assign_free(struct db_config_assign *a)
{
	if (a == NULL)
		return;
	PQclear(a->vres);
	target_rows_clear(&a->rows);
	config_compute_clear(&a->cc);
	free(a);
}

/* The document of profile_id at version (0: latest), its profile locked
 * FOR SHARE first (as resolve_version does by name). */
static enum config_rc
assign_version(PGconn *conn, struct db_config_assign *a)
{
	char ver[16];
	const char *params[2] = {a->profile_id, ver};
	PGresult *r;

	snprintf(ver, sizeof(ver), "%d", a->version);
	r = db_query(conn,
		     "SELECT 1 FROM config_profiles WHERE id = $1::uuid "
		     "FOR SHARE",
		     1, params);
	if (r == NULL)
		return CONFIG_ERR_STORE;
	PQclear(r);
	r = db_query(conn,
		     "SELECT v.version, v.document FROM config_profiles p "
		     "LEFT JOIN config_versions v ON v.profile_id = p.id AND "
		     "v.version = CASE WHEN $2::int = 0 THEN p.latest_version "
		     "ELSE $2::int END WHERE p.id = $1::uuid",
		     2, params);
	if (r == NULL)
		return CONFIG_ERR_STORE;
	if (PQntuples(r) == 0 || PQgetisnull(r, 0, 0)) {
		enum config_rc rc = PQntuples(r) == 0 ? CONFIG_PROFILE_UNKNOWN
				    : a->version == 0 ? CONFIG_NO_VERSION
						      : CONFIG_VERSION_UNKNOWN;

		PQclear(r);
		return rc;
	}
	a->vres = r;
	a->base = PQgetvalue(r, 0, 1);
	return CONFIG_OK;
}

enum config_rc
db_config_assign_prepare(PGconn *conn, const char *profile_id, int version,
			 const char *ids_array, struct db_config_assign **out)
{
	struct db_config_assign *a = calloc(1, sizeof(*a));
	struct config_source src;
	const char *params[2] = {"0", ids_array};
	PGresult *res = NULL;
	enum config_rc rc = CONFIG_ERR_STORE;

	if (a == NULL)
		return CONFIG_ERR_NOMEM;
	config_compute_init(&a->cc);
	a->version = version;
	if (profile_id != NULL) {
		snprintf(a->profile_id, sizeof(a->profile_id), "%s",
			 profile_id);
		rc = assign_version(conn, a);
		if (rc != CONFIG_OK)
			goto fail;
		rc = CONFIG_ERR_STORE;
	}
	res = db_query(conn,
		       "INSERT INTO device_config (device_id) SELECT d.id "
		       "FROM devices d WHERE d.id = ANY($2::uuid[]) AND "
		       "$1::text IS NOT NULL ORDER BY d.id "
		       "ON CONFLICT DO NOTHING",
		       2, params);
	if (res == NULL)
		goto fail;
	PQclear(res);
	/* The online column needs a heartbeat; it is not used here. */
	res = db_query(conn,
		       "SELECT " TARGET_COLS " FROM devices d JOIN "
		       "device_config c ON c.device_id = d.id LEFT JOIN "
		       "config_profiles p ON p.id = c.profile_id LEFT JOIN "
		       "device_sessions s ON s.device_id = d.id WHERE d.id = "
		       "ANY($2::uuid[]) ORDER BY d.id FOR UPDATE OF c",
		       2, params);
	if (res == NULL)
		goto fail;
	if (read_targets(res, &a->rows) != 0) {
		if (a->rows.res == NULL)
			PQclear(res);
		goto fail;
	}
	memset(&src, 0, sizeof(src));
	src.mode = CONFIG_CLONE_ASSIGN;
	src.base = a->base;
	rc = config_compute_targets(&a->cc, &src, a->rows.t, a->rows.n);
	if (rc != CONFIG_OK) {
		log_warn("config assign: device %s: error %d",
			 a->cc.failed_device ? a->cc.failed_device : "?",
			 (int)rc);
		goto fail;
	}
	*out = a;
	return CONFIG_OK;
fail:
	db_config_assign_free(a);
	return rc;
}

size_t
db_config_assign_count(const struct db_config_assign *a)
{
	return a->rows.n;
}

const char *
db_config_assign_device(const struct db_config_assign *a, size_t i)
{
	return a->rows.t[i].device_id;
}

bool
db_config_assign_changed(const struct db_config_assign *a, size_t i)
{
	return a->rows.t[i].changed;
}

size_t
db_config_assign_nchanged(const struct db_config_assign *a)
{
	return a->cc.changed;
}

int
db_config_assign_write(PGconn *conn, const struct db_config_assign *a,
		       const char *change_id)
{
	struct apply_spec spec = {
		change_id,
		true,
		a->profile_id[0] != '\0' ? a->profile_id : NULL,
		a->version,
		false,
		true};

	if (a->rows.n == 0)
		return 0;
	return apply_targets(conn, &spec, a->rows.t, a->rows.n);
}

int
db_config_change_insert(PGconn *conn, const char *id, const char *actor,
			const char *kind, const json_t *source,
			const char *selector, size_t matched, size_t changed)
{
	return insert_change(conn, id, actor, kind, source, selector, matched,
			     changed);
}

int
db_config_clear_devices(PGconn *conn, const char *change_id,
			const char *ids_array, size_t *changed)
{
	const char *params[2] = {change_id, ids_array};
	PGresult *res;

	/* As store_config_device_set without profile and overrides, for
	 * many devices: the generation grows where a document goes. */
	res = db_query(conn,
		       "WITH up AS (UPDATE device_config SET profile_id = "
		       "NULL, pinned_version = NULL, overrides = NULL, "
		       "revision = revision + 1, desired_document = NULL, "
		       "desired_sha256 = NULL, desired_generation = "
		       "desired_generation + CASE WHEN desired_sha256 IS NULL "
		       "THEN 0 ELSE 1 END, desired_change_id = CASE WHEN "
		       "desired_sha256 IS NULL THEN desired_change_id ELSE "
		       "$1::uuid END, desired_at = CASE WHEN desired_sha256 IS "
		       "NULL THEN desired_at ELSE now() END, updated_at = "
		       "now() WHERE device_id = ANY($2::uuid[]) RETURNING "
		       "device_id, desired_generation, desired_change_id = "
		       "$1::uuid AS changed), ins AS (" MEMBERS_APPEND(
			       "$1::uuid", "desired_generation",
			       "NULL") ") "
				       "SELECT count(*) FILTER (WHERE changed) "
				       "FROM up",
		       2, params);
	if (res == NULL)
		return -1;
	*changed = (size_t)db_int(res, 0, 0);
	PQclear(res);
	return 0;
}
