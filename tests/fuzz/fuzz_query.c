/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer: query strings and pagination cursors (api/input.c,
 * core/page.c). The input is a raw query string. Properties: nothing
 * crashes; a value found fits its buffer; a page that parses has a limit
 * in 1..1000 and, with a cursor, one of the shapes the store makes, sealed
 * for this list under this key (sealing it again gives the same text).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/input.h"
#include "core/page.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char key[PAGE_KEY_LEN] = {0x5a, 0x01};

static void
page_check(const char *query, enum page_cursor_kind kind)
{
	char after[PAGE_CURSOR_MAX], raw[PAGE_SEALED_MAX];
	char again[PAGE_SEALED_MAX];
	const char *field = NULL;
	struct page page;

	if (api_page_read(query, "/l", key, kind, &page, after, &field) != 0) {
		if (field == NULL)
			abort();
		return;
	}
	if (page.limit < 1 || page.limit > PAGE_LIMIT_MAX)
		abort();
	if (page.after == NULL)
		return;
	if (!page_cursor_valid(page.after, kind))
		abort();
	if (api_query_param(query, "cursor", raw, sizeof(raw)) != 1)
		abort();
	if (page_cursor_seal(key, "/l", page.after, again, sizeof(again)) !=
		    0 ||
	    strcmp(again, raw) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *query = malloc(size + 1), out[64], cur[PAGE_CURSOR_MAX];
	char sealed[PAGE_SEALED_MAX];
	int rc;

	if (query == NULL)
		return 0;
	memcpy(query, data, size);
	query[size] = '\0';
	rc = api_query_param(query, "selector", out, sizeof(out));
	if (rc == 1 && strlen(out) >= sizeof(out))
		abort();
	page_check(query, PAGE_CURSOR_ID);
	page_check(query, PAGE_CURSOR_TIME_ID);
	/* the whole input as a sealed cursor, and as a cursor to seal */
	if (page_cursor_open(key, "/l", query, PAGE_CURSOR_TIME_ID, cur) == 0 &&
	    !page_cursor_valid(cur, PAGE_CURSOR_TIME_ID))
		abort();
	if (size < PAGE_CURSOR_MAX &&
	    page_cursor_seal(key, "/l", query, sealed, sizeof(sealed)) == 0 &&
	    page_cursor_open(key, "/l", sealed, PAGE_CURSOR_ID, cur) == 0 &&
	    strcmp(cur, query) != 0)
		abort();
	free(query);
	return 0;
}
