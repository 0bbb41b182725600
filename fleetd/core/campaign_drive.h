/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The campaign driver's pass (docs/internals/campaigns.md, "Driving"):
 * what one worker does, holding the driver lock, each time it wakes (a
 * fleet_campaign notification, or its interval). Orchestration only: the
 * decisions are campaign_step's, the writes the store port's
 * (core/store_campaigns.h). Unit-tested with a fake store.
 */
#ifndef FLEETD_CORE_CAMPAIGN_DRIVE_H
#define FLEETD_CORE_CAMPAIGN_DRIVE_H

#include <stdint.h>

#include "core/store.h"

/*
 * For every due campaign: an aborted one gets its abort effects; a
 * completed one (devices still updating) is synced; the others are
 * synced and counted; a running one then acts on
 * campaign_step (GATE_MET, RELEASE, PAUSE, COMPLETE; a RELEASE is
 * recorded, then admitted in the same pass) and, inside its time window,
 * admits late joiners and devices held back by the concurrency cap.
 * *wake_at: the earliest epoch second a campaign asked to be looked at
 * again (soak end, window opening), or 0. Returns 0, or -1 when the
 * store failed (the caller waits and tries again; nothing is half done:
 * each store call is atomic and the next pass starts from the rows).
 */
int campaign_drive_pass(struct store *st, int64_t now, long heartbeat_timeout_s,
			int64_t *wake_at);

#endif
