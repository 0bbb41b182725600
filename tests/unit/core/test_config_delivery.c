/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration delivery rules (core/config_delivery.c) against in-memory
 * stores: which config.status report becomes the reported state (a table
 * of cases), when a session is due a config.apply, and
 * config_delivery_report end to end: applied once per seq, a generation
 * or hash never sent is acknowledged but ignored and counted, reports that
 * overtake each other never move the state back, storage failures ask for
 * a retry and write nothing, and the pending list compares desired with
 * reported for many devices at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/config_delivery.h"
#include "fake_store_config_delivery.h"
#include "fake_store_reports.h"

#define DEV "0b6f4c1e-8f0a-4a51-9d3c-2f1e0a9b7c11"
#define DEV2 "1b6f4c1e-8f0a-4a51-9d3c-2f1e0a9b7c11"
#define DEV3 "2b6f4c1e-8f0a-4a51-9d3c-2f1e0a9b7c11"
#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"
#define HX "9999999999999999999999999999999999999999999999999999999999999999"

static void
test_check_table(void **state)
{
	static const struct {
		const char *what;
		int64_t desired_gen;
		const char *desired_sha;
		bool present;
		int64_t rep_gen;
		uint64_t rep_seq;
		int64_t gen;
		const char *sha;
		const char *st;
		uint64_t seq;
		enum config_report_verdict want;
	} cases[] = {
		{"nothing ever sent", 0, NULL, false, 0, 0, 1, H1, "applied", 1,
		 CONFIG_REPORT_NEVER_SENT},
		{"generation 0", 3, H1, false, 0, 0, 0, H1, "applied", 1,
		 CONFIG_REPORT_NEVER_SENT},
		{"applied as sent", 3, H1, false, 0, 0, 3, H1, "applied", 1,
		 CONFIG_REPORT_ACCEPT},
		{"failed as sent", 3, H1, false, 0, 0, 3, H1, "failed", 1,
		 CONFIG_REPORT_ACCEPT},
		{"generation above desired", 3, H1, false, 0, 0, 4, H1,
		 "applied", 1, CONFIG_REPORT_NEVER_SENT},
		{"other hash for this generation", 3, H1, false, 0, 0, 3, HX,
		 "applied", 1, CONFIG_REPORT_NEVER_SENT},
		{"failed with another hash", 3, H1, false, 0, 0, 3, HX,
		 "failed", 1, CONFIG_REPORT_NEVER_SENT},
		{"drifted carries the file's hash", 3, H1, true, 3, 5, 3, HX,
		 "drifted", 6, CONFIG_REPORT_ACCEPT},
		{"drifted above desired", 3, H1, false, 0, 0, 4, HX, "drifted",
		 1, CONFIG_REPORT_NEVER_SENT},
		{"older generation, later than stored", 3, H1, true, 1, 2, 2,
		 H2, "applied", 3, CONFIG_REPORT_ACCEPT},
		{"older than stored generation", 3, H1, true, 3, 9, 2, H2,
		 "applied", 10, CONFIG_REPORT_SUPERSEDED},
		{"same generation, earlier seq", 3, H1, true, 3, 9, 3, H1,
		 "applied", 8, CONFIG_REPORT_SUPERSEDED},
		{"same generation, later seq", 3, H1, true, 3, 9, 3, H1,
		 "applied", 10, CONFIG_REPORT_ACCEPT},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config_desired_state d = {cases[i].desired_gen,
						 cases[i].desired_sha};
		struct config_reported_state r = {
			cases[i].present, cases[i].rep_gen, cases[i].rep_seq};
		struct config_status s = {cases[i].gen, cases[i].sha,
					  cases[i].st, NULL};
		enum config_report_verdict v =
			config_report_check(&d, &r, &s, cases[i].seq);

		if (v != cases[i].want)
			fail_msg("%s: got %s, want %s", cases[i].what,
				 config_report_verdict_name(v),
				 config_report_verdict_name(cases[i].want));
	}
}

static void
test_due(void **state)
{
	(void)state;
	assert_false(config_delivery_due(0, 0)); /* nothing desired */
	assert_true(config_delivery_due(1, 0)); /* a new session */
	assert_false(config_delivery_due(1, 1)); /* sent on this session */
	assert_true(config_delivery_due(2, 1)); /* a newer generation */
	assert_false(config_delivery_due(1, 2));
}

static enum report_answer
report(struct store *st, const char *dev, uint64_t seq, int64_t gen,
       const char *sha, const char *state, const char *reason,
       enum config_report_verdict *v)
{
	char body[256];
	struct report r = {seq, "config.status", body};
	struct config_status s = {gen, sha, state, reason};

	snprintf(body, sizeof(body),
		 "{\"type\":\"config.status\",\"seq\":%llu,"
		 "\"config_version\":%lld,\"config_hash\":\"%s\","
		 "\"state\":\"%s\"}",
		 (unsigned long long)seq, (long long)gen, sha, state);
	return config_delivery_report(st, dev, &r, &s, v);
}

static void
test_report_once_and_ignored(void **state)
{
	struct store *st = fake_store_new();
	enum config_report_verdict v;
	const char *sha, *status, *reason;
	int64_t gen;

	(void)state;
	fake_cfg_reset();
	fake_store_add_device(st, DEV, true);
	fake_cfg_set_desired(DEV, 2, H1, "{\"a\":1}");
	/* never sent: acknowledged, ignored, counted, not stored */
	assert_int_equal(report(st, DEV, 1, 7, H1, "applied", NULL, &v),
			 REPORT_ACK_APPLIED);
	assert_int_equal(v, CONFIG_REPORT_NEVER_SENT);
	assert_int_equal(fake_cfg_ignored(DEV), 1);
	assert_false(fake_cfg_reported(DEV, &gen, &sha, &status, &reason));
	/* failed with the hook's reason */
	assert_int_equal(report(st, DEV, 2, 2, H1, "failed",
				"validate hook failed (exit 3): bad", &v),
			 REPORT_ACK_APPLIED);
	assert_int_equal(v, CONFIG_REPORT_ACCEPT);
	assert_true(fake_cfg_reported(DEV, &gen, &sha, &status, &reason));
	assert_string_equal(status, "failed");
	assert_string_equal(reason, "validate hook failed (exit 3): bad");
	/* the same seq again: a duplicate, no second effect */
	assert_int_equal(report(st, DEV, 2, 2, H1, "applied", NULL, &v),
			 REPORT_ACK_DUPLICATE);
	assert_true(fake_cfg_reported(DEV, &gen, &sha, &status, &reason));
	assert_string_equal(status, "failed");
	/* applied (seq 4 before seq 3 arrives: overtaking) */
	assert_int_equal(report(st, DEV, 4, 2, H1, "applied", NULL, &v),
			 REPORT_ACK_APPLIED);
	assert_int_equal(report(st, DEV, 3, 2, H1, "failed", "late", &v),
			 REPORT_ACK_APPLIED);
	assert_int_equal(v, CONFIG_REPORT_SUPERSEDED);
	assert_true(fake_cfg_reported(DEV, &gen, &sha, &status, &reason));
	assert_string_equal(status, "applied");
	assert_int_equal(gen, 2);
	assert_int_equal(fake_cfg_ignored(DEV), 2);
	/* drifted: the file's hash */
	assert_int_equal(report(st, DEV, 5, 2, HX, "drifted", "edited", &v),
			 REPORT_ACK_APPLIED);
	assert_true(fake_cfg_reported(DEV, &gen, &sha, &status, &reason));
	assert_string_equal(status, "drifted");
	assert_string_equal(sha, HX);
	fake_store_free(st);
	fake_cfg_reset();
}

static void
test_report_refused_and_retry(void **state)
{
	struct store *st = fake_store_new();
	enum config_report_verdict v;
	const char *sha, *status, *reason;
	int64_t gen;

	(void)state;
	fake_cfg_reset();
	fake_store_add_device(st, DEV, true);
	fake_store_add_device(st, DEV2, false);
	fake_cfg_set_desired(DEV, 1, H1, "{}");
	assert_int_equal(report(st, DEV2, 1, 1, H1, "applied", NULL, &v),
			 REPORT_REFUSED);
	fake_store_fail_next(st, 1);
	assert_int_equal(report(st, DEV, 1, 1, H1, "applied", NULL, &v),
			 REPORT_RETRY);
	assert_false(fake_cfg_reported(DEV, &gen, &sha, &status, &reason));
	/* sent again: applied now */
	assert_int_equal(report(st, DEV, 1, 1, H1, "applied", NULL, &v),
			 REPORT_ACK_APPLIED);
	assert_true(fake_cfg_reported(DEV, &gen, &sha, &status, &reason));
	/* not a config.status */
	{
		struct report r = {2, "update.status", "{}"};
		struct config_status s = {1, H1, "applied", NULL};

		assert_int_equal(config_delivery_report(st, DEV, &r, &s, &v),
				 REPORT_INVALID);
	}
	fake_store_free(st);
	fake_cfg_reset();
}

static void
test_pending(void **state)
{
	struct store *st = fake_store_new();
	const char *ids[] = {DEV3, DEV, DEV2};
	struct config_pending *p = NULL;
	enum config_report_verdict v;
	size_t n = 0;

	(void)state;
	fake_cfg_reset();
	fake_store_add_device(st, DEV, true);
	fake_store_add_device(st, DEV2, true);
	fake_store_add_device(st, DEV3, true);
	fake_cfg_set_desired(DEV, 1, H1, "{\"x\":1}");
	fake_cfg_set_desired(DEV2, 4, H2, "{\"y\":2}");
	/* DEV3 has no configuration */
	assert_int_equal(store_config_pending(st, ids, 3, &p, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(p[0].device_id, DEV); /* sorted */
	assert_string_equal(p[1].device_id, DEV2);
	assert_int_equal(p[1].generation, 4);
	assert_string_equal(p[1].document, "{\"y\":2}");
	config_pending_free(p, n);
	/* DEV applied: only DEV2 differs */
	assert_int_equal(report(st, DEV, 1, 1, H1, "applied", NULL, &v),
			 REPORT_ACK_APPLIED);
	assert_int_equal(store_config_pending(st, ids, 3, &p, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_string_equal(p[0].device_id, DEV2);
	config_pending_free(p, n);
	fake_store_free(st);
	fake_cfg_reset();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_table),
		cmocka_unit_test(test_due),
		cmocka_unit_test(test_report_once_and_ignored),
		cmocka_unit_test(test_report_refused_and_retry),
		cmocka_unit_test(test_pending),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
