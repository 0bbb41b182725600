/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Atomic file writes: contents and mode, bounded reads, and a writer killed
 * at random moments never leaves a partial file behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "atomicfile.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[64];
static char target[128];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/fleet-atomic-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(target, sizeof(target), "%s/identity", dir);
	return 0;
}

static int
teardown(void **state)
{
	struct dirent *de;
	char path[512];
	DIR *d = opendir(dir);

	(void)state;
	while (d != NULL && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	if (d != NULL)
		closedir(d);
	rmdir(dir);
	return 0;
}

static void
test_write_read_mode(void **state)
{
	char err[256];
	char *data = NULL;
	size_t len = 0;
	struct stat st;

	(void)state;
	assert_int_equal(
		atomic_write_file(target, "first", 5, 0600, err, sizeof(err)),
		0);
	assert_int_equal(
		atomic_write_file(target, "second", 6, 0600, err, sizeof(err)),
		0);
	assert_int_equal(stat(target, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(
		read_file_bounded(target, 100, &data, &len, err, sizeof(err)),
		0);
	assert_int_equal(len, 6);
	assert_string_equal(data, "second");
	free(data);

	/* Bounded: a file over the limit is refused, not truncated. */
	assert_int_equal(
		read_file_bounded(target, 5, &data, &len, err, sizeof(err)),
		-1);
	assert_non_null(strstr(err, "larger than 5 bytes"));
}

static void
test_write_into_missing_dir_fails_cleanly(void **state)
{
	char err[256];

	(void)state;
	assert_int_equal(atomic_write_file("/nonexistent-dir/x", "a", 1, 0600,
					   err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "/nonexistent-dir/x"));
}

/* The file is whole if it has the full size and one repeated byte. */
static int
file_is_whole(const char *path, size_t size)
{
	char err[256];
	char *data = NULL;
	size_t len = 0;
	int whole;

	if (read_file_bounded(path, size + 1, &data, &len, err, sizeof(err)) !=
	    0)
		return 0;
	whole = len == size;
	for (size_t i = 1; whole && i < len; i++)
		whole = data[i] == data[0];
	free(data);
	return whole;
}

static void
test_killed_writer_leaves_old_or_new(void **state)
{
	enum { SIZE = 4 * 1024 * 1024, ROUNDS = 12 };
	char err[256];
	char *buf = malloc(SIZE);

	(void)state;
	assert_non_null(buf);
	memset(buf, 'A', SIZE);
	assert_int_equal(
		atomic_write_file(target, buf, SIZE, 0600, err, sizeof(err)),
		0);
	srand((unsigned)time(NULL));
	for (int round = 0; round < ROUNDS; round++) {
		struct timespec delay = {0, (rand() % 40 + 1) * 1000000L};
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			/* Rewrite for ever with a new byte each time. */
			for (char c = 'B';;
			     c = c == 'Z' ? 'B' : (char)(c + 1)) {
				memset(buf, c, SIZE);
				atomic_write_file(target, buf, SIZE, 0600, err,
						  sizeof(err));
			}
		}
		nanosleep(&delay, NULL);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		if (!file_is_whole(target, SIZE))
			fail_msg("round %d: partial file after SIGKILL", round);
	}
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_read_mode, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_write_into_missing_dir_fails_cleanly, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_killed_writer_leaves_old_or_new, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
