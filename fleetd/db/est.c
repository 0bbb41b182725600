// SPDX-License-Identifier: Apache-2.0
/*
 * The EST part of the store port on PostgreSQL (core/store_est.h). Runs on
 * API job threads; the device id and serial come from a client
 * certificate verified in the TLS handshake, and are bound parameters.
 */
#include "core/store_est.h"

#include <string.h>

#include "db/query.h"
#include "db/store.h"

enum store_rc
store_est_cert_newest(struct store *st, const char *device_id,
		      const char *serial, bool *known, bool *newest)
{
	const char *params[2] = {device_id, serial};
	PGconn *conn = store_conn(st);
	PGresult *res;

	if (conn == NULL)
		return STORE_ERR;
	res = db_query(conn,
		       "SELECT NOT EXISTS (SELECT 1 FROM certificates n "
		       "WHERE n.device_id = c.device_id AND n.serial <> "
		       "c.serial AND n.not_before > c.not_before) "
		       "FROM certificates c WHERE c.device_id = $1::uuid "
		       "AND c.serial = $2",
		       2, params);
	if (res == NULL)
		return STORE_ERR;
	*known = PQntuples(res) == 1;
	*newest = *known && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return STORE_OK;
}
