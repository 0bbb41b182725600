/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device report window for the db modules that apply reports of
 * their own kind (db/deployments.c: update and key reports): one window
 * row per device (device_report_windows) for every kind, locked for the
 * transaction, so two job threads with the same (device, seq) serialise
 * and the second finds a duplicate (core/report.h's rule).
 */
#ifndef FLEETD_DB_REPORTS_H
#define FLEETD_DB_REPORTS_H

#include <libpq-fe.h>

#include "core/report.h"
#include "core/store.h"

/* BEGIN, then the device's window made if missing and locked, read into
 * *w. STORE_OK with the transaction open, or STORE_NOTFOUND (no such
 * active device) / STORE_ERR, rolled back. */
enum store_rc db_report_window_begin(PGconn *conn, const char *device_id,
				     struct report_window *w);

/* In the open transaction: the generic effect of the new report r (the
 * latest report of its kind in device_reports, counted) and *w marked
 * with its seq. STORE_OK or STORE_ERR (the caller rolls back). */
enum store_rc db_report_window_mark(PGconn *conn, const char *device_id,
				    const struct report *r,
				    struct report_window *w);

#endif
