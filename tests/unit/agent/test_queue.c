/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Report queue and sequence numbers: reports come out in seq order however
 * they were written (also across the 9 -> 10 digit boundary), removal is
 * idempotent, the last seq survives a restart and never goes below a
 * queued report.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_int.h"
#include "agent_test_util.h"
#include "atomicfile.h"

static void
push(const char *dir, uint64_t seq)
{
	char text[64], err[256];
	int n = snprintf(text, sizeof(text), "{\"type\":\"t\",\"seq\":%llu}",
			 (unsigned long long)seq);

	assert_int_equal(
		agent_queue_push(dir, seq, text, (size_t)n, err, sizeof(err)),
		0);
}

static void
test_oldest_first(void **state)
{
	static const uint64_t order[] = {10, 3, 9, 100, 1, 11};
	static const uint64_t sorted[] = {1, 3, 9, 10, 11, 100};
	const char *dir = *state;
	char err[256], *text, want[64];
	uint64_t seq;
	size_t len, i;

	assert_int_equal(agent_queue_count(dir), 0);
	assert_int_equal(
		agent_queue_oldest(dir, &seq, &text, &len, err, sizeof(err)),
		0);
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		push(dir, order[i]);
	assert_int_equal(agent_queue_count(dir), 6);
	for (i = 0; i < sizeof(sorted) / sizeof(sorted[0]); i++) {
		assert_int_equal(agent_queue_oldest(dir, &seq, &text, &len, err,
						    sizeof(err)),
				 1);
		assert_int_equal(seq, sorted[i]);
		snprintf(want, sizeof(want), "{\"type\":\"t\",\"seq\":%llu}",
			 (unsigned long long)sorted[i]);
		assert_string_equal(text, want);
		assert_int_equal(len, strlen(want));
		free(text);
		assert_int_equal(agent_queue_remove(dir, seq, err, sizeof(err)),
				 0);
		/* removing twice is harmless (resend after a crash) */
		assert_int_equal(agent_queue_remove(dir, seq, err, sizeof(err)),
				 0);
	}
	assert_int_equal(agent_queue_count(dir), 0);
}

static void
test_seq_persists_and_covers_queue(void **state)
{
	const char *dir = *state;
	char err[256], path[AGENT_PATH_MAX];
	uint64_t last;

	assert_int_equal(agent_seq_load(dir, &last, err, sizeof(err)), 0);
	assert_int_equal(last, 0);
	assert_int_equal(agent_seq_store(dir, 41, err, sizeof(err)), 0);
	assert_int_equal(agent_seq_load(dir, &last, err, sizeof(err)), 0);
	assert_int_equal(last, 41);
	/* a queued report above the seq file wins */
	push(dir, 57);
	assert_int_equal(agent_seq_load(dir, &last, err, sizeof(err)), 0);
	assert_int_equal(last, 57);
	/* garbage in the seq file is an error, not a reset to 0 */
	assert_int_equal(agent_path(path, sizeof(path), dir, AGENT_SEQ_FILE),
			 0);
	assert_int_equal(
		atomic_write_file(path, "x1", 2, 0600, err, sizeof(err)), 0);
	assert_int_equal(agent_seq_load(dir, &last, err, sizeof(err)), -1);
}

static void
test_foreign_files_ignored_and_limits(void **state)
{
	const char *dir = *state;
	char err[256], path[AGENT_PATH_MAX], *text, *big;
	uint64_t seq;
	size_t len;

	push(dir, 5);
	/* temp files and strangers in queue/ are not reports */
	snprintf(path, sizeof(path), "%s/queue/00000000000000000001.json.tmp",
		 dir);
	assert_int_equal(
		atomic_write_file(path, "x", 1, 0600, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/queue/README", dir);
	assert_int_equal(
		atomic_write_file(path, "x", 1, 0600, err, sizeof(err)), 0);
	assert_int_equal(agent_queue_count(dir), 1);
	assert_int_equal(
		agent_queue_oldest(dir, &seq, &text, &len, err, sizeof(err)),
		1);
	assert_int_equal(seq, 5);
	free(text);
	/* seq 0 and oversized reports are refused */
	assert_int_equal(agent_queue_push(dir, 0, "{}", 2, err, sizeof(err)),
			 -1);
	big = calloc(1, AGENT_REPORT_MAX + 2);
	assert_non_null(big);
	assert_int_equal(agent_queue_push(dir, 6, big, AGENT_REPORT_MAX + 1,
					  err, sizeof(err)),
			 -1);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_oldest_first, atu_dir_setup, atu_dir_teardown),
		cmocka_unit_test_setup_teardown(
			test_seq_persists_and_covers_queue, atu_dir_setup,
			atu_dir_teardown),
		cmocka_unit_test_setup_teardown(
			test_foreign_files_ignored_and_limits, atu_dir_setup,
			atu_dir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
