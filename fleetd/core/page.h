/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Keyset pages of a list: the limit and where to start. Cursors are what
 * the store produced for the last row of the previous page; the API
 * carries them opaquely (base64url) and validates their shape before
 * they reach the store, so a crafted cursor is a 400, never a 500.
 */
#ifndef FLEETD_CORE_PAGE_H
#define FLEETD_CORE_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAGE_LIMIT_DEFAULT 100
#define PAGE_LIMIT_MAX 1000
#define PAGE_CURSOR_MAX 96

/* Cursor shapes: a row id, or "<microseconds since 1970> <uuid>". */
enum page_cursor_kind {
	PAGE_CURSOR_ID,
	PAGE_CURSOR_TIME_ID,
};

struct page {
	int limit; /* 1..PAGE_LIMIT_MAX */
	const char *after; /* a cursor, or NULL for the first page */
};

/*
 * True if text is a cursor of this kind as the store makes them:
 * canonical decimal (no sign, no leading zero) within range (an id in
 * 1..2^63-1; a time from 1970 to 9999-12-31), and for TIME_ID a single
 * space and a lowercase canonical UUID. Anything else is refused.
 */
bool page_cursor_valid(const char *text, enum page_cursor_kind kind);

#endif
