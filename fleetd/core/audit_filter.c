/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit list's filters (core/audit.h): their rules and the time format
 * they take. Pure code on strings from a query string (untrusted); no
 * store, so the fuzz harness (tests/fuzz/fuzz_selector.c) links it alone.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "clock.h"
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
	int64_t t;

	return clock_parse_rfc3339(s, &t) == 0 && t > 0 ? t : -1;
}
