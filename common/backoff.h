/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential
 * Backoff and Jitter"): the n-th delay is uniform in [0, min(cap, base*2^n)].
 * Full jitter spreads a fleet's reconnects so a restarted server never sees
 * all devices at once. Each struct carries its own generator state, so many
 * agents in one process each have their own.
 */
#ifndef FLEET_COMMON_BACKOFF_H
#define FLEET_COMMON_BACKOFF_H

#include <stdint.h>

struct backoff {
	uint32_t base_ms;
	uint32_t cap_ms;
	uint32_t attempt;
	uint64_t rng;
};

/* seed 0 draws a seed from the OS. */
void backoff_init(struct backoff *b, uint32_t base_ms, uint32_t cap_ms,
		  uint64_t seed);

/* The ceiling of the next delay: min(cap, base * 2^attempt). */
uint32_t backoff_ceiling(const struct backoff *b);

/* Returns the next delay in milliseconds and counts the attempt. */
uint32_t backoff_next(struct backoff *b);

/* After a stable connection: start again from base. */
void backoff_reset(struct backoff *b);

/* Uniform in [0, bound] from the struct's generator (also for jitter). */
uint32_t backoff_uniform(struct backoff *b, uint32_t bound);

#endif
