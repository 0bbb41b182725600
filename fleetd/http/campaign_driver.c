/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The campaign driver thread of a net worker (see campaign_driver.h).
 * Runs in every net worker process beside the event loop, with a store
 * (a PostgreSQL connection) of its own that serves nothing else: the
 * advisory lock is a property of that session, so the lock dies with
 * the worker (kill -9 included) and another worker's thread takes it at
 * its next try. It trusts only the database: the pass reads all it acts
 * on from the rows.
 *
 * The driver also sweeps expired Idempotency-Key records
 * (idempotency_retention): one worker of the whole fleet does it (the
 * lock's holder), in bounded batches between passes.
 */
#include "http/campaign_driver.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "config.h"
#include "core/campaign_drive.h"
#include "core/store_campaigns.h"
#include "core/store_idempotency.h"
#include "db/idempotency.h"
#include "db/store.h"
#include "log.h"

/* The longest the thread blocks in one wait, so that a SIGTERM (which
 * only sets the worker's flag) stops it promptly. */
#define DRIVER_SLICE_MS 200

/* Idempotency-Key sweep: rows per statement (one short transaction
 * each), statements per round, and the longest time between rounds. A
 * backlog larger than a round goes in the following rounds, one per pass
 * (about one campaign_interval_ms apart) until it is gone. */
#define SWEEP_BATCH 500
#define SWEEP_BATCHES_PER_ROUND 10
#define SWEEP_EVERY_MAX_MS 60000

struct campaign_driver {
	int slot;
	long interval_ms;
	long heartbeat_timeout_s;
	uint64_t sweep_at; /* monotonic ms of the next sweep round */
	const volatile sig_atomic_t *sigterm;
	struct store *store;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	atomic_bool stop;
};

static bool
driver_stopping(struct campaign_driver *d)
{
	return atomic_load(&d->stop) || (d->sigterm != NULL && *d->sigterm);
}

/* Sleeps ms, or less when stopped (condvar) or SIGTERM'd (slices). */
static void
driver_sleep(struct campaign_driver *d, long ms)
{
	uint64_t end = clock_mono_ms() + (uint64_t)ms;
	struct timespec ts;
	uint64_t now, step;

	pthread_mutex_lock(&d->mu);
	while (!driver_stopping(d)) {
		now = clock_mono_ms();
		if (now >= end)
			break;
		step = end - now < DRIVER_SLICE_MS ? end - now
						   : DRIVER_SLICE_MS;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)(step / 1000);
		ts.tv_nsec += (long)(step % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&d->cv, &d->mu, &ts);
	}
	pthread_mutex_unlock(&d->mu);
}

/* Holding the lock: waits for a fleet_campaign notification up to ms
 * (in slices, so a stop is seen). 0, or -1 when the store failed. */
static int
driver_wait(struct campaign_driver *d, long ms)
{
	uint64_t end = clock_mono_ms() + (uint64_t)ms;
	bool woken = false;
	uint64_t now;
	long step;

	while (!driver_stopping(d)) {
		now = clock_mono_ms();
		if (now >= end)
			break;
		step = (long)(end - now);
		if (step > DRIVER_SLICE_MS)
			step = DRIVER_SLICE_MS;
		if (store_campaign_wait(d->store, (int)step, &woken) !=
		    STORE_OK)
			return -1;
		if (woken)
			break;
	}
	return 0;
}

/* How long to wait after a pass: the interval, or less when a campaign
 * asked to be looked at sooner (a soak ending, a window opening). */
static long
driver_timeout(const struct campaign_driver *d, int64_t now, int64_t wake_at)
{
	int64_t ms;

	if (wake_at <= 0)
		return d->interval_ms;
	ms = wake_at <= now ? 0 : (wake_at - now) * 1000;
	return ms < d->interval_ms ? (long)ms : d->interval_ms;
}

/* How often to sweep: half the retention (so a record outlives it by at
 * most about half again), at most once a minute, at least once a second. */
static uint64_t
driver_sweep_every_ms(void)
{
	uint64_t ms = (uint64_t)db_idem_retention() * 500;

	if (ms > SWEEP_EVERY_MAX_MS)
		ms = SWEEP_EVERY_MAX_MS;
	return ms < 1000 ? 1000 : ms;
}

/* Holding the lock: one sweep round when it is due. A failure is logged
 * and retried at the next round; it never stops the driver. */
static void
driver_sweep(struct campaign_driver *d)
{
	uint64_t now = clock_mono_ms();
	long deleted = 0, total = 0;
	int i;

	if (now < d->sweep_at)
		return;
	d->sweep_at = now + driver_sweep_every_ms();
	for (i = 0; i < SWEEP_BATCHES_PER_ROUND && !driver_stopping(d); i++) {
		if (store_idempotency_sweep(d->store, db_idem_retention(),
					    SWEEP_BATCH,
					    &deleted) != STORE_OK) {
			log_warn("worker %d: campaign driver: sweeping expired "
				 "Idempotency-Key records failed; again in "
				 "%llu ms",
				 d->slot,
				 (unsigned long long)driver_sweep_every_ms());
			break;
		}
		total += deleted;
		if (deleted < SWEEP_BATCH)
			break;
	}
	/* A full round leaves a backlog (keys made faster than a round a
	 * minute deletes): the next round at the next pass, about a
	 * campaign interval from now, until the backlog is gone. */
	if (i == SWEEP_BATCHES_PER_ROUND)
		d->sweep_at = now;
	if (total > 0)
		log_debug("worker %d: campaign driver: swept %ld expired "
			  "Idempotency-Key records",
			  d->slot, total);
}

static void *
driver_main(void *arg)
{
	struct campaign_driver *d = arg;
	bool held = false, was_held = false, failing = false;
	int64_t now, wake_at;

	while (!driver_stopping(d)) {
		if (!held) {
			if (store_campaign_driver_lock(d->store, &held) !=
			    STORE_OK) {
				held = false;
				if (!failing)
					log_warn("worker %d: campaign driver: "
						 "cannot reach the database "
						 "to try the driver lock; "
						 "trying every %ld ms",
						 d->slot, d->interval_ms);
				failing = true;
			} else {
				failing = false;
			}
			if (held && !was_held)
				log_info("worker %d: campaign driver: took "
					 "the driver lock; this worker "
					 "drives campaigns",
					 d->slot);
			else if (!held && was_held)
				log_info("worker %d: campaign driver: lost "
					 "the driver lock",
					 d->slot);
			was_held = held;
			if (!held) {
				driver_sleep(d, d->interval_ms);
				continue;
			}
		}
		now = clock_wall_s();
		wake_at = 0;
		if (campaign_drive_pass(d->store, now, d->heartbeat_timeout_s,
					&wake_at) != 0) {
			/* Back off one interval, then make sure the lock is
			 * still ours (a lost connection drops it). */
			log_warn("worker %d: campaign driver: the pass failed "
				 "(%s); again in %ld ms",
				 d->slot,
				 store_unavailable(d->store)
					 ? "database unreachable"
					 : "a statement failed",
				 d->interval_ms);
			held = false;
			driver_sleep(d, d->interval_ms);
			continue;
		}
		driver_sweep(d);
		if (driver_wait(d, driver_timeout(d, now, wake_at)) != 0) {
			log_warn("worker %d: campaign driver: waiting for "
				 "fleet_campaign failed; trying the lock "
				 "again in %ld ms",
				 d->slot, d->interval_ms);
			held = false;
			driver_sleep(d, d->interval_ms);
		}
	}
	if (was_held)
		log_info("worker %d: campaign driver: stopping; the driver "
			 "lock goes with this connection",
			 d->slot);
	return NULL;
}

struct campaign_driver *
campaign_driver_start(const struct fleetd_config *cfg, int slot,
		      const volatile sig_atomic_t *stop)
{
	struct campaign_driver *d = calloc(1, sizeof(*d));

	if (d == NULL)
		goto fail;
	d->slot = slot;
	d->interval_ms = cfg->campaign_interval_ms > 0
				 ? cfg->campaign_interval_ms
				 : 1000;
	d->heartbeat_timeout_s = cfg->heartbeat_timeout;
	d->sigterm = stop;
	atomic_init(&d->stop, false);
	d->store = store_new(cfg->database);
	if (d->store == NULL)
		goto fail;
	if (pthread_mutex_init(&d->mu, NULL) != 0)
		goto fail_store;
	if (pthread_cond_init(&d->cv, NULL) != 0)
		goto fail_mu;
	if (pthread_create(&d->thread, NULL, driver_main, d) != 0)
		goto fail_cv;
	return d;
fail_cv:
	pthread_cond_destroy(&d->cv);
fail_mu:
	pthread_mutex_destroy(&d->mu);
fail_store:
	store_free(d->store);
fail:
	log_error("worker %d: campaign driver: cannot start (%s)", slot,
		  strerror(errno));
	free(d);
	return NULL;
}

void
campaign_driver_stop(struct campaign_driver *d)
{
	if (d == NULL)
		return;
	pthread_mutex_lock(&d->mu);
	atomic_store(&d->stop, true);
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	pthread_join(d->thread, NULL);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->mu);
	store_free(d->store);
	free(d);
}
