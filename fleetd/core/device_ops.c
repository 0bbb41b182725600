/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device operations (see device.h): label patches and decommissioning
 * through the store port (core/store_devices.h). Runs on API job threads;
 * ids and patches come from the network, already checked by the API.
 */
#include <stdlib.h>
#include <string.h>

#include "core/device.h"
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
