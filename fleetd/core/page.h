/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Keyset pages of a list: the limit and where to start. Cursors are what
 * the store produced for the last row of the previous page; the API
 * hands them out sealed (an HMAC under a key every instance shares, bound
 * to the list) and accepts only sealed ones, then checks their shape
 * again before they reach the store: a crafted cursor is a 400, never a
 * 500.
 */
#ifndef FLEETD_CORE_PAGE_H
#define FLEETD_CORE_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAGE_LIMIT_DEFAULT 100
#define PAGE_LIMIT_MAX 1000
#define PAGE_CURSOR_MAX 96
#define PAGE_KEY_LEN 32
/* base64url(cursor) "." base64url(16-byte tag), and a NUL */
#define PAGE_SEALED_MAX 160

struct store;

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

/*
 * Seals a cursor the store made for the list (e.g. its path) into out
 * (PAGE_SEALED_MAX bytes). 0, or -1 when it does not fit or HMAC failed.
 */
int page_cursor_seal(const unsigned char key[PAGE_KEY_LEN], const char *list,
		     const char *cursor, char *out, size_t outlen);

/*
 * Opens a sealed cursor of this list: 0 with out (a valid cursor of this
 * kind) only if the tag is right (constant-time compare), the encoding
 * canonical and the shape valid; else -1.
 */
int page_cursor_open(const unsigned char key[PAGE_KEY_LEN], const char *list,
		     const char *sealed, enum page_cursor_kind kind,
		     char out[PAGE_CURSOR_MAX]);

/* The fleet's cursor key through the store port (core/store_page.h). 0 or
 * -1 when storage failed. */
int page_key(struct store *st, unsigned char key[PAGE_KEY_LEN]);

#endif
