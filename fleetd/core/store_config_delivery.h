/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store port of configuration delivery (core/config_delivery.h);
 * fleetd/db/config_delivery.c implements it on PostgreSQL against the
 * schema of migrations/0006_config.sql (its contract) and 0007. Each
 * function is one atomic unit of work.
 */
#ifndef FLEETD_CORE_STORE_CONFIG_DELIVERY_H
#define FLEETD_CORE_STORE_CONFIG_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

#include "core/config_delivery.h"
#include "core/report.h"
#include "core/store.h"

/* One device whose desired configuration differs from its reported one. */
struct config_pending {
	char device_id[37]; /* lowercase uuid text */
	int64_t generation;
	char sha256[65];
	char *document; /* canonical JSON text (malloc'd) */
};

/*
 * Of the n devices in ids (uuid text), those that have a desired
 * configuration and whose reported state is missing, of another
 * generation or hash, or not "applied"; one statement whatever n is.
 * *out is a malloc'd array sorted by device id (strcmp order), NULL when
 * empty; free it with config_pending_free.
 */
enum store_rc store_config_pending(struct store *st, const char *const *ids,
				   size_t n, struct config_pending **out,
				   size_t *nout);

void config_pending_free(struct config_pending *list, size_t n);

/*
 * Applies a config.status report once: under the device's report-window
 * lock (the same window and the same device_reports effect as
 * store_report_apply), and only when the seq is new, reads the desired
 * and reported state, asks config_report_check and then either stores
 * the reported state or counts the report as ignored; all in one
 * transaction. STORE_OK with *verdict and *cv set (*cv only when
 * *verdict is REPORT_NEW); STORE_NOTFOUND for a device that does not
 * exist or is not active; STORE_ERR.
 */
enum store_rc store_config_report_apply(struct store *st, const char *device_id,
					const struct report *r,
					const struct config_status *status,
					enum report_verdict *verdict,
					enum config_report_verdict *cv);

#endif
