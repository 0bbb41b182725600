/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Connection-level configuration writes for other db modules (the
 * campaign driver, db/campaign_drive.c): assigning a profile version to
 * a given list of devices, and clearing their desired document, inside
 * the caller's transaction. They reuse clone's path in db/config.c
 * (documents computed in C by config_compute_targets, every row and the
 * change's members written in one statement), so a campaign's devices
 * get exactly what a clone in assign mode would give them.
 */
#ifndef FLEETD_DB_CONFIG_ASSIGN_H
#define FLEETD_DB_CONFIG_ASSIGN_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"

struct db_config_assign;

/*
 * Reads and locks what assigning profile_id (a uuid; NULL: no profile,
 * the overrides alone) at version (0: follow latest) to the devices of
 * ids_array (a uuid[] literal as db_uuid_array makes it) needs:
 * device_config rows are made where missing and locked in device id
 * order, the version's document is read with its profile locked FOR
 * SHARE, and each device's new desired document is computed (overrides
 * kept). Nothing is written yet besides the empty rows. *out (free with
 * db_config_assign_free) holds the devices in device id order.
 * CONFIG_OK, CONFIG_PROFILE_UNKNOWN, CONFIG_VERSION_UNKNOWN /
 * CONFIG_NO_VERSION, a compute error (CONFIG_TOO_LARGE,
 * CONFIG_INVALID_DOC), or CONFIG_ERR_STORE / CONFIG_ERR_NOMEM. The
 * caller's transaction, which it rolls back on failure.
 */
enum config_rc db_config_assign_prepare(PGconn *conn, const char *profile_id,
					int version, const char *ids_array,
					struct db_config_assign **out);

/* The prepared devices: count, the i-th device id (device id order),
 * whether its desired document changes (its desired generation grows by
 * one when written), and how many change. Borrowed from a. */
size_t db_config_assign_count(const struct db_config_assign *a);
const char *db_config_assign_device(const struct db_config_assign *a, size_t i);
bool db_config_assign_changed(const struct db_config_assign *a, size_t i);
size_t db_config_assign_nchanged(const struct db_config_assign *a);

/*
 * Writes the prepared assignment: profile and pinned version (version
 * 0: NULL, latest), revision + 1, the new desired document, generation
 * and change id of every device whose document changes, and one
 * member of the change per device (config_change_members), in one
 * statement. 0 or -1.
 */
int db_config_assign_write(PGconn *conn, const struct db_config_assign *a,
			   const char *change_id);
void db_config_assign_free(struct db_config_assign *a);

/*
 * The config_changes row of a change (kind 'set', 'clone' or
 * 'publish'; source a JSON object; selector may be NULL). 0 or -1.
 */
int db_config_change_insert(PGconn *conn, const char *id, const char *actor,
			    const char *kind, const json_t *source,
			    const char *selector, size_t matched,
			    size_t changed);

/*
 * Takes the assignment and the desired document away from the devices
 * of ids_array (a uuid[] literal, db_uuid_array): profile, pin and
 * overrides NULL, revision + 1; a device that had a document gets a new
 * generation without one. Each is a member of the change.
 * *changed: how many had a document. 0 or -1.
 */
int db_config_clear_devices(PGconn *conn, const char *change_id,
			    const char *ids_array, size_t *changed);

#endif
