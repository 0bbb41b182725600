/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device certificates and the shared CRL cache on PostgreSQL: implements
 * core/store_certificates.h, plus the revocation step the device store
 * functions run inside their own transactions.
 */
#ifndef FLEETD_DB_CERTIFICATES_H
#define FLEETD_DB_CERTIFICATES_H

#include <jansson.h>
#include <libpq-fe.h>

#include "core/store_certificates.h"

#define CRL_REASON_CESSATION 5 /* RFC 5280 cessationOfOperation */

/*
 * Revokes every unrevoked certificate of a device and increments the
 * revocation generation, in the caller's transaction. *serials (caller
 * owns) lists the serials revoked now. DB_OK or DB_ERR.
 */
int db_certificates_revoke_device(PGconn *conn, const char *device_id,
				  int reason, json_t **serials);

/*
 * Reads a CRL snapshot query's answer (consumed): rows of (generation,
 * number, serial or NULL, revoked_at epoch, RFC 5280 reason), row 0
 * always present. *entries malloc'd (NULL when none). db/certificates.c
 * and db/issuing_ca.c share it.
 */
enum store_rc db_crl_snapshot_read(PGresult *res, struct crl_entry **entries,
				   size_t *n, int64_t *generation,
				   uint64_t *number);

/*
 * Stores a signed CRL with sql: $1 number, $2 DER, $3 validity seconds,
 * $4 generation, and $5 issuer key id when issuer is not NULL.
 * STORE_CONFLICT when a newer one is stored already.
 */
enum store_rc db_crl_save(PGconn *conn, const char *sql, const char *issuer,
			  uint64_t number, int64_t generation,
			  const unsigned char *der, size_t len,
			  long validity_s);

#endif
