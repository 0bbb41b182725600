/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The channel's message table (fleetd/channel/dispatch.c) driving the
 * report use case, without network or database: a fake of the channel
 * seam (channel_int.h) runs submitted work at once on an in-memory store.
 * Every agent -> server type reaches a handler; hello gets welcome and is
 * stored; a report gets ack applied, then duplicate; no ack when the
 * session ended first; an invalid report gets bad-<type> and ack rejected;
 * storage trouble or a full job queue gets error unavailable with the seq;
 * and everything sent is a valid fleet.v1 server -> agent message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "channel/channel_int.h"
#include "fake_store_reports.h"
#include "proto/proto.h"

#define DEV "0b6f4c1e-8f0a-4a51-9d3c-2f1e0a9b7c11"
#define HASH "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

/* ---- the fake seam ------------------------------------------------------ */

struct channel {
	struct store *st;
};

struct channel_session {
	json_t *sent; /* what the server sent, in order */
	int errors; /* counted bad messages */
	bool busy; /* the job queue is full */
	bool gone; /* the session ends while its work runs */
};

void
channel_send(struct channel_session *s, json_t *msg)
{
	assert_non_null(msg);
	json_array_append_new(s->sent, msg);
}

void
channel_send_error(struct channel *ch, struct channel_session *s,
		   const char *code, const char *message)
{
	(void)ch;
	s->errors++;
	channel_send(s, json_pack("{s:s, s:s, s:s}", "type", "error", "code",
				  code, "message", message));
}

const char *
channel_session_device_id(const struct channel_session *s)
{
	(void)s;
	return DEV;
}

long
channel_heartbeat_interval(const struct channel *ch)
{
	(void)ch;
	return 30;
}

bool
channel_submit_work(struct channel *ch, struct channel_session *s,
		    const struct channel_work *work)
{
	if (s->busy)
		return false;
	work->run(ch->st, DEV, work->arg);
	work->done(ch, s->gone ? NULL : s, work->arg);
	return true;
}

/* ---- helpers ------------------------------------------------------------ */

struct fixture {
	struct channel ch;
	struct channel_session s;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->ch.st = fake_store_new();
	fake_store_add_device(f->ch.st, DEV, true);
	f->s.sent = json_array();
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	fake_store_free(f->ch.st);
	json_decref(f->s.sent);
	free(f);
	return 0;
}

/* Dispatches text; returns what was sent in answer as "type[:detail]"
 * words, each checked to be a valid server -> agent message. */
static const char *
dispatch(struct fixture *f, const char *text)
{
	static char out[512];
	size_t i, n = 0;

	json_array_clear(f->s.sent);
	channel_dispatch(&f->ch, &f->s, text, strlen(text));
	out[0] = '\0';
	for (i = 0; i < json_array_size(f->s.sent); i++) {
		char *dumped =
			json_dumps(json_array_get(f->s.sent, i), JSON_COMPACT);
		struct proto_error err;
		struct proto_msg m;
		const char *detail = "";

		assert_non_null(dumped);
		if (proto_decode(dumped, strlen(dumped), PROTO_TO_AGENT, &m,
				 &err) != PROTO_OK)
			fail_msg("dispatch sent an invalid message: %s (%s)",
				 dumped, err.message);
		free(dumped);
		if (m.def->type == PROTO_ACK)
			detail = proto_str(&m, "status");
		else if (m.def->type == PROTO_ERROR)
			detail = proto_str(&m, "code");
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s%s%s",
				      n > 0 ? " " : "", m.def->name,
				      detail[0] != '\0' ? ":" : "", detail);
		if (m.def->type == PROTO_ACK || (m.def->type == PROTO_ERROR &&
						 proto_get(&m, "seq") != NULL))
			n += (size_t)snprintf(
				out + n, sizeof(out) - n, "@%lld",
				(long long)proto_int(&m, "seq", 0));
		proto_msg_clear(&m);
	}
	return out;
}

static const char *
report(uint64_t seq)
{
	static char text[256];

	snprintf(text, sizeof(text),
		 "{\"type\":\"config.status\",\"seq\":%llu,"
		 "\"config_version\":1,\"config_hash\":\"" HASH "\","
		 "\"state\":\"applied\"}",
		 (unsigned long long)seq);
	return text;
}

/* ---- tests -------------------------------------------------------------- */

static void
test_hello(void **state)
{
	struct fixture *f = *state;
	const struct device_hello *h;

	assert_string_equal(
		dispatch(f, "{\"type\":\"hello\",\"seq\":4,\"agent_version\":"
			    "\"0.2.0\",\"fw_version\":\"1.4.2\",\"model\":"
			    "\"plc-x\",\"boot_id\":\"b0\",\"uptime\":9,"
			    "\"inventory\":{\"cpu\":\"arm\"},\"future\":1}"),
		"welcome");
	h = fake_store_hello(f->ch.st, DEV);
	assert_non_null(h);
	assert_string_equal(h->model, "plc-x");
	assert_int_equal(h->uptime, 9);
	assert_int_equal(h->config_version, -1); /* absent */
	assert_null(h->addresses);
	assert_string_equal(
		dispatch(f, "{\"type\":\"hello\",\"device_id\":"
			    "\"5d1c6a0e-1111-4a51-9d3c-2f1e0a9b7c11\","
			    "\"agent_version\":\"x\",\"fw_version\":\"x\","
			    "\"model\":\"evil\",\"boot_id\":\"x\"}"),
		"error:bad-hello");
	assert_string_equal(dispatch(f, "{\"type\":\"hello\"}"),
			    "error:bad-hello");
	assert_int_equal(f->s.errors, 2);
}

static void
test_reports_once(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(dispatch(f, report(1)), "ack:applied@1");
	assert_string_equal(dispatch(f, report(1)), "ack:duplicate@1");
	/* the session ends before the ack: applied, nothing sent */
	f->s.gone = true;
	assert_string_equal(dispatch(f, report(2)), "");
	f->s.gone = false;
	assert_string_equal(dispatch(f, report(2)), "ack:duplicate@2");
	assert_string_equal(dispatch(f, report(100)), "ack:applied@100");
	assert_string_equal(dispatch(f, report(3)), "ack:stale@3");
	assert_int_equal(
		fake_store_applied(f->ch.st, DEV, "config.status", NULL, NULL),
		3);
	/* storage trouble, a full job queue: not applied, retry later */
	fake_store_fail_next(f->ch.st, 1);
	assert_string_equal(dispatch(f, report(101)), "error:unavailable@101");
	f->s.busy = true;
	assert_string_equal(dispatch(f, report(101)), "error:unavailable@101");
	f->s.busy = false;
	assert_string_equal(dispatch(f, report(101)), "ack:applied@101");
	assert_int_equal(f->s.errors, 0); /* none of this is the device's */
}

static void
test_invalid(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(
		dispatch(f, "{\"type\":\"cmd.result\",\"seq\":7,\"cmd_id\":"
			    "\"nope\",\"status\":\"ok\"}"),
		"error:bad-cmd.result ack:rejected@7");
	assert_string_equal(
		dispatch(f, "{\"type\":\"cmd.result\",\"seq\":\"7\"}"),
		"error:bad-cmd.result");
	assert_string_equal(dispatch(f, "{nope"), "error:malformed");
	assert_string_equal(dispatch(f, "[1,2]"), "error:malformed");
	assert_string_equal(dispatch(f, "{\"type\":\"frobnicate\"}"),
			    "error:unknown-type");
	assert_string_equal(dispatch(f, "{\"type\":\"welcome\"}"),
			    "error:unknown-type");
	assert_int_equal(
		fake_store_applied(f->ch.st, DEV, "cmd.result", NULL, NULL), 0);
}

/* Every agent -> server type of the table has a handler. */
static void
test_every_type_handled(void **state)
{
	static const char *const samples[] = {
		"{\"type\":\"update.status\",\"seq\":1,\"state\":\"installed\","
		"\"version\":3}",
		"{\"type\":\"cert.csr\",\"seq\":2,\"csr\":\"-----BEGIN "
		"CERTIFICATE REQUEST-----\\n\",\"reason\":\"renew\"}",
		"{\"type\":\"cert.installed\",\"seq\":3,\"serial\":\"0A\"}",
		"{\"type\":\"cmd.result\",\"seq\":4,\"cmd_id\":"
		"\"0b6f4c1e-8f0a-4a51-9d3c-2f1e0a9b7c11\",\"status\":\"ok\"}",
		"{\"type\":\"keys.status\",\"seq\":5,\"version\":2,"
		"\"state\":\"adopted\"}",
	};
	struct fixture *f = *state;
	size_t i, reports = 0;
	char want[32];

	for (i = 0; i < PROTO_TYPE_COUNT; i++) {
		const struct proto_def *d = proto_def((enum proto_type)i);

		if (d->dir == PROTO_TO_SERVER && d->report)
			reports++;
	}
	assert_int_equal(reports, 1 + sizeof(samples) / sizeof(samples[0]));
	for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		snprintf(want, sizeof(want), "ack:applied@%zu", i + 1);
		assert_string_equal(dispatch(f, samples[i]), want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hello, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reports_once, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_type_handled, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
