/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `fleetd migrate` and the schema check fleetd does before it serves.
 * Runs in the CLI process with direct database access. The SQL files are
 * trusted (they ship with fleetd); their names are checked strictly.
 */
#include "db/migrate.h"

#include "atomicfile.h"
#include "fleet_paths.h"
#include "secret.h"

#include <ctype.h>
#include <stdbool.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIGRATION_MAX_FILES 1000
#define MIGRATION_MAX_BYTES (4 * 1024 * 1024)
/* Any constant will do, as long as every fleetd uses the same one. */
#define MIGRATION_LOCK_KEY "7264556314"

struct migration {
	long version;
	char name[256];
};

static int
migration_cmp(const void *a, const void *b)
{
	const struct migration *ma = a, *mb = b;

	return (ma->version > mb->version) - (ma->version < mb->version);
}

/* "0001_init.sql" -> 1; -1 if the name does not match NNNN_*.sql. */
static long
migration_version(const char *name)
{
	size_t len = strlen(name);

	if (len < 10 || strcmp(name + len - 4, ".sql") != 0 || name[4] != '_')
		return -1;
	for (int i = 0; i < 4; i++) {
		if (!isdigit((unsigned char)name[i]))
			return -1;
	}
	return strtol(name, NULL, 10);
}

int
migrate_installed_dir(char *out, size_t outlen)
{
	char exe[4096], path[4096];
	struct stat st;
	ssize_t n;
	char *slash;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash == NULL)
		return -1;
	*slash = '\0';
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", exe,
			     FLEET_MIGRATIONS_FROM_SBINDIR) >= sizeof(path) ||
	    stat(path, &st) != 0 || !S_ISDIR(st.st_mode) ||
	    strlen(path) >= outlen)
		return -1;
	memcpy(out, path, strlen(path) + 1);
	return 0;
}

static int
migration_list(const char *dir, struct migration **out, size_t *count,
	       char *err, size_t errlen)
{
	struct migration *list = NULL;
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	d = opendir(dir);
	if (d == NULL) {
		snprintf(err, errlen, "%s: cannot open migrations directory",
			 dir);
		return -1;
	}
	list = calloc(MIGRATION_MAX_FILES, sizeof(*list));
	if (list == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	while ((de = readdir(d)) != NULL) {
		long version = migration_version(de->d_name);

		if (version < 0)
			continue;
		if (n == MIGRATION_MAX_FILES ||
		    strlen(de->d_name) >= sizeof(list[n].name)) {
			snprintf(err, errlen, "%s: too many or too long names",
				 dir);
			goto fail;
		}
		list[n].version = version;
		snprintf(list[n].name, sizeof(list[n].name), "%s", de->d_name);
		n++;
	}
	qsort(list, n, sizeof(*list), migration_cmp);
	for (size_t i = 1; i < n; i++) {
		if (list[i].version == list[i - 1].version) {
			snprintf(err, errlen,
				 "%s and %s: two migrations with version %04ld",
				 list[i - 1].name, list[i].name,
				 list[i].version);
			goto fail;
		}
	}
	closedir(d);
	*out = list;
	*count = n;
	return 0;
fail:
	free(list);
	closedir(d);
	return -1;
}

static int
exec_ok(PGconn *conn, const char *sql, char *err, size_t errlen)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);
	int rc = 0;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s", PQerrorMessage(conn));
		rc = -1;
	}
	PQclear(res);
	return rc;
}

/* Looks up the recorded SHA-256 of version; "" when not applied. */
static int
applied_sha256(PGconn *conn, long version, char *sha, size_t shalen, char *err,
	       size_t errlen)
{
	char vbuf[32];
	const char *params[1] = {vbuf};
	PGresult *res;
	int rc = -1;

	snprintf(vbuf, sizeof(vbuf), "%ld", version);
	res = PQexecParams(conn,
			   "SELECT sha256 FROM schema_migrations "
			   "WHERE version = $1",
			   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s", PQerrorMessage(conn));
		goto out;
	}
	snprintf(sha, shalen, "%s",
		 PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
	rc = 0;
out:
	PQclear(res);
	return rc;
}

static int
apply_one(PGconn *conn, const struct migration *m, const char *sql,
	  const char *sha, char *err, size_t errlen)
{
	char vbuf[32];
	const char *params[3] = {vbuf, m->name, sha};
	PGresult *res;

	if (exec_ok(conn, "BEGIN", err, errlen) != 0)
		return -1;
	if (exec_ok(conn, sql, err, errlen) != 0)
		goto fail;
	snprintf(vbuf, sizeof(vbuf), "%ld", m->version);
	res = PQexecParams(conn,
			   "INSERT INTO schema_migrations (version, name, "
			   "sha256) VALUES ($1, $2, $3)",
			   3, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		snprintf(err, errlen, "%s", PQerrorMessage(conn));
		PQclear(res);
		goto fail;
	}
	PQclear(res);
	if (exec_ok(conn, "COMMIT", err, errlen) != 0)
		goto fail;
	return 0;
fail:
	(void)exec_ok(conn, "ROLLBACK", err + strlen(err),
		      errlen - strlen(err));
	return -1;
}

/* Every applied version must still ship, or the schema is from elsewhere. */
static int
check_no_unknown(PGconn *conn, const struct migration *list, size_t n,
		 char *err, size_t errlen)
{
	PGresult *res;
	int rc = -1;

	res = PQexec(conn, "SELECT version, name FROM schema_migrations "
			   "ORDER BY version");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s", PQerrorMessage(conn));
		goto out;
	}
	for (int row = 0; row < PQntuples(res); row++) {
		long version = strtol(PQgetvalue(res, row, 0), NULL, 10);
		bool found = false;

		for (size_t i = 0; i < n && !found; i++)
			found = list[i].version == version;
		if (!found) {
			snprintf(err, errlen,
				 "the database has migration %s applied, which "
				 "this fleetd does not ship: upgrade fleetd",
				 PQgetvalue(res, row, 1));
			goto out;
		}
	}
	rc = 0;
out:
	PQclear(res);
	return rc;
}

static int
apply_all(PGconn *conn, const char *dir, const struct migration *list, size_t n,
	  int *applied, char *err, size_t errlen)
{
	char path[4096];
	char sha[SECRET_SHA256_HEX];
	char recorded[SECRET_SHA256_HEX + 1];

	if (check_no_unknown(conn, list, n, err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char *sql = NULL;
		size_t len = 0;
		int rc;

		snprintf(path, sizeof(path), "%s/%s", dir, list[i].name);
		if (read_file_bounded(path, MIGRATION_MAX_BYTES, &sql, &len,
				      err, errlen) != 0)
			return -1;
		secret_sha256_hex(sql, len, sha);
		if (applied_sha256(conn, list[i].version, recorded,
				   sizeof(recorded), err, errlen) != 0) {
			free(sql);
			return -1;
		}
		if (recorded[0] != '\0') {
			free(sql);
			if (strcmp(recorded, sha) != 0) {
				snprintf(err, errlen,
					 "%s: changed after it was applied "
					 "(recorded sha256 %.12s..., file has "
					 "%.12s...); write a new migration "
					 "instead",
					 list[i].name, recorded, sha);
				return -1;
			}
			continue;
		}
		rc = apply_one(conn, &list[i], sql, sha, err, errlen);
		free(sql);
		if (rc != 0) {
			char reason[512];

			snprintf(reason, sizeof(reason), "%s", err);
			snprintf(err, errlen, "%s: %s", list[i].name, reason);
			return -1;
		}
		(*applied)++;
	}
	return 0;
}

int
migrate_apply(PGconn *conn, const char *dir, int *applied, char *err,
	      size_t errlen)
{
	struct migration *list = NULL;
	size_t n = 0;
	int count = 0;
	int rc = -1;

	if (migration_list(dir, &list, &n, err, errlen) != 0)
		return -1;
	/* Session lock: a second migrate waits here, then finds nothing to do. */
	if (exec_ok(conn, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")",
		    err, errlen) != 0)
		goto out;
	if (exec_ok(conn,
		    "SET client_min_messages = warning;"
		    "CREATE TABLE IF NOT EXISTS schema_migrations ("
		    " version integer PRIMARY KEY,"
		    " name text NOT NULL,"
		    " sha256 text NOT NULL,"
		    " applied_at timestamptz NOT NULL DEFAULT now())",
		    err, errlen) == 0)
		rc = apply_all(conn, dir, list, n, &count, err, errlen);
	if (exec_ok(conn, "SELECT pg_advisory_unlock(" MIGRATION_LOCK_KEY ")",
		    err + strlen(err), errlen - strlen(err)) != 0)
		rc = -1;
out:
	free(list);
	if (rc == 0)
		*applied = count;
	return rc;
}

int
migrate_check(PGconn *conn, long expected, char *err, size_t errlen)
{
	PGresult *res;
	long version = 0;
	int rc = -1;

	res = PQexec(conn, "SELECT coalesce(max(version), 0) FROM "
			   "schema_migrations");
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		version = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	else if (PQstatus(conn) != CONNECTION_OK) {
		snprintf(err, errlen, "database: %s", PQerrorMessage(conn));
		goto out;
	}
	if (version < expected) {
		snprintf(err, errlen,
			 "database schema is at version %ld, this fleetd needs "
			 "%ld: run `fleetd migrate`",
			 version, expected);
		goto out;
	}
	rc = 0;
out:
	PQclear(res);
	return rc;
}
