/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration delivery in a net worker (issue 9, DESIGN.md §2):
 * level-triggered. Three things make the worker compare desired with
 * reported state for its devices and send config.apply (generation, hash,
 * document) where they differ:
 * - a session passing its checks (a (re)connect): that device alone;
 * - a fleet_config notification (or the listener (re)starting, since
 *   notifications may have been missed): every session of the worker, in
 *   one query (store_config_pending with all their ids), never one per
 *   device;
 * - a periodic re-check (CFG_RECHECK_MS), the safety net for anything
 *   else (a notification lost between two listens cannot happen, but a
 *   bug or an operator's UPDATE by hand can).
 * A session is sent a generation once (config_delivery_due against what
 * it was last sent); a reconnect is a new session and gets it again. At
 * most one worker-wide comparison runs at a time; notifications that
 * arrive meanwhile make one more afterwards.
 *
 * Runs on the worker's loop; the queries on the channel's job threads.
 * Documents come from PostgreSQL (canonical JSON written by fleetd).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "channel/channel_int.h"
#include "channel/config_delivery.h"
#include "core/config_delivery.h"
#include "core/store_config_delivery.h"
#include "log.h"
#include "proto/proto.h"

#define CFG_RECHECK_MS (60u * 1000u)

struct channel_cfg {
	struct channel *ch;
	atomic_bool notified; /* set by the listener thread */
	bool sweep_in_flight;
	bool sweep_again; /* notified meanwhile: once more, at once */
	bool retry; /* storage or queue trouble: again at the next tick */
	uint64_t last_sweep_ms;
	struct cfg_status_batch *status_batch; /* config_status.c's */
};

/* A comparison: the device ids asked about, then the answer. */
struct cfg_job {
	struct channel_cfg *c;
	char (*ids)[37];
	const char **idp;
	size_t n;
	bool sweep; /* worker-wide (else one session's) */
	bool ok;
	struct config_pending *pending;
	size_t npending;
	/* done(): one parsed document per distinct hash, reused */
	const char *doc_sha;
	json_t *doc;
	size_t sent;
};

struct channel_cfg *
channel_cfg_new(struct channel *ch)
{
	struct channel_cfg *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->ch = ch;
	atomic_init(&c->notified, false);
	return c;
}

void
channel_cfg_free(struct channel_cfg *c)
{
	if (c == NULL)
		return;
	cfg_status_batch_free(c->status_batch);
	free(c);
}

struct cfg_status_batch **
channel_cfg_status_slot(struct channel *ch)
{
	struct channel_cfg *c = channel_cfg_of(ch);

	return c != NULL ? &c->status_batch : NULL;
}

static void
cfg_job_free(struct cfg_job *job)
{
	if (job == NULL)
		return;
	config_pending_free(job->pending, job->npending);
	json_decref(job->doc);
	free(job->ids);
	free(job->idp);
	free(job);
}

static void
cfg_run(struct store *st, const char *device_id, void *arg)
{
	struct cfg_job *job = arg;

	(void)device_id;
	job->ok = store_config_pending(st, job->idp, job->n, &job->pending,
				       &job->npending) == STORE_OK;
}

static int
pending_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct config_pending *)elem)->device_id);
}

/* Sends p to s unless s already got that generation. */
static void
cfg_send(struct cfg_job *job, struct channel_session *s,
	 const struct config_pending *p)
{
	int64_t *sent = channel_session_config_sent(s);
	struct proto_error err;
	json_error_t jerr;
	json_t *msg;

	if (!config_delivery_due(p->generation, *sent))
		return;
	if (job->doc == NULL || strcmp(job->doc_sha, p->sha256) != 0) {
		json_decref(job->doc);
		job->doc = json_loads(p->document, 0, &jerr);
		job->doc_sha = p->sha256;
		if (!json_is_object(job->doc)) {
			log_write(LOG_LEVEL_ERROR, p->device_id,
				  "channel: desired configuration is not a "
				  "JSON object: %s",
				  jerr.text);
			json_decref(job->doc);
			job->doc = NULL;
			return;
		}
	}
	msg = proto_build(PROTO_CONFIG_APPLY,
			  json_pack("{s:I, s:s, s:O}", "config_version",
				    (json_int_t)p->generation, "config_hash",
				    p->sha256, "document", job->doc),
			  &err);
	if (msg == NULL) {
		log_write(LOG_LEVEL_ERROR, p->device_id,
			  "channel: config.apply not built: %s", err.message);
		return;
	}
	channel_send(s, msg);
	*sent = p->generation;
	job->sent++;
}

static void
cfg_match(struct channel *ch, struct channel_session *s, void *arg)
{
	struct cfg_job *job = arg;
	const struct config_pending *p;

	(void)ch;
	if (job->npending == 0)
		return;
	p = bsearch(channel_session_device_id(s), job->pending, job->npending,
		    sizeof(*job->pending), pending_cmp);
	if (p != NULL)
		cfg_send(job, s, p);
}

static void cfg_sweep(struct channel_cfg *c);

static void
cfg_done(struct channel *ch, struct channel_session *s, void *arg)
{
	struct cfg_job *job = arg;
	struct channel_cfg *c = job->c;

	if (job->sweep) {
		c->sweep_in_flight = false;
		if (job->ok)
			channel_foreach_session(ch, cfg_match, job);
		else
			c->retry = true;
		if (job->sent > 0)
			log_info("channel: config.apply sent to %zu of %zu "
				 "sessions",
				 job->sent, job->n);
	} else if (!job->ok) {
		c->retry = true; /* the whole worker, at the next tick */
	} else if (s != NULL) {
		cfg_match(ch, s, job);
	}
	cfg_job_free(job);
	if (c->sweep_again && !c->sweep_in_flight)
		cfg_sweep(c);
}

struct cfg_collect {
	struct cfg_job *job;
	size_t cap;
};

static void
cfg_collect(struct channel *ch, struct channel_session *s, void *arg)
{
	struct cfg_collect *col = arg;
	struct cfg_job *job = col->job;

	(void)ch;
	if (job->n >= col->cap)
		return;
	memcpy(job->ids[job->n], channel_session_device_id(s), 36);
	job->ids[job->n][36] = '\0';
	job->idp[job->n] = job->ids[job->n];
	job->n++;
}

static void
cfg_count(struct channel *ch, struct channel_session *s, void *arg)
{
	(void)ch;
	(void)s;
	(*(size_t *)arg)++;
}

static struct cfg_job *
cfg_job_new(struct channel_cfg *c, size_t cap)
{
	struct cfg_job *job = calloc(1, sizeof(*job));

	if (job == NULL)
		return NULL;
	job->c = c;
	job->ids = calloc(cap + 1, sizeof(*job->ids));
	job->idp = calloc(cap + 1, sizeof(*job->idp));
	if (job->ids == NULL || job->idp == NULL) {
		cfg_job_free(job);
		return NULL;
	}
	return job;
}

/* Every session of the worker, one query. */
static void
cfg_sweep(struct channel_cfg *c)
{
	struct cfg_collect col = {NULL, 0};
	struct channel_work work;
	struct cfg_job *job;

	c->sweep_again = false;
	c->retry = false;
	c->last_sweep_ms = 0;
	channel_foreach_session(c->ch, cfg_count, &col.cap);
	if (col.cap == 0)
		return;
	job = cfg_job_new(c, col.cap);
	if (job == NULL) {
		c->retry = true;
		return;
	}
	col.job = job;
	job->sweep = true;
	channel_foreach_session(c->ch, cfg_collect, &col);
	work.run = cfg_run;
	work.done = cfg_done;
	work.arg = job;
	if (!channel_submit_work(c->ch, NULL, &work)) {
		log_warn("channel: job queue full; configuration comparison "
			 "postponed to the next tick");
		cfg_job_free(job);
		c->retry = true;
		return;
	}
	c->sweep_in_flight = true;
}

bool
channel_cfg_notified(struct channel_cfg *c)
{
	return c != NULL && !atomic_exchange(&c->notified, true);
}

void
channel_cfg_on_wake(struct channel_cfg *c)
{
	if (c == NULL || !atomic_exchange(&c->notified, false))
		return;
	if (c->sweep_in_flight)
		c->sweep_again = true;
	else
		cfg_sweep(c);
}

void
channel_cfg_tick(struct channel_cfg *c, uint64_t now_ms)
{
	if (c == NULL || c->sweep_in_flight)
		return;
	if (c->last_sweep_ms == 0)
		c->last_sweep_ms = now_ms;
	if (c->retry || c->sweep_again ||
	    now_ms - c->last_sweep_ms >= CFG_RECHECK_MS) {
		cfg_sweep(c);
		c->last_sweep_ms = now_ms;
	}
}

void
channel_cfg_session_opened(struct channel_cfg *c, struct channel_session *s)
{
	struct channel_work work;
	struct cfg_job *job;

	if (c == NULL)
		return;
	*channel_session_config_sent(s) = 0;
	job = cfg_job_new(c, 1);
	if (job == NULL)
		return;
	memcpy(job->ids[0], channel_session_device_id(s), 36);
	job->idp[0] = job->ids[0];
	job->n = 1;
	work.run = cfg_run;
	work.done = cfg_done;
	work.arg = job;
	if (!channel_submit_work(c->ch, s, &work)) {
		/* The next tick compares the whole worker. */
		cfg_job_free(job);
		c->retry = true;
	}
}
