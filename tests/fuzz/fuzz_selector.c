/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer: the operator inputs core parses from query strings, paths and
 * bodies: selectors (core/selector.c), device id references
 * (device_ref_parse), list sort keys, audit times and filters
 * (core/audit.c). Properties: nothing crashes or leaks; a selector that
 * parses holds at most 32 terms (plus the ones added beside it), keys the
 * key rule allows, online/status values of their closed sets, and can be
 * matched; a reference that parses gives lo <= hi of the UUID shape with
 * the reference as their common prefix; a time that parses formats back
 * to the same text.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/audit.h"
#include "core/device.h"
#include "core/selector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
selector_check(const char *text)
{
	struct label_set labels = {0, NULL};
	struct selector_target t = {"5a0e2b4c-1d3f-4e6a-8b9c-0d1e2f3a4b01",
				    "plc-x",
				    NULL,
				    true,
				    "active",
				    &labels};
	struct selector *sel = NULL;
	char err[200];
	size_t i, j;

	if (selector_parse(text, &sel, err, sizeof(err)) != 0) {
		if (err[0] == '\0')
			abort();
		return;
	}
	if (sel->nterms > SELECTOR_MAX_TERMS)
		abort();
	for (i = 0; i < sel->nterms; i++) {
		const struct selector_term *term = &sel->terms[i];

		if (!selector_key_valid(term->key, strlen(term->key)) ||
		    term->nvalues > SELECTOR_MAX_VALUES)
			abort();
		for (j = 0; j < term->nvalues; j++) {
			const char *v = term->values[j];

			if (strcmp(term->key, "online") == 0 &&
			    strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
				abort();
			if (strcmp(term->key, "status") == 0 &&
			    strcmp(v, "active") != 0 &&
			    strcmp(v, "decommissioned") != 0)
				abort();
		}
	}
	(void)label_set_put(&labels, "site", "b7");
	(void)selector_match(sel, &t);
	if (selector_and_eq(sel, "status", "active") == 0 &&
	    !selector_has_key(sel, "status"))
		abort();
	(void)selector_match(sel, &t);
	label_set_clear(&labels);
	selector_free(sel);
}

static void
ref_check(const char *text)
{
	char lo[DEVICE_ID_LEN], hi[DEVICE_ID_LEN];
	struct device_sort sort;
	bool full = false;
	size_t n = strlen(text), i;

	if (device_ref_parse(text, lo, hi, &full) == 0) {
		if (strlen(lo) != DEVICE_ID_LEN - 1 ||
		    strlen(hi) != DEVICE_ID_LEN - 1 || strcmp(lo, hi) > 0 ||
		    full != (n == DEVICE_ID_LEN - 1) ||
		    n < DEVICE_ID_PREFIX_MIN)
			abort();
		for (i = 0; i < n; i++)
			if (lo[i] != hi[i] ||
			    (lo[i] != text[i] &&
			     lo[i] != (char)(text[i] - 'A' + 'a')))
				abort();
	}
	if (device_sort_parse(text, &sort) == 0 &&
	    (n < 7 || n > 12 || (unsigned)sort.key > DEVICE_SORT_CERT_EXPIRY))
		abort();
}

static void
time_check(const char *text)
{
	struct audit_filter f = {text, text, text, 0, 0};
	int64_t t = audit_time_parse(text);
	char again[32];
	time_t tt;
	struct tm tm;

	if (t >= 0) {
		tt = (time_t)t;
		if (gmtime_r(&tt, &tm) == NULL ||
		    strftime(again, sizeof(again), "%Y-%m-%dT%H:%M:%SZ", &tm) ==
			    0 ||
		    strcmp(again, text) != 0)
			abort();
	}
	(void)audit_filter_check(&f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size > SELECTOR_MAX_LEN + 16)
		return 0;
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	selector_check(text);
	ref_check(text);
	time_check(text);
	free(text);
	return 0;
}
