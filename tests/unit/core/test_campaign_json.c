/* SPDX-License-Identifier: Apache-2.0 */
/* Campaign definitions and counts as JSON (core/campaign_json.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/campaign_json.h"

static int
parse(const char *text, struct campaign_def *def, char *err, size_t errlen)
{
	json_t *body = json_loads(text, 0, NULL);
	int rc;

	assert_non_null(body);
	rc = campaign_def_from_json(body, def, err, errlen);
	json_decref(body);
	return rc;
}

static void
test_defaults(void **state)
{
	struct campaign_def d;
	char err[256];

	(void)state;
	assert_int_equal(
		parse("{\"phases\": [1, 10, 50, 100]}", &d, err, sizeof(err)),
		0);
	assert_int_equal(d.n_phases, 4);
	assert_false(d.phases[0].absolute);
	assert_int_equal(d.phases[3].value, 100);
	assert_true(d.phases[2].gate.min_success == 0.9);
	assert_true(d.phases[2].gate.max_failure == 0.1);
	assert_int_equal(d.phases[2].gate.min_finished, 1);
	assert_int_equal(d.phases[2].gate.soak_s, 0);
	assert_int_equal(d.phases[2].gate.health_window_s, 600);
	assert_int_equal(d.window.hours, 0);
	assert_int_equal(d.max_concurrent, 0);
}

static void
test_full_form(void **state)
{
	struct campaign_def d;
	char err[256];

	(void)state;
	assert_int_equal(
		parse("{\"phases\": \"5,20,all\", \"unit\": \"devices\","
		      " \"gate\": {\"min_success\": 1, \"soak_seconds\": 60,"
		      " \"max_failure\": 0.25, \"min_finished\": 3,"
		      " \"health_window_seconds\": 120},"
		      " \"gates\": [{\"soak_seconds\": 3600}, {}, {}],"
		      " \"window\": {\"hours\": \"22-6\", \"weekdays\":"
		      " \"sat,sun\"}, \"max_concurrent\": 50}",
		      &d, err, sizeof(err)),
		0);
	assert_int_equal(d.n_phases, 3);
	assert_true(d.phases[0].absolute);
	assert_int_equal(d.phases[2].value, CAMPAIGN_ALL);
	assert_int_equal(d.phases[0].gate.soak_s, 3600);
	assert_int_equal(d.phases[1].gate.soak_s, 60);
	assert_int_equal(d.phases[1].gate.min_finished, 3);
	assert_true(d.phases[1].gate.max_failure == 0.25);
	assert_true(d.window.hours & (1u << 23));
	assert_true(d.window.hours & (1u << 0));
	assert_false(d.window.hours & (1u << 12));
	assert_int_equal(d.window.weekdays, (1u << 0) | (1u << 6));
	assert_int_equal(d.max_concurrent, 50);
}

/* The stored form parses back to the same definition. */
static void
test_round_trip(void **state)
{
	struct campaign_def a, b;
	char err[256];
	char *text;

	(void)state;
	assert_int_equal(
		parse("{\"phases\": [1, 10, 100], \"gate\": {\"min_success\":"
		      " 0.95, \"max_failure\": 0.333333333333,"
		      " \"soak_seconds\": 7}, \"gates\": [{},"
		      " {\"health_window_seconds\": 5}, {}], \"window\":"
		      " {\"hours\": [8, 9, 10], \"weekdays\": \"mon-fri\"},"
		      " \"max_concurrent\": 9}",
		      &a, err, sizeof(err)),
		0);
	text = campaign_def_to_json(&a);
	assert_non_null(text);
	assert_int_equal(parse(text, &b, err, sizeof(err)), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	free(text);
}

static void
test_refused(void **state)
{
	static const struct {
		const char *body;
		const char *names; /* in the message */
	} cases[] = {
		{"{}", "phases"},
		{"{\"phases\": []}", "phases"},
		{"{\"phases\": [1, 10]}", "100"},
		{"{\"phases\": [10, 5, 100]}", "grow"},
		{"{\"phases\": [1.5, 100]}", "phases"},
		{"{\"phases\": [\"all\"]}", "percentage"},
		{"{\"phases\": [100], \"unit\": \"lots\"}", "unit"},
		{"{\"phases\": [100], \"gate\": {\"min_success\": 2}}",
		 "gate.min_success"},
		{"{\"phases\": [100], \"gate\": {\"soak_seconds\": -1}}",
		 "gate.soak_seconds"},
		{"{\"phases\": [100], \"gate\": {\"soak\": 5}}", "gate.soak"},
		{"{\"phases\": [100], \"gate\": []}", "gate"},
		{"{\"phases\": [50, 100], \"gates\": [{}]}", "gates"},
		{"{\"phases\": [100], \"gates\": [{\"max_failure\": \"x\"}]}",
		 "gates[0].max_failure"},
		{"{\"phases\": [100], \"window\": {\"hours\": \"25-3\"}}",
		 "hours"},
		{"{\"phases\": [100], \"window\": {\"hours\": [24]}}", "hours"},
		{"{\"phases\": [100], \"window\": {\"weekdays\": \"funday\"}}",
		 "weekdays"},
		{"{\"phases\": [100], \"window\": {\"tz\": \"x\"}}",
		 "window.tz"},
		{"{\"phases\": [100], \"max_concurrent\": -3}",
		 "max_concurrent"},
	};
	struct campaign_def d;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		if (parse(cases[i].body, &d, err, sizeof(err)) != -1 ||
		    strstr(err, cases[i].names) == NULL)
			fail_msg("%s: got \"%s\"", cases[i].body, err);
	}
}

static void
test_counts(void **state)
{
	struct campaign_def d;
	struct campaign_counts c[CAMPAIGN_MAX_PHASES];
	char err[256];
	json_t *o;

	(void)state;
	assert_int_equal(
		parse("{\"phases\": [10, 50, 100]}", &d, err, sizeof(err)), 0);
	memset(c, 0, sizeof(c));
	c[0].succeeded = 7;
	c[0].failed = 1;
	c[0].silent = 1;
	c[0].offered = 1;
	c[1].in_progress = 4;
	c[1].pending = 36;
	c[2].pending = 50;
	campaign_counts_fill(&d, c);
	assert_int_equal(c[0].total, 10);
	assert_int_equal(c[1].total, 40);
	assert_int_equal(c[2].total, 50);

	memset(c, 0, sizeof(c));
	c[0].succeeded = 3;
	c[0].failed = 1;
	o = campaign_counts_to_json(0, &c[0]);
	assert_int_equal(json_integer_value(json_object_get(o, "phase")), 1);
	assert_int_equal(json_integer_value(json_object_get(o, "finished")), 4);
	assert_true(json_real_value(json_object_get(o, "failure_share")) ==
		    0.25);
	json_decref(o);
	o = campaign_counts_to_json(SIZE_MAX, &c[0]);
	assert_null(json_object_get(o, "phase"));
	json_decref(o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full_form),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_counts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
