/* SPDX-License-Identifier: Apache-2.0 */
/* Page cursors (core/page.h): the shapes the store makes. Pure. */
#include "core/page.h"

#include <string.h>

#include "secret.h"

/* Canonical decimal of len bytes, value in [lo, hi]. */
static bool
decimal_in(const char *s, size_t len, uint64_t lo, uint64_t hi)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 19 || (len > 1 && s[0] == '0'))
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0'); /* < 10^19 < 2^64 */
	}
	return v >= lo && v <= hi;
}

/* 9999-12-31T23:59:59.999999Z in microseconds since 1970. */
#define PAGE_TIME_MAX_US 253402300799999999ULL

bool
page_cursor_valid(const char *text, enum page_cursor_kind kind)
{
	const char *sp;

	if (text == NULL)
		return false;
	if (kind == PAGE_CURSOR_ID)
		return decimal_in(text, strlen(text), 1, INT64_MAX);
	sp = strchr(text, ' ');
	return sp != NULL &&
	       decimal_in(text, (size_t)(sp - text), 0, PAGE_TIME_MAX_US) &&
	       secret_is_uuid(sp + 1);
}
