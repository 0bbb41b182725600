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

/* Sleeps ms milliseconds, resuming after signals. */
void clock_sleep_ms(uint64_t ms);

#endif
