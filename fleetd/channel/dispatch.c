/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleet.v1 messages from devices: common/proto decodes and validates a
 * frame against the message table, and one table here maps each
 * agent -> server type to its handler. A handler hands the decoded message
 * to core on a job thread through channel_submit_work() and answers on the
 * loop. The frame is untrusted; the device id is the certificate's, never
 * a message's. Runs on the net worker's event loop (handlers' run()
 * functions on job threads).
 *
 * Answers: hello -> welcome (at once; the hello's facts are stored on a
 * job thread, the latest hello wins). A report -> ack {seq, status} once
 * core has applied it or found it a duplicate; nothing when the session
 * ended meanwhile (the agent sends it again after reconnecting, and it is
 * then a duplicate); error "unavailable" with its seq when storage failed
 * (the agent keeps it and retries). A report that fails validation but
 * names its seq gets error bad-<type> and ack "rejected", so that the agent
 * drops it instead of sending it forever. Anything else invalid: error
 * (malformed, unknown-type, too-big, bad-<type>).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "channel/cert.h"
#include "channel/channel_int.h"
#include "channel/update.h"
#include "clock.h"
#include "core/report.h"
#include "core/metrics.h"
#include "core/store_reports.h"
#include "log.h"
#include "proto/proto.h"

void
channel_send_msg(struct channel_session *s, enum proto_type type,
		 json_t *fields)
{
	struct proto_error err;
	json_t *msg = proto_build(type, fields, &err);

	if (msg == NULL) {
		log_error("channel: cannot build %s: %s", proto_def(type)->name,
			  err.message);
		return;
	}
	channel_send(s, msg);
}

void
channel_send_ack(struct channel_session *s, uint64_t seq, const char *status)
{
	channel_send_msg(s, PROTO_ACK,
			 json_pack("{s:I, s:s}", "seq", (json_int_t)seq,
				   "status", status));
}

void
channel_send_report_error(struct channel_session *s, const char *code,
			  const char *message, uint64_t seq, const char *type)
{
	channel_send_msg(s, PROTO_ERROR,
			 json_pack("{s:s, s:s, s:I, s:s}", "code", code,
				   "message", message, "seq", (json_int_t)seq,
				   "in_reply_to", type));
}

/* ---- hello ------------------------------------------------------------ */

static const char *
opt_text(const json_t *body, const char *key)
{
	return json_string_value(json_object_get(body, key));
}

static int64_t
opt_int(const json_t *body, const char *key)
{
	const json_t *v = json_object_get(body, key);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

/* Job thread: stores the hello's facts (body owned by the job). A hello
 * has no domain rule, so it goes to the store port directly. */
static void
hello_run(struct store *st, const char *device_id, void *arg)
{
	const json_t *body = arg;
	const json_t *addrs = json_object_get(body, "addresses");
	const json_t *inv = json_object_get(body, "inventory");
	struct device_hello h;
	char *addrs_text = NULL, *inv_text = NULL;

	memset(&h, 0, sizeof(h));
	h.agent_version = opt_text(body, "agent_version");
	h.fw_version = opt_text(body, "fw_version");
	h.fw_version_num = opt_int(body, "fw_version_num");
	h.model = opt_text(body, "model");
	h.boot_id = opt_text(body, "boot_id");
	h.uptime = opt_int(body, "uptime");
	h.config_version = opt_int(body, "config_version");
	h.config_hash = opt_text(body, "config_hash");
	if (addrs != NULL)
		addrs_text = json_dumps(addrs, JSON_COMPACT);
	if (inv != NULL)
		inv_text = json_dumps(inv, JSON_COMPACT);
	h.addresses = addrs_text;
	h.inventory = inv_text;
	if ((addrs != NULL && addrs_text == NULL) ||
	    (inv != NULL && inv_text == NULL) ||
	    store_device_hello(st, device_id, &h) != STORE_OK)
		log_write(LOG_LEVEL_WARN, device_id,
			  "channel: a hello was not stored");
	free(addrs_text);
	free(inv_text);
}

static void
hello_done(struct channel *ch, struct channel_session *s, void *arg)
{
	(void)ch;
	(void)s;
	json_decref(arg);
}

static void
handle_hello(struct channel *ch, struct channel_session *s, struct proto_msg *m)
{
	const char *device_id = channel_session_device_id(s);
	const char *claimed = proto_str(m, "device_id");
	struct channel_work work = {hello_run, hello_done, m->body};
	char now[32];

	if (claimed != NULL && strcmp(claimed, device_id) != 0) {
		channel_send_error(ch, s, "bad-hello",
				   "hello names another device; the device "
				   "id is the certificate's");
		return;
	}
	json_incref(m->body);
	if (!channel_submit_work(ch, s, &work)) {
		json_decref(m->body);
		log_warn("channel: job queue full; a hello was not stored");
	}
	clock_format_rfc3339(time(NULL), now, sizeof(now));
	channel_send_msg(s, PROTO_WELCOME,
			 json_pack("{s:s, s:I, s:s}", "device_id", device_id,
				   "heartbeat_interval",
				   (json_int_t)channel_heartbeat_interval(ch),
				   "server_time", now));
	/* Key sets above the one it pins, and its open offer (update.c). */
	channel_upd_hello(ch, s, proto_int(m, "keyset_version", -1));
}

/* ---- reports ---------------------------------------------------------- */

struct report_job {
	const char *type; /* the table's name: static */
	uint64_t seq;
	char *body; /* compact JSON of the validated report */
	enum report_answer answer;
};

static void
report_run(struct store *st, const char *device_id, void *arg)
{
	struct report_job *job = arg;
	struct report r = {job->seq, job->type, job->body};

	job->answer = report_submit(st, device_id, &r);
	if (job->answer == REPORT_RETRY)
		log_write(LOG_LEVEL_WARN, device_id,
			  "channel: report %s seq %llu not applied (storage)",
			  job->type, (unsigned long long)job->seq);
}

static void
report_done(struct channel *ch, struct channel_session *s, void *arg)
{
	struct report_job *job = arg;
	const char *status = report_answer_status(job->answer);

	(void)ch;
	/* No session: no ack; the agent sends the report again. */
	if (s == NULL)
		goto out;
	if (status != NULL)
		channel_send_ack(s, job->seq, status);
	else if (job->answer == REPORT_REFUSED)
		channel_send_report_error(
			s, "refused",
			"the device is not active; report not "
			"applied",
			job->seq, job->type);
	else
		channel_send_report_error(
			s, "unavailable",
			"report not applied now; send it again "
			"later",
			job->seq, job->type);
out:
	free(job->body);
	free(job);
}

static void
handle_report(struct channel *ch, struct channel_session *s,
	      struct proto_msg *m)
{
	struct report_job *job = calloc(1, sizeof(*job));
	struct channel_work work = {report_run, report_done, job};

	if (job == NULL)
		goto busy;
	job->type = m->def->name;
	job->seq = m->seq;
	job->body = json_dumps(m->body, JSON_COMPACT);
	if (job->body == NULL)
		goto busy;
	if (channel_submit_work(ch, s, &work))
		return;
busy:
	if (job != NULL) {
		free(job->body);
		free(job);
	}
	channel_send_report_error(s, "unavailable",
				  "server busy; send the report again later",
				  m->seq, m->def->name);
}

/* ---- the table -------------------------------------------------------- */

static const struct {
	enum proto_type type;
	void (*handle)(struct channel *ch, struct channel_session *s,
		       struct proto_msg *m);
} handlers[] = {
	{PROTO_HELLO, handle_hello},
	{PROTO_CONFIG_STATUS, channel_cfg_status}, /* config_status.c */
	{PROTO_UPDATE_STATUS, channel_update_status}, /* update.c */
	{PROTO_CERT_CSR, cert_handle_csr},
	{PROTO_CERT_INSTALLED, cert_handle_installed},
	{PROTO_CMD_RESULT, handle_report},
	{PROTO_KEYS_STATUS, channel_keys_status}, /* update.c */
};

void
channel_dispatch(struct channel *ch, struct channel_session *s,
		 const char *text, size_t len)
{
	struct proto_error err;
	struct proto_msg m;
	size_t i;

	memset(&m, 0, sizeof(m));
	if (proto_decode(text, len, PROTO_TO_SERVER, &m, &err) != PROTO_OK) {
		metrics_add(METRIC_CHANNEL_MESSAGES, 1, "type", "invalid",
			    NULL);
		channel_send_error(ch, s, err.code, err.message);
		/* A report we cannot accept but can name: the agent drops
		 * it instead of sending it again and again. */
		if (err.rc == PROTO_ERR_INVALID && err.def != NULL &&
		    err.def->report && err.seq > 0)
			channel_send_ack(s, err.seq, "rejected");
		return;
	}
	metrics_add(METRIC_CHANNEL_MESSAGES, 1, "type", m.def->name, NULL);
	for (i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
		if (handlers[i].type == m.def->type) {
			handlers[i].handle(ch, s, &m);
			goto out;
		}
	}
	channel_send_error(ch, s, "unknown-type",
			   "this server does not handle that message type");
out:
	proto_msg_clear(&m);
}
