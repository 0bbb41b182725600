/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store port for device reports and hellos (core/report.h); db/reports.c
 * implements it on PostgreSQL, tests/unit/core/fake_store_reports.c in
 * memory. Each function is one atomic unit of work.
 */
#ifndef FLEETD_CORE_STORE_REPORTS_H
#define FLEETD_CORE_STORE_REPORTS_H

#include "core/report.h"
#include "core/store.h"

/*
 * Applies r once: under the device's lock, reads its report window and
 * classifies r.seq with report_window_check(). When REPORT_NEW: stores r as
 * the device's latest report of its kind (unless a higher seq of that kind
 * is already stored: out-of-order arrival never moves the status back),
 * counts it in that kind's `applied` counter, and saves the window marked
 * with report_window_mark(); all in one transaction. Anything else writes
 * nothing. STORE_OK with *verdict set; STORE_NOTFOUND when the device does
 * not exist or is not active; STORE_ERR (see store_unavailable()).
 */
enum store_rc store_report_apply(struct store *st, const char *device_id,
				 const struct report *r,
				 enum report_verdict *verdict);

/* Stores a hello's facts on an active device and stamps last_seen.
 * STORE_OK (also when the device is not active: nothing written) or
 * STORE_ERR. */
enum store_rc store_device_hello(struct store *st, const char *device_id,
				 const struct device_hello *h);

#endif
