/* SPDX-License-Identifier: Apache-2.0 */
/* Time helpers: monotonic milliseconds for timers, wall seconds for data. */
#ifndef FLEET_COMMON_CLOCK_H
#define FLEET_COMMON_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

uint64_t clock_mono_ms(void);
int64_t clock_wall_s(void);

/* Formats t as RFC 3339 UTC ("2026-11-20T10:00:00Z") into out. */
void clock_format_rfc3339(time_t t, char *out, size_t outlen);

/*
 * Parses exactly "YYYY-MM-DDTHH:MM:SSZ" (RFC 3339, UTC, no fraction: what
 * clock_format_rfc3339 writes, one spelling per instant) from 1970 on
 * into epoch seconds. Returns 0, or -1 for any other text or a date that
 * does not exist (2026-02-29, 24:00:00, a leap second).
 */
int clock_parse_rfc3339(const char *s, int64_t *out);

/* Sleeps ms milliseconds, resuming after signals. */
void clock_sleep_ms(uint64_t ms);

#endif
