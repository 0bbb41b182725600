/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Update offers and release key sets in a net worker (issue 11, DESIGN.md
 * §2 and §5; docs/internals/updates.md): level-triggered, like
 * configuration delivery (config.c).
 * - After a device's hello: its open deployment row, whatever its state,
 *   is offered (again: an agent that lost it, or restarted, picks up
 *   where its journal is), and the key sets above the hello's
 *   keyset_version are sent in order, before the offer (a release may be
 *   signed by the newer keys).
 * - A fleet_update notification, the listener (re)starting, or the
 *   periodic re-check: every session of the worker, one query; rows never
 *   offered (pending) are offered and become offered. Rows already
 *   offered are not sent again until the device's next hello, so a
 *   notification costs nothing for devices that are updating.
 * - A fleet_keys notification (or the listener (re)starting): every
 *   session gets the key sets above the one its device pins (its hello or
 *   its last keys.status).
 * At most one worker-wide comparison runs at a time; notifications that
 * arrive meanwhile make one more afterwards.
 *
 * update.status and keys.status are reports (docs/internals/reports.md):
 * acknowledged, applied once per seq, their effect in the same
 * transaction (core/update.c decides what an update.status does).
 *
 * Runs on the worker's loop; queries on the channel's job threads. Offers
 * come from PostgreSQL (envelopes fleetd stored, unverified: agents verify
 * them); reports come from devices and are untrusted (validated by
 * common/proto before they get here).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "channel/channel_int.h"
#include "channel/update.h"
#include "core/store_deployments.h"
#include "core/update.h"
#include "log.h"
#include "proto/proto.h"

#define UPD_RECHECK_MS (60u * 1000u)
#define UPD_URL_MAX 1024 /* update.offer artifact_url */

struct channel_upd {
	struct channel *ch;
	char *url_base; /* "" for offers on the device listener */
	atomic_bool want_offers; /* set by the listener thread */
	atomic_bool want_keys;
	bool in_flight;
	bool again_offers, again_keys; /* notified meanwhile */
	bool retry; /* storage or queue trouble: again at the next tick */
	uint64_t last_ms;
};

/* One comparison: the device ids asked about, then the answers. */
struct upd_job {
	struct channel_upd *u;
	char (*ids)[37];
	const char **idp;
	size_t n;
	bool sweep; /* worker-wide (else one session's hello) */
	bool offers, keys; /* what to look for */
	int64_t keyset_version; /* hello */
	bool ok;
	struct update_offer *offer;
	size_t noffer;
	struct update_keyset *keyset;
	size_t nkeyset;
	size_t sent;
};

struct channel_upd *
channel_upd_new(struct channel *ch, const char *artifact_url_base)
{
	struct channel_upd *u = calloc(1, sizeof(*u));

	if (u == NULL)
		return NULL;
	u->ch = ch;
	if (artifact_url_base == NULL)
		artifact_url_base = "";
	/* A mirror is https (agents refuse anything else) and leaves room in
	 * the offer's 1024 bytes for "/artifacts/<sha256>". */
	if (artifact_url_base[0] != '\0' &&
	    (strncmp(artifact_url_base, "https://", 8) != 0 ||
	     strlen(artifact_url_base) > UPD_URL_MAX - 80)) {
		log_error("channel: artifact_url_base must be an https URL of "
			  "at most %d bytes; offering the device listener's "
			  "/artifacts instead",
			  UPD_URL_MAX - 80);
		artifact_url_base = "";
	}
	u->url_base = strdup(artifact_url_base);
	if (u->url_base == NULL) {
		free(u);
		return NULL;
	}
	/* A trailing '/' would make "//artifacts". */
	for (size_t n = strlen(u->url_base); n > 0 && u->url_base[n - 1] == '/';
	     n--)
		u->url_base[n - 1] = '\0';
	atomic_init(&u->want_offers, false);
	atomic_init(&u->want_keys, false);
	return u;
}

void
channel_upd_free(struct channel_upd *u)
{
	if (u == NULL)
		return;
	free(u->url_base);
	free(u);
}

static void
upd_job_free(struct upd_job *job)
{
	if (job == NULL)
		return;
	update_offers_free(job->offer, job->noffer);
	update_keysets_free(job->keyset, job->nkeyset);
	free(job->ids);
	free(job->idp);
	free(job);
}

static struct upd_job *
upd_job_new(struct channel_upd *u, size_t cap)
{
	struct upd_job *job = calloc(1, sizeof(*job));

	if (job == NULL)
		return NULL;
	job->u = u;
	job->ids = calloc(cap + 1, sizeof(*job->ids));
	job->idp = calloc(cap + 1, sizeof(*job->idp));
	if (job->ids == NULL || job->idp == NULL) {
		upd_job_free(job);
		return NULL;
	}
	return job;
}

static void
upd_run(struct store *st, const char *device_id, void *arg)
{
	struct upd_job *job = arg;

	(void)device_id;
	job->ok = true;
	if (!job->sweep)
		job->ok = store_update_hello_keys(
				  st, job->idp[0], job->keyset_version,
				  &job->keyset, &job->nkeyset) == STORE_OK;
	else if (job->keys)
		job->ok = store_update_keys_due(st, job->idp, job->n,
						&job->keyset,
						&job->nkeyset) == STORE_OK;
	if (job->ok && job->offers)
		job->ok = store_update_offers(st, job->idp, job->n, job->sweep,
					      &job->offer,
					      &job->noffer) == STORE_OK;
	/* The store leaves out expired artifacts by PostgreSQL's clock;
	 * one that expired since (or by this host's clock) is not sent
	 * either: the agent would refuse it. */
	if (job->ok && job->noffer > 0 &&
	    update_offers_drop_expired(job->offer, &job->noffer,
				       (int64_t)time(NULL)) > 0)
		log_info("channel: update offers of expired artifacts not "
			 "sent");
}

/* ---- sending ---------------------------------------------------------- */

static void
send_keyset(struct channel_session *s, const struct update_keyset *k)
{
	json_t *env = json_loads(k->envelope, 0, NULL);

	if (!json_is_object(env)) {
		json_decref(env);
		log_error("channel: stored key set %lld is not a JSON object",
			  (long long)k->version);
		return;
	}
	channel_send_msg(s, PROTO_UPDATE_KEYS,
			 json_pack("{s:o, s:I}", "envelope", env, "version",
				   (json_int_t)k->version));
}

static void
send_offer(struct channel_upd *u, struct channel_session *s,
	   const struct update_offer *o)
{
	char url[UPD_URL_MAX + 1];
	json_t *env = json_loads(o->envelope, 0, NULL), *fields;
	int n;

	n = snprintf(url, sizeof(url), "%s/artifacts/%s", u->url_base,
		     o->sha256);
	if (!json_is_object(env) || n < 0 || (size_t)n >= sizeof(url)) {
		json_decref(env);
		log_write(LOG_LEVEL_ERROR, o->device_id,
			  "channel: update.offer of deployment %s not built",
			  o->deployment_id);
		return;
	}
	fields =
		json_pack("{s:o, s:I, s:s, s:s, s:I, s:s}", "envelope", env,
			  "version", (json_int_t)o->version, "artifact_url",
			  url, "sha256", o->sha256, "size", (json_int_t)o->size,
			  "deployment_id", o->deployment_id);
	if (fields != NULL && o->campaign_id[0] != '\0')
		json_object_set_new(fields, "campaign_id",
				    json_string(o->campaign_id));
	channel_send_msg(s, PROTO_UPDATE_OFFER, fields);
}

/* The first index of sorted list (n entries of size size, whose device
 * id is at offset 0) with device id id, or n. */
static size_t
lower_bound(const void *list, size_t n, size_t size, const char *id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *mid_id = (const char *)list + mid * size;

		if (strcmp(mid_id, id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Sends what the job found for s's device: key sets in order, then the
 * offer. Both lists are sorted by device id (strcmp order), so a sweep
 * over every session of a worker costs O(sessions log rows). */
static void
upd_match(struct channel *ch, struct channel_session *s, void *arg)
{
	struct upd_job *job = arg;
	const char *id = channel_session_device_id(s);
	size_t i;

	(void)ch;
	i = lower_bound(job->keyset, job->nkeyset, sizeof(*job->keyset), id);
	for (; i < job->nkeyset && strcmp(job->keyset[i].device_id, id) == 0;
	     i++) {
		send_keyset(s, &job->keyset[i]);
		job->sent++;
	}
	i = lower_bound(job->offer, job->noffer, sizeof(*job->offer), id);
	for (; i < job->noffer && strcmp(job->offer[i].device_id, id) == 0;
	     i++) {
		send_offer(job->u, s, &job->offer[i]);
		job->sent++;
	}
}

static void upd_sweep(struct channel_upd *u);

static void
upd_done(struct channel *ch, struct channel_session *s, void *arg)
{
	struct upd_job *job = arg;
	struct channel_upd *u = job->u;

	if (job->sweep) {
		u->in_flight = false;
		if (job->ok)
			channel_foreach_session(ch, upd_match, job);
		else
			u->retry = true;
		if (job->sent > 0)
			log_info("channel: %zu update message(s) sent to %zu "
				 "session(s)",
				 job->sent, job->n);
	} else if (!job->ok) {
		u->retry = true;
		u->again_offers = true;
	} else if (s != NULL) {
		upd_match(ch, s, job);
	}
	upd_job_free(job);
	if ((u->again_offers || u->again_keys) && !u->in_flight)
		upd_sweep(u);
}

/* ---- comparisons ------------------------------------------------------ */

struct upd_collect {
	struct upd_job *job;
	size_t cap;
};

static void
upd_count(struct channel *ch, struct channel_session *s, void *arg)
{
	(void)ch;
	(void)s;
	(*(size_t *)arg)++;
}

static void
upd_collect(struct channel *ch, struct channel_session *s, void *arg)
{
	struct upd_collect *col = arg;
	struct upd_job *job = col->job;

	(void)ch;
	if (job->n >= col->cap)
		return;
	memcpy(job->ids[job->n], channel_session_device_id(s), 36);
	job->ids[job->n][36] = '\0';
	job->idp[job->n] = job->ids[job->n];
	job->n++;
}

/* Every session of the worker, one job. */
static void
upd_sweep(struct channel_upd *u)
{
	struct upd_collect col = {NULL, 0};
	struct channel_work work;
	struct upd_job *job;
	bool keys = u->again_keys;

	u->again_offers = false;
	u->again_keys = false;
	u->retry = false;
	channel_foreach_session(u->ch, upd_count, &col.cap);
	if (col.cap == 0)
		return;
	job = upd_job_new(u, col.cap);
	if (job == NULL)
		goto later;
	col.job = job;
	job->sweep = true;
	job->offers = true;
	job->keys = keys;
	channel_foreach_session(u->ch, upd_collect, &col);
	work.run = upd_run;
	work.done = upd_done;
	work.arg = job;
	if (!channel_submit_work(u->ch, NULL, &work)) {
		log_warn("channel: job queue full; update offers postponed "
			 "to the next tick");
		upd_job_free(job);
		goto later;
	}
	u->in_flight = true;
	return;
later:
	u->retry = true;
	u->again_keys = keys;
}

bool
channel_upd_notified(struct channel_upd *u, bool offers, bool keys)
{
	bool wake = false;

	if (u == NULL)
		return false;
	if (keys && !atomic_exchange(&u->want_keys, true))
		wake = true;
	if (offers && !atomic_exchange(&u->want_offers, true))
		wake = true;
	return wake;
}

void
channel_upd_on_wake(struct channel_upd *u)
{
	bool offers, keys;

	if (u == NULL)
		return;
	offers = atomic_exchange(&u->want_offers, false);
	keys = atomic_exchange(&u->want_keys, false);
	if (!offers && !keys)
		return;
	u->again_offers = u->again_offers || offers;
	u->again_keys = u->again_keys || keys;
	if (!u->in_flight)
		upd_sweep(u);
}

void
channel_upd_tick(struct channel_upd *u, uint64_t now_ms)
{
	if (u == NULL || u->in_flight)
		return;
	if (u->last_ms == 0)
		u->last_ms = now_ms;
	if (u->retry || u->again_offers || u->again_keys ||
	    now_ms - u->last_ms >= UPD_RECHECK_MS) {
		u->again_offers = true;
		upd_sweep(u);
		u->last_ms = now_ms;
	}
}

void
channel_upd_hello(struct channel *ch, struct channel_session *s,
		  int64_t keyset_version)
{
	struct channel_upd *u = channel_upd_of(ch);
	struct channel_work work;
	struct upd_job *job;

	if (u == NULL)
		return;
	job = upd_job_new(u, 1);
	if (job == NULL)
		goto later;
	memcpy(job->ids[0], channel_session_device_id(s), 36);
	job->idp[0] = job->ids[0];
	job->n = 1;
	job->offers = true;
	job->keys = true;
	job->keyset_version = keyset_version;
	work.run = upd_run;
	work.done = upd_done;
	work.arg = job;
	if (channel_submit_work(ch, s, &work))
		return;
	upd_job_free(job);
later:
	/* The next tick offers what is pending; the device's next hello
	 * gets the rest. */
	u->retry = true;
}

/* ---- reports ---------------------------------------------------------- */

struct upd_report {
	const char *kind; /* static */
	uint64_t seq;
	char *body; /* compact JSON of the validated report */
	char deployment_id[37];
	char state[16];
	char *fw_version, *reason, *error;
	struct update_status status;
	int64_t keyset_version;
	enum report_answer answer;
	enum update_verdict uv;
};

static void
upd_report_free(struct upd_report *job)
{
	free(job->body);
	free(job->fw_version);
	free(job->reason);
	free(job->error);
	free(job);
}

static enum report_answer
answer_of(enum store_rc rc, enum report_verdict v)
{
	if (rc == STORE_NOTFOUND)
		return REPORT_REFUSED;
	if (rc != STORE_OK)
		return REPORT_RETRY;
	switch (v) {
	case REPORT_NEW:
		return REPORT_ACK_APPLIED;
	case REPORT_DUPLICATE:
		return REPORT_ACK_DUPLICATE;
	default:
		return REPORT_ACK_STALE;
	}
}

static void
upd_report_run(struct store *st, const char *device_id, void *arg)
{
	struct upd_report *job = arg;
	struct report r = {job->seq, job->kind, job->body};
	enum report_verdict v = REPORT_NEW;
	enum store_rc rc;

	job->uv = UPDATE_ACCEPT;
	if (strcmp(job->kind, "update.status") == 0)
		rc = store_update_report_apply(st, device_id, &r, &job->status,
					       &v, &job->uv);
	else
		rc = store_keys_report_apply(
			st, device_id, &r, job->keyset_version, job->state, &v);
	job->answer = answer_of(rc, v);
	if (job->answer == REPORT_RETRY)
		log_write(LOG_LEVEL_WARN, device_id,
			  "channel: %s seq %llu not applied (storage)",
			  job->kind, (unsigned long long)job->seq);
	else if (job->answer == REPORT_ACK_APPLIED && job->uv != UPDATE_ACCEPT)
		log_write(LOG_LEVEL_INFO, device_id,
			  "channel: update.status seq %llu ignored (%s)",
			  (unsigned long long)job->seq,
			  update_verdict_name(job->uv));
}

static void
upd_report_done(struct channel *ch, struct channel_session *s, void *arg)
{
	struct upd_report *job = arg;
	const char *status = report_answer_status(job->answer);

	(void)ch;
	if (s == NULL) /* no ack: the agent sends it again */
		goto out;
	if (status != NULL)
		channel_send_ack(s, job->seq, status);
	else if (job->answer == REPORT_REFUSED)
		channel_send_report_error(
			s, "refused",
			"the device is not active; report not applied",
			job->seq, job->kind);
	else
		channel_send_report_error(
			s, "unavailable",
			"report not applied now; send it again later", job->seq,
			job->kind);
out:
	upd_report_free(job);
}

/* A malloc'd copy of an optional string; false when out of memory. */
static bool
dup_opt(const char *v, char **out)
{
	*out = NULL;
	if (v == NULL)
		return true;
	*out = strdup(v);
	return *out != NULL;
}

static void
upd_report_submit(struct channel *ch, struct channel_session *s,
		  struct upd_report *job)
{
	struct channel_work work = {upd_report_run, upd_report_done, job};

	if (channel_submit_work(ch, s, &work))
		return;
	channel_send_report_error(s, "unavailable",
				  "server busy; send the report again later",
				  job->seq, job->kind);
	upd_report_free(job);
}

void
channel_update_status(struct channel *ch, struct channel_session *s,
		      struct proto_msg *m)
{
	struct upd_report *job = calloc(1, sizeof(*job));
	const char *dep = proto_str(m, "deployment_id");

	if (job == NULL)
		goto busy;
	/* proto_decode validated every field: sizes are bounded. */
	job->kind = "update.status";
	job->seq = m->seq;
	snprintf(job->state, sizeof(job->state), "%s", proto_str(m, "state"));
	if (dep != NULL)
		snprintf(job->deployment_id, sizeof(job->deployment_id), "%s",
			 dep);
	job->body = json_dumps(m->body, JSON_COMPACT);
	if (job->body == NULL ||
	    !dup_opt(proto_str(m, "fw_version"), &job->fw_version) ||
	    !dup_opt(proto_str(m, "reason"), &job->reason) ||
	    !dup_opt(proto_str(m, "error"), &job->error))
		goto busy;
	job->status.deployment_id = dep != NULL ? job->deployment_id : NULL;
	job->status.state = job->state;
	job->status.version = proto_int(m, "version", 0);
	job->status.running_version = proto_int(m, "running_version", -1);
	job->status.fw_version = job->fw_version;
	job->status.reason = job->reason;
	job->status.error = job->error;
	job->status.progress = proto_int(m, "progress", -1);
	job->status.bytes = proto_int(m, "bytes", -1);
	upd_report_submit(ch, s, job);
	return;
busy:
	if (job != NULL)
		upd_report_free(job);
	channel_send_report_error(s, "unavailable",
				  "server busy; send the report again later",
				  m->seq, "update.status");
}

void
channel_keys_status(struct channel *ch, struct channel_session *s,
		    struct proto_msg *m)
{
	struct upd_report *job = calloc(1, sizeof(*job));

	if (job == NULL)
		goto busy;
	job->kind = "keys.status";
	job->seq = m->seq;
	snprintf(job->state, sizeof(job->state), "%s", proto_str(m, "state"));
	job->keyset_version = proto_int(m, "version", 0);
	job->body = json_dumps(m->body, JSON_COMPACT);
	if (job->body == NULL)
		goto busy;
	upd_report_submit(ch, s, job);
	return;
busy:
	if (job != NULL)
		upd_report_free(job);
	channel_send_report_error(s, "unavailable",
				  "server busy; send the report again later",
				  m->seq, "keys.status");
}
