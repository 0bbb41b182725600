/* SPDX-License-Identifier: Apache-2.0 */
/* Time helpers; see clock.h. */
#include "clock.h"

#include <errno.h>
#include <string.h>

uint64_t
clock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int64_t
clock_wall_s(void)
{
	return (int64_t)time(NULL);
}

void
clock_format_rfc3339(time_t t, char *out, size_t outlen)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int
clock_parse_rfc3339(const char *s, int64_t *out)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
	struct tm tm;
	time_t t;
	size_t i;

	for (i = 0; shape[i] != '\0'; i++)
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9')
				    : s[i] != shape[i])
			return -1;
	if (s[i] != '\0')
		return -1;
	memset(&tm, 0, sizeof(tm));
#define NUM2(p) ((s[(p)] - '0') * 10 + (s[(p) + 1] - '0'))
	tm.tm_year = NUM2(0) * 100 + NUM2(2) - 1900;
	tm.tm_mon = NUM2(5) - 1;
	tm.tm_mday = NUM2(8);
	tm.tm_hour = NUM2(11);
	tm.tm_min = NUM2(14);
	tm.tm_sec = NUM2(17);
	if (tm.tm_year < 70 || tm.tm_mon < 0 || tm.tm_mon > 11 ||
	    tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 59)
		return -1;
	/* timegm normalises 2026-02-30 to March 2nd: the round trip
	 * refuses it. */
	t = timegm(&tm);
	if (t == (time_t)-1 || tm.tm_mday != NUM2(8) ||
	    tm.tm_mon != NUM2(5) - 1)
		return -1;
#undef NUM2
	*out = (int64_t)t;
	return 0;
}

void
clock_sleep_ms(uint64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}
