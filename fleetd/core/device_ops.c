/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device operations (see device.h): label patches and decommissioning
 * through the store port (core/store_devices.h). Runs on API job threads;
 * ids and patches come from the network, already checked by the API.
 */
#include <stdlib.h>
#include <string.h>

#include "core/device.h"
#include "core/selector.h"
#include "core/store_devices.h"

static enum device_rc
from_store(enum store_rc rc)
{
	switch (rc) {
	case STORE_OK:
		return DEVICE_OK;
	case STORE_NOTFOUND:
		return DEVICE_NOTFOUND;
	case STORE_CONFLICT:
		return DEVICE_CONFLICT;
	case STORE_PRECONDITION:
		return DEVICE_PRECONDITION;
	case STORE_ERR:
		break;
	}
	return DEVICE_ERR_STORE;
}

enum device_rc
device_patch_labels(struct store *st, const char *id, int64_t if_match,
		    const struct label_patch *p, const char *actor,
		    struct device *out)
{
	struct device cur;
	struct label_set next = {0, NULL};
	enum device_rc rc = DEVICE_ERR_STORE;
	enum label_rc lrc;
	int tries;

	memset(&cur, 0, sizeof(cur));
	/* Read, apply the rule, write at the revision read: a concurrent
	 * change makes the write fail (PRECONDITION) and, without If-Match,
	 * the patch is applied again to the newer labels. */
	for (tries = 0; tries < DEVICE_LABEL_PATCH_RETRIES; tries++) {
		rc = from_store(store_device_get(st, id, &cur));
		if (rc != DEVICE_OK)
			goto out;
		if (!cur.active) {
			rc = DEVICE_CONFLICT;
			goto out;
		}
		if (if_match >= 0 && cur.revision != if_match) {
			rc = DEVICE_PRECONDITION;
			goto out;
		}
		lrc = device_labels_apply(&cur.labels, p, &next);
		if (lrc != LABEL_OK) {
			rc = lrc == LABEL_ERR_TOO_MANY ? DEVICE_TOO_MANY_LABELS
						       : DEVICE_ERR_NOMEM;
			goto out;
		}
		rc = from_store(store_device_set_labels(st, id, cur.revision,
							&next, p, actor));
		label_set_clear(&next);
		device_clear(&cur);
		if (rc != DEVICE_PRECONDITION || if_match >= 0)
			break;
	}
	if (rc == DEVICE_OK)
		rc = from_store(store_device_get(st, id, out));
out:
	label_set_clear(&next);
	device_clear(&cur);
	return rc;
}

enum device_rc
device_decommission(struct store *st, const char *id, int64_t if_match,
		    const char *actor, struct device *out)
{
	enum device_rc rc;

	rc = from_store(store_device_decommission(
		st, id, if_match, DEVICE_DECOMMISSION_REASON, actor));
	if (rc == DEVICE_OK)
		rc = from_store(store_device_get(st, id, out));
	return rc;
}

enum device_rc
device_resolve(struct store *st, const char *text, char id[DEVICE_ID_LEN],
	       struct device_candidates *cands)
{
	char lo[DEVICE_ID_LEN], hi[DEVICE_ID_LEN];
	bool full = false;
	enum store_rc rc;

	if (device_ref_parse(text, lo, hi, &full) != 0)
		return DEVICE_BAD_REF;
	if (full) {
		memcpy(id, lo, DEVICE_ID_LEN);
		return DEVICE_OK;
	}
	memset(cands, 0, sizeof(*cands));
	/* Every id with the prefix lies between lo and hi: one index
	 * range scan. */
	rc = store_device_ids_between(st, lo, hi, DEVICE_CANDIDATES_MAX,
				      cands->ids, &cands->n, &cands->more);
	if (rc != STORE_OK)
		return DEVICE_ERR_STORE;
	if (cands->n == 0)
		return DEVICE_NOTFOUND;
	if (cands->n > 1)
		return DEVICE_AMBIGUOUS;
	memcpy(id, cands->ids[0], DEVICE_ID_LEN);
	return DEVICE_OK;
}

/* Bulk actions act on active devices only: a decommissioned device
 * cannot change or be decommissioned twice (so "status=decommissioned"
 * matches nothing here). */
static enum device_rc
bulk_narrow(struct selector *sel)
{
	return selector_and_eq(sel, "status", "active") == 0 ? DEVICE_OK
							     : DEVICE_ERR_NOMEM;
}

enum device_rc
device_bulk_label(struct store *st, const char *selector_text,
		  struct selector *sel, long heartbeat_timeout_s,
		  const struct label_patch *p, bool dry_run, const char *actor,
		  struct device_bulk_result *out)
{
	enum device_rc rc = bulk_narrow(sel);
	enum store_rc src;

	if (rc != DEVICE_OK)
		return rc;
	memset(out, 0, sizeof(*out));
	if (dry_run)
		return from_store(store_device_bulk_preview(
			st, sel, heartbeat_timeout_s, out));
	src = store_device_bulk_label(st, sel, heartbeat_timeout_s,
				      selector_text, p, LABELS_MAX, actor, out);
	if (src == STORE_CONFLICT)
		return DEVICE_TOO_MANY_LABELS;
	return from_store(src);
}

enum device_rc
device_bulk_decommission(struct store *st, const char *selector_text,
			 struct selector *sel, long heartbeat_timeout_s,
			 bool dry_run, const char *actor,
			 struct device_bulk_result *out)
{
	enum device_rc rc = bulk_narrow(sel);

	if (rc != DEVICE_OK)
		return rc;
	memset(out, 0, sizeof(*out));
	if (dry_run)
		return from_store(store_device_bulk_preview(
			st, sel, heartbeat_timeout_s, out));
	return from_store(store_device_bulk_decommission(
		st, sel, heartbeat_timeout_s, selector_text,
		DEVICE_DECOMMISSION_REASON, actor, out));
}
