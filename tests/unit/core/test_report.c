/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reports applied exactly once (core/report.c) against an in-memory store:
 * the window rule as a table of arrivals, then report_submit: duplicates
 * and stale seqs are acknowledged without a second effect, a storage
 * failure applies nothing and asks for a retry, reports that overtake each
 * other are each applied once and never move the latest status back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/report.h"
#include "core/store_reports.h"
#include "fake_store_reports.h"

#define DEV "0b6f4c1e-8f0a-4a51-9d3c-2f1e0a9b7c11"
#define OLD "5d1c6a0e-1111-4a51-9d3c-2f1e0a9b7c11"

static void
test_window_rule(void **state)
{
	/* arrivals in order, with what each must be */
	static const struct {
		uint64_t seq;
		enum report_verdict want;
	} steps[] = {
		{1, REPORT_NEW},	{1, REPORT_DUPLICATE},
		{2, REPORT_NEW},	{5, REPORT_NEW},
		{3, REPORT_NEW},	{4, REPORT_NEW},
		{3, REPORT_DUPLICATE},	{5, REPORT_DUPLICATE},
		{100, REPORT_NEW},	{36, REPORT_STALE}, /* 64 below */
		{37, REPORT_NEW}, /* 63 below: still tracked */
		{37, REPORT_DUPLICATE}, {99, REPORT_NEW},
		{101, REPORT_NEW},	{37, REPORT_STALE}, /* slid out */
		{5000, REPORT_NEW},	{4999, REPORT_NEW}, /* far jump */
		{101, REPORT_STALE},	{5000, REPORT_DUPLICATE},
	};
	struct report_window w = {0, 0};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		enum report_verdict v = report_window_check(&w, steps[i].seq);

		if (v != steps[i].want)
			fail_msg("step %zu: seq %llu gave %d, want %d", i,
				 (unsigned long long)steps[i].seq, v,
				 steps[i].want);
		if (v == REPORT_NEW)
			report_window_mark(&w, steps[i].seq);
	}
	assert_int_equal(w.hwm, 5000);
	assert_int_equal(w.mask, 3); /* 5000 and 4999 */
}

static enum report_answer
submit(struct store *st, const char *dev, const char *kind, uint64_t seq)
{
	char body[96];
	struct report r;

	snprintf(body, sizeof(body), "{\"type\":\"%s\",\"seq\":%llu}", kind,
		 (unsigned long long)seq);
	r.seq = seq;
	r.kind = kind;
	r.body = body;
	return report_submit(st, dev, &r);
}

static void
test_submit_once(void **state)
{
	struct store *st = fake_store_new();
	const char *body;
	uint64_t seq;

	(void)state;
	fake_store_add_device(st, DEV, true);
	fake_store_add_device(st, OLD, false);
	assert_int_equal(submit(st, DEV, "config.status", 1),
			 REPORT_ACK_APPLIED);
	/* the connection dropped before the ack: the agent sends it again */
	assert_int_equal(submit(st, DEV, "config.status", 1),
			 REPORT_ACK_DUPLICATE);
	assert_int_equal(
		fake_store_applied(st, DEV, "config.status", NULL, NULL), 1);
	assert_int_equal(submit(st, DEV, "cmd.result", 2), REPORT_ACK_APPLIED);
	assert_int_equal(submit(st, DEV, "config.status", 3),
			 REPORT_ACK_APPLIED);
	assert_int_equal(
		fake_store_applied(st, DEV, "config.status", &seq, &body), 2);
	assert_int_equal(seq, 3);
	assert_non_null(strstr(body, "\"seq\":3"));
	/* storage down: nothing applied, retry; then applied once */
	fake_store_fail_next(st, 1);
	assert_int_equal(submit(st, DEV, "update.status", 4), REPORT_RETRY);
	assert_int_equal(
		fake_store_applied(st, DEV, "update.status", NULL, NULL), 0);
	assert_int_equal(submit(st, DEV, "update.status", 4),
			 REPORT_ACK_APPLIED);
	assert_int_equal(submit(st, DEV, "update.status", 4),
			 REPORT_ACK_DUPLICATE);
	/* far below the window: acknowledged, never applied again */
	assert_int_equal(submit(st, DEV, "cmd.result", 200),
			 REPORT_ACK_APPLIED);
	assert_int_equal(submit(st, DEV, "cmd.result", 2), REPORT_ACK_STALE);
	assert_int_equal(fake_store_applied(st, DEV, "cmd.result", NULL, NULL),
			 2);
	/* not an active device, not a report */
	assert_int_equal(submit(st, OLD, "cmd.result", 1), REPORT_REFUSED);
	assert_int_equal(submit(st, "no-such", "cmd.result", 1),
			 REPORT_REFUSED);
	assert_int_equal(submit(st, DEV, "hello", 300), REPORT_INVALID);
	assert_int_equal(submit(st, DEV, "cmd.result", 0), REPORT_INVALID);
	assert_string_equal(report_answer_status(REPORT_ACK_APPLIED),
			    "applied");
	assert_string_equal(report_answer_status(REPORT_ACK_DUPLICATE),
			    "duplicate");
	assert_string_equal(report_answer_status(REPORT_ACK_STALE), "stale");
	assert_null(report_answer_status(REPORT_RETRY));
	fake_store_free(st);
}

/* 60 reports arrive shuffled (never more than 32 places out of order) and
 * each three times: each is applied once, the latest status is seq 60. */
static void
test_reordered_and_repeated(void **state)
{
	struct store *st = fake_store_new();
	uint64_t order[180], tmp, seq;
	size_t i, j, n = 0;
	int applied = 0;

	(void)state;
	fake_store_add_device(st, DEV, true);
	srand(7);
	for (int rep = 0; rep < 3; rep++)
		for (i = 1; i <= 60; i++)
			order[n++] = i;
	for (i = 0; i < n; i++) {
		j = i + (size_t)rand() % 32;
		if (j >= n)
			j = n - 1;
		tmp = order[i];
		order[i] = order[j];
		order[j] = tmp;
	}
	for (i = 0; i < n; i++) {
		enum report_answer a =
			submit(st, DEV, "config.status", order[i]);

		assert_true(a == REPORT_ACK_APPLIED ||
			    a == REPORT_ACK_DUPLICATE);
		applied += a == REPORT_ACK_APPLIED;
	}
	assert_int_equal(applied, 60);
	assert_int_equal(
		fake_store_applied(st, DEV, "config.status", &seq, NULL), 60);
	assert_int_equal(seq, 60);
	fake_store_free(st);
}

static void
test_hello(void **state)
{
	struct store *st = fake_store_new();
	struct device_hello h;

	(void)state;
	fake_store_add_device(st, DEV, true);
	memset(&h, 0, sizeof(h));
	h.fw_version = "1.2.3";
	h.uptime = -1;
	assert_int_equal(store_device_hello(st, DEV, &h), STORE_OK);
	assert_string_equal(fake_store_hello(st, DEV)->fw_version, "1.2.3");
	fake_store_fail_next(st, 1);
	assert_int_equal(store_device_hello(st, DEV, &h), STORE_ERR);
	fake_store_free(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_window_rule),
		cmocka_unit_test(test_submit_once),
		cmocka_unit_test(test_reordered_and_repeated),
		cmocka_unit_test(test_hello),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
