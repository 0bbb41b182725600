/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The campaign driver's pass (core/campaign_drive.c) over an in-memory
 * driver store (fake_store_campaigns.c): what it records, whom it admits
 * and when, and that a store failure stops the pass with nothing more
 * done.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/campaign.h"
#include "core/campaign_drive.h"
#include "fake_store_campaigns.h"

#define CID "4f1c2a9e-8d7b-4c6a-9e5f-1a2b3c4d5e6f"
#define CID2 "5f1c2a9e-8d7b-4c6a-9e5f-1a2b3c4d5e6f"
#define HB 90L
/* 2027-01-15 08:00:00 UTC, a Friday */
#define NOW 1800000000

static struct campaign_def
def_of(const char *phases, int64_t soak, uint32_t min_finished)
{
	struct campaign_gate g = {
		.min_success = 0.9,
		.soak_s = soak,
		.max_failure = 0.1,
		.min_finished = min_finished,
		.health_window_s = 600,
	};
	struct campaign_def d;
	char err[128];

	memset(&d, 0, sizeof(d));
	assert_int_equal(
		campaign_phases_parse(phases, false, &g, &d, err, sizeof(err)),
		0);
	return d;
}

static int
pass(struct store *st, int64_t now, int64_t *wake)
{
	*wake = -1;
	return campaign_drive_pass(st, now, HB, wake);
}

/* A campaign started with phase 0 released: the first pass offers the
 * canary (10 of 100, lowest ranks) and nobody else. */
static void
test_release_at_start(void **state)
{
	struct campaign_def d = def_of("10,100", 600, 1);
	struct store *st = fake_campaign_store_new();
	struct fake_campaign_view v;
	int64_t wake;
	size_t ci;

	(void)state;
	ci = fake_campaign_add(st, CID, CAMPAIGN_FIRMWARE, CAMPAIGN_RUNNING, &d,
			       0);
	fake_campaign_devices(st, ci, "dev", 100);
	assert_int_equal(pass(st, NOW, &wake), 0);
	assert_int_equal(wake, 0);
	assert_int_equal(fake_campaign_admitted(st, ci, 0, "offered"), 10);
	assert_int_equal(fake_campaign_admitted(st, ci, -1, NULL), 10);
	fake_campaign_view(st, ci, &v);
	assert_int_equal(v.status, CAMPAIGN_RUNNING);
	assert_int_equal(v.records, 0);
	/* again: nothing new (exactly once) */
	assert_int_equal(pass(st, NOW + 1, &wake), 0);
	assert_int_equal(fake_campaign_admitted(st, ci, -1, NULL), 10);
	fake_campaign_store_free(st);
}

/* Gate met -> soak -> release: the gate is recorded with the soak's end
 * as the wake-up, nothing is released while soaking, then the next
 * phase is released and admitted in the same pass. */
static void
test_gate_soak_release(void **state)
{
	struct campaign_def d = def_of("10,100", 600, 1);
	struct store *st = fake_campaign_store_new();
	struct fake_campaign_view v;
	int64_t wake;
	size_t ci;

	(void)state;
	ci = fake_campaign_add(st, CID, CAMPAIGN_FIRMWARE, CAMPAIGN_RUNNING, &d,
			       0);
	fake_campaign_devices(st, ci, "dev", 100);
	assert_int_equal(pass(st, NOW, &wake), 0);
	/* 8 of 10: below min_success 0.9, nothing recorded */
	assert_int_equal(
		fake_campaign_move(st, ci, 0, "offered", "succeeded", 8), 8);
	assert_int_equal(pass(st, NOW + 10, &wake), 0);
	fake_campaign_view(st, ci, &v);
	assert_int_equal(v.records, 0);
	assert_int_equal(v.gate_met_at, 0);
	fake_campaign_move(st, ci, 0, "offered", "succeeded", 2);
	assert_int_equal(pass(st, NOW + 20, &wake), 0);
	fake_campaign_view(st, ci, &v);
	assert_int_equal(v.records, 1);
	assert_int_equal(v.gate_met_at, NOW + 20);
	assert_int_equal(v.phase, 0);
	assert_int_equal(wake, NOW + 620);
	/* soaking */
	assert_int_equal(pass(st, NOW + 300, &wake), 0);
	assert_int_equal(wake, NOW + 620);
	fake_campaign_view(st, ci, &v);
	assert_int_equal(v.phase, 0);
	assert_int_equal(fake_campaign_admitted(st, ci, -1, NULL), 10);
	/* soaked: phase 2 released and its 90 devices offered */
	assert_int_equal(pass(st, NOW + 620, &wake), 0);
	fake_campaign_view(st, ci, &v);
	assert_int_equal(v.phase, 1);
	assert_int_equal(v.records, 2);
	assert_int_equal(v.gate_met_at, 0);
	assert_int_equal(fake_campaign_admitted(st, ci, 1, "offered"), 90);
	fake_campaign_store_free(st);
}

/* Without a soak, meeting the gate releases the next phase in the same
 * pass. */
static void
test_no_soak_same_pass(void **state)
{
	struct campaign_def d = def_of("10,100", 0, 1);
	struct store *st = fake_campaign_store_new();
	struct fake_campaign_view v;
	int64_t wake;
	size_t ci;

	(void)state;
	ci = fake_campaign_add(st, CID, CAMPAIGN_CONFIG, CAMPAIGN_RUNNING, &d,
			       0);
	fake_campaign_devices(st, ci, "dev", 50);
	assert_int_equal(pass(st, NOW, &wake), 0);
	assert_int_equal(fake_campaign_admitted(st, ci, 0, NULL), 5);
	fake_campaign_move(st, ci, 0, "offered", "succeeded", 5);
	assert_int_equal(pass(st, NOW + 1, &wake), 0);
	fake_campaign_view(st, ci, &v);
	assert_int_equal(v.records, 2); /* gate met, released */
	assert_int_equal(v.phase, 1);
	assert_int_equal(fake_campaign_admitted(st, ci, 1, NULL), 45);
	fake_campaign_store_free(st);
}

/* Too many failures pause the campaign (reason with the figures) and
 * nothing more is admitted while paused, not even late joiners. */
static void
test_pause_on_failures(void **state)
{
	struct campaign_def d = def_of("10,100", 0, 1);
	struct store *st = fake_campaign_store_new();
	struct fake_campaign_view v;
	int64_t wake;
	size_t ci;

	(void)state;
	ci = fake_campaign_add(st, CID, CAMPAIGN_FIRMWARE, CAMPAIGN_RUNNING, &d,
			       0);
	fake_campaign_devices(st, ci, "dev", 100);
	assert_int_equal(pass(st, NOW, &wake), 0);
	fake_campaign_move(st, ci, 0, "offered", "succeeded", 7);
	fake_campaign_move(st, ci, 0, "offered", "failed", 2);
	fake_campaign_move(st, ci, 0, "offered", "rolled_back", 1);
	assert_int_equal(pass(st, NOW + 1, &wake), 0);
	fake_campaign_view(st, ci, &v);
	assert_int_equal(v.status, CAMPAIGN_PAUSED);
	assert_int_equal(v.phase, 0);
	assert_non_null(strstr(v.pause_reason, "3 of 10"));
	fake_campaign_devices(st, ci, "late", 20);
	assert_int_equal(pass(st, NOW + 2, &wake), 0);
	assert_int_equal(fake_campaign_admitted(st, ci, -1, NULL), 10);
	/* paused campaigns are still synced and counted */
	assert_int_equal(fake_campaign_calls(st, FAKE_SYNC), 3);
	assert_int_equal(fake_campaign_calls(st, FAKE_ADMIT), 1);
	fake_campaign_store_free(st);
}

/* The last phase past its gate and soak completes the campaign. */
static void
test_complete(void **state)
{
	struct campaign_def d = def_of("50,100", 0, 1);
	struct store *st = fake_campaign_store_new();
	struct fake_campaign_view v;
	int64_t wake;
	size_t ci;

	(void)state;
	ci = fake_campaign_add(st, CID, CAMPAIGN_ROTATION, CAMPAIGN_RUNNING, &d,
			       0);
	fake_campaign_devices(st, ci, "dev", 20);
	assert_int_equal(pass(st, NOW, &wake), 0);
	fake_campaign_move(st, ci, 0, "offered", "succeeded", 10);
	assert_int_equal(pass(st, NOW + 1, &wake), 0);
	fake_campaign_view(st, ci, &v);
	assert_int_equal(v.phase, 1);
	assert_int_equal(
		fake_campaign_move(st, ci, 1, "offered", "succeeded", 10), 10);
	assert_int_equal(pass(st, NOW + 2, &wake), 0);
	fake_campaign_view(st, ci, &v);
	assert_int_equal(v.status, CAMPAIGN_COMPLETED);
	assert_int_equal(v.records, 4); /* gate, release, gate, complete */
	/* completed: no longer due */
	assert_int_equal(pass(st, NOW + 3, &wake), 0);
	assert_int_equal(fake_campaign_calls(st, FAKE_SYNC), 3);
	fake_campaign_store_free(st);
}

/* A campaign completed with devices still updating (min_success below
 * 1) is still synced, and nothing else, until they finish. */
static void
test_completed_syncs_stragglers(void **state)
{
	struct campaign_def d = def_of("50,100", 0, 1);
	struct store *st = fake_campaign_store_new();
	struct fake_campaign_view v;
	int64_t wake;
	size_t ci, syncs;

	(void)state;
	ci = fake_campaign_add(st, CID, CAMPAIGN_FIRMWARE, CAMPAIGN_RUNNING, &d,
			       0);
	fake_campaign_devices(st, ci, "dev", 20);
	assert_int_equal(pass(st, NOW, &wake), 0);
	fake_campaign_move(st, ci, 0, "offered", "succeeded", 10);
	assert_int_equal(pass(st, NOW + 1, &wake), 0);
	assert_int_equal(
		fake_campaign_move(st, ci, 1, "offered", "succeeded", 9), 9);
	assert_int_equal(pass(st, NOW + 2, &wake), 0);
	fake_campaign_view(st, ci, &v);
	assert_int_equal(v.status, CAMPAIGN_COMPLETED);
	syncs = fake_campaign_calls(st, FAKE_SYNC);
	assert_int_equal(pass(st, NOW + 3, &wake), 0);
	assert_int_equal(fake_campaign_calls(st, FAKE_SYNC), syncs + 1);
	assert_int_equal(fake_campaign_calls(st, FAKE_COUNTS), 3);
	fake_campaign_move(st, ci, 1, "offered", "succeeded", 1);
	assert_int_equal(pass(st, NOW + 4, &wake), 0);
	assert_int_equal(pass(st, NOW + 5, &wake), 0);
	assert_int_equal(fake_campaign_calls(st, FAKE_SYNC), syncs + 1);
	fake_campaign_view(st, ci, &v);
	assert_int_equal(v.records, 4);
	fake_campaign_store_free(st);
}

/* What a campaign delivers cannot be given to a device (admit answers
 * STORE_CONFLICT): the driver pauses it with the reason instead of
 * failing every pass. */
static void
test_undeliverable_pauses(void **state)
{
	struct campaign_def d = def_of("50,100", 0, 1);
	struct store *st = fake_campaign_store_new();
	struct fake_campaign_view v;
	int64_t wake;
	size_t ci;

	(void)state;
	ci = fake_campaign_add(st, CID, CAMPAIGN_CONFIG, CAMPAIGN_RUNNING, &d,
			       0);
	fake_campaign_devices(st, ci, "dev", 10);
	fake_campaign_undeliverable(st, ci);
	assert_int_equal(pass(st, NOW, &wake), 0);
	fake_campaign_view(st, ci, &v);
	assert_int_equal(v.status, CAMPAIGN_PAUSED);
	assert_non_null(strstr(v.pause_reason, "256 KiB"));
	assert_int_equal(fake_campaign_admitted(st, ci, -1, NULL), 0);
	fake_campaign_store_free(st);
}

/* A firmware campaign's artifact expires: until then it runs (and asks
 * to be woken at the expiry); from then on it is paused with a reason
 * that names the artifact and the time, and nothing more is admitted. A
 * campaign whose artifact never expires by now is untouched. */
static void
test_artifact_expiry_pauses(void **state)
{
	struct campaign_def d = def_of("10,100", 3600, 1);
	struct store *st = fake_campaign_store_new();
	struct fake_campaign_view v;
	int64_t wake;
	size_t ci, admitted;

	(void)state;
	ci = fake_campaign_add(st, CID, CAMPAIGN_FIRMWARE, CAMPAIGN_RUNNING, &d,
			       0);
	fake_campaign_devices(st, ci, "dev", 100);
	fake_campaign_artifact(st, ci, NOW + 100, "plc-fw 2.1.0");
	assert_int_equal(pass(st, NOW, &wake), 0);
	fake_campaign_view(st, ci, &v);
	assert_int_equal(v.status, CAMPAIGN_RUNNING);
	assert_int_equal(wake, NOW + 100);
	admitted = fake_campaign_admitted(st, ci, -1, NULL);
	assert_int_equal(admitted, 10);
	/* a late joiner would be admitted, but the artifact expired */
	fake_campaign_devices(st, ci, "late", 20);
	assert_int_equal(pass(st, NOW + 100, &wake), 0);
	fake_campaign_view(st, ci, &v);
	assert_int_equal(v.status, CAMPAIGN_PAUSED);
	assert_int_equal(v.records, 1);
	assert_non_null(strstr(v.pause_reason, "artifact expired"));
	assert_non_null(strstr(v.pause_reason, "plc-fw 2.1.0"));
	assert_non_null(strstr(v.pause_reason, "2027-01-15T08:01:40Z"));
	assert_int_equal(fake_campaign_admitted(st, ci, -1, NULL), admitted);
	/* paused: the next pass records nothing more */
	assert_int_equal(pass(st, NOW + 200, &wake), 0);
	fake_campaign_view(st, ci, &v);
	assert_int_equal(v.records, 1);
	fake_campaign_store_free(st);
}

/* Late joiners join at their rank, but only inside the time window and
 * within the concurrency budget; outside the window the pass asks to be
 * woken when it opens. */
static void
test_late_joiners_window_budget(void **state)
{
	struct campaign_def d = def_of("100", 0, 1);
	struct store *st = fake_campaign_store_new();
	char err[128];
	int64_t wake;
	size_t ci, ph;

	(void)state;
	/* 22-6 UTC: closed at NOW (08:00), opens at 22:00 */
	assert_int_equal(campaign_window_parse("22-6", NULL, &d.window, err,
					       sizeof(err)),
			 0);
	d.max_concurrent = 5;
	ci = fake_campaign_add(st, CID, CAMPAIGN_FIRMWARE, CAMPAIGN_RUNNING, &d,
			       0);
	fake_campaign_devices(st, ci, "dev", 10);
	assert_int_equal(pass(st, NOW, &wake), 0);
	assert_int_equal(fake_campaign_admitted(st, ci, -1, NULL), 0);
	assert_int_equal(wake, NOW + 14 * 3600);
	/* window open: 5 offered (the cap) */
	assert_int_equal(pass(st, NOW + 14 * 3600, &wake), 0);
	assert_int_equal(fake_campaign_admitted(st, ci, -1, "offered"), 5);
	/* 3 of them install; their slots go to the next 3 */
	fake_campaign_move(st, ci, 0, "offered", "succeeded", 3);
	assert_int_equal(pass(st, NOW + 14 * 3600 + 1, &wake), 0);
	assert_int_equal(fake_campaign_admitted(st, ci, -1, NULL), 8);
	assert_int_equal(fake_campaign_admitted(st, ci, -1, "offered"), 5);
	/* a device enrolled later joins at its rank once a slot frees */
	fake_campaign_devices(st, ci, "late", 1);
	fake_campaign_move(st, ci, 0, "offered", "succeeded", 5);
	assert_int_equal(pass(st, NOW + 14 * 3600 + 2, &wake), 0);
	assert_true(fake_campaign_device_admitted(st, ci, "late-10", &ph));
	assert_int_equal(ph, 0);
	assert_int_equal(fake_campaign_admitted(st, ci, -1, NULL), 11);
	/* the window closes again: another late joiner waits */
	fake_campaign_devices(st, ci, "later", 1);
	assert_int_equal(pass(st, NOW + 24 * 3600, &wake), 0);
	assert_false(fake_campaign_device_admitted(st, ci, "later-11", &ph));
	assert_int_equal(wake, NOW + 38 * 3600);
	fake_campaign_store_free(st);
}

/* Late joiners of a later, unreleased phase wait for their phase. */
static void
test_late_joiner_unreleased_phase(void **state)
{
	struct campaign_def d = def_of("10,100", 600, 1);
	struct store *st = fake_campaign_store_new();
	int64_t wake;
	size_t ci;

	(void)state;
	ci = fake_campaign_add(st, CID, CAMPAIGN_FIRMWARE, CAMPAIGN_RUNNING, &d,
			       0);
	fake_campaign_devices(st, ci, "dev", 100);
	assert_int_equal(pass(st, NOW, &wake), 0);
	/* 10 more: the canary covers 11 of 110 now, one more device */
	fake_campaign_devices(st, ci, "late", 10);
	assert_int_equal(pass(st, NOW + 1, &wake), 0);
	assert_int_equal(fake_campaign_admitted(st, ci, 0, NULL), 11);
	assert_int_equal(fake_campaign_admitted(st, ci, 1, NULL), 0);
	fake_campaign_store_free(st);
}

/* An aborted campaign gets its abort effects once; draft and completed
 * ones are left alone. */
static void
test_abort_once(void **state)
{
	struct campaign_def d = def_of("10,100", 0, 1);
	struct store *st = fake_campaign_store_new();
	int64_t wake;
	size_t ci, cj;

	(void)state;
	ci = fake_campaign_add(st, CID, CAMPAIGN_CONFIG, CAMPAIGN_ABORTED, &d,
			       0);
	fake_campaign_devices(st, ci, "dev", 10);
	cj = fake_campaign_add(st, CID2, CAMPAIGN_FIRMWARE, CAMPAIGN_DRAFT, &d,
			       0);
	fake_campaign_devices(st, cj, "dev", 10);
	assert_int_equal(pass(st, NOW, &wake), 0);
	assert_int_equal(fake_campaign_abort_runs(st, ci), 1);
	assert_int_equal(pass(st, NOW + 1, &wake), 0);
	assert_int_equal(pass(st, NOW + 2, &wake), 0);
	assert_int_equal(fake_campaign_abort_runs(st, ci), 1);
	assert_int_equal(fake_campaign_calls(st, FAKE_ABORT), 1);
	assert_int_equal(fake_campaign_calls(st, FAKE_SYNC), 0);
	assert_int_equal(fake_campaign_calls(st, FAKE_ADMIT), 0);
	assert_int_equal(fake_campaign_admitted(st, cj, -1, NULL), 0);
	fake_campaign_store_free(st);
}

/* A store failure anywhere: -1, *wake_at untouched, and no later call of
 * the pass is made (the next pass starts from the rows). */
static void
test_store_failure(void **state)
{
	static const enum fake_call at[] = {FAKE_DUE, FAKE_SYNC, FAKE_COUNTS,
					    FAKE_RECORD, FAKE_ADMIT};
	struct campaign_def d = def_of("10,100", 0, 1);
	struct fake_campaign_view v;
	size_t i, k, ci, cj, before[FAKE_NCALLS];
	int64_t wake;

	(void)state;
	for (i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		struct store *st = fake_campaign_store_new();

		print_message("failing call %zu\n", i);
		ci = fake_campaign_add(st, CID, CAMPAIGN_FIRMWARE,
				       CAMPAIGN_RUNNING, &d, 0);
		fake_campaign_devices(st, ci, "dev", 20);
		cj = fake_campaign_add(st, CID2, CAMPAIGN_FIRMWARE,
				       CAMPAIGN_RUNNING, &d, 0);
		fake_campaign_devices(st, cj, "dev", 20);
		/* phase 1 of the first succeeded: a pass records */
		assert_int_equal(pass(st, NOW, &wake), 0);
		fake_campaign_move(st, ci, 0, "offered", "succeeded", 2);
		for (k = 0; k < FAKE_NCALLS; k++)
			before[k] = fake_campaign_calls(st, (enum fake_call)k);
		fake_campaign_fail(st, at[i]);
		assert_int_equal(pass(st, NOW + 1, &wake), -1);
		assert_int_equal(wake, -1);
		/* the failing call was the last one: it was made once, and
		 * no call that comes after it in a pass was made */
		for (k = 0; k < FAKE_NCALLS; k++) {
			size_t now_k =
				fake_campaign_calls(st, (enum fake_call)k);

			if (k == (size_t)at[i])
				assert_int_equal(now_k, before[k] + 1);
			else if (k > (size_t)at[i])
				assert_int_equal(now_k, before[k]);
		}
		/* the second campaign was not touched; the first has its
		 * canary only */
		assert_int_equal(fake_campaign_admitted(st, ci, -1, NULL), 2);
		assert_int_equal(fake_campaign_admitted(st, cj, -1, NULL), 2);
		fake_campaign_view(st, cj, &v);
		assert_int_equal(v.records, 0);
		/* and the next pass finishes the work */
		assert_int_equal(pass(st, NOW + 2, &wake), 0);
		assert_int_equal(fake_campaign_admitted(st, ci, -1, NULL), 20);
		fake_campaign_store_free(st);
	}
}

/* An aborted campaign's effects failing: -1, retried next pass. */
static void
test_abort_failure_retried(void **state)
{
	struct campaign_def d = def_of("100", 0, 1);
	struct store *st = fake_campaign_store_new();
	int64_t wake;
	size_t ci;

	(void)state;
	ci = fake_campaign_add(st, CID, CAMPAIGN_FIRMWARE, CAMPAIGN_ABORTED, &d,
			       0);
	fake_campaign_fail(st, FAKE_ABORT);
	assert_int_equal(pass(st, NOW, &wake), -1);
	assert_int_equal(fake_campaign_abort_runs(st, ci), 0);
	assert_int_equal(pass(st, NOW + 1, &wake), 0);
	assert_int_equal(fake_campaign_abort_runs(st, ci), 1);
	fake_campaign_store_free(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_release_at_start),
		cmocka_unit_test(test_gate_soak_release),
		cmocka_unit_test(test_no_soak_same_pass),
		cmocka_unit_test(test_pause_on_failures),
		cmocka_unit_test(test_complete),
		cmocka_unit_test(test_completed_syncs_stragglers),
		cmocka_unit_test(test_undeliverable_pauses),
		cmocka_unit_test(test_artifact_expiry_pauses),
		cmocka_unit_test(test_late_joiners_window_budget),
		cmocka_unit_test(test_late_joiner_unreleased_phase),
		cmocka_unit_test(test_abort_once),
		cmocka_unit_test(test_store_failure),
		cmocka_unit_test(test_abort_failure_retried),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
