/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The API's untrusted-input parsers as pure functions (no database, no
 * network, no call state), so that the libFuzzer harnesses link them
 * alone: strict RFC 8259 JSON bodies, query parameters and pagination
 * cursors. Runs on job threads.
 */
#ifndef FLEETD_API_INPUT_H
#define FLEETD_API_INPUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/page.h"

#define API_JSON_DEPTH_MAX 32

/*
 * True if buf[0..len) is exactly one JSON text as RFC 8259 defines it, in
 * UTF-8: no byte outside a token but blanks (so no NUL, no BOM, nothing
 * trailing), strings without raw control characters, valid UTF-8 (no
 * overlong forms, no surrogates, nothing past U+10FFFF), \u escapes that
 * pair surrogates correctly and are not \u0000, numbers of the grammar,
 * nesting up to API_JSON_DEPTH_MAX. Otherwise false and err says where.
 */
bool api_json_strict(const char *buf, size_t len, char *err, size_t errlen);

/*
 * api_json_strict, then jansson with duplicate member names refused (two
 * parsers reading one body differently is how smuggling starts). Returns
 * a JSON object (caller decrefs) or NULL with err set.
 */
json_t *api_json_object_parse(const char *buf, size_t len, char *err,
			      size_t errlen);

/*
 * Finds name in the raw query string and percent-decodes it into out.
 * 1 found, 0 absent, -1 malformed (a bad or %00 escape, a repeated name)
 * or longer than outlen - 1.
 */
int api_query_param(const char *query, const char *name, char *out,
		    size_t outlen);

/*
 * ?limit and ?cursor of a list: fills page (page->after points into
 * after). A cursor must be one the server sealed for this list (the
 * list's path) under key (core/page.h). 0, or -1 with *field naming the
 * bad parameter.
 */
int api_page_read(const char *query, const char *list,
		  const unsigned char key[PAGE_KEY_LEN],
		  enum page_cursor_kind kind, struct page *page,
		  char after[PAGE_CURSOR_MAX], const char **field);

#endif
