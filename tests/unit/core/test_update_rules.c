/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Deployment rules (core/update.c), table by table: which update.status
 * report moves a device's open row (a report about another deployment,
 * or none open, is ignored; one that an older seq overtook never moves
 * the row back; a finished row is never open), which reports carry the
 * firmware a device runs, what a new deployment does with each matched
 * device (offer, supersede, skip for hardware, skip while installing),
 * the plan's counts, and when a deployment is finished.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/store_deployments.h"
#include "core/update.h"

#define D1 "0b6f4c1e-8f0a-4a51-9d3c-2f1e0a9b7c11"
#define D2 "1b6f4c1e-8f0a-4a51-9d3c-2f1e0a9b7c11"

static void
test_state_names(void **state)
{
	enum update_state s;

	(void)state;
	for (unsigned i = 0; i < UPDATE_STATE_COUNT; i++) {
		assert_non_null(update_state_name((enum update_state)i));
		assert_int_equal(
			update_state_parse(
				update_state_name((enum update_state)i), &s),
			0);
		assert_int_equal(s, i);
	}
	assert_null(update_state_name(UPDATE_STATE_COUNT));
	assert_int_equal(update_state_parse("installing ", &s), -1);
	assert_int_equal(update_state_parse("", &s), -1);
	assert_int_equal(update_state_parse(NULL, &s), -1);
	/* The finished set is the GENERATED column of 0011. */
	static const char *const finished[] = {
		"committed", "failed", "rolled_back", "refused", "superseded"};
	size_t nfin = 0;
	for (unsigned i = 0; i < UPDATE_STATE_COUNT; i++) {
		bool want = false;

		for (size_t j = 0; j < 5; j++)
			want = want ||
			       strcmp(update_state_name((enum update_state)i),
				      finished[j]) == 0;
		assert_int_equal(update_state_finished((enum update_state)i),
				 want);
		nfin += want;
	}
	assert_int_equal(nfin, 5);
	assert_true(update_state_supersedable(UPDATE_DOWNLOADED));
	assert_false(update_state_supersedable(UPDATE_INSTALLING));
	assert_false(update_state_reportable(UPDATE_PENDING));
	assert_false(update_state_reportable(UPDATE_OFFERED));
	assert_false(update_state_reportable(UPDATE_SUPERSEDED));
	assert_true(update_state_reportable(UPDATE_REFUSED));
}

static const struct report_case {
	const char *name;
	bool present; /* the device has an open row (D1, version 7) */
	enum update_state row_state;
	uint64_t row_seq;
	const char *dep; /* the report's deployment_id */
	const char *state;
	int64_t version;
	uint64_t seq;
	enum update_verdict want;
} report_cases[] = {
	{"first report of the offer", true, UPDATE_OFFERED, 0, D1,
	 "downloading", 7, 1, UPDATE_ACCEPT},
	{"next step", true, UPDATE_DOWNLOADING, 4, D1, "installing", 7, 5,
	 UPDATE_ACCEPT},
	{"same seq again is the window's business", true, UPDATE_DOWNLOADING, 4,
	 D1, "downloading", 7, 4, UPDATE_ACCEPT},
	{"overtaken by a later report", true, UPDATE_INSTALLING, 6, D1,
	 "downloading", 7, 5, UPDATE_OUT_OF_ORDER},
	{"committed", true, UPDATE_VERIFYING, 9, D1, "committed", 7, 10,
	 UPDATE_ACCEPT},
	{"refused while pending (hello re-offer raced)", true, UPDATE_PENDING,
	 0, D1, "refused", 7, 3, UPDATE_ACCEPT},
	{"another deployment", true, UPDATE_OFFERED, 0, D2, "downloading", 7, 2,
	 UPDATE_NOT_OPEN},
	{"no open row (finished or never)", false, UPDATE_PENDING, 0, D1,
	 "committed", 7, 2, UPDATE_NOT_OPEN},
	{"no deployment_id: the version names it", true, UPDATE_OFFERED, 0,
	 NULL, "downloading", 7, 2, UPDATE_ACCEPT},
	{"no deployment_id, another version", true, UPDATE_OFFERED, 0, NULL,
	 "downloading", 6, 2, UPDATE_NOT_OPEN},
	{"a state agents do not report", true, UPDATE_OFFERED, 0, D1,
	 "superseded", 7, 2, UPDATE_BAD_STATE},
	{"pending is not reported", true, UPDATE_OFFERED, 0, D1, "pending", 7,
	 2, UPDATE_BAD_STATE},
	{"not a state", true, UPDATE_OFFERED, 0, D1, "done", 7, 2,
	 UPDATE_BAD_STATE},
};

static void
test_report_check(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(report_cases) / sizeof(*report_cases);
	     i++) {
		const struct report_case *c = &report_cases[i];
		struct update_open_row row = {c->present, D1, 7, c->row_state,
					      c->row_seq};
		struct update_status st;
		enum update_verdict got;

		memset(&st, 0, sizeof(st));
		st.deployment_id = c->dep;
		st.state = c->state;
		st.version = c->version;
		st.running_version = -1;
		st.progress = -1;
		st.bytes = -1;
		got = update_report_check(&row, &st, c->seq);
		if (got != c->want)
			fail_msg("%s: got %s, want %s", c->name,
				 update_verdict_name(got),
				 update_verdict_name(c->want));
	}
	assert_int_equal(update_report_check(NULL, NULL, 1), UPDATE_BAD_STATE);
	assert_string_equal(update_verdict_name(UPDATE_NOT_OPEN), "not-open");
}

static void
test_sets_firmware(void **state)
{
	struct update_status st;

	(void)state;
	memset(&st, 0, sizeof(st));
	st.running_version = -1;
	st.state = "committed";
	assert_false(update_status_sets_firmware(&st)); /* says nothing */
	st.running_version = 8;
	assert_true(update_status_sets_firmware(&st));
	st.state = "rolled_back";
	st.running_version = -1;
	st.fw_version = "1.4.2";
	assert_true(update_status_sets_firmware(&st));
	st.state = "installing"; /* what runs has not changed yet */
	st.running_version = 8;
	assert_false(update_status_sets_firmware(&st));
	st.state = "failed";
	assert_false(update_status_sets_firmware(&st));
	assert_false(update_status_sets_firmware(NULL));
}

static const struct target_case {
	const char *name;
	const char *model;
	bool has_open;
	enum update_state open_state;
	enum update_target want;
} target_cases[] = {
	{"fits, nothing open", "plc-x", false, UPDATE_PENDING,
	 UPDATE_TARGET_OFFER},
	{"second model of hw", "plc-y", false, UPDATE_PENDING,
	 UPDATE_TARGET_OFFER},
	{"other model", "plc-z", false, UPDATE_PENDING, UPDATE_TARGET_HARDWARE},
	{"model never said", NULL, false, UPDATE_PENDING,
	 UPDATE_TARGET_HARDWARE},
	{"model case matters", "PLC-X", false, UPDATE_PENDING,
	 UPDATE_TARGET_HARDWARE},
	{"pending row superseded", "plc-x", true, UPDATE_PENDING,
	 UPDATE_TARGET_SUPERSEDE},
	{"offered row superseded", "plc-x", true, UPDATE_OFFERED,
	 UPDATE_TARGET_SUPERSEDE},
	{"downloaded row superseded", "plc-x", true, UPDATE_DOWNLOADED,
	 UPDATE_TARGET_SUPERSEDE},
	{"installing: busy", "plc-x", true, UPDATE_INSTALLING,
	 UPDATE_TARGET_BUSY},
	{"rebooting: busy", "plc-x", true, UPDATE_REBOOTING,
	 UPDATE_TARGET_BUSY},
	{"verifying: busy", "plc-x", true, UPDATE_VERIFYING,
	 UPDATE_TARGET_BUSY},
	{"hardware before busy", "plc-z", true, UPDATE_INSTALLING,
	 UPDATE_TARGET_HARDWARE},
};

static void
test_targets_and_plan(void **state)
{
	static const char *const hw[] = {"plc-x", "plc-y"};
	struct update_plan_counts p;

	(void)state;
	memset(&p, 0, sizeof(p));
	for (size_t i = 0; i < sizeof(target_cases) / sizeof(*target_cases);
	     i++) {
		const struct target_case *c = &target_cases[i];
		struct update_candidate cand = {c->model, (i % 2) == 0,
						c->has_open, c->open_state};
		enum update_target t = update_target_of(&cand, hw, 2);

		if (t != c->want)
			fail_msg("%s: got %d, want %d", c->name, (int)t,
				 (int)c->want);
		update_plan_add(&p, &cand, t);
	}
	assert_int_equal(p.matched, 12);
	assert_int_equal(p.targets, 5);
	assert_int_equal(p.supersede, 3);
	assert_int_equal(p.hardware_mismatch, 4);
	assert_int_equal(p.busy, 3);
	/* odd rows are offline: the targets in rows 1, 5 and 7 */
	assert_int_equal(p.offline, 3);
	{
		struct update_candidate none = {"plc-x", true, false,
						UPDATE_PENDING};

		assert_int_equal(update_target_of(&none, hw, 0),
				 UPDATE_TARGET_HARDWARE);
	}
}

static void
test_counts(void **state)
{
	struct update_counts c;

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_false(update_counts_finished(&c)); /* no rows yet */
	c.by_state[UPDATE_OFFERED] = 2;
	c.by_state[UPDATE_COMMITTED] = 3;
	assert_int_equal(update_counts_total(&c), 5);
	assert_int_equal(update_counts_open(&c), 2);
	assert_false(update_counts_finished(&c));
	c.by_state[UPDATE_OFFERED] = 0;
	c.by_state[UPDATE_SUPERSEDED] = 2;
	assert_true(update_counts_finished(&c));
	c.by_state[UPDATE_VERIFYING] = 1;
	assert_false(update_counts_finished(&c));
}

/* Offers: an artifact is offerable strictly before its expiry; the
 * expired offers of a list are dropped (envelopes freed, order kept). */
static void
test_offers_expired(void **state)
{
	static const int64_t exp[] = {1000, 500, 2000, 999, 1001};
	struct update_offer *list = calloc(5, sizeof(*list));
	size_t n = 5;

	(void)state;
	assert_true(update_artifact_offerable(1000, 999));
	assert_false(update_artifact_offerable(1000, 1000));
	assert_false(update_artifact_offerable(1000, 1001));
	assert_false(update_artifact_offerable(0, 1));
	assert_non_null(list);
	for (size_t i = 0; i < n; i++) {
		snprintf(list[i].device_id, sizeof(list[i].device_id), "d%zu",
			 i);
		list[i].expires_at = exp[i];
		list[i].envelope = strdup("{}");
		assert_non_null(list[i].envelope);
	}
	assert_int_equal(update_offers_drop_expired(list, &n, 1000), 3);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].device_id, "d2");
	assert_string_equal(list[1].device_id, "d4");
	assert_int_equal(update_offers_drop_expired(list, &n, 0), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++)
		free(list[i].envelope);
	free(list);
}

/* An active deployment with pending rows stalls once its artifact
 * expired, and the reason says which, when and how many wait. */
static void
test_deployment_stalled(void **state)
{
	struct update_stall_input d = {true, 3, 1796126400, "plc-fw 2.0"};
	char reason[512] = "untouched";

	(void)state;
	assert_false(update_deployment_stalled(&d, 1796126399, reason,
					       sizeof(reason)));
	assert_string_equal(reason, "untouched");
	assert_true(update_deployment_stalled(&d, 1796126400, reason,
					      sizeof(reason)));
	assert_non_null(strstr(reason, "artifact expired: plc-fw 2.0 expired "
				       "at 2026-12-01T12:00:00Z"));
	assert_non_null(strstr(reason, "its 3 pending device(s)"));
	/* Nothing pending, not active, or no known expiry: no stall. */
	d.pending = 0;
	assert_false(update_deployment_stalled(&d, 1796126401, reason,
					       sizeof(reason)));
	d.pending = 3;
	d.active = false;
	assert_false(update_deployment_stalled(&d, 1796126401, reason,
					       sizeof(reason)));
	d.active = true;
	d.expires_at = 0;
	assert_false(update_deployment_stalled(&d, 1796126401, reason,
					       sizeof(reason)));
	/* A short buffer is cut, never overrun. */
	d.expires_at = 1796126400;
	assert_true(update_deployment_stalled(&d, 1796126401, reason, 9));
	assert_string_equal(reason, "artifact");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_names),
		cmocka_unit_test(test_report_check),
		cmocka_unit_test(test_sets_firmware),
		cmocka_unit_test(test_targets_and_plan),
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_offers_expired),
		cmocka_unit_test(test_deployment_stalled),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
