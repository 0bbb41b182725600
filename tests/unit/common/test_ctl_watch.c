/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetctl's --watch helpers (fleetd/ctl/watch.c): ctl_bar's cells and
 * percentage at the edges (nothing, all, over, no total, a buffer too
 * small), and ctl_watch printing a plain line (stdout is not a terminal
 * here) only when it changes, stopping when the poll says finished, and
 * returning -1 when a poll fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "watch.h"

static void
test_bar(void **state)
{
	char b[64];

	(void)state;
	size_t n = ctl_bar(b, sizeof(b), 0, 10);

	assert_int_equal(n, strlen(b));
	assert_string_equal(b, "[..............................]   0%  ");
	ctl_bar(b, sizeof(b), 5, 10);
	assert_string_equal(b, "[###############...............]  50%  ");
	ctl_bar(b, sizeof(b), 10, 10);
	assert_string_equal(b, "[##############################] 100%  ");
	/* more done than total (a count that moved between reads) */
	ctl_bar(b, sizeof(b), 12, 10);
	assert_string_equal(b, "[##############################] 120%  ");
	/* nothing to do: full, not a division by zero */
	ctl_bar(b, sizeof(b), 0, 0);
	assert_string_equal(b, "[##############################] 100%  ");
	assert_int_equal(ctl_bar(b, 10, 1, 2), 0);
	assert_string_equal(b, "");
}

struct script {
	const char *const *lines;
	size_t n, at;
	int fail_at; /* -1: never */
};

static int
poll_script(void *arg, bool bar, char *line, size_t len, bool *finished)
{
	struct script *s = arg;

	assert_false(bar); /* not a terminal */
	if ((int)s->at == s->fail_at)
		return -1;
	snprintf(line, len, "%s", s->lines[s->at]);
	s->at++;
	*finished = s->at == s->n;
	return 0;
}

/* Runs ctl_watch with stdout sent to a file; returns what it printed. */
static int
watch_into(struct script *s, char *out, size_t outlen)
{
	char path[] = "/tmp/test_ctl_watch.XXXXXX";
	int fd = mkstemp(path), saved = dup(STDOUT_FILENO), rc;
	FILE *f;
	size_t n;

	assert_true(fd >= 0 && saved >= 0);
	fflush(stdout);
	dup2(fd, STDOUT_FILENO);
	rc = ctl_watch(true, 0, poll_script, s);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	close(fd);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(out, 1, outlen - 1, f);
	out[n] = '\0';
	fclose(f);
	unlink(path);
	return rc;
}

static void
test_watch_plain(void **state)
{
	static const char *const lines[] = {"0/2 done", "0/2 done", "1/2 done",
					    "2/2 done"};
	struct script s = {lines, 4, 0, -1};
	char out[256];

	(void)state;
	assert_int_equal(watch_into(&s, out, sizeof(out)), 0);
	assert_int_equal(s.at, 4); /* polled until finished */
	assert_string_equal(out, "0/2 done\n1/2 done\n2/2 done\n");
}

static void
test_watch_fails(void **state)
{
	static const char *const lines[] = {"0/2 done", "1/2 done", "2/2 done"};
	struct script s = {lines, 3, 0, 1};
	char out[256];

	(void)state;
	assert_int_equal(watch_into(&s, out, sizeof(out)), -1);
	assert_string_equal(out, "0/2 done\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bar),
		cmocka_unit_test(test_watch_plain),
		cmocka_unit_test(test_watch_fails),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
