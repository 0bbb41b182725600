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
 * heartbeat_timeout_s), in the order of sort (NULL: oldest first; ties
 * by id); page->after is a TIME_ID cursor "<sort key in us> <id>".
 * *items malloc'd (devices_free); next is the cursor of the last row
 * when more follow, else "". total (may be NULL): how many devices sel
 * matches in all, read in the same snapshot as the page; with count_max
 * > 0 counted up to count_max + 1 only (PostgreSQL stops there), so a
 * total above count_max means "more than count_max match".
 */
enum store_rc store_device_list(struct store *st, const struct selector *sel,
				long heartbeat_timeout_s,
				const struct device_sort *sort,
				const struct page *page, struct device **items,
				size_t *n, char next[PAGE_CURSOR_MAX],
				int64_t count_max, int64_t *total);

/* The ids from lo to hi (inclusive, in order), at most max of them into
 * ids; *more when there are others. */
enum store_rc store_device_ids_between(struct store *st, const char *lo,
				       const char *hi, size_t max,
				       char (*ids)[DEVICE_ID_LEN], size_t *n,
				       bool *more);

/* How many devices sel matches (online as in store_device_list) and the
 * first sample_max of them by age into out (matched, nsample, sample). */
enum store_rc store_device_bulk_preview(struct store *st,
					const struct selector *sel,
					long heartbeat_timeout_s,
					struct device_bulk_result *out);

/*
 * One unit of work: locks the devices sel matches, refuses the whole
 * patch with STORE_CONFLICT (out->blocked) if one of them would end with
 * more than max(labels_max, the labels it has) labels, else applies the
 * patch (removals, then sets) to each, bumps their revisions and writes
 * one audit row "device.bulk_label" (target selector_text; details: the
 * selector, the patch, the count and the ids). out as in the preview.
 */
enum store_rc
store_device_bulk_label(struct store *st, const struct selector *sel,
			long heartbeat_timeout_s, const char *selector_text,
			const struct label_patch *patch, size_t labels_max,
			const char *actor, struct device_bulk_result *out);

/*
 * One unit of work: store_device_decommission for every device sel
 * matches (each one's certificates revoked with reason), one audit row
 * "device.bulk_decommission" (target selector_text; details: the
 * selector, the count, the ids, the certificates revoked) and one
 * notification to the net workers. out as in the preview, plus revoked.
 */
enum store_rc store_device_bulk_decommission(struct store *st,
					     const struct selector *sel,
					     long heartbeat_timeout_s,
					     const char *selector_text,
					     int reason, const char *actor,
					     struct device_bulk_result *out);

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
