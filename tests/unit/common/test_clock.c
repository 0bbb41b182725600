/* SPDX-License-Identifier: Apache-2.0 */
/* RFC 3339 text: the one spelling fleetd writes, read back exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "clock.h"

#include <stdint.h>

static int64_t
parsed(const char *s)
{
	int64_t t = -42;

	return clock_parse_rfc3339(s, &t) == 0 ? t : -1;
}

static void
test_parse_round_trip(void **state)
{
	static const int64_t times[] = {0, 1, 951782400 /* 2000-02-29 */,
					1796126400, 4102444799};
	char text[40];

	(void)state;
	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		clock_format_rfc3339((time_t)times[i], text, sizeof(text));
		assert_int_equal(parsed(text), times[i]);
	}
	assert_int_equal(parsed("2026-12-01T12:00:00Z"), 1796126400);
}

static void
test_parse_refuses(void **state)
{
	static const char *const bad[] = {
		"",
		"2026-12-01T12:00:00", /* no zone */
		"2026-12-01T12:00:00+00:00", /* another spelling */
		"2026-12-01T12:00:00.5Z", /* a fraction */
		"2026-12-01 12:00:00Z", /* no T */
		"2026-12-01t12:00:00z",
		"2026-12-01T12:00:00Z ", /* trailing text */
		"+026-12-01T12:00:00Z",
		"1969-12-31T23:59:59Z", /* before the epoch */
		"2026-02-29T00:00:00Z", /* not a leap year */
		"2026-02-30T00:00:00Z",
		"2026-04-31T00:00:00Z",
		"2026-13-01T00:00:00Z",
		"2026-00-01T00:00:00Z",
		"2026-12-00T00:00:00Z",
		"2026-12-01T24:00:00Z",
		"2026-12-01T12:60:00Z",
		"2026-12-01T12:00:60Z", /* no leap seconds */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t t = 7;

		assert_int_equal(clock_parse_rfc3339(bad[i], &t), -1);
		assert_int_equal(t, 7); /* untouched */
	}
	assert_int_equal(parsed("2024-02-29T00:00:00Z"), 1709164800);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_round_trip),
		cmocka_unit_test(test_parse_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
