/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device queries. Device documents (docs/api.md) are built by PostgreSQL,
 * including presence: online = a session seen within heartbeat_s. Callers
 * own returned json_t.
 */
#ifndef FLEETD_DB_DEVICES_H
#define FLEETD_DB_DEVICES_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdint.h>

#include "db/query.h"

/*
 * SQL expressions a device-list WHERE fragment may use (for selectors):
 * d is the device row, s its session (LEFT JOIN), $1 the heartbeat.
 */
#define DB_DEVICE_COL_ID "d.id::text"
#define DB_DEVICE_COL_MODEL "d.model"
#define DB_DEVICE_COL_FW_VERSION "d.fw_version"
#define DB_DEVICE_COL_LABELS "d.labels"
#define DB_DEVICE_COL_ONLINE                                     \
	"coalesce(s.last_seen > now() - $1::double precision * " \
	"interval '1 second', false)"
/* Placeholders of a WHERE fragment start here. */
#define DB_DEVICE_FIRST_PARAM 4

int db_device_get(PGconn *conn, const char *id, long heartbeat_s, json_t **out,
		  int64_t *revision);

/*
 * One page of devices matching where (an SQL boolean over the columns
 * above, with params from $DB_DEVICE_FIRST_PARAM), and online (-1 any).
 */
int db_device_list(PGconn *conn, long heartbeat_s, const char *where,
		   const char *const *params, int nparams, int online,
		   const struct db_page *page, json_t **items,
		   char next[DB_CURSOR_MAX]);

struct device_enrollment {
	const char *id;
	const char *token_id;
	const char *token_labels_json; /* win over the request's */
	const char *request_labels_json; /* JSON object */
	const char *model; /* NULL when not given */
	const char *serial;
	const char *profile;
	const char *cert_serial;
	int64_t not_before, not_after;
	const char *audit_actor;
	const char *audit_details_json;
};

/* Inserts the device, its certificate and the audit row (one statement). */
int db_device_enroll(PGconn *conn, const struct device_enrollment *e);

/*
 * Applies a merge patch to the labels (string values set, null removes).
 * if_match < 0 means no precondition. DB_OK, DB_NOTFOUND, DB_PRECONDITION,
 * DB_CONFLICT (decommissioned) or DB_ERR.
 */
int db_device_patch_labels(PGconn *conn, const char *id, int64_t if_match,
			   const char *patch_json);

/*
 * Marks the device decommissioned, revokes its certificates (reason
 * cessationOfOperation), marks the CRL stale and notifies fleet_devices,
 * all in the caller's transaction. *revoked lists the revoked serials
 * (caller owns). Same return codes as db_device_patch_labels.
 */
int db_device_decommission(PGconn *conn, const char *id, int64_t if_match,
			   json_t **revoked);

#endif
