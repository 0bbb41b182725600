/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit log on PostgreSQL: rows are written inside the mutating
 * transaction (so a row exists exactly when its change does), read by
 * store_audit_list (core/store_audit.h).
 */
#ifndef FLEETD_DB_AUDIT_H
#define FLEETD_DB_AUDIT_H

#include <jansson.h>
#include <libpq-fe.h>

#include "core/audit.h"
#include "core/store_audit.h"
#include "db/query.h"

/* An entry's details as the JSON object the audit row holds (the batch
 * statements of enrollments and renewals render them for their rows);
 * NULL when out of memory. */
json_t *db_audit_details(const struct audit_entry *e);

/* Appends the entry (details rendered as a JSON object) inside the
 * caller's transaction. DB_OK or DB_ERR. */
int db_audit_insert(PGconn *conn, const struct audit_entry *e);

/*
 * Transitional, for handlers not yet on the store port: the same with a
 * jansson details object (borrowed; may be NULL) and target (may be NULL).
 */
int audit_write(PGconn *conn, const char *actor, const char *action,
		const char *target, const json_t *details);

#endif
