/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A batch of config.status reports applied in one transaction
 * (docs/internals/perf.md): the same rule and the same effect per report
 * as store_config_report_apply (core/store_config_delivery.h), but the
 * round trips and the commit are shared by every report of the batch.
 * A clone makes one report per device, so 10,000 devices make 10,000
 * reports within a second or two; one transaction each bounded delivery
 * by PostgreSQL's per-transaction cost. fleetd/db/config_delivery.c
 * implements it; the channel's config.status handler calls it.
 */
#ifndef FLEETD_CORE_STORE_CONFIG_BATCH_H
#define FLEETD_CORE_STORE_CONFIG_BATCH_H

#include <stddef.h>

#include "core/config_delivery.h"
#include "core/report.h"
#include "core/store.h"

/* One report of a batch: the inputs, then what became of it. */
struct config_report_item {
	const char *device_id; /* lowercase uuid text */
	struct report r;
	struct config_status status;
	enum store_rc rc; /* STORE_OK or STORE_NOTFOUND (not active) */
	enum report_verdict verdict; /* when rc == STORE_OK */
	enum config_report_verdict cv; /* when verdict == REPORT_NEW */
};

/*
 * Applies n reports of n DISTINCT devices in one transaction: the report
 * windows of all of them locked in device id order (so two batches never
 * deadlock), each report checked by report_window_check and
 * config_report_check as store_config_report_apply does, then every
 * effect written with one statement. STORE_OK with each item's rc,
 * verdict and cv set; STORE_ERR (nothing written, no item set).
 */
enum store_rc store_config_report_apply_batch(struct store *st,
					      struct config_report_item *items,
					      size_t n);

#endif
