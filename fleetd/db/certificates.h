/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device certificates and the shared CRL cache (migrations/0002_api.sql).
 */
#ifndef FLEETD_DB_CERTIFICATES_H
#define FLEETD_DB_CERTIFICATES_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "db/query.h"

#define CRL_REASON_CESSATION 5 /* RFC 5280 cessationOfOperation */

/*
 * Revokes every unrevoked certificate of a device and marks the cached
 * CRL stale, in the caller's transaction. *serials (caller owns) lists
 * the serials revoked now.
 */
int db_certificates_revoke_device(PGconn *conn, const char *device_id,
				  int reason, json_t **serials);

/* DB_OK with the cached DER (malloc'd, caller frees) while it is fresh
 * (not stale, more than min_left_s before its next update), or
 * DB_NOTFOUND. */
int db_crl_cached(PGconn *conn, long min_left_s, unsigned char **der,
		  size_t *len);

/* Serialises CRL signing across instances until the transaction ends. */
int db_crl_lock(PGconn *conn);

/* Rows (serial, revoked_at epoch seconds, reason) of revoked, unexpired
 * certificates; caller PQclear()s. NULL on error. */
PGresult *db_crl_revoked(PGconn *conn);

int db_crl_next_number(PGconn *conn, uint64_t *number);

int db_crl_store(PGconn *conn, uint64_t number, const unsigned char *der,
		 size_t len, long next_update_s);

#endif
