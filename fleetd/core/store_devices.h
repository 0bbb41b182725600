/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device part of the store port (core/store.h). Implemented on
 * PostgreSQL by fleetd/db/devices.c; the core unit tests link an
 * in-memory fake (tests/unit/core/fake_store_devices.c). Each function is
 * one atomic unit of work; the mutating ones write their audit row in it.
 */
#ifndef FLEETD_CORE_STORE_DEVICES_H
#define FLEETD_CORE_STORE_DEVICES_H

#include <stddef.h>
#include <stdint.h>

#include "core/device.h"
#include "core/page.h"
#include "core/selector.h"
#include "core/store.h"

/* One device into *out (device_clear it); STORE_NOTFOUND. */
enum store_rc store_device_get(struct store *st, const char *id,
			       struct device *out);

/*
 * One page of the devices sel matches (online per device_online with
 * heartbeat_timeout_s), oldest first. *items malloc'd (devices_free);
 * next is the cursor of the last row when more follow, else "".
 */
enum store_rc store_device_list(struct store *st, const struct selector *sel,
				long heartbeat_timeout_s,
				const struct page *page, struct device **items,
				size_t *n, char next[PAGE_CURSOR_MAX]);

/*
 * Replaces the labels of an active device at revision (which must still
 * be current: else STORE_PRECONDITION), bumping the revision, with an
 * audit row "device.update" whose details hold the patch. STORE_NOTFOUND,
 * STORE_CONFLICT when decommissioned.
 */
enum store_rc store_device_set_labels(struct store *st, const char *id,
				      int64_t revision,
				      const struct label_set *labels,
				      const struct label_patch *patch,
				      const char *actor);

/*
 * Marks an active device decommissioned (if_match < 0: any revision),
 * revokes its unrevoked certificates with reason, increments the
 * revocation generation, tells the net workers (their sessions of it
 * close) and writes the audit row "device.decommission" listing the
 * revoked serials. STORE_NOTFOUND, STORE_PRECONDITION, STORE_CONFLICT
 * (already decommissioned).
 */
enum store_rc store_device_decommission(struct store *st, const char *id,
					int64_t if_match, int reason,
					const char *actor);

#endif
