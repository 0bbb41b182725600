/* SPDX-License-Identifier: Apache-2.0 */
/* Campaign rules (core/campaign.h), table by table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/campaign.h"

#define CID "4f1c2a9e-8d7b-4c6a-9e5f-1a2b3c4d5e6f"

static const struct campaign_gate gate_default = {
	.min_success = 0.9,
	.soak_s = 600,
	.max_failure = 0.1,
	.min_finished = 10,
	.health_window_s = 900,
};

static struct campaign_def
def_of(const char *phases, bool absolute)
{
	struct campaign_def d;
	char err[128];

	memset(&d, 0, sizeof(d));
	assert_int_equal(campaign_phases_parse(phases, absolute, &gate_default,
					       &d, err, sizeof(err)),
			 0);
	return d;
}

static void
test_phases_parse(void **state)
{
	static const struct {
		const char *text;
		bool absolute;
		int rc;
		size_t n;
	} cases[] = {
		{"1,10,50,100", false, 0, 4},
		{"100", false, 0, 1},
		{"1,10,all", true, 0, 3},
		{"5,20", true, 0, 2},
		{"", false, -1, 0},
		{"1,10,50", false, -1, 0}, /* last percentage must be 100 */
		{"10,5,100", false, -1, 0}, /* must grow */
		{"10,10,100", false, -1, 0},
		{"0,100", false, -1, 0},
		{"1,101", false, -1, 0},
		{"1,,100", false, -1, 0},
		{"1,x,100", false, -1, 0},
		{"all,5", true, -1, 0}, /* all only last */
		{"all", false, -1, 0},
		{"-1,100", false, -1, 0},
		{"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,100", false, -1, 0},
	};
	struct campaign_def d;
	char err[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&d, 0, sizeof(d));
		err[0] = '\0';
		assert_int_equal(campaign_phases_parse(
					 cases[i].text, cases[i].absolute,
					 &gate_default, &d, err, sizeof(err)),
				 cases[i].rc);
		if (cases[i].rc == 0)
			assert_int_equal(d.n_phases, cases[i].n);
		else
			assert_true(err[0] != '\0');
	}
}

static void
test_def_check_gates(void **state)
{
	struct campaign_def d = def_of("10,100", false);
	char err[128];

	(void)state;
	d.phases[1].gate.max_failure = 1.5;
	assert_int_equal(campaign_def_check(&d, err, sizeof(err)), -1);
	d.phases[1].gate.max_failure = 0.2;
	d.phases[0].gate.soak_s = -1;
	assert_int_equal(campaign_def_check(&d, err, sizeof(err)), -1);
	d.phases[0].gate.soak_s = 0;
	assert_int_equal(campaign_def_check(&d, err, sizeof(err)), 0);
}

/* Cumulative cutoffs round up, so a tiny fleet still gets a canary, and
 * every device lands in exactly one phase. */
static void
test_cutoffs_and_sizes(void **state)
{
	struct campaign_def pct = def_of("1,10,50,100", false);
	struct campaign_def abs = def_of("1,10,all", true);
	uint64_t sizes[CAMPAIGN_MAX_PHASES];

	(void)state;
	campaign_phase_sizes(&pct, 10000, sizes);
	assert_int_equal(sizes[0], 100);
	assert_int_equal(sizes[1], 900);
	assert_int_equal(sizes[2], 4000);
	assert_int_equal(sizes[3], 5000);
	campaign_phase_sizes(&pct, 30, sizes);
	assert_int_equal(sizes[0], 1);
	assert_int_equal(sizes[0] + sizes[1] + sizes[2] + sizes[3], 30);
	campaign_phase_sizes(&abs, 5, sizes);
	assert_int_equal(sizes[0], 1);
	assert_int_equal(sizes[1], 4);
	assert_int_equal(sizes[2], 0);
	assert_int_equal(campaign_phase_of(&pct, 0, 10000), 0);
	assert_int_equal(campaign_phase_of(&pct, 99, 10000), 0);
	assert_int_equal(campaign_phase_of(&pct, 100, 10000), 1);
	assert_int_equal(campaign_phase_of(&pct, 9999, 10000), 3);
	assert_int_equal(campaign_phase_of(&abs, 10, 10000), 2);
	/* counts only: devices past the last count get nothing */
	abs = def_of("1,10", true);
	assert_int_equal(campaign_phase_of(&abs, 10, 10000), 2);
}

/* Ranks are stable, differ per campaign, and spread devices evenly. */
static void
test_rank(void **state)
{
	const char *dev = "0b6f4c1e-8f0a-4a51-9d3c-2f1e0a9b7c11";
	uint64_t r = campaign_rank(CID, dev);
	char id[64];
	unsigned below = 0, i;

	(void)state;
	assert_int_equal(r, campaign_rank(CID, dev));
	assert_true(r !=
		    campaign_rank("5f1c2a9e-8d7b-4c6a-9e5f-1a2b3c4d5e6f", dev));
	for (i = 0; i < 1000; i++) {
		snprintf(id, sizeof(id), "dev-%u", i);
		if (campaign_rank(CID, id) < UINT64_MAX / 2)
			below++;
	}
	assert_true(below > 400 && below < 600);
}

/* A late joiner: its position among the matched devices (by rank) puts it
 * in a phase; the phase it falls into depends only on the fleet size, not
 * on when it joined. */
static void
test_late_joiner(void **state)
{
	struct campaign_def d = def_of("10,100", false);

	(void)state;
	/* 100 devices: positions 0..9 are phase 1. One joins at position 3:
	 * 101 devices, cutoff rounds up to 11: it is in phase 1 and every
	 * device that was in phase 1 still is. */
	assert_int_equal(campaign_phase_of(&d, 3, 101), 0);
	assert_int_equal(campaign_phase_of(&d, 9, 101), 0);
	assert_int_equal(campaign_phase_of(&d, 10, 101), 0);
	assert_int_equal(campaign_phase_of(&d, 11, 101), 1);
}

struct step_case {
	const char *name;
	enum campaign_status status;
	size_t phase;
	int64_t gate_met_at;
	struct campaign_counts c0, c1;
	enum campaign_action want;
	size_t want_phase;
	int64_t want_wake;
};

static void
test_step_table(void **state)
{
	const int64_t now = 1800000000; /* 2027-01-15 08:00:00 UTC, Friday */
	static const struct step_case cases[] = {
		{"not running",
		 CAMPAIGN_PAUSED,
		 0,
		 0,
		 {.total = 10},
		 {.total = 90},
		 CAMPAIGN_ACT_NONE,
		 0,
		 0},
		{"waiting for devices",
		 CAMPAIGN_RUNNING,
		 0,
		 0,
		 {.total = 100, .offered = 20, .succeeded = 80},
		 {.total = 900},
		 CAMPAIGN_ACT_NONE,
		 0,
		 0},
		{"gate met, soak starts",
		 CAMPAIGN_RUNNING,
		 0,
		 0,
		 {.total = 100, .succeeded = 95, .failed = 5},
		 {.total = 900},
		 CAMPAIGN_ACT_GATE_MET,
		 0,
		 now + 600},
		{"soaking",
		 CAMPAIGN_RUNNING,
		 0,
		 now - 100,
		 {.total = 100, .succeeded = 95, .failed = 5},
		 {.total = 900},
		 CAMPAIGN_ACT_WAIT,
		 0,
		 now + 500},
		{"soaked: release",
		 CAMPAIGN_RUNNING,
		 0,
		 now - 600,
		 {.total = 100, .succeeded = 95, .failed = 5},
		 {.total = 900},
		 CAMPAIGN_ACT_RELEASE,
		 1,
		 0},
		/* 12 of 100 finished failed: over 10% with >= 10 finished */
		{"failure gate",
		 CAMPAIGN_RUNNING,
		 0,
		 0,
		 {.total = 100, .succeeded = 88, .failed = 10, .silent = 2},
		 {.total = 900},
		 CAMPAIGN_ACT_PAUSE,
		 0,
		 0},
		/* 3 of 5 failed, but only 5 finished: below min_finished */
		{"minimum count",
		 CAMPAIGN_RUNNING,
		 0,
		 0,
		 {.total = 100, .offered = 95, .succeeded = 2, .failed = 3},
		 {.total = 900},
		 CAMPAIGN_ACT_NONE,
		 0,
		 0},
		/* exactly 10%: not over */
		{"at the limit",
		 CAMPAIGN_RUNNING,
		 0,
		 0,
		 {.total = 100, .succeeded = 90, .failed = 10},
		 {.total = 900},
		 CAMPAIGN_ACT_GATE_MET,
		 0,
		 now + 600},
		/* devices of an earlier phase going silent still count */
		{"silence in an earlier phase",
		 CAMPAIGN_RUNNING,
		 1,
		 0,
		 {.total = 100, .succeeded = 80, .silent = 20},
		 {.total = 900, .offered = 900},
		 CAMPAIGN_ACT_PAUSE,
		 0,
		 0},
		{"rolled back counts as failure",
		 CAMPAIGN_RUNNING,
		 1,
		 0,
		 {.total = 100, .succeeded = 100},
		 {.total = 900, .succeeded = 300, .rolled_back = 50},
		 CAMPAIGN_ACT_PAUSE,
		 1,
		 0},
		{"last phase: complete",
		 CAMPAIGN_RUNNING,
		 1,
		 now - 600,
		 {.total = 100, .succeeded = 100},
		 {.total = 900, .succeeded = 880, .pending = 20},
		 CAMPAIGN_ACT_COMPLETE,
		 1,
		 0},
		/* 1 of a 5-device canary failed: 4 of 5 is below 90% however
		 * the rest goes, so waiting for min_finished (10) would be
		 * forever */
		{"success out of reach",
		 CAMPAIGN_RUNNING,
		 0,
		 0,
		 {.total = 5, .offered = 4, .failed = 1},
		 {.total = 45},
		 CAMPAIGN_ACT_PAUSE,
		 0,
		 0},
		{"success out of reach by silence",
		 CAMPAIGN_RUNNING,
		 0,
		 0,
		 {.total = 5, .succeeded = 4, .silent = 1},
		 {.total = 45},
		 CAMPAIGN_ACT_PAUSE,
		 0,
		 0},
		/* 1 of 10 failed: 9 of 10 can still succeed (exactly 90%) */
		{"success still reachable",
		 CAMPAIGN_RUNNING,
		 0,
		 0,
		 {.total = 10, .offered = 9, .failed = 1},
		 {.total = 90},
		 CAMPAIGN_ACT_NONE,
		 0,
		 0},
		/* only the current phase's min_success is judged */
		{"out of reach in the next phase",
		 CAMPAIGN_RUNNING,
		 1,
		 0,
		 {.total = 10, .succeeded = 10},
		 {.total = 5, .offered = 3, .failed = 1, .rolled_back = 1},
		 CAMPAIGN_ACT_PAUSE,
		 1,
		 0},
		{"empty phase passes",
		 CAMPAIGN_RUNNING,
		 0,
		 0,
		 {.total = 0},
		 {.total = 0},
		 CAMPAIGN_ACT_GATE_MET,
		 0,
		 now + 600},
	};
	struct campaign_def d = def_of("10,100", false);
	struct campaign_counts counts[2];
	struct campaign_decision out;
	struct campaign_state st;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("case: %s\n", cases[i].name);
		st.status = cases[i].status;
		st.phase = cases[i].phase;
		st.gate_met_at = cases[i].gate_met_at;
		counts[0] = cases[i].c0;
		counts[1] = cases[i].c1;
		campaign_step(&d, &st, counts, now, &out);
		assert_int_equal(out.action, cases[i].want);
		assert_int_equal(out.phase, cases[i].want_phase);
		assert_int_equal(out.wake_at, cases[i].want_wake);
		if (out.action == CAMPAIGN_ACT_PAUSE)
			assert_non_null(strstr(out.reason, "failed"));
	}
}

/* The pause reason carries the figures the event log shows. */
static void
test_pause_reason(void **state)
{
	struct campaign_def d = def_of("10,100", false);
	struct campaign_counts counts[2] = {
		{.total = 100, .succeeded = 88, .failed = 12}, {.total = 900}};
	struct campaign_state st = {CAMPAIGN_RUNNING, 0, 0};
	struct campaign_decision out;

	(void)state;
	campaign_step(&d, &st, counts, 1800000000, &out);
	assert_int_equal(out.action, CAMPAIGN_ACT_PAUSE);
	assert_string_equal(out.reason,
			    "phase 1: 12 of 100 finished devices failed "
			    "(12.0%; limit 10.0%): 12 failed, 0 silent, 0 "
			    "rolled back");
}

/* A phase that can no longer reach min_success pauses at once, before
 * min_finished devices finished, with the figures; a gate of 0 never
 * does. */
static void
test_step_unreachable(void **state)
{
	struct campaign_def d = def_of("10,100", false);
	struct campaign_counts counts[2] = {{.total = 20,
					     .offered = 17,
					     .succeeded = 0,
					     .failed = 2,
					     .rolled_back = 1},
					    {.total = 180}};
	struct campaign_state st = {CAMPAIGN_RUNNING, 0, 0};
	struct campaign_decision out;

	(void)state;
	campaign_step(&d, &st, counts, 1800000000, &out);
	assert_int_equal(out.action, CAMPAIGN_ACT_PAUSE);
	assert_int_equal(out.phase, 0);
	assert_string_equal(out.reason,
			    "phase 1: 3 of 20 devices failed (15.0%), so at "
			    "most 17 "
			    "can succeed, below min_success 90.0%: 2 failed, "
			    "0 silent, 1 rolled back");
	/* two failures leave 18 of 20 = 90%: keep waiting */
	counts[0].rolled_back = 0;
	counts[0].offered = 18;
	campaign_step(&d, &st, counts, 1800000000, &out);
	assert_int_equal(out.action, CAMPAIGN_ACT_NONE);
	/* min_success 0 is always reachable: with 9 failed, below
	 * min_finished, the gate is met rather than paused */
	d.phases[0].gate.min_success = 0.0;
	counts[0].failed = 9;
	counts[0].offered = 11;
	campaign_step(&d, &st, counts, 1800000000, &out);
	assert_int_equal(out.action, CAMPAIGN_ACT_GATE_MET);
	/* a paused campaign is not paused again */
	d.phases[0].gate.min_success = 0.9;
	st.status = CAMPAIGN_PAUSED;
	campaign_step(&d, &st, counts, 1800000000, &out);
	assert_int_equal(out.action, CAMPAIGN_ACT_NONE);
}

static void
test_window(void **state)
{
	/* 1800000000 = Friday 2027-01-15 08:00:00 UTC */
	const int64_t fri8 = 1800000000;
	struct campaign_window w;
	char err[128];

	(void)state;
	assert_int_equal(
		campaign_window_parse(NULL, NULL, &w, err, sizeof(err)), 0);
	assert_true(campaign_in_window(&w, fri8));
	assert_int_equal(
		campaign_window_parse("22-6", "mon-fri", &w, err, sizeof(err)),
		0);
	assert_false(campaign_in_window(&w, fri8));
	assert_true(campaign_in_window(&w, fri8 - 3 * 3600)); /* 05:00 */
	/* next opening: Friday 22:00 */
	assert_int_equal(campaign_window_next(&w, fri8), fri8 + 14 * 3600);
	assert_int_equal(
		campaign_window_parse("9-17", "sat,sun", &w, err, sizeof(err)),
		0);
	/* Saturday 09:00 */
	assert_int_equal(campaign_window_next(&w, fri8),
			 fri8 + 24 * 3600 + 3600);
	assert_int_equal(
		campaign_window_parse("25-3", NULL, &w, err, sizeof(err)), -1);
	assert_int_equal(campaign_window_parse("8", NULL, &w, err, sizeof(err)),
			 -1);
	assert_int_equal(
		campaign_window_parse(NULL, "fri-funday", &w, err, sizeof(err)),
		-1);
}

/* Outside the window the driver waits instead of releasing. */
static void
test_step_window(void **state)
{
	struct campaign_def d = def_of("10,100", false);
	struct campaign_counts counts[2] = {{.total = 10, .succeeded = 10},
					    {.total = 90}};
	struct campaign_state st = {CAMPAIGN_RUNNING, 0, 1};
	struct campaign_decision out;
	char err[128];

	(void)state;
	assert_int_equal(campaign_window_parse("22-6", NULL, &d.window, err,
					       sizeof(err)),
			 0);
	d.phases[0].gate.soak_s = 0;
	campaign_step(&d, &st, counts, 1800000000, &out);
	assert_int_equal(out.action, CAMPAIGN_ACT_WAIT);
	assert_int_equal(out.wake_at, 1800000000 + 14 * 3600);
	campaign_step(&d, &st, counts, 1800000000 + 14 * 3600, &out);
	assert_int_equal(out.action, CAMPAIGN_ACT_RELEASE);
	assert_string_equal(out.reason,
			    "phase 2 of 2 released: 90 more devices");
}

static void
test_budget_and_duration(void **state)
{
	struct campaign_def d = def_of("1,10,50,100", false);

	(void)state;
	assert_int_equal(campaign_offer_budget(&d, 5000), UINT32_MAX);
	d.max_concurrent = 100;
	assert_int_equal(campaign_offer_budget(&d, 40), 60);
	assert_int_equal(campaign_offer_budget(&d, 100), 0);
	assert_int_equal(campaign_offer_budget(&d, 150), 0);
	assert_int_equal(campaign_min_duration(&d), 4 * 600);
}

static void
test_transitions(void **state)
{
	static const struct {
		enum campaign_status from;
		enum campaign_event ev;
		int rc;
		enum campaign_status to;
	} cases[] = {
		{CAMPAIGN_DRAFT, CAMPAIGN_EV_START, 0, CAMPAIGN_RUNNING},
		{CAMPAIGN_RUNNING, CAMPAIGN_EV_START, -1, 0},
		{CAMPAIGN_RUNNING, CAMPAIGN_EV_PAUSE, 0, CAMPAIGN_PAUSED},
		{CAMPAIGN_PAUSED, CAMPAIGN_EV_PAUSE, -1, 0},
		{CAMPAIGN_PAUSED, CAMPAIGN_EV_RESUME, 0, CAMPAIGN_RUNNING},
		{CAMPAIGN_RUNNING, CAMPAIGN_EV_RESUME, -1, 0},
		{CAMPAIGN_DRAFT, CAMPAIGN_EV_ABORT, 0, CAMPAIGN_ABORTED},
		{CAMPAIGN_PAUSED, CAMPAIGN_EV_ABORT, 0, CAMPAIGN_ABORTED},
		{CAMPAIGN_COMPLETED, CAMPAIGN_EV_ABORT, -1, 0},
		{CAMPAIGN_ABORTED, CAMPAIGN_EV_RESUME, -1, 0},
		{CAMPAIGN_RUNNING, CAMPAIGN_EV_COMPLETE, 0, CAMPAIGN_COMPLETED},
		{CAMPAIGN_PAUSED, CAMPAIGN_EV_COMPLETE, -1, 0},
	};
	enum campaign_status to;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		to = CAMPAIGN_STATUS_COUNT;
		assert_int_equal(
			campaign_transition(cases[i].from, cases[i].ev, &to),
			cases[i].rc);
		if (cases[i].rc == 0)
			assert_int_equal(to, cases[i].to);
	}
}

static void
test_names(void **state)
{
	enum campaign_kind k;

	(void)state;
	assert_int_equal(campaign_kind_parse("rotation", &k), 0);
	assert_int_equal(k, CAMPAIGN_ROTATION);
	assert_int_equal(campaign_kind_parse("ota", &k), -1);
	assert_string_equal(campaign_kind_name(CAMPAIGN_CONFIG), "config");
	assert_string_equal(campaign_status_name(CAMPAIGN_PAUSED), "paused");
}

/* The expiry rule: before expires_at nothing; at and after it a PAUSE of
 * the given phase whose reason names the artifact and the time; an
 * unknown expiry (0) never pauses. */
static void
test_artifact_expired(void **state)
{
	static const struct {
		int64_t expires_at, now;
		bool expired;
	} v[] = {
		{0, 1800000000, false},
		{1800000100, 1800000000, false},
		{1800000100, 1800000099, false},
		{1800000100, 1800000100, true},
		{1800000100, 1900000000, true},
	};
	struct campaign_decision d;

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		memset(&d, 0x5a, sizeof(d));
		assert_int_equal(campaign_artifact_expired(v[i].expires_at,
							   "fw 1.2", 2,
							   v[i].now, &d),
				 v[i].expired);
		if (!v[i].expired) {
			assert_int_equal(d.action, 0x5a5a5a5a);
			continue;
		}
		assert_int_equal(d.action, CAMPAIGN_ACT_PAUSE);
		assert_int_equal(d.phase, 2);
		assert_non_null(strstr(d.reason, "artifact expired: fw 1.2 "
						 "expired at "
						 "2027-01-15T08:01:40Z"));
	}
	assert_true(
		campaign_artifact_expired(1800000100, NULL, 0, 1800000100, &d));
	assert_non_null(strstr(d.reason, "the campaign's artifact"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_phases_parse),
		cmocka_unit_test(test_def_check_gates),
		cmocka_unit_test(test_cutoffs_and_sizes),
		cmocka_unit_test(test_rank),
		cmocka_unit_test(test_late_joiner),
		cmocka_unit_test(test_step_table),
		cmocka_unit_test(test_pause_reason),
		cmocka_unit_test(test_step_unreachable),
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_step_window),
		cmocka_unit_test(test_budget_and_duration),
		cmocka_unit_test(test_transitions),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_artifact_expired),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
