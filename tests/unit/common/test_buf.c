/* SPDX-License-Identifier: Apache-2.0 */
/* Bounded buffers never grow past their maximum. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "buf.h"

#include <stdlib.h>
#include <string.h>

static void
test_append_until_max(void **state)
{
	struct buf b;
	char chunk[100];

	(void)state;
	memset(chunk, 'x', sizeof(chunk));
	buf_init(&b, 1000);
	for (int i = 0; i < 10; i++)
		assert_int_equal(buf_append(&b, chunk, sizeof(chunk)), 0);
	assert_int_equal(b.len, 1000);
	assert_int_equal(buf_append(&b, "y", 1), -1);
	assert_int_equal(b.len, 1000);
	assert_int_equal(b.data[1000], '\0');
	buf_free(&b);
	buf_free(&b); /* twice is harmless */
}

static void
test_printf_and_detach(void **state)
{
	struct buf b;
	size_t len = 0;
	char *s;

	(void)state;
	buf_init(&b, 16);
	assert_int_equal(buf_printf(&b, "%s-%d", "seq", 42), 0);
	assert_int_equal(buf_printf(&b, "%s", "01234567890"), -1);
	assert_string_equal(b.data, "seq-42");
	s = buf_detach(&b, &len);
	assert_int_equal(len, 6);
	assert_string_equal(s, "seq-42");
	assert_null(b.data);
	free(s);
	s = buf_detach(&b, &len); /* empty: an empty string, never NULL */
	assert_non_null(s);
	assert_int_equal(len, 0);
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_until_max),
		cmocka_unit_test(test_printf_and_detach),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
