/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What fleetd/channel/config_status.c needs beyond the fake channel seam
 * of test_report_dispatch.c (one session, work run at once): the worker's
 * report queue slot, the walk over the worker's other sessions (the
 * fixture has none: a batch is always the report of the one session,
 * answered through it), and the batch store call, which this fake store
 * applies one report after another with store_config_report_apply of
 * fake_store_config_delivery.c (the same window and rule; a batch of one
 * is what the fixture makes).
 */
#include <stdlib.h>

#include "channel/channel_int.h"
#include "core/store_config_batch.h"
#include "core/store_config_delivery.h"

static struct cfg_status_batch *slot;

static void
slot_free(void)
{
	cfg_status_batch_free(slot);
	slot = NULL;
}

struct cfg_status_batch **
channel_cfg_status_slot(struct channel *ch)
{
	static bool registered;

	(void)ch;
	if (!registered) {
		registered = atexit(slot_free) == 0;
	}
	return &slot;
}

struct channel_session *
channel_find_device(struct channel *ch, const char *device_id)
{
	(void)ch;
	(void)device_id;
	return NULL;
}

enum store_rc
store_config_report_apply_batch(struct store *st,
				struct config_report_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct config_report_item *it = &items[i];

		it->rc = store_config_report_apply(st, it->device_id, &it->r,
						   &it->status, &it->verdict,
						   &it->cv);
		if (it->rc == STORE_ERR)
			return STORE_ERR;
	}
	return STORE_OK;
}
