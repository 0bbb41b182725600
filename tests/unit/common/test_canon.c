/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Canonical JSON: the number, string and sorting examples of RFC 8785
 * (JCS), the documented differences (UTF-8 key order, exact integers),
 * limits, and the SHA-256 of a known text (computed with sha256sum).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "canon.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void
expect_canon(const char *input, const char *want)
{
	json_error_t err;
	json_t *doc = json_loads(input, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
	size_t len = 0;
	char *got;

	if (doc == NULL)
		fail_msg("input does not parse: %s (%s)", input, err.text);
	got = canon_json(doc, &len);
	assert_non_null(got);
	assert_string_equal(got, want);
	assert_int_equal(len, strlen(want));
	free(got);
	json_decref(doc);
}

/* RFC 8785 appendix B: IEEE 754 bit patterns and their JCS text. */
static const struct {
	uint64_t bits;
	const char *text;
} number_cases[] = {
	{0x0000000000000000ULL, "0"},
	{0x8000000000000000ULL, "0"},
	{0x0000000000000001ULL, "5e-324"},
	{0x8000000000000001ULL, "-5e-324"},
	{0x7fefffffffffffffULL, "1.7976931348623157e+308"},
	{0xffefffffffffffffULL, "-1.7976931348623157e+308"},
	{0x4340000000000000ULL, "9007199254740992"},
	{0xc340000000000000ULL, "-9007199254740992"},
	/* JCS: 295147905179352830000; past int64 we keep the exponent
	 * form (canon.h), so that it parses back. */
	{0x4430000000000000ULL, "2.9514790517935283e+20"},
	{0x44b52d02c7e14af5ULL, "9.999999999999997e+22"},
	{0x44b52d02c7e14af6ULL, "1e+23"},
	{0x44b52d02c7e14af7ULL, "1.0000000000000001e+23"},
	{0x444b1ae4d6e2ef4eULL, "9.999999999999997e+20"}, /* JCS: digits */
	{0x444b1ae4d6e2ef4fULL, "9.999999999999999e+20"}, /* JCS: digits */
	/* the largest integral double below 2^63: digits, as JCS */
	{0x43dfffffffffffffULL, "9223372036854775000"},
	{0x43e0000000000000ULL, "9.223372036854776e+18"}, /* 2^63 */
	{0x444b1ae4d6e2ef50ULL, "1e+21"},
	{0x3eb0c6f7a0b5ed8cULL, "9.999999999999997e-7"},
	{0x3eb0c6f7a0b5ed8dULL, "0.000001"},
	{0x41b3de4355555553ULL, "333333333.3333332"},
	{0x41b3de4355555554ULL, "333333333.33333325"},
	{0x41b3de4355555555ULL, "333333333.3333333"},
	{0x41b3de4355555556ULL, "333333333.3333334"},
	{0x41b3de4355555557ULL, "333333333.33333343"},
	{0xbecbf647612f3696ULL, "-0.0000033333333333333333"},
	{0x43143ff3c1cb0959ULL, "1424953923781206.2"},
};

static void
test_jcs_numbers(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(number_cases) / sizeof(number_cases[0]); i++) {
		double d;
		json_t *v;
		char *got;

		memcpy(&d, &number_cases[i].bits, sizeof(d));
		v = json_real(d);
		assert_non_null(v);
		got = canon_json(v, NULL);
		assert_non_null(got);
		if (strcmp(got, number_cases[i].text) != 0)
			fail_msg("bits %016llx: got %s, want %s",
				 (unsigned long long)number_cases[i].bits, got,
				 number_cases[i].text);
		free(got);
		json_decref(v);
	}
}

/* RFC 8785 section 3.2.2's example, as one document. */
static void
test_jcs_example(void **state)
{
	(void)state;
	expect_canon("{\n  \"numbers\": [333333333.33333329, 1E30, 4.50, 2e-3, "
		     "0.000000000000000000000000001],\n"
		     "  \"string\": "
		     "\"\\u20ac$\\u000F\\u000aA'"
		     "\\u0042\\u0022\\u005c\\\\\\\"\\/\",\n"
		     "  \"literals\": [null, true, false]\n}",
		     "{\"literals\":[null,true,false],\"numbers\":[333333333."
		     "3333333,1e+30,4.5,0.002,1e-27],\"string\":\"\xe2\x82\xac$"
		     "\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}");
}

static void
test_strings(void **state)
{
	json_t *v;
	char *got;
	size_t len = 0;

	(void)state;
	/* Named escapes, \u00XX lowercase for other controls, DEL and
	 * U+2028 as themselves, '/' not escaped. */
	expect_canon("\"\\b\\f\\n\\r\\t\\u0001\\u001F\\u007f\\u2028/\"",
		     "\"\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\xe2\x80\xa8/\"");
	/* U+0000 inside a string (jansson keeps the length). */
	v = json_stringn("a\0b", 3);
	assert_non_null(v);
	got = canon_json(v, &len);
	assert_non_null(got);
	assert_string_equal(got, "\"a\\u0000b\"");
	assert_int_equal(len, 10);
	free(got);
	json_decref(v);
	/* Non-ASCII stays UTF-8, never \u-escaped. */
	expect_canon("\"\\u00f6\\ud83d\\ude00\"",
		     "\"\xc3\xb6\xf0\x9f\x98\x80\"");
}

/*
 * RFC 8785 section 3.2.3's sorting example. JCS orders by UTF-16 code
 * units and puts U+1F600 (D83D DE00) before U+FB33; byte order puts
 * U+FB33 (EF AC B3) first. That is the one documented difference.
 */
static void
test_key_order(void **state)
{
	(void)state;
	expect_canon(
		"{\"\\u20ac\":\"Euro Sign\",\"\\r\":\"Carriage Return\","
		"\"\\ufb33\":\"Hebrew Letter Dalet With Dagesh\","
		"\"1\":\"One\",\"\\ud83d\\ude00\":\"Emoji: Grinning Face\","
		"\"\\u0080\":\"Control\",\"\\u00f6\":\"Latin Small Letter O "
		"With Diaeresis\"}",
		"{\"\\r\":\"Carriage Return\",\"1\":\"One\","
		"\"\xc2\x80\":\"Control\","
		"\"\xc3\xb6\":\"Latin Small Letter O With Diaeresis\","
		"\"\xe2\x82\xac\":\"Euro Sign\","
		"\"\xef\xac\xb3\":\"Hebrew Letter Dalet With Dagesh\","
		"\"\xf0\x9f\x98\x80\":\"Emoji: Grinning Face\"}");
	/* A key that is a prefix of another sorts first; nested objects are
	 * sorted too; arrays keep their order. */
	expect_canon("{\"ab\":1,\"a\":{\"z\":[3,2,1],\"b\":{}},\"\":[]}",
		     "{\"\":[],\"a\":{\"b\":{},\"z\":[3,2,1]},\"ab\":1}");
}

static void
test_integers_and_whitespace(void **state)
{
	(void)state;
	/* Exact integers over int64 (JCS would round 2^53 + 1). */
	expect_canon("[9007199254740993, -9223372036854775808, "
		     "9223372036854775807, 0, -0]",
		     "[9007199254740993,-9223372036854775808,"
		     "9223372036854775807,0,0]");
	/* A real with an integral value reads like the integer. */
	expect_canon("[1.0, -2.50e1, 1e2, 100]", "[1,-25,100,100]");
	/* Past int64 an integral real keeps its exponent, so the text parses
	 * back (found by fuzz_merge_patch). */
	expect_canon("[1e20, -1e19, 1e18]",
		     "[1e+20,-1e+19,1000000000000000000]");
	expect_canon(" \t\n{ \"a\" :\r\n [ ] , \"b\":null }\n",
		     "{\"a\":[],\"b\":null}");
	expect_canon("\"x\"", "\"x\"");
	expect_canon("true", "true");
}

static void
test_limits(void **state)
{
	json_t *root, *cur;
	int i;
	char *got;

	(void)state;
	assert_null(canon_json(NULL, NULL));
	/* One level past CANON_MAX_DEPTH is refused, the limit itself is
	 * accepted. */
	root = json_array();
	cur = root;
	for (i = 0; i < CANON_MAX_DEPTH; i++) {
		json_t *next = json_array();

		json_array_append_new(cur, next);
		cur = next;
	}
	got = canon_json(root, NULL);
	assert_non_null(got);
	assert_int_equal(strlen(got), 2 * (CANON_MAX_DEPTH + 1));
	free(got);
	json_array_append_new(cur, json_array());
	assert_null(canon_json(root, NULL));
	json_decref(root);
}

static void
test_hash(void **state)
{
	json_t *a, *b;
	char ha[65], hb[65];

	(void)state;
	a = json_loads("{ \"b\" : [true, null], \"a\" : 1.0 }", 0, NULL);
	b = json_loads("{\"a\":1,\"b\":[true,null]}", 0, NULL);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(canon_sha256_hex(a, ha), 0);
	assert_int_equal(canon_sha256_hex(b, hb), 0);
	/* printf '{"a":1,"b":[true,null]}' | sha256sum */
	assert_string_equal(ha, "1cc69c7fa23616ca2ec3ee70d24390a6225c8832db8a"
				"4c814c7e0e7f942f8668");
	assert_string_equal(ha, hb);
	assert_int_equal(canon_sha256_hex_bytes("{}", 2, ha), 0);
	assert_string_equal(ha, "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe7"
				"7e8310c060f61caaff8a");
	assert_int_equal(canon_sha256_hex(NULL, ha), -1);
	json_decref(a);
	json_decref(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jcs_numbers),
		cmocka_unit_test(test_jcs_example),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_key_order),
		cmocka_unit_test(test_integers_and_whitespace),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_hash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
