/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer: configuration documents and merge patches as the API gets
 * them (a publish's document, a device's overrides): two JSON texts
 * separated by a NUL byte, each through the strict body parser
 * (api/input.c), then core's rules (core/config.c) and canonical JSON
 * (common/canon.c). Properties: nothing crashes or leaks; canonical text
 * parses back to a value with the same canonical text (a fixed point);
 * for a document `to` that config_document_check accepts,
 * merge(from, diff(from, to)) has the canonical text of `to` (what copy
 * clones rely on); config_effective over the canonical texts equals the
 * in-memory merge.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/input.h"
#include "canon.h"
#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *
body(const uint8_t *p, size_t n)
{
	char err[128];

	return api_json_object_parse((const char *)p, n, err, sizeof(err));
}

/* canon(v) parses back to a value with the same canonical text. */
static void
check_fixed_point(const json_t *v)
{
	size_t len = 0, len2 = 0;
	char *a = canon_json(v, &len), *b;
	json_t *back;

	if (a == NULL)
		return;
	back = json_loadb(a, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (back == NULL)
		abort();
	b = canon_json(back, &len2);
	if (b == NULL || len != len2 || memcmp(a, b, len) != 0)
		abort();
	free(a);
	free(b);
	json_decref(back);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *sep = memchr(data, 0, size);
	json_t *from = NULL, *to = NULL, *d = NULL, *m = NULL;
	struct config_doc cf, ct, eff;
	char err[320];
	char *a = NULL, *b = NULL;

	memset(&cf, 0, sizeof(cf));
	memset(&ct, 0, sizeof(ct));
	memset(&eff, 0, sizeof(eff));
	if (sep == NULL)
		return 0;
	from = body(data, (size_t)(sep - data));
	to = body(sep + 1, size - (size_t)(sep - data) - 1);
	if (from == NULL || to == NULL)
		goto out;
	check_fixed_point(from);
	check_fixed_point(to);
	(void)config_patch_check(to, err, sizeof(err));
	m = config_merge_patch(from, to);
	if (m != NULL)
		check_fixed_point(m);
	/* Overrides applied to a stored version: the same as in memory. */
	if (m != NULL && config_canon(from, &cf) == CONFIG_OK &&
	    config_canon(to, &ct) == CONFIG_OK &&
	    config_effective(cf.text, ct.text, &eff) == CONFIG_OK) {
		a = canon_json(m, NULL);
		if (a == NULL || strcmp(a, eff.text) != 0)
			abort();
	}
	/* Copy clones: merge(from, diff(from, to)) == to for documents. */
	if (config_document_check(to, err, sizeof(err)) == CONFIG_OK) {
		json_t *back;

		d = config_merge_diff(from, to);
		if (d == NULL)
			goto out;
		back = config_merge_patch(from, d);
		b = canon_json(back, NULL);
		free(a);
		a = canon_json(to, NULL);
		if (a == NULL || b == NULL || strcmp(a, b) != 0)
			abort();
		json_decref(back);
	}
out:
	free(a);
	free(b);
	config_doc_clear(&cf);
	config_doc_clear(&ct);
	config_doc_clear(&eff);
	json_decref(from);
	json_decref(to);
	json_decref(d);
	json_decref(m);
	return 0;
}
