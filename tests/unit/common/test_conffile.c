/* SPDX-License-Identifier: Apache-2.0 */
/* Config-file parser: values, defaults, errors with file:line, env. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "conffile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sample {
	char *name;
	long workers;
	long timeout;
	int verbose;
};

static const struct config_key keys[] = {
	{"name", CONFIG_STRING, offsetof(struct sample, name), 0, 0, "def"},
	{"workers", CONFIG_INT, offsetof(struct sample, workers), 1, 64, "2"},
	{"timeout", CONFIG_DURATION, offsetof(struct sample, timeout), 1, 86400,
	 "30s"},
	{"verbose", CONFIG_BOOL, offsetof(struct sample, verbose), 0, 0,
	 "false"},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static char path[64];

static void
write_conf(const char *text)
{
	FILE *fp;
	int fd;

	snprintf(path, sizeof(path), "/tmp/fleet-conf-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static int
teardown(void **state)
{
	(void)state;
	unlink(path);
	unsetenv("TEST_WORKERS");
	return 0;
}

static void
test_values_and_comments(void **state)
{
	struct sample s = {0};
	char err[CONFIG_ERR_MAX];

	(void)state;
	write_conf("# comment\n\nname = edge one # trailing\n"
		   "workers=8\n  timeout = 5m\nverbose = yes\n");
	assert_int_equal(
		config_load(path, keys, NKEYS, NULL, &s, err, sizeof(err)), 0);
	assert_string_equal(s.name, "edge one");
	assert_int_equal(s.workers, 8);
	assert_int_equal(s.timeout, 300);
	assert_int_equal(s.verbose, 1);
	config_free(keys, NKEYS, &s);
	assert_null(s.name);
}

static void
test_defaults_without_file(void **state)
{
	struct sample s = {0};
	char err[CONFIG_ERR_MAX];

	(void)state;
	assert_int_equal(
		config_load(NULL, keys, NKEYS, NULL, &s, err, sizeof(err)), 0);
	assert_string_equal(s.name, "def");
	assert_int_equal(s.workers, 2);
	assert_int_equal(s.timeout, 30);
	config_free(keys, NKEYS, &s);
}

struct bad_case {
	const char *text;
	const char *expect; /* substring of the error after the path */
};

static void
test_errors_name_file_and_line(void **state)
{
	static const struct bad_case cases[] = {
		{"name = x\nwrokers = 2\n", ":2: unknown key 'wrokers'"},
		{"workers = 0\n", ":1: bad value '0' for 'workers'"},
		{"workers = many\n", ":1: bad value 'many' for 'workers'"},
		{"\n\ntimeout = 5 minutes\n", ":3: bad value '5 minutes'"},
		{"verbose = maybe\n", ":1: bad value 'maybe' for 'verbose'"},
		{"just words\n", ":1: expected 'key = value'"},
		{"workers = 99999999999999999999\n", ":1: bad value"},
	};
	char err[CONFIG_ERR_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sample s = {0};

		write_conf(cases[i].text);
		assert_int_equal(config_load(path, keys, NKEYS, NULL, &s, err,
					     sizeof(err)),
				 -1);
		assert_non_null(strstr(err, path));
		if (strstr(err, cases[i].expect) == NULL)
			fail_msg("case %zu: '%s' does not contain '%s'", i, err,
				 cases[i].expect);
		/* Nothing is left allocated on failure. */
		assert_null(s.name);
		unlink(path);
	}
}

static void
test_missing_file(void **state)
{
	struct sample s = {0};
	char err[CONFIG_ERR_MAX];

	(void)state;
	assert_int_equal(config_load("/nonexistent/fleet.conf", keys, NKEYS,
				     NULL, &s, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "/nonexistent/fleet.conf: cannot open"));
}

static void
test_env_overrides_file(void **state)
{
	struct sample s = {0};
	char err[CONFIG_ERR_MAX];

	(void)state;
	write_conf("workers = 4\n");
	setenv("TEST_WORKERS", "16", 1);
	assert_int_equal(
		config_load(path, keys, NKEYS, "TEST_", &s, err, sizeof(err)),
		0);
	assert_int_equal(s.workers, 16);
	config_free(keys, NKEYS, &s);

	setenv("TEST_WORKERS", "0", 1);
	assert_int_equal(
		config_load(path, keys, NKEYS, "TEST_", &s, err, sizeof(err)),
		-1);
	assert_non_null(strstr(err, "environment TEST_WORKERS"));
}

static void
test_durations(void **state)
{
	static const struct {
		const char *text;
		long seconds;
		int rc;
	} cases[] = {
		{"30", 30, 0},	 {"30s", 30, 0},      {"5m", 300, 0},
		{"2h", 7200, 0}, {"90d", 7776000, 0}, {"1w", 604800, 0},
		{"", 0, -1},	 {"m", 0, -1},	      {"-5s", 0, -1},
		{"5x", 0, -1},	 {"1.5h", 0, -1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long v = -1;

		assert_int_equal(config_parse_duration(cases[i].text, &v),
				 cases[i].rc);
		if (cases[i].rc == 0)
			assert_int_equal(v, cases[i].seconds);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_values_and_comments, teardown),
		cmocka_unit_test_teardown(test_defaults_without_file, teardown),
		cmocka_unit_test_teardown(test_errors_name_file_and_line,
					  teardown),
		cmocka_unit_test_teardown(test_missing_file, teardown),
		cmocka_unit_test_teardown(test_env_overrides_file, teardown),
		cmocka_unit_test(test_durations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
