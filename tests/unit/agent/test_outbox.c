/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's reports until acknowledged: agent_report_enqueue gives each
 * report the next seq and validates it against fleet.v1; the outbox sends
 * oldest first with at most AGENT_INFLIGHT_MAX unacknowledged, a report
 * leaves the queue only on an ack of its seq (in any order), a reconnect
 * or a retry sends everything unacknowledged again oldest first, and the
 * queue survives a restart. Two processes queueing at once never share a
 * seq.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_int.h"
#include "agent_test_util.h"

static int
enqueue(const char *dir, uint64_t *seq)
{
	char err[256];
	json_t *msg =
		json_pack("{s:s, s:s, s:s, s:i}", "type", "cmd.result",
			  "cmd_id", "0b6f4c1e-8f0a-4a51-9d3c-2f1e0a9b7c11",
			  "status", "ok", "exit_code", 0);
	int rc = agent_report_enqueue(dir, msg, seq, err, sizeof(err));

	json_decref(msg);
	return rc;
}

static uint64_t
next(struct agent_outbox *o)
{
	char err[256], *text = NULL;
	uint64_t seq = 0;
	size_t len;
	int n = agent_outbox_next(o, &seq, &text, &len, NULL, err, sizeof(err));

	assert_true(n >= 0);
	if (n == 0)
		return 0;
	/* what goes out is a valid fleet.v1 report with that seq */
	{
		struct proto_error perr;
		struct proto_msg m;

		assert_int_equal(
			proto_decode(text, len, PROTO_TO_SERVER, &m, &perr),
			PROTO_OK);
		assert_int_equal(m.seq, seq);
		proto_msg_clear(&m);
	}
	free(text);
	return seq;
}

static void
ack(struct agent_outbox *o, uint64_t seq)
{
	char err[256];

	assert_int_equal(agent_outbox_ack(o, seq, err, sizeof(err)), 0);
}

static void
test_window_ack_reset(void **state)
{
	const char *dir = *state;
	struct agent_outbox o;
	uint64_t seq, i;

	for (i = 1; i <= 10; i++) {
		assert_int_equal(enqueue(dir, &seq), 0);
		assert_int_equal(seq, i);
	}
	agent_outbox_init(&o, dir);
	for (i = 1; i <= AGENT_INFLIGHT_MAX; i++)
		assert_int_equal(next(&o), i);
	assert_int_equal(next(&o), 0); /* window full */
	ack(&o, 3); /* acks may come in any order */
	assert_int_equal(next(&o), 9);
	assert_int_equal(next(&o), 0);
	ack(&o, 1);
	ack(&o, 2);
	assert_int_equal(next(&o), 10);
	assert_int_equal(next(&o), 0); /* all sent */
	assert_int_equal(agent_queue_count(dir), 7);
	/* the connection drops: unacknowledged ones go again, oldest first */
	agent_outbox_reset(&o);
	assert_int_equal(next(&o), 4);
	assert_int_equal(next(&o), 5);
	/* an ack of an earlier connection's copy still removes it */
	ack(&o, 9);
	assert_int_equal(agent_queue_count(dir), 6);
	/* the server cannot take 5 now: it stays, and a retry is due */
	agent_outbox_nack(&o, 5);
	assert_true(o.retry_due);
	assert_int_equal(agent_queue_count(dir), 6);
	agent_outbox_reset(&o);
	assert_false(o.retry_due);
	assert_int_equal(next(&o), 4);
	/* a restart: the queue is on disk */
	agent_outbox_init(&o, dir);
	assert_int_equal(next(&o), 4);
	assert_int_equal(next(&o), 5);
	for (i = 4; i <= 10; i++)
		ack(&o, i);
	assert_int_equal(agent_queue_count(dir), 0);
	agent_outbox_reset(&o);
	assert_int_equal(next(&o), 0);
	/* numbers are never reused */
	assert_int_equal(enqueue(dir, &seq), 0);
	assert_int_equal(seq, 11);
}

static void
test_enqueue_refuses(void **state)
{
	const char *dir = *state;
	char err[256];
	uint64_t seq;
	json_t *msg;

	/* not a report type, no type, a missing field, an undeclared one */
	msg = json_pack("{s:s, s:s}", "type", "hello", "model", "x");
	assert_int_equal(agent_report_enqueue(dir, msg, &seq, err, sizeof(err)),
			 -1);
	json_decref(msg);
	msg = json_pack("{s:s}", "state", "applied");
	assert_int_equal(agent_report_enqueue(dir, msg, &seq, err, sizeof(err)),
			 -1);
	json_decref(msg);
	msg = json_pack("{s:s, s:s}", "type", "config.status", "state",
			"applied");
	assert_int_equal(agent_report_enqueue(dir, msg, &seq, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "config_version"));
	json_decref(msg);
	msg = json_pack("{s:s, s:s, s:s, s:i}", "type", "cmd.result", "cmd_id",
			"0b6f4c1e-8f0a-4a51-9d3c-2f1e0a9b7c11", "status", "ok",
			"extra", 1);
	assert_int_equal(agent_report_enqueue(dir, msg, &seq, err, sizeof(err)),
			 -1);
	json_decref(msg);
	assert_int_equal(agent_queue_count(dir), 0);
	/* refused reports used no number */
	assert_int_equal(enqueue(dir, &seq), 0);
	assert_int_equal(seq, 1);
}

/* The daemon and `fleet-agent report` queueing at the same time. */
static void
test_two_processes(void **state)
{
	const char *dir = *state;
	struct agent_outbox o;
	uint64_t seq, i, expect = 1;
	pid_t pid;
	int status;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (i = 0; i < 40; i++)
			if (enqueue(dir, &seq) != 0)
				_exit(1);
		_exit(0);
	}
	for (i = 0; i < 40; i++)
		assert_int_equal(enqueue(dir, &seq), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(agent_queue_count(dir), 80);
	agent_outbox_init(&o, dir);
	while ((seq = next(&o)) != 0) {
		assert_int_equal(seq, expect);
		expect++;
		ack(&o, seq);
	}
	assert_int_equal(expect, 81);
}

/* A queued file that is unreadable, not a report, or carries another seq
 * than its name is moved aside instead of blocking the queue. */
static void
test_bad_files_quarantined(void **state)
{
	const char *dir = *state;
	char err[256], path[512], *big, *text = NULL;
	struct agent_outbox o;
	uint64_t seq;
	size_t len;
	int skipped = -1;

	assert_int_equal(enqueue(dir, &seq), 0); /* 1: good */
	assert_int_equal(agent_queue_push(dir, 2, "{nope", 5, err, sizeof(err)),
			 0);
	assert_int_equal(agent_queue_push(dir, 3,
					  "{\"type\":\"ack\",\"seq\":3,"
					  "\"status\":\"applied\"}",
					  41, err, sizeof(err)),
			 0);
	/* another report's text under the name 4 */
	assert_int_equal(
		agent_queue_next(dir, 0, &seq, &text, &len, err, sizeof(err)),
		1);
	assert_int_equal(agent_queue_push(dir, 4, text, len, err, sizeof(err)),
			 0);
	free(text);
	big = calloc(1, AGENT_REPORT_MAX + 2);
	assert_non_null(big);
	memset(big, ' ', AGENT_REPORT_MAX + 1);
	snprintf(path, sizeof(path), "%s/queue/%020d.json", dir, 5);
	{
		FILE *f = fopen(path, "w");

		assert_non_null(f);
		assert_int_equal(fwrite(big, 1, AGENT_REPORT_MAX + 1, f),
				 AGENT_REPORT_MAX + 1);
		fclose(f);
	}
	free(big);
	assert_int_equal(enqueue(dir, &seq), 0); /* 6: good */
	assert_int_equal(seq, 6);
	agent_outbox_init(&o, dir);
	assert_int_equal(next(&o), 1);
	assert_int_equal(agent_outbox_next(&o, &seq, &text, &len, &skipped, err,
					   sizeof(err)),
			 1);
	assert_int_equal(seq, 6);
	assert_int_equal(skipped, 4);
	free(text);
	assert_int_equal(agent_queue_count(dir), 2);
	snprintf(path, sizeof(path), "%s/queue/%020d.json.bad", dir, 5);
	assert_int_equal(access(path, F_OK), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_window_ack_reset, atu_dir_setup, atu_dir_teardown),
		cmocka_unit_test_setup_teardown(
			test_enqueue_refuses, atu_dir_setup, atu_dir_teardown),
		cmocka_unit_test_setup_teardown(
			test_two_processes, atu_dir_setup, atu_dir_teardown),
		cmocka_unit_test_setup_teardown(test_bad_files_quarantined,
						atu_dir_setup,
						atu_dir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
