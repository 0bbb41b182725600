/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit list's filters (core/audit_filter.c): which texts, action
 * families and time ranges are accepted, and the one time format (a real
 * UTC date as the API writes it; 2026-02-30 and other shapes refused).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/audit.h"

static void
test_time(void **state)
{
	(void)state;
	assert_int_equal(audit_time_parse("2026-12-01T09:00:00Z"),
			 INT64_C(1796115600));
	assert_int_equal(audit_time_parse("1970-01-01T00:00:01Z"), 1);
	assert_int_equal(audit_time_parse("2024-02-29T00:00:00Z"),
			 INT64_C(1709164800));
	assert_int_equal(audit_time_parse("2026-02-29T00:00:00Z"), -1);
	assert_int_equal(audit_time_parse("2026-02-30T00:00:00Z"), -1);
	assert_int_equal(audit_time_parse("2026-13-01T00:00:00Z"), -1);
	assert_int_equal(audit_time_parse("2026-12-01T24:00:00Z"), -1);
	assert_int_equal(audit_time_parse("2026-12-01T09:00:60Z"), -1);
	assert_int_equal(audit_time_parse("2026-12-01 09:00:00Z"), -1);
	assert_int_equal(audit_time_parse("2026-12-01T09:00:00"), -1);
	assert_int_equal(audit_time_parse("2026-12-01T09:00:00+01:00"), -1);
	assert_int_equal(audit_time_parse("+026-12-01T09:00:00Z"), -1);
	assert_int_equal(audit_time_parse("1970-01-01T00:00:00Z"), -1);
	assert_int_equal(audit_time_parse(""), -1);
}

static void
test_filter(void **state)
{
	struct audit_filter f = {NULL, NULL, NULL, 0, 0};
	char long_text[AUDIT_FILTER_TEXT_MAX + 2];

	(void)state;
	assert_null(audit_filter_check(&f));
	f.actor = "alice";
	f.action = "device.*";
	f.target = "site=b7";
	f.since = 100;
	f.until = 200;
	assert_null(audit_filter_check(&f));
	f.action = "device.update";
	assert_null(audit_filter_check(&f));
	f.action = "*";
	assert_string_equal(audit_filter_check(&f), "action");
	f.action = ".*";
	assert_string_equal(audit_filter_check(&f), "action");
	f.action = "device*";
	assert_string_equal(audit_filter_check(&f), "action");
	f.action = "device.*.x";
	assert_string_equal(audit_filter_check(&f), "action");
	f.action = "";
	assert_string_equal(audit_filter_check(&f), "action");
	f.action = NULL;
	f.actor = "a\nb";
	assert_string_equal(audit_filter_check(&f), "actor");
	memset(long_text, 'x', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	f.actor = NULL;
	f.target = long_text;
	assert_string_equal(audit_filter_check(&f), "target");
	f.target = NULL;
	f.until = 100;
	assert_string_equal(audit_filter_check(&f), "until");
	f.since = -1;
	assert_string_equal(audit_filter_check(&f), "since");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_filter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
