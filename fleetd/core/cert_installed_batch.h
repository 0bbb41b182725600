/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cert.installed reports applied in batches (docs/internals/perf.md):
 * the rule and the effect of cert_installed (core/cert_lifecycle.h) for
 * each report, with one transaction, one fsync'd commit and one bump of
 * the CRL generation per batch. Installs were serialised one commit at a
 * time on the crl_generation row (every install bumps it, and the row
 * lock is held through the commit's WAL flush), about 200 installs/s on
 * this machine's disk whatever the number of job threads.
 */
#ifndef FLEETD_CORE_CERT_INSTALLED_BATCH_H
#define FLEETD_CORE_CERT_INSTALLED_BATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "core/audit.h"
#include "core/cert_lifecycle.h"
#include "core/store.h"

/* One cert.installed report of a batch. */
struct cert_installed_item {
	const char *device_id;
	const char *session_serial; /* the certificate the session presented */
	const char *serial; /* the one reported installed */
	enum cert_installed_rc rc; /* out */
};

/* Applies each item as cert_installed would (the session must have
 * presented the serial it reports), the accepted ones in one unit of
 * work (store_cert_installed_batch). Every item's rc is set; a storage
 * failure sets CERT_INSTALLED_ERR on the items that reached storage. */
void cert_installed_batch(struct store *st, struct cert_installed_item *items,
			  size_t n);

/* ---- the store port (fleetd/db/certificates.c) ---------------------- */

/* One install of a batch: in device_id, serial, audit; out rc
 * (STORE_OK, STORE_NOTFOUND: no active certificate of the device with
 * that serial) and again (it was installed before; nothing written). */
struct cert_install_row {
	const char *device_id;
	const char *serial;
	const struct audit_entry *audit;
	enum store_rc rc;
	bool again;
};

/*
 * store_cert_installed for n installs in ONE transaction: each row's
 * certificate locked and marked installed, the device's older active
 * certificates superseded, its pending rotation completed and its audit
 * row written, as store_cert_installed does; then the CRL generation
 * bumped once and one fleet_devices notification when anything changed.
 * Rows are processed in device id order (the caller's order does not
 * matter) so that concurrent batches lock in one order. STORE_OK with
 * each row's rc and again set; STORE_ERR: nothing written.
 */
enum store_rc store_cert_installed_batch(struct store *st,
					 struct cert_install_row *rows,
					 size_t n);

#endif
