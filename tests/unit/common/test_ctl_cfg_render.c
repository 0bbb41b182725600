/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit test of what fleetctl's configuration commands print
 * (fleetd/ctl/cfg_render.c): table-driven diffs of two documents and
 * merge patches rendered as changes (JSON Pointer paths with ~0/~1,
 * nested objects, arrays whole, a line limit, control characters from a
 * hostile server neutralised), the progress line of a change, and
 * NAME@VERSION references.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cfg.h"

/* Output of a printer into a string (caller frees). */
struct capture {
	char *text;
	size_t len;
	FILE *f;
};

static void
capture_open(struct capture *c)
{
	memset(c, 0, sizeof(*c));
	c->f = open_memstream(&c->text, &c->len);
	assert_non_null(c->f);
}

static void
capture_close(struct capture *c)
{
	fclose(c->f);
}

static json_t *
parse(const char *s)
{
	json_error_t e;
	json_t *v;

	if (s == NULL)
		return NULL;
	v = json_loads(s, JSON_DECODE_ANY, &e);
	if (v == NULL)
		fail_msg("bad test JSON %s: %s", s, e.text);
	return v;
}

static const struct {
	const char *from, *to;
	size_t count;
	const char *lines;
} diff_cases[] = {
	{"{}", "{}", 0, ""},
	{"{\"a\":1}", "{\"a\":1}", 0, ""},
	{"{\"a\":1}", "{\"a\":2}", 1, "  ~ /a: 1 -> 2\n"},
	{"{}", "{\"a\":{\"b\":true}}", 1, "  + /a: {\"b\":true}\n"},
	{"{\"a\":1,\"b\":2}", "{\"b\":2}", 1, "  - /a: 1\n"},
	{"{\"m\":{\"port\":1883,\"host\":\"x\"}}",
	 "{\"m\":{\"port\":8883,\"host\":\"x\",\"tls\":true}}", 2,
	 "  ~ /m/port: 1883 -> 8883\n  + /m/tls: true\n"},
	/* arrays are compared whole */
	{"{\"n\":[1,2]}", "{\"n\":[1,3]}", 1, "  ~ /n: [1,2] -> [1,3]\n"},
	/* RFC 6901 escapes; members in byte order */
	{"{\"a/b\":1,\"c~d\":1}", "{\"a/b\":2,\"c~d\":2}", 2,
	 "  ~ /a~1b: 1 -> 2\n  ~ /c~0d: 1 -> 2\n"},
	/* a member that changes type */
	{"{\"a\":{\"b\":1}}", "{\"a\":\"x\"}", 1,
	 "  ~ /a: {\"b\":1} -> \"x\"\n"},
	/* no document on one side */
	{NULL, "{\"a\":1}", 1, "  + /a: 1\n"},
	{"{\"a\":1}", NULL, 1, "  - /a: 1\n"},
	/* not objects: the whole document */
	{"[1]", "[2]", 1, "  ~ (document): [1] -> [2]\n"},
	/* a control character in a key cannot reach the terminal raw */
	{"{}", "{\"\\u001b[2J\":1}", 1, "  + /?[2J: 1\n"},
};

static void
test_diff_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(diff_cases) / sizeof(diff_cases[0]);
	     i++) {
		json_t *a = parse(diff_cases[i].from);
		json_t *b = parse(diff_cases[i].to);
		struct capture c;
		size_t n;

		capture_open(&c);
		n = cfg_diff_print(c.f, a, b, "  ", 50);
		capture_close(&c);
		if (n != diff_cases[i].count ||
		    strcmp(c.text, diff_cases[i].lines) != 0)
			fail_msg("case %zu: %zu lines:\n%s", i, n, c.text);
		free(c.text);
		json_decref(a);
		json_decref(b);
	}
}

static void
test_diff_line_limit(void **state)
{
	json_t *a = json_object(), *b = json_object();
	struct capture c;
	char key[16];

	(void)state;
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		json_object_set_new(b, key, json_integer(i));
	}
	capture_open(&c);
	assert_int_equal(cfg_diff_print(c.f, a, b, "", 3), 10);
	capture_close(&c);
	assert_string_equal(c.text, "+ /k0: 0\n+ /k1: 1\n+ /k2: 2\n"
				    "... 7 more\n");
	free(c.text);
	json_decref(a);
	json_decref(b);
}

static void
test_long_value_is_cut(void **state)
{
	char big[1000];
	json_t *b;
	struct capture c;

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	b = json_pack("{s:s}", "a", big);
	capture_open(&c);
	assert_int_equal(cfg_diff_print(c.f, NULL, b, "", 5), 1);
	capture_close(&c);
	assert_true(strlen(c.text) < 200);
	assert_non_null(strstr(c.text, "...\n"));
	free(c.text);
	json_decref(b);
}

static const struct {
	const char *base, *patch;
	const char *lines;
} patch_cases[] = {
	{"{\"a\":1}", "{\"a\":2}", "~ /a: 1 -> 2\n"},
	{"{\"a\":1}", "{\"a\":null}", "- /a: 1\n"},
	{"{\"a\":1}", "{\"b\":null}", ""}, /* removes nothing */
	{"{\"m\":{\"p\":1,\"q\":2}}", "{\"m\":{\"p\":3,\"q\":null}}",
	 "~ /m/p: 1 -> 3\n- /m/q: 2\n"},
	{"{\"a\":1}", "{\"a\":1}", ""},
	/* base unknown: what the patch sets and removes */
	{NULL, "{\"a\":{\"b\":1},\"c\":null}", "+ /a: {\"b\":1}\n- /c\n"},
	{"{\"a\":[1]}", "{\"a\":{\"x\":1}}", "~ /a: [1] -> {\"x\":1}\n"},
};

static void
test_patch_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(patch_cases) / sizeof(patch_cases[0]);
	     i++) {
		json_t *a = parse(patch_cases[i].base);
		json_t *p = parse(patch_cases[i].patch);
		struct capture c;

		capture_open(&c);
		cfg_patch_print(c.f, a, p, "", 50);
		capture_close(&c);
		if (strcmp(c.text, patch_cases[i].lines) != 0)
			fail_msg("case %zu:\n%s", i, c.text);
		free(c.text);
		json_decref(a);
		json_decref(p);
	}
}

static void
test_progress(void **state)
{
	struct cfg_counts c;
	json_t *ch = parse("{\"matched\":20,\"counts\":{\"pending\":10,"
			   "\"applied\":7,\"failed\":1,\"offline\":2}}");
	json_t *bad = parse("{\"pending\":\"x\"}");
	char line[256];

	(void)state;
	assert_int_equal(cfg_counts_read(ch, &c), 0);
	assert_int_equal(c.total, 20);
	cfg_progress_text(&c, false, line, sizeof(line));
	assert_string_equal(line,
			    "7/20 applied, 1 failed, 2 offline, 10 pending");
	cfg_progress_text(&c, true, line, sizeof(line));
	assert_string_equal(line, "[############..................]  40%  "
				  "7/20 applied, 1 failed, 2 offline, 10 "
				  "pending");
	assert_int_equal(cfg_counts_read(bad, &c), -1);
	/* nothing matched: a full bar, not a division by zero */
	memset(&c, 0, sizeof(c));
	cfg_progress_text(&c, true, line, sizeof(line));
	assert_non_null(strstr(line, "100%"));
	json_decref(ch);
	json_decref(bad);
}

static void
test_profile_ref(void **state)
{
	char name[16];
	long v;
	bool pinned;

	(void)state;
	assert_int_equal(
		cfg_parse_profile_ref("base", name, sizeof(name), &v, &pinned),
		0);
	assert_string_equal(name, "base");
	assert_false(pinned);
	assert_int_equal(cfg_parse_profile_ref("base@3", name, sizeof(name), &v,
					       &pinned),
			 0);
	assert_true(pinned);
	assert_int_equal(v, 3);
	assert_int_equal(cfg_parse_profile_ref("base@latest", name,
					       sizeof(name), &v, &pinned),
			 0);
	assert_false(pinned);
	assert_int_equal(
		cfg_parse_profile_ref("@3", name, sizeof(name), &v, &pinned),
		-1);
	assert_int_equal(cfg_parse_profile_ref("base@0", name, sizeof(name), &v,
					       &pinned),
			 -1);
	assert_int_equal(cfg_parse_profile_ref("base@-1", name, sizeof(name),
					       &v, &pinned),
			 -1);
	assert_int_equal(cfg_parse_profile_ref("base@3x", name, sizeof(name),
					       &v, &pinned),
			 -1);
	assert_int_equal(
		cfg_parse_profile_ref("base@", name, sizeof(name), &v, &pinned),
		-1);
	assert_int_equal(cfg_parse_profile_ref("a-name-longer-than-16", name,
					       sizeof(name), &v, &pinned),
			 -1);
}

static void
test_short_hash_and_nulls(void **state)
{
	char cell[80] = "ce2a705118563b3328ecccb3cc3818de9d9a1cbc818c4e74af9a"
			"00427cfe38c2";
	char where[64];
	json_t *ok = parse("{\"a\":{\"b\":[null,1]},\"c\":\"x\"}");
	json_t *bad = parse("{\"a\":{\"b\":1,\"c~/\":null}}");

	(void)state;
	/* in place, as a table cell is shortened */
	assert_string_equal(cfg_short_hash(cell, cell, 17), "ce2a705118563b33");
	assert_null(cfg_short_hash(NULL, cell, sizeof(cell)));
	/* nulls in arrays are fine; in objects they are named */
	assert_int_equal(cfg_doc_nulls(ok, where, sizeof(where)), 0);
	assert_int_equal(cfg_doc_nulls(bad, where, sizeof(where)), -1);
	assert_string_equal(where, "/a/c~0~1");
	json_decref(ok);
	json_decref(bad);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diff_table),
		cmocka_unit_test(test_diff_line_limit),
		cmocka_unit_test(test_long_value_is_cut),
		cmocka_unit_test(test_patch_table),
		cmocka_unit_test(test_progress),
		cmocka_unit_test(test_profile_ref),
		cmocka_unit_test(test_short_hash_and_nulls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
