/* SPDX-License-Identifier: Apache-2.0 */
/* The audit log: written inside the mutating transaction, read by GET. */
#ifndef FLEETD_DB_AUDIT_H
#define FLEETD_DB_AUDIT_H

#include <jansson.h>
#include <libpq-fe.h>

#include "db/query.h"

/*
 * Appends an audit row. Call it inside the caller's transaction, so the
 * row exists exactly when the change does. target and details may be NULL;
 * details is borrowed. Returns DB_OK or DB_ERR.
 */
int audit_write(PGconn *conn, const char *actor, const char *action,
		const char *target, const json_t *details);

/* Newest first; page->after is an audit id. *items owned by the caller. */
int audit_list(PGconn *conn, const struct db_page *page, json_t **items,
	       char next[DB_CURSOR_MAX]);

#endif
