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

#endif
