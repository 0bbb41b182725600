/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The campaign driver thread of a net worker (docs/internals/campaigns.md,
 * "Driving"): every worker runs one with its own store; the one whose
 * store holds the driver lock (pg_try_advisory_lock) runs
 * campaign_drive_pass on each fleet_campaign notification or every
 * campaign_interval_ms, the others try the lock every interval, so a
 * dead driver is replaced within about one interval.
 */
#ifndef FLEETD_HTTP_CAMPAIGN_DRIVER_H
#define FLEETD_HTTP_CAMPAIGN_DRIVER_H

#include <signal.h>

struct fleetd_config;
struct campaign_driver;

/*
 * Starts the thread of worker slot. It also stops by itself once *stop
 * (the worker's SIGTERM flag; may be NULL) is set, within a fraction of a
 * second. Returns the driver (the caller stops it with
 * campaign_driver_stop), or NULL (logged) when no store or thread could
 * be made.
 */
struct campaign_driver *
campaign_driver_start(const struct fleetd_config *cfg, int slot,
		      const volatile sig_atomic_t *stop);

/* Wakes the thread, waits for it to end, frees it (and its store, which
 * drops the lock if it held it). NULL is fine. */
void campaign_driver_stop(struct campaign_driver *d);

#endif
