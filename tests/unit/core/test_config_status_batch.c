/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.status in batches (fleetd/channel/config_status.c,
 * docs/internals/perf.md), without network or database: a fake channel
 * seam whose job queue runs work only when the test says, so reports pile
 * up while two batches are in flight. Checks: at most two batches in
 * flight and the rest taken as one batch; a device with several reports
 * in one batch has them applied in rounds (the store call always gets
 * distinct devices) in arrival order; every device gets its answers
 * through its own session after the commit; a session that ended gets
 * none; a full job queue answers "unavailable" to every report of the
 * batch; storage trouble answers "unavailable" and applies nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "channel/channel_int.h"
#include "core/store_config_batch.h"
#include "core/store_config_delivery.h"
#include "fake_store_config_delivery.h"
#include "fake_store_reports.h"
#include "proto/proto.h"

#define HASH "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define NSESS 3
#define MAXWORK 16

static const char *const ids[NSESS] = {
	"0b6f4c1e-8f0a-4a51-9d3c-2f1e0a9b7c11",
	"1b6f4c1e-8f0a-4a51-9d3c-2f1e0a9b7c11",
	"2b6f4c1e-8f0a-4a51-9d3c-2f1e0a9b7c11",
};

/* ---- the fake seam ------------------------------------------------------ */

struct channel_session {
	const char *id;
	char answers[512]; /* "applied@1 unavailable@2 ..." */
	bool gone;
};

struct pending_work {
	struct channel_work w;
	struct channel_session *s;
};

struct channel {
	struct store *st;
	struct channel_session s[NSESS];
	struct pending_work work[MAXWORK];
	size_t nwork;
	bool busy; /* the job queue is full */
	struct cfg_status_batch *slot;
	size_t calls, max_call; /* store batch calls, largest one */
};

static struct channel *the_channel;

static void
answer(struct channel_session *s, const char *word, uint64_t seq)
{
	size_t n = strlen(s->answers);

	snprintf(s->answers + n, sizeof(s->answers) - n, "%s%s@%llu",
		 n > 0 ? " " : "", word, (unsigned long long)seq);
}

void
channel_send_ack(struct channel_session *s, uint64_t seq, const char *status)
{
	answer(s, status, seq);
}

void
channel_send_report_error(struct channel_session *s, const char *code,
			  const char *message, uint64_t seq, const char *type)
{
	(void)message;
	assert_string_equal(type, "config.status");
	answer(s, code, seq);
}

const char *
channel_session_device_id(const struct channel_session *s)
{
	return s->id;
}

bool
channel_submit_work(struct channel *ch, struct channel_session *s,
		    const struct channel_work *work)
{
	if (ch->busy || ch->nwork == MAXWORK)
		return false;
	ch->work[ch->nwork].w = *work;
	ch->work[ch->nwork].s = s;
	ch->nwork++;
	return true;
}

struct channel_session *
channel_find_device(struct channel *ch, const char *device_id)
{
	for (int i = 0; i < NSESS; i++)
		if (!ch->s[i].gone && strcmp(ch->s[i].id, device_id) == 0)
			return &ch->s[i];
	return NULL;
}

struct cfg_status_batch **
channel_cfg_status_slot(struct channel *ch)
{
	return &ch->slot;
}

/* The batch store call, on the fake store one report after another; the
 * handler's contract: distinct devices in one call. */
enum store_rc
store_config_report_apply_batch(struct store *st,
				struct config_report_item *items, size_t n)
{
	the_channel->calls++;
	if (n > the_channel->max_call)
		the_channel->max_call = n;
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			assert_string_not_equal(items[i].device_id,
						items[j].device_id);
	for (size_t i = 0; i < n; i++) {
		struct config_report_item *it = &items[i];

		it->rc = store_config_report_apply(st, it->device_id, &it->r,
						   &it->status, &it->verdict,
						   &it->cv);
		if (it->rc == STORE_ERR)
			return STORE_ERR;
	}
	return STORE_OK;
}

/* ---- helpers ------------------------------------------------------------ */

static int
setup(void **state)
{
	struct channel *ch = calloc(1, sizeof(*ch));

	assert_non_null(ch);
	ch->st = fake_store_new();
	for (int i = 0; i < NSESS; i++) {
		ch->s[i].id = ids[i];
		fake_store_add_device(ch->st, ids[i], true);
		fake_cfg_set_desired(ids[i], 1, HASH, "{}");
	}
	the_channel = ch;
	*state = ch;
	return 0;
}

static int
teardown(void **state)
{
	struct channel *ch = *state;

	cfg_status_batch_free(ch->slot);
	fake_store_free(ch->st);
	fake_cfg_reset();
	free(ch);
	return 0;
}

static void
report(struct channel *ch, int dev, uint64_t seq)
{
	char text[256];
	struct proto_error err;
	struct proto_msg m;

	snprintf(text, sizeof(text),
		 "{\"type\":\"config.status\",\"seq\":%llu,"
		 "\"config_version\":1,\"config_hash\":\"" HASH "\","
		 "\"state\":\"applied\"}",
		 (unsigned long long)seq);
	assert_int_equal(
		proto_decode(text, strlen(text), PROTO_TO_SERVER, &m, &err),
		PROTO_OK);
	channel_cfg_status(ch, &ch->s[dev], &m);
	proto_msg_clear(&m);
}

/* Runs the oldest queued work (run on a job thread, then done). */
static void
run_one(struct channel *ch)
{
	struct pending_work pw;

	assert_true(ch->nwork > 0);
	pw = ch->work[0];
	memmove(&ch->work[0], &ch->work[1],
		(ch->nwork - 1) * sizeof(ch->work[0]));
	ch->nwork--;
	pw.w.run(ch->st, pw.s != NULL ? pw.s->id : "", pw.w.arg);
	pw.w.done(ch, pw.s != NULL && !pw.s->gone ? pw.s : NULL, pw.w.arg);
}

static void
run_all(struct channel *ch)
{
	while (ch->nwork > 0)
		run_one(ch);
}

/* ---- tests -------------------------------------------------------------- */

static void
test_batches_and_rounds(void **state)
{
	struct channel *ch = *state;

	report(ch, 0, 1); /* batch 1 */
	report(ch, 1, 1); /* batch 2 */
	assert_int_equal(ch->nwork, 2);
	/* Both in flight: these wait, device 0 three times. */
	report(ch, 0, 2);
	report(ch, 2, 1);
	report(ch, 0, 3);
	report(ch, 0, 2); /* a re-send */
	assert_int_equal(ch->nwork, 2);
	assert_string_equal(ch->s[0].answers, "");
	run_one(ch); /* batch 1 done: the four waiting ones go as one */
	assert_string_equal(ch->s[0].answers, "applied@1");
	assert_int_equal(ch->nwork, 2);
	run_all(ch);
	/* Rounds in arrival order: 2, 3, then 2 again (a duplicate). */
	assert_string_equal(ch->s[0].answers,
			    "applied@1 applied@2 applied@3 duplicate@2");
	assert_string_equal(ch->s[1].answers, "applied@1");
	assert_string_equal(ch->s[2].answers, "applied@1");
	/* batch 1, batch 2, then the third in three rounds */
	assert_int_equal(ch->calls, 5);
	assert_int_equal(ch->max_call, 2);
	assert_int_equal(
		fake_store_applied(ch->st, ids[0], "config.status", NULL, NULL),
		3);
}

static void
test_session_gone(void **state)
{
	struct channel *ch = *state;

	report(ch, 0, 1);
	report(ch, 1, 1);
	report(ch, 2, 1); /* waits */
	report(ch, 1, 2); /* waits */
	run_one(ch);
	ch->s[1].gone = true; /* ends while its reports are applied */
	run_all(ch);
	assert_string_equal(ch->s[0].answers, "applied@1");
	assert_string_equal(ch->s[1].answers, "");
	assert_string_equal(ch->s[2].answers, "applied@1");
	/* applied all the same: the agent's re-send gets "duplicate" */
	assert_int_equal(
		fake_store_applied(ch->st, ids[1], "config.status", NULL, NULL),
		2);
}

static void
test_busy_and_storage(void **state)
{
	struct channel *ch = *state;

	report(ch, 0, 1);
	report(ch, 1, 1);
	report(ch, 2, 1); /* waits */
	report(ch, 0, 2); /* waits */
	ch->busy = true; /* the next batch cannot be queued */
	run_one(ch);
	assert_string_equal(ch->s[0].answers, "applied@1 unavailable@2");
	assert_string_equal(ch->s[2].answers, "unavailable@1");
	ch->busy = false;
	run_all(ch);
	assert_string_equal(ch->s[1].answers, "applied@1");
	/* storage trouble: unavailable, nothing applied */
	fake_store_fail_next(ch->st, 1);
	report(ch, 2, 1);
	run_all(ch);
	assert_string_equal(ch->s[2].answers, "unavailable@1 unavailable@1");
	assert_int_equal(
		fake_store_applied(ch->st, ids[2], "config.status", NULL, NULL),
		0);
	report(ch, 2, 1);
	run_all(ch);
	assert_string_equal(ch->s[2].answers,
			    "unavailable@1 unavailable@1 applied@1");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_batches_and_rounds, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_session_gone, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_busy_and_storage, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
