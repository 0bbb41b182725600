/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Schema migrations: migrations/NNNN_name.sql applied in order, each in its
 * own transaction, recorded with its SHA-256 in schema_migrations. An
 * advisory lock makes concurrent runs queue instead of race.
 */
#ifndef FLEETD_DB_MIGRATE_H
#define FLEETD_DB_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>

/*
 * Applies the pending files of dir. Refuses, naming the file, when an
 * applied file has changed or an applied version is missing from dir.
 * Returns 0 (with the count applied) or -1 with a message in err.
 */
int migrate_apply(PGconn *conn, const char *dir, int *applied, char *err,
		  size_t errlen);

/*
 * The migrations an installed fleetd ships with: the directory
 * FLEET_MIGRATIONS_FROM_SBINDIR (fleet_paths.h) relative to the directory
 * of the running executable, e.g. /usr/share/fleetd/migrations beside
 * /usr/sbin/fleetd. Returns 0 with the path in out when that directory
 * exists, -1 otherwise (a fleetd run from its build tree, which uses the
 * source tree's migrations).
 */
int migrate_installed_dir(char *out, size_t outlen);

/*
 * Checks that the database is at least at version `expected`. Returns 0, or
 * -1 with a message telling the operator to run `fleetd migrate`.
 */
int migrate_check(PGconn *conn, long expected, char *err, size_t errlen);

#endif
