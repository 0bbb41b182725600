/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The log's rate limit: a flood of similar lines from one call site and
 * context is cut to a burst per window and summarised with a count; other
 * contexts, other call sites and errors are not held back. The lines are
 * read back from stderr (redirected to a temporary file).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static FILE *capture;
static int saved_stderr = -1;

static int
setup(void **state)
{
	(void)state;
	capture = tmpfile();
	if (capture == NULL)
		return -1;
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	if (saved_stderr < 0 || dup2(fileno(capture), STDERR_FILENO) < 0)
		return -1;
	log_setup("test", LOG_LEVEL_DEBUG, false);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	fclose(capture);
	log_set_rate_limit(20, 10000);
	return 0;
}

/* Lines written since the last call that contain needle. */
static int
count_lines(const char *needle)
{
	char line[4096];
	int n = 0;

	fflush(stderr);
	rewind(capture);
	while (fgets(line, sizeof(line), capture) != NULL) {
		if (strstr(line, needle) != NULL)
			n++;
	}
	return n;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static void
flood(const char *ctx, int n)
{
	for (int i = 0; i < n; i++)
		log_write(LOG_LEVEL_INFO, ctx, "channel: %s: %s", "malformed",
			  "a message is one JSON object");
}

static void
test_flood_is_cut_and_counted(void **state)
{
	(void)state;
	log_set_rate_limit(5, 200);
	flood("dev-a", 10000);
	assert_int_equal(count_lines("info [dev-a] channel: malformed"), 5);
	assert_int_equal(count_lines("suppressed"), 0);
	/* After the window the next line brings the summary first. */
	sleep_ms(250);
	log_write(LOG_LEVEL_INFO, NULL, "something else");
	assert_int_equal(count_lines("suppressed 9995 similar lines: "
				     "[dev-a] channel: malformed"),
			 1);
	assert_int_equal(count_lines("something else"), 1);
	/* A new window admits a burst again. */
	flood("dev-a", 3);
	assert_int_equal(count_lines("info [dev-a] channel: malformed"), 5 + 3);
}

static void
test_flush_after_quiet(void **state)
{
	(void)state;
	log_set_rate_limit(2, 100);
	flood("dev-q", 50);
	log_flush_suppressed();
	assert_int_equal(count_lines("suppressed"), 0);
	sleep_ms(150);
	log_flush_suppressed();
	assert_int_equal(count_lines("suppressed 48 similar lines"), 1);
}

static void
test_contexts_and_sites_are_separate(void **state)
{
	(void)state;
	log_set_rate_limit(2, 60000);
	flood("dev-a", 100);
	flood("dev-b", 100);
	for (int i = 0; i < 100; i++)
		log_write(LOG_LEVEL_INFO, "dev-a", "another call site %d", i);
	assert_int_equal(count_lines("info [dev-a] channel: malformed"), 2);
	assert_int_equal(count_lines("info [dev-b] channel: malformed"), 2);
	assert_int_equal(count_lines("another call site"), 2);
}

static void
test_errors_always_pass(void **state)
{
	(void)state;
	log_set_rate_limit(1, 60000);
	for (int i = 0; i < 50; i++)
		log_write(LOG_LEVEL_ERROR, NULL, "disk full %d", i);
	assert_int_equal(count_lines("disk full"), 50);
}

static void
test_limit_off(void **state)
{
	(void)state;
	log_set_rate_limit(0, 0);
	flood("dev-c", 300);
	assert_int_equal(count_lines("info [dev-c] channel: malformed"), 300);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_flood_is_cut_and_counted,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_after_quiet, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_contexts_and_sites_are_separate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors_always_pass, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_limit_off, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
