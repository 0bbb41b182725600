/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Connection-level deployment writes for other db modules (the campaign
 * driver, db/campaign_drive.c), inside the caller's transaction: the
 * lock that serialises giving devices open rows, superseding open rows
 * that are not installing yet, and cancelling a deployment's open
 * offers. db/deployments.c uses the same statements for its own create
 * and cancel, so a campaign's deployment behaves like any other.
 */
#ifndef FLEETD_DB_DEPLOYMENT_ROWS_H
#define FLEETD_DB_DEPLOYMENT_ROWS_H

#include <libpq-fe.h>
#include <stddef.h>

/* The states update_state_supersedable() (core/update.c) accepts. */
#define DB_DEPLOY_SUPERSEDABLE_SQL \
	"('pending', 'offered', 'downloading', 'downloaded')"

/* Takes the transaction-level lock every creation of open rows holds,
 * so two writers never both give a device an open row. 0 or -1. */
int db_deployment_create_lock(PGconn *conn);

/*
 * The open rows of the devices in ids_array (a uuid[] literal), in
 * deployments other than keep_id (NULL: any), that are not installing
 * yet, become superseded (reason 'superseded'); deployments left without
 * an open row finish. *n: rows superseded. 0 or -1.
 */
int db_deployment_supersede(PGconn *conn, const char *ids_array,
			    const char *keep_id, size_t *n);

/*
 * The open rows of deployment id for the devices in ids_array (a uuid[]
 * literal) that are not installing yet become superseded with reason
 * (the devices are no longer its targets); the deployment finishes when
 * nothing is open any more, and NOTIFY fleet_update when any row moved.
 * *n: rows superseded. 0 or -1.
 */
int db_deployment_withdraw(PGconn *conn, const char *id, const char *ids_array,
			   const char *reason, size_t *n);

/*
 * The open rows of deployment id that are not installing yet become
 * superseded (reason 'cancelled'), the deployment cancelled (if still
 * active) and NOTIFY fleet_update. The caller locked nothing; the rows
 * are locked here before the deployment, in the order reports and
 * creations lock them. *n: rows superseded. 0 or -1.
 */
int db_deployment_cancel_open(PGconn *conn, const char *id, size_t *n);

#endif
