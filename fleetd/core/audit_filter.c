/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit list's filters (core/audit.h): their rules and the time format
 * they take. Pure code on strings from a query string (untrusted); no
 * store, so the fuzz harness (tests/fuzz/fuzz_selector.c) links it alone.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "core/audit.h"

/* 1..AUDIT_FILTER_TEXT_MAX bytes, no control characters (NULL: unset). */
static bool
filter_text_ok(const char *s)
{
	size_t i, n;

	if (s == NULL)
		return true;
	n = strlen(s);
	if (n == 0 || n > AUDIT_FILTER_TEXT_MAX)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

const char *
audit_filter_check(const struct audit_filter *f)
{
	const char *star;

	if (!filter_text_ok(f->actor))
		return "actor";
	if (!filter_text_ok(f->action))
		return "action";
	/* "*" only as the last character of a family "device.*". */
	star = f->action != NULL ? strchr(f->action, '*') : NULL;
	if (star != NULL &&
	    (star[1] != '\0' || star - f->action < 2 || star[-1] != '.'))
		return "action";
	if (!filter_text_ok(f->target))
		return "target";
	if (f->since < 0 || f->until < 0)
		return f->since < 0 ? "since" : "until";
	if (f->since != 0 && f->until != 0 && f->until <= f->since)
		return "until";
	return NULL;
}

/* Exactly "YYYY-MM-DDTHH:MM:SSZ" (what the API writes) into epoch
 * seconds after 1970; -1 otherwise. */
int64_t
audit_time_parse(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
	struct tm tm;
	time_t t;
	size_t i;

	if (strlen(s) != sizeof(shape) - 1)
		return -1;
	for (i = 0; shape[i] != '\0'; i++)
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9')
				    : s[i] != shape[i])
			return -1;
	memset(&tm, 0, sizeof(tm));
#define NUM2(p) ((s[(p)] - '0') * 10 + (s[(p) + 1] - '0'))
	tm.tm_year = NUM2(0) * 100 + NUM2(2) - 1900;
	tm.tm_mon = NUM2(5) - 1;
	tm.tm_mday = NUM2(8);
	tm.tm_hour = NUM2(11);
	tm.tm_min = NUM2(14);
	tm.tm_sec = NUM2(17);
	if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 59)
		return -1;
	/* Round trip: refuses 2026-02-30 and the like. */
	t = timegm(&tm);
	if (t <= 0 || tm.tm_mday != NUM2(8) || tm.tm_mon != NUM2(5) - 1)
		return -1;
#undef NUM2
	return (int64_t)t;
}
