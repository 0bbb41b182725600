/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Backoff delays for the agent's reconnects and fleetd's child restarts.
 * The generator is splitmix64: small, fast, good enough for jitter (it is
 * not used for anything secret).
 */
#include "backoff.h"

#include <openssl/rand.h>
#include <time.h>

static uint64_t
splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void
backoff_init(struct backoff *b, uint32_t base_ms, uint32_t cap_ms,
	     uint64_t seed)
{
	b->base_ms = base_ms > 0 ? base_ms : 1;
	b->cap_ms = cap_ms >= b->base_ms ? cap_ms : b->base_ms;
	b->attempt = 0;
	if (seed == 0 &&
	    RAND_bytes((unsigned char *)&seed, (int)sizeof(seed)) != 1)
		seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)b;
	b->rng = seed;
}

uint32_t
backoff_ceiling(const struct backoff *b)
{
	uint64_t ceiling = b->base_ms;

	for (uint32_t i = 0; i < b->attempt && ceiling < b->cap_ms; i++)
		ceiling *= 2;
	return ceiling < b->cap_ms ? (uint32_t)ceiling : b->cap_ms;
}

uint32_t
backoff_uniform(struct backoff *b, uint32_t bound)
{
	/* Modulo bias over 2^64 is below 2^-32: irrelevant for jitter. */
	return (uint32_t)(splitmix64(&b->rng) % ((uint64_t)bound + 1));
}

uint32_t
backoff_next(struct backoff *b)
{
	uint32_t delay = backoff_uniform(b, backoff_ceiling(b));

	if (b->attempt < 64)
		b->attempt++;
	return delay;
}

void
backoff_reset(struct backoff *b)
{
	b->attempt = 0;
}
