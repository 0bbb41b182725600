/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The API's pure input parsers (api/input.c) and the rules they lean on
 * (core/page.h cursors, core/label_set.c): strict RFC 8259 JSON, query
 * parameters, cursors, label sets and their enrollment merge.
 * Table-driven; no network, no database.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "api/input.h"
#include "core/label_set.h"
#include "core/page.h"

static void
test_json_strict(void **state)
{
	static const struct {
		const char *text;
		size_t len; /* 0: strlen */
		bool ok;
	} v[] = {
		{"{}", 0, true},
		{" {\"a\": [1, -0.5e+3, true, false, null, \"x\"]}\r\n", 0,
		 true},
		{"{\"a\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}", 0, true},
		{"{\"a\":\"\\ud83d\\ude00 \\u00e9 \\n\\/\"}", 0, true},
		{"[]", 0, true},
		{"1", 0, true},
		{"{\"a\":1,\0\"b\":2}", 15, false}, /* NUL between tokens */
		{"{\"a\":1}\0", 8, false},
		{"\0{}", 3, false},
		{"{\"a\":1} x", 0, false},
		{"{\"a\":1}{}", 0, false},
		{"\xef\xbb\xbf{}", 0, false}, /* BOM */
		{"{\"a\":\"\xff\"}", 0, false},
		{"{\"a\":\"\xc0\xaf\"}", 0, false}, /* overlong */
		{"{\"a\":\"\xe0\x80\xaf\"}", 0, false}, /* overlong */
		{"{\"a\":\"\xed\xa0\x80\"}", 0, false}, /* surrogate */
		{"{\"a\":\"\xf4\x90\x80\x80\"}", 0, false}, /* > U+10FFFF */
		{"{\"a\":\"\xc3\"}", 0, false}, /* cut sequence */
		{"{\"a\":\"\\ud800\"}", 0, false},
		{"{\"a\":\"\\udc00\"}", 0, false},
		{"{\"a\":\"\\ud800\\u0041\"}", 0, false},
		{"{\"a\":\"\\u0000\"}", 0, false},
		{"{\"a\":\"\\x41\"}", 0, false},
		{"{\"a\":\"\\u12g4\"}", 0, false},
		{"{\"a\":\"\x01\"}", 0, false},
		{"{\"a\":\"tab\there\"}", 0, false},
		{"{\"a\":01}", 0, false},
		{"{\"a\":1.}", 0, false},
		{"{\"a\":.5}", 0, false},
		{"{\"a\":+1}", 0, false},
		{"{\"a\":1e}", 0, false},
		{"{\"a\":NaN}", 0, false},
		{"{'a':1}", 0, false},
		{"{\"a\":1,}", 0, false},
		{"[1,]", 0, false},
		{"{a:1}", 0, false},
		{"{\"a\" 1}", 0, false},
		{"{\"a\":tru}", 0, false},
		{"{\"a\":1", 0, false},
		{"\"abc", 0, false},
		{"", 0, false},
		{"   ", 0, false},
		{"{\"a\":1}\v", 0, false},
	};
	char err[128], deep[200];
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		len = v[i].len ? v[i].len : strlen(v[i].text);
		err[0] = '\0';
		if (api_json_strict(v[i].text, len, err, sizeof(err)) !=
		    v[i].ok)
			fail_msg("case %zu: %s", i, err);
		if (!v[i].ok)
			assert_true(err[0] != '\0');
	}
	/* depth: 32 levels pass, 33 do not */
	memset(deep, '[', 32);
	memset(deep + 32, ']', 32);
	assert_true(api_json_strict(deep, 64, err, sizeof(err)));
	memset(deep, '[', 33);
	memset(deep + 33, ']', 33);
	assert_false(api_json_strict(deep, 66, err, sizeof(err)));
	assert_false(api_json_strict(NULL, 0, err, sizeof(err)));
}

static void
test_json_object(void **state)
{
	char err[128];
	json_t *doc;

	(void)state;
	doc = api_json_object_parse("{\"a\":1}", 7, err, sizeof(err));
	assert_non_null(doc);
	json_decref(doc);
	assert_null(api_json_object_parse("{\"a\":1,\"a\":2}", 13, err,
					  sizeof(err)));
	assert_null(api_json_object_parse("[1]", 3, err, sizeof(err)));
	assert_string_equal(err, "the body must be a JSON object");
}

static void
test_query_param(void **state)
{
	static const struct {
		const char *query, *name;
		int rc;
		const char *value;
	} v[] = {
		{"a=1&b=2", "b", 1, "2"},
		{"a=1&b=2", "c", 0, NULL},
		{"ab=1", "a", 0, NULL},
		{"b=x%3Dy+z", "b", 1, "x=y z"},
		{"b=%00", "b", -1, NULL},
		{"b=%4", "b", -1, NULL},
		{"b=%zz", "b", -1, NULL},
		{"b=1&b=2", "b", -1, NULL}, /* repeated */
		{"b=", "b", 1, ""},
		{"", "b", 0, NULL},
		{"b=0123456789", "b", -1, NULL}, /* longer than out */
	};
	char out[8];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		int rc = api_query_param(v[i].query, v[i].name, out,
					 sizeof(out));

		if (rc != v[i].rc)
			fail_msg("case %zu: %d", i, rc);
		if (rc == 1)
			assert_string_equal(out, v[i].value);
	}
}

static void
test_cursors(void **state)
{
	static const struct {
		const char *text;
		enum page_cursor_kind kind;
		bool ok;
	} v[] = {
		{"1", PAGE_CURSOR_ID, true},
		{"9223372036854775807", PAGE_CURSOR_ID, true},
		{"9223372036854775808", PAGE_CURSOR_ID, false},
		{"9999999999999999999", PAGE_CURSOR_ID, false},
		{"0", PAGE_CURSOR_ID, false},
		{"01", PAGE_CURSOR_ID, false},
		{"-1", PAGE_CURSOR_ID, false},
		{"", PAGE_CURSOR_ID, false},
		{"1 ", PAGE_CURSOR_ID, false},
		{"1700000000000000 00000000-0000-4000-8000-00000000000a",
		 PAGE_CURSOR_TIME_ID, true},
		{"0 00000000-0000-4000-8000-00000000000a", PAGE_CURSOR_TIME_ID,
		 true},
		{"253402300799999999 00000000-0000-4000-8000-00000000000a",
		 PAGE_CURSOR_TIME_ID, true},
		{"253402300800000000 00000000-0000-4000-8000-00000000000a",
		 PAGE_CURSOR_TIME_ID, false},
		{"9999999999999999999 00000000-0000-4000-8000-00000000000a",
		 PAGE_CURSOR_TIME_ID, false},
		{"1 00000000-0000-4000-8000-00000000000A", PAGE_CURSOR_TIME_ID,
		 false},
		{"1  00000000-0000-4000-8000-00000000000a", PAGE_CURSOR_TIME_ID,
		 false},
		{"1 00000000-0000-4000-8000-00000000000a ", PAGE_CURSOR_TIME_ID,
		 false},
		{"1", PAGE_CURSOR_TIME_ID, false},
	};
	static const unsigned char key[PAGE_KEY_LEN] = {1, 2, 3};
	static const unsigned char other[PAGE_KEY_LEN] = {1, 2, 4};
	char enc[PAGE_SEALED_MAX], out[PAGE_CURSOR_MAX];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		if (page_cursor_valid(v[i].text, v[i].kind) != v[i].ok)
			fail_msg("case %zu", i);
		/* a sealed cursor opens iff its shape is valid */
		if (v[i].text[0] == '\0')
			continue;
		assert_int_equal(page_cursor_seal(key, "/l", v[i].text, enc,
						  sizeof(enc)),
				 0);
		assert_int_equal(
			page_cursor_open(key, "/l", enc, v[i].kind, out) == 0,
			v[i].ok);
		if (v[i].ok)
			assert_string_equal(out, v[i].text);
	}
	assert_int_equal(page_cursor_seal(key, "/l", "1", enc, sizeof(enc)), 0);
	assert_int_equal(page_cursor_open(key, "/l", enc, PAGE_CURSOR_ID, out),
			 0);
	assert_string_equal(out, "1");
	/* another key, another list, a changed byte, no tag: refused */
	assert_int_equal(
		page_cursor_open(other, "/l", enc, PAGE_CURSOR_ID, out), -1);
	assert_int_equal(page_cursor_open(key, "/m", enc, PAGE_CURSOR_ID, out),
			 -1);
	n = strlen(enc);
	enc[n - 1] = enc[n - 1] == 'A' ? 'B' : 'A';
	assert_int_equal(page_cursor_open(key, "/l", enc, PAGE_CURSOR_ID, out),
			 -1);
	assert_int_equal(page_cursor_open(key, "/l", "MQ", PAGE_CURSOR_ID, out),
			 -1);
	assert_int_equal(
		page_cursor_open(key, "/l", "MQ.", PAGE_CURSOR_ID, out), -1);
	assert_int_equal(page_cursor_open(key, "/l", "", PAGE_CURSOR_ID, out),
			 -1);
	/* a cursor too long for its buffer is not sealed */
	memset(out, '1', sizeof(out) - 1);
	out[sizeof(out) - 1] = '\0';
	assert_int_equal(page_cursor_seal(key, "/l", out, enc, 20), -1);
}

static void
test_page_read(void **state)
{
	static const struct {
		const char *query;
		int rc;
		int limit;
		const char *field;
	} v[] = {
		{"", 0, PAGE_LIMIT_DEFAULT, NULL},
		{"limit=1", 0, 1, NULL},
		{"limit=1000", 0, 1000, NULL},
		{"limit=1001", -1, 0, "limit"},
		{"limit=0", -1, 0, "limit"},
		{"limit=01", -1, 0, "limit"},
		{"limit=+5", -1, 0, "limit"},
		{"limit=5x", -1, 0, "limit"},
		{"limit=", -1, 0, "limit"},
		{"limit=99999999999999999999", -1, 0, "limit"},
		{"limit=1&limit=2", -1, 0, "limit"},
		{"cursor=MQ", -1, 0, "cursor"}, /* unsealed "1" */
		{"cursor=OTk5OTk5OTk5OTk5OTk5OTk5OQ", -1, 0, "cursor"},
		{"cursor=", -1, 0, "cursor"},
	};
	static const unsigned char key[PAGE_KEY_LEN] = {9};
	char after[PAGE_CURSOR_MAX], sealed[PAGE_SEALED_MAX], query[300];
	struct page page;
	const char *field;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		field = NULL;
		if (api_page_read(v[i].query, "/l", key, PAGE_CURSOR_ID, &page,
				  after, &field) != v[i].rc)
			fail_msg("case %zu", i);
		if (v[i].rc == 0)
			assert_int_equal(page.limit, v[i].limit);
		else
			assert_string_equal(field, v[i].field);
	}
	/* what the server sealed for this list reads back */
	assert_int_equal(
		page_cursor_seal(key, "/l", "42", sealed, sizeof(sealed)), 0);
	snprintf(query, sizeof(query), "limit=5&cursor=%s", sealed);
	assert_int_equal(api_page_read(query, "/l", key, PAGE_CURSOR_ID, &page,
				       after, &field),
			 0);
	assert_int_equal(page.limit, 5);
	assert_string_equal(page.after, "42");
	assert_int_equal(api_page_read(query, "/other", key, PAGE_CURSOR_ID,
				       &page, after, &field),
			 -1);
}

static void
test_label_sets(void **state)
{
	struct label_set req = {0, NULL}, tok = {0, NULL}, out = {0, NULL};
	char key[80], value[300];
	int i;

	(void)state;
	assert_int_equal(label_set_put(&req, "site", "evil"), LABEL_OK);
	assert_int_equal(label_set_put(&req, "room", "12"), LABEL_OK);
	assert_int_equal(label_set_put(&req, "room", "13"), LABEL_OK);
	assert_int_equal(req.n, 2);
	assert_int_equal(label_set_put(&req, "bad key", "x"), LABEL_ERR_KEY);
	assert_int_equal(label_set_put(&req, "", "x"), LABEL_ERR_KEY);
	assert_int_equal(label_set_put(&req, "k", "a\nb"), LABEL_ERR_VALUE);
	memset(value, 'v', 256);
	value[256] = '\0';
	assert_int_equal(label_set_put(&req, "k", value), LABEL_ERR_VALUE);
	value[255] = '\0';
	assert_int_equal(label_set_put(&req, "k", value), LABEL_OK);
	assert_int_equal(label_set_put(&tok, "site", "b7"), LABEL_OK);
	assert_int_equal(label_set_merge(&req, &tok, &out), LABEL_OK);
	assert_int_equal(out.n, 3);
	assert_string_equal(label_set_get(&out, "site"), "b7");
	assert_string_equal(label_set_get(&out, "room"), "13");
	assert_null(label_set_get(&out, "none"));
	label_set_clear(&out);
	label_set_clear(&req);
	/* at most LABELS_MAX in a set; a merge may hold both sets */
	for (i = 0; i < LABELS_MAX; i++) {
		snprintf(key, sizeof(key), "r%d", i);
		assert_int_equal(label_set_put(&req, key, "1"), LABEL_OK);
	}
	assert_int_equal(label_set_put(&req, "one-more", "1"),
			 LABEL_ERR_TOO_MANY);
	for (i = 1; i < LABELS_MAX; i++) {
		snprintf(key, sizeof(key), "t%d", i);
		assert_int_equal(label_set_put(&tok, key, "2"), LABEL_OK);
	}
	assert_int_equal(label_set_merge(&req, &tok, &out), LABEL_OK);
	assert_int_equal(out.n, 2 * LABELS_MAX);
	label_set_clear(&out);
	label_set_clear(&req);
	label_set_clear(&tok);
	label_set_clear(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_strict),
		cmocka_unit_test(test_json_object),
		cmocka_unit_test(test_query_param),
		cmocka_unit_test(test_cursors),
		cmocka_unit_test(test_page_read),
		cmocka_unit_test(test_label_sets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
