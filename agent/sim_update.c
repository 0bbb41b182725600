/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleet-sim's firmware updates in memory (see sim_update.h). Runs in
 * fleet-sim: the offer and welcome hooks, the reports and the steps after
 * the download on the loop thread; verification and downloads on a pool
 * of download_threads threads shared by all devices of the process. The
 * two sides share a job queue (loop -> pool) and an event queue (pool ->
 * loop, drained by a timer of the loop every SIM_POLL_MS while a device
 * updates), each under its own mutex; a job belongs to the pool from the
 * moment it is queued until the pool posts its last event.
 *
 * Untrusted input: offers (validated by common/proto; the envelope is
 * verified before its manifest is read, with the agent's code) and
 * artifact bytes (at most the manifest's size are read, hashed and
 * dropped).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "agent_int.h"
#include "clock.h"
#include "https.h"
#include "keyset.h"
#include "log.h"
#include "release.h"
#include "sim_update.h"
#include "update.h"

#define SIM_POLL_MS 50u /* events and waits looked at this often */
#define SIM_PROGRESS_MS 3000u /* downloading reports (as update.c) */
#define SIM_DL_TRIES 4 /* attempts per download */
#define SIM_DL_DEADLINE_MS (600u * 1000u) /* whole download */
#define SIM_DL_IDLE_MS 60000 /* no byte for this long: attempt ends */

enum sim_step {
	SIM_STEP_POOL, /* queued or on a download thread */
	SIM_STEP_REBOOT, /* rebooting reported: waiting for its ack */
	SIM_STEP_WELCOME, /* rebooted: waiting for the new session */
	SIM_STEP_SILENT, /* committed reported: waiting for its ack */
};

enum sim_event_kind {
	SIM_EV_VERIFIED, /* job->m is the verified manifest */
	SIM_EV_PROGRESS, /* bytes downloaded so far */
	SIM_EV_REFUSED, /* last: refused (reason, error) */
	SIM_EV_DOWNLOADED, /* last: size bytes with the manifest's sha256 */
	SIM_EV_FAILED, /* last: the download failed (reason, error) */
};

struct sim_dev;

struct sim_job {
	struct sim_job *qnext; /* the pool's queue */
	struct sim_job *prev, *next; /* active jobs (loop) */
	struct sim_dev *dev;
	enum sim_step step;
	bool verified;
	/* A newer offer came before the install: the pool stops at its
	 * next check and ends the job as superseded (as update.c). */
	atomic_bool superseded;
	/* the offer (copied) */
	char *envelope;
	char dep[37], camp[37], sha256[65];
	char url[1025];
	uint64_t size;
	int64_t offer_version;
	/* where the pool downloads from, and as whom */
	char base[300];
	char cert[AGENT_PATH_MAX], key[AGENT_PATH_MAX];
	const char *state_dir; /* the agent's (lives as long as it) */
	/* written by the pool before its events */
	struct pki_manifest m;
	int64_t prev_num;
	char prev_ver[129];
};

struct sim_event {
	struct sim_event *next;
	struct sim_job *job;
	enum sim_event_kind kind;
	uint64_t bytes;
	char reason[24];
	char error[256];
};

/* One virtual device: fixed size, whatever it did. */
struct sim_dev {
	struct sim_update *su;
	struct fleet_agent *a; /* set by the first hook call */
	struct sim_job *job; /* NULL when idle */
	char done_dep[37]; /* the last offer finished: not done again */
	char done_sha[65];
	int64_t done_version;
	bool gone; /* silent cohort: stopped for good */
	json_t *pending; /* the latest other offer while one is under way;
			    taken when it ends (as update.c's worker) */
};

struct sim_update {
	/* options */
	char *keys, *ca_file, *model, *fw_version;
	long threshold;
	double fail, rollback, silent;
	unsigned nthreads;
	struct agent_update_opts opts; /* what fleet_agent_new reads */

	struct sim_dev *devs;
	unsigned count;

	/* loop thread */
	struct lws_context *ctx;
	lws_sorted_usec_list_t sul;
	bool sul_armed;
	struct sim_job *active;
	struct sim_update_counts counts;

	/* shared with the pool */
	pthread_mutex_t qmu, evmu;
	pthread_cond_t qcv;
	struct sim_job *qhead, *qtail;
	struct sim_event *evhead, *evtail;
	atomic_bool stop;
	pthread_t thr[SIM_UPDATE_MAX_THREADS];
	unsigned started;
};

static void sim_offer_hook(void *arg, struct fleet_agent *a, json_t *offer);
static void sim_welcome_hook(void *arg, struct fleet_agent *a);

bool
sim_update_cohort(const char *option, const char *device_id, double share)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char text[160];
	uint64_t v = 0;
	int n, i;

	if (share <= 0.0 || device_id == NULL || device_id[0] == '\0')
		return false;
	if (share >= 1.0)
		return true;
	n = snprintf(text, sizeof(text), "%s:%s", option, device_id);
	if (n < 0 || (size_t)n >= sizeof(text))
		return false;
	SHA256((const unsigned char *)text, (size_t)n, md);
	for (i = 0; i < 8; i++)
		v = (v << 8) | md[i];
	return (double)v / 18446744073709551616.0 < share;
}

struct sim_update *
sim_update_new(const struct sim_update_opts *o, unsigned count, char *err,
	       size_t errlen)
{
	struct sim_update *su = calloc(1, sizeof(*su));
	unsigned i;

	if (su == NULL)
		goto nomem;
	pthread_mutex_init(&su->qmu, NULL);
	pthread_mutex_init(&su->evmu, NULL);
	pthread_cond_init(&su->qcv, NULL);
	atomic_init(&su->stop, false);
	su->keys = strdup(o->keys != NULL ? o->keys : "");
	su->ca_file = strdup(o->ca_file != NULL ? o->ca_file : "");
	su->model = strdup(o->model != NULL ? o->model : "generic");
	su->fw_version = strdup(o->fw_version != NULL ? o->fw_version : "");
	su->devs = calloc(count > 0 ? count : 1, sizeof(*su->devs));
	if (su->keys == NULL || su->ca_file == NULL || su->model == NULL ||
	    su->fw_version == NULL || su->devs == NULL) {
		sim_update_free(su);
		goto nomem;
	}
	if (su->keys[0] == '\0' || o->download_threads < 1 ||
	    o->download_threads > SIM_UPDATE_MAX_THREADS ||
	    !(o->fail >= 0.0 && o->fail <= 1.0) ||
	    !(o->rollback >= 0.0 && o->rollback <= 1.0) ||
	    !(o->silent >= 0.0 && o->silent <= 1.0)) {
		snprintf(err, errlen,
			 "updates need release keys, 1..%d download threads "
			 "and shares from 0 to 1",
			 SIM_UPDATE_MAX_THREADS);
		sim_update_free(su);
		return NULL;
	}
	su->threshold = o->threshold > 0 ? o->threshold : 1;
	su->fail = o->fail;
	su->rollback = o->rollback;
	su->silent = o->silent;
	su->nthreads = o->download_threads;
	su->count = count;
	for (i = 0; i < count; i++)
		su->devs[i].su = su;
	su->opts.keys = su->keys;
	su->opts.threshold = su->threshold;
	su->opts.fw_version = su->fw_version;
	return su;
nomem:
	snprintf(err, errlen, "out of memory");
	return NULL;
}

void
sim_update_config(struct sim_update *su, unsigned i,
		  struct fleet_agent_config *ac)
{
	if (su == NULL || i >= su->count)
		return;
	ac->update = &su->opts;
	ac->update_offer_hook = sim_offer_hook;
	ac->welcome_hook = sim_welcome_hook;
	ac->hook_arg = &su->devs[i];
}

/* ---- the pool (download threads) ----------------------------------------- */

static void
sim_post(struct sim_update *su, struct sim_job *j, enum sim_event_kind kind,
	 uint64_t bytes, const char *reason, const char *error)
{
	struct sim_event *ev = calloc(1, sizeof(*ev));

	if (ev == NULL) {
		/* Without its last event a job would never end: wait. */
		while (ev == NULL &&
		       (kind == SIM_EV_REFUSED || kind == SIM_EV_DOWNLOADED ||
			kind == SIM_EV_FAILED)) {
			clock_sleep_ms(100);
			ev = calloc(1, sizeof(*ev));
		}
		if (ev == NULL)
			return;
	}
	ev->job = j;
	ev->kind = kind;
	ev->bytes = bytes;
	snprintf(ev->reason, sizeof(ev->reason), "%s",
		 reason != NULL ? reason : "");
	snprintf(ev->error, sizeof(ev->error), "%s",
		 error != NULL ? error : "");
	pthread_mutex_lock(&su->evmu);
	if (su->evtail != NULL)
		su->evtail->next = ev;
	else
		su->evhead = ev;
	su->evtail = ev;
	pthread_mutex_unlock(&su->evmu);
}

struct sim_dl {
	struct sim_update *su;
	struct sim_job *j;
	EVP_MD_CTX *md;
	uint64_t got;
	uint64_t progress_ms;
	int status;
	bool stopped; /* fleet-sim stops, or the job was superseded */
};

static int
sim_dl_head(void *arg, const struct https_response *head)
{
	struct sim_dl *d = arg;

	d->status = head->status;
	return head->status == 200 ? 0 : 1;
}

static int
sim_dl_body(void *arg, const void *data, size_t len)
{
	struct sim_dl *d = arg;
	uint64_t now;

	if (atomic_load(&d->su->stop) || atomic_load(&d->j->superseded)) {
		d->stopped = true;
		return 1;
	}
	if (EVP_DigestUpdate(d->md, data, len) != 1)
		return 1;
	d->got += len;
	now = clock_mono_ms();
	if (now - d->progress_ms >= SIM_PROGRESS_MS && d->got < d->j->size) {
		d->progress_ms = now;
		sim_post(d->su, d->j, SIM_EV_PROGRESS, d->got, NULL, NULL);
	}
	return 0;
}

/* The request's base and path from the offer's URL. 0 or -1. */
static int
sim_dl_target(const struct sim_job *j, struct https_url *base, char *path,
	      size_t pathlen, char *err, size_t errlen)
{
	if (strncmp(j->url, "https://", 8) == 0)
		return https_url_split(j->url, base, path, pathlen, err,
				       errlen);
	if (j->url[0] != '/') {
		snprintf(err, errlen,
			 "artifact URL is neither https:// nor a path: %.100s",
			 j->url);
		return -1;
	}
	if (https_url_parse(j->base, base, err, errlen) != 0)
		return -1;
	if (snprintf(path, pathlen, "%s%s", base->prefix, j->url) >=
	    (int)pathlen) {
		snprintf(err, errlen, "artifact URL too long");
		return -1;
	}
	base->prefix[0] = '\0';
	return 0;
}

/* Downloads j's artifact, hashing and dropping its bytes; posts the
 * progress and the last event. */
static void
sim_download(struct sim_update *su, struct sim_job *j)
{
	struct https_options ho;
	struct https_client *c = NULL;
	struct https_url base;
	struct https_request req;
	struct https_response resp;
	struct https_stream s;
	enum https_stream_result sr;
	unsigned char md[EVP_MAX_MD_SIZE];
	char path[1100], err[HTTPS_ERR_MAX], hex[65];
	const char *reason = "download-failed";
	uint64_t start = clock_mono_ms();
	unsigned mdlen = 0, i;
	struct sim_dl d;
	int try;

	memset(&d, 0, sizeof(d));
	err[0] = '\0';
	d.su = su;
	d.j = j;
	d.md = EVP_MD_CTX_new();
	if (d.md == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	if (sim_dl_target(j, &base, path, sizeof(path), err, sizeof(err)) != 0)
		goto fail;
	memset(&ho, 0, sizeof(ho));
	ho.ca_file = su->ca_file;
	ho.cert_file = j->cert;
	ho.key_file = j->key;
	ho.timeout_ms = SIM_DL_IDLE_MS;
	c = https_client_new(&ho, err, sizeof(err));
	if (c == NULL)
		goto fail;
	sim_post(su, j, SIM_EV_PROGRESS, 0, NULL, NULL);
	for (try = 0; try < SIM_DL_TRIES; try++) {
		uint64_t now = clock_mono_ms();

		if (try > 0) {
			/* 1, 2, 4 s between attempts, or until stopped. */
			uint64_t until = now + (1000u << (try - 1));

			while (!atomic_load(&su->stop) &&
			       clock_mono_ms() < until)
				clock_sleep_ms(50);
			now = clock_mono_ms();
		}
		if (atomic_load(&su->stop)) {
			snprintf(err, sizeof(err), "stopped");
			goto fail;
		}
		if (atomic_load(&j->superseded))
			goto superseded;
		if (now - start >= SIM_DL_DEADLINE_MS) {
			reason = "download-timeout";
			goto fail;
		}
		if (EVP_DigestInit_ex(d.md, EVP_sha256(), NULL) != 1) {
			snprintf(err, sizeof(err), "sha256 unavailable");
			goto fail;
		}
		d.got = 0;
		d.status = 0;
		d.progress_ms = now;
		memset(&req, 0, sizeof(req));
		req.method = "GET";
		req.path = path;
		memset(&s, 0, sizeof(s));
		s.on_head = sim_dl_head;
		s.on_body = sim_dl_body;
		s.arg = &d;
		s.max_body = j->size; /* never past the manifest's size */
		s.total_ms = (int)(SIM_DL_DEADLINE_MS - (now - start));
		s.idle_ms = SIM_DL_IDLE_MS;
		sr = https_stream(c, &base, &req, &s, &resp, NULL, err,
				  sizeof(err));
		https_response_free(&resp);
		if (d.stopped && atomic_load(&j->superseded))
			goto superseded;
		if (d.stopped)
			goto fail;
		if (sr == HTTPS_STREAM_TOO_LARGE) {
			reason = "oversize";
			snprintf(err, sizeof(err),
				 "the server sent more than the manifest's "
				 "%" PRIu64 " bytes",
				 j->size);
			goto fail;
		}
		if (sr == HTTPS_STREAM_TIMEOUT) {
			reason = "download-timeout";
			goto fail;
		}
		if (sr == HTTPS_STREAM_OK && d.status == 200 &&
		    d.got == j->size)
			break;
		if (d.status != 0 && d.status != 200)
			snprintf(err, sizeof(err), "HTTP %d", d.status);
		else if (sr == HTTPS_STREAM_OK)
			snprintf(err, sizeof(err),
				 "the body ended at %" PRIu64 " of %" PRIu64
				 " bytes",
				 d.got, j->size);
		log_write(LOG_LEVEL_INFO, "fleet-sim",
			  "download of %s, attempt %d: %s", j->sha256, try + 1,
			  err);
	}
	if (try >= SIM_DL_TRIES) {
		char e[HTTPS_ERR_MAX];

		snprintf(e, sizeof(e), "%s", err);
		snprintf(err, sizeof(err),
			 "download failed after %d attempts: %.400s",
			 SIM_DL_TRIES, e);
		goto fail;
	}
	if (EVP_DigestFinal_ex(d.md, md, &mdlen) != 1 || mdlen != 32) {
		snprintf(err, sizeof(err), "sha256 failed");
		goto fail;
	}
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	if (strcmp(hex, j->m.sha256) != 0) {
		reason = "hash-mismatch";
		snprintf(err, sizeof(err),
			 "the downloaded bytes' sha256 is %s, the manifest "
			 "says %s",
			 hex, j->m.sha256);
		goto fail;
	}
	https_client_free(c);
	EVP_MD_CTX_free(d.md);
	log_write(LOG_LEVEL_DEBUG, "fleet-sim",
		  "%s: %" PRIu64 " bytes in %" PRIu64 " ms (%d attempts)",
		  j->sha256, j->size, clock_mono_ms() - start, try + 1);
	sim_post(su, j, SIM_EV_PROGRESS, j->size, NULL, NULL);
	sim_post(su, j, SIM_EV_DOWNLOADED, j->size, NULL, NULL);
	return;
superseded:
	reason = "superseded";
	snprintf(err, sizeof(err),
		 "a newer offer replaced it before it was installed");
fail:
	https_client_free(c);
	EVP_MD_CTX_free(d.md);
	sim_post(su, j, SIM_EV_FAILED, d.got, reason, err);
}

/* The version the device runs now: firmware.json, else the configured
 * one (update.c's upd_running). */
static void
sim_running(struct sim_update *su, const char *state_dir, int64_t *num,
	    char *ver, size_t verlen)
{
	struct agent_firmware fw;

	if (agent_firmware_read(state_dir, &fw) == 1) {
		*num = fw.version_int;
		snprintf(ver, verlen, "%s", fw.version);
		return;
	}
	*num = 0;
	snprintf(ver, verlen, "%s", su->fw_version);
}

/* Verification as update.c's upd_offer does it, then the download. */
static void
sim_job_run(struct sim_update *su, struct sim_job *j)
{
	enum pki_release_reason r;
	struct pki_keyset ks;
	char why[512];

	sim_running(su, j->state_dir, &j->prev_num, j->prev_ver,
		    sizeof(j->prev_ver));
	if (atomic_load(&j->superseded)) {
		sim_post(su, j, SIM_EV_FAILED, 0, "superseded",
			 "a newer offer replaced it before it was installed");
		return;
	}
	memset(&ks, 0, sizeof(ks));
	switch (agent_keyset_load(j->state_dir, su->keys, su->threshold, &ks,
				  why, sizeof(why))) {
	case 1:
		break;
	case 0:
		sim_post(su, j, SIM_EV_REFUSED, 0, "unknown-key",
			 "this device pins no release keys");
		return;
	default:
		sim_post(su, j, SIM_EV_REFUSED, 0, "internal", why);
		return;
	}
	/* Verify the bytes, only then parse them (pki/release.h). */
	r = pki_release_verify(j->envelope, strlen(j->envelope), &ks, &j->m,
			       why, sizeof(why));
	pki_keyset_clear(&ks);
	if (r == PKI_RELEASE_OK)
		r = pki_manifest_check(&j->m, (time_t)clock_wall_s(),
				       j->prev_num, su->model, why,
				       sizeof(why));
	if (r == PKI_RELEASE_OK)
		r = pki_manifest_match(&j->m, j->size, j->sha256, why,
				       sizeof(why));
	if (r != PKI_RELEASE_OK) {
		sim_post(su, j, SIM_EV_REFUSED, 0, pki_release_reason_code(r),
			 why);
		return;
	}
	sim_post(su, j, SIM_EV_VERIFIED, 0, NULL, NULL);
	sim_download(su, j);
}

static void *
sim_pool_main(void *arg)
{
	struct sim_update *su = arg;
	struct sim_job *j;

	for (;;) {
		pthread_mutex_lock(&su->qmu);
		while (!atomic_load(&su->stop) && su->qhead == NULL)
			pthread_cond_wait(&su->qcv, &su->qmu);
		if (atomic_load(&su->stop)) {
			pthread_mutex_unlock(&su->qmu);
			return NULL;
		}
		j = su->qhead;
		su->qhead = j->qnext;
		if (su->qhead == NULL)
			su->qtail = NULL;
		j->qnext = NULL;
		pthread_mutex_unlock(&su->qmu);
		sim_job_run(su, j);
	}
}

/* ---- the loop side ---------------------------------------------------------- */

static void sim_poll_cb(lws_sorted_usec_list_t *sul);

static void
sim_arm(struct sim_update *su)
{
	if (su->sul_armed || su->ctx == NULL)
		return;
	su->sul_armed = true;
	lws_sul_schedule(su->ctx, 0, &su->sul, sim_poll_cb,
			 (lws_usec_t)SIM_POLL_MS * LWS_US_PER_MS);
}

static const char *
sim_logctx(const struct sim_job *j)
{
	return fleet_agent_device_id(j->dev->a);
}

/* Queues an update.status about j (update.c's upd_report). */
static void
sim_report(struct sim_job *j, const char *state, const char *reason,
	   const char *error, int64_t bytes)
{
	bool refused = strcmp(state, "refused") == 0;
	bool final = refused || strcmp(state, "failed") == 0 ||
		     strcmp(state, "rolled_back") == 0 ||
		     strcmp(state, "committed") == 0;
	char err[256];
	json_t *r;

	r = json_pack("{s:s, s:s, s:I}", "type", "update.status", "state",
		      state, "version",
		      (json_int_t)(j->verified ? j->m.version_int
					       : j->offer_version));
	if (r == NULL)
		return;
	if (j->dep[0] != '\0')
		json_object_set_new(r, "deployment_id", json_string(j->dep));
	if (j->camp[0] != '\0')
		json_object_set_new(r, "campaign_id", json_string(j->camp));
	json_object_set_new(r, "sha256", json_string(j->sha256));
	if (reason != NULL && reason[0] != '\0')
		json_object_set_new(r, "reason", json_string(reason));
	if (error != NULL && error[0] != '\0')
		json_object_set_new(r, "error", json_string(error));
	if (bytes >= 0) {
		json_object_set_new(r, "bytes", json_integer(bytes));
		if (j->size > 0)
			json_object_set_new(
				r, "progress",
				json_integer((json_int_t)((uint64_t)bytes *
							  100u / j->size)));
	}
	if (final && strcmp(state, "committed") == 0) {
		json_object_set_new(r, "running_version",
				    json_integer(j->m.version_int));
		json_object_set_new(r, "fw_version", json_string(j->m.version));
	} else if (final) {
		json_object_set_new(r, "running_version",
				    json_integer(j->prev_num));
		if (j->prev_ver[0] != '\0')
			json_object_set_new(r, "fw_version",
					    json_string(j->prev_ver));
	}
	if (fleet_agent_report_memory(j->dev->a, r, err, sizeof(err)) != 0)
		log_write(LOG_LEVEL_ERROR, sim_logctx(j),
			  "update.status %s not queued: %s", state, err);
	else
		/* Progress only at debug; the last piece at info. */
		log_write(strcmp(state, "downloading") == 0 &&
					  bytes != (int64_t)j->size
				  ? LOG_LEVEL_DEBUG
				  : LOG_LEVEL_INFO,
			  sim_logctx(j),
			  "update.status %s (version %" PRId64 ")", state,
			  j->verified ? j->m.version_int : j->offer_version);
	json_decref(r);
}

/* The job is over: the device remembers the offer and holds nothing. */
static void
sim_job_end(struct sim_update *su, struct sim_job *j, const char *outcome)
{
	struct sim_dev *dev = j->dev;

	snprintf(dev->done_dep, sizeof(dev->done_dep), "%s", j->dep);
	snprintf(dev->done_sha, sizeof(dev->done_sha), "%s", j->sha256);
	dev->done_version = j->offer_version;
	dev->job = NULL;
	if (j->prev != NULL)
		j->prev->next = j->next;
	else
		su->active = j->next;
	if (j->next != NULL)
		j->next->prev = j->prev;
	su->counts.active--;
	if (strcmp(outcome, "committed") == 0)
		su->counts.committed++;
	else if (strcmp(outcome, "failed") == 0)
		su->counts.failed++;
	else if (strcmp(outcome, "rolled_back") == 0)
		su->counts.rolled_back++;
	else if (strcmp(outcome, "refused") == 0)
		su->counts.refused++;
	else if (strcmp(outcome, "silent") == 0)
		su->counts.silent++;
	else if (strcmp(outcome, "superseded") == 0)
		su->counts.superseded++;
	free(j->envelope);
	free(j);
	/* The offer that came meanwhile, if it is still wanted. */
	if (dev->pending != NULL) {
		json_t *offer = dev->pending;

		dev->pending = NULL;
		if (!dev->gone)
			sim_offer_hook(dev, dev->a, offer);
		json_decref(offer);
	}
}

/* Downloaded: install in memory, then fail or reboot. */
static void
sim_installed(struct sim_update *su, struct sim_job *j)
{
	const char *id = fleet_agent_device_id(j->dev->a);

	sim_report(j, "downloaded", NULL, NULL, -1);
	sim_report(j, "installing", NULL, NULL, -1);
	if (sim_update_cohort("update-fail", id, su->fail)) {
		sim_report(j, "failed", "install-failed",
			   "simulated install failure (fleet-sim "
			   "--update-fail)",
			   -1);
		sim_job_end(su, j, "failed");
		return;
	}
	sim_report(j, "installed", NULL, NULL, -1);
	sim_report(j, "rebooting", NULL, NULL, -1);
	j->step = SIM_STEP_REBOOT;
}

/* The new session after the reboot: health, then commit or roll back. */
static void
sim_verify(struct sim_update *su, struct sim_job *j)
{
	const char *id = fleet_agent_device_id(j->dev->a);
	struct agent_firmware fw;
	char err[256];

	sim_report(j, "verifying", NULL, NULL, -1);
	if (sim_update_cohort("update-rollback", id, su->rollback)) {
		sim_report(j, "rolled_back", "health-failed",
			   "simulated health check failure (fleet-sim "
			   "--update-rollback)",
			   -1);
		sim_job_end(su, j, "rolled_back");
		return;
	}
	/* As the agent at commit: the next hello says the new version. */
	memset(&fw, 0, sizeof(fw));
	fw.version_int = j->m.version_int;
	snprintf(fw.version, sizeof(fw.version), "%s", j->m.version);
	snprintf(fw.name, sizeof(fw.name), "%s", j->m.name);
	if (agent_firmware_write(j->state_dir, &fw, err, sizeof(err)) != 0)
		log_write(LOG_LEVEL_ERROR, sim_logctx(j), "firmware.json: %s",
			  err);
	sim_report(j, "committed", NULL, NULL, -1);
	if (sim_update_cohort("update-silent", id, su->silent)) {
		j->step = SIM_STEP_SILENT;
		return;
	}
	sim_job_end(su, j, "committed");
}

/* A newer offer replaced job j before it was installed: said once, in
 * the log and in its last report, wherever the job noticed it. */
static void
sim_superseded(struct sim_update *su, struct sim_job *j, const char *error)
{
	log_write(LOG_LEVEL_INFO, sim_logctx(j),
		  "update %" PRId64 " superseded by a newer offer",
		  j->offer_version);
	sim_report(j, "failed", "superseded", error, -1);
	sim_job_end(su, j, "superseded");
}

static void
sim_event(struct sim_update *su, struct sim_event *ev)
{
	struct sim_job *j = ev->job;

	switch (ev->kind) {
	case SIM_EV_VERIFIED:
		j->verified = true;
		log_write(LOG_LEVEL_INFO, sim_logctx(j),
			  "update offer accepted: %s %s (version %" PRId64
			  ", %" PRIu64 " bytes)",
			  j->m.name, j->m.version, j->m.version_int, j->m.size);
		break;
	case SIM_EV_PROGRESS:
		sim_report(j, "downloading", NULL, NULL, (int64_t)ev->bytes);
		break;
	case SIM_EV_REFUSED:
		log_write(LOG_LEVEL_WARN, sim_logctx(j),
			  "update offer %" PRId64 " refused: %s: %s",
			  j->offer_version, ev->reason, ev->error);
		sim_report(j, "refused", ev->reason, ev->error, -1);
		sim_job_end(su, j, "refused");
		break;
	case SIM_EV_FAILED:
		if (strcmp(ev->reason, "superseded") == 0) {
			sim_superseded(su, j, ev->error);
			break;
		}
		log_write(LOG_LEVEL_WARN, sim_logctx(j),
			  "update %s: download failed: %s: %s", j->m.version,
			  ev->reason, ev->error);
		sim_report(j, "failed", ev->reason, ev->error, -1);
		sim_job_end(su, j, "failed");
		break;
	case SIM_EV_DOWNLOADED:
		/* Up to downloaded a newer offer still wins (update.c). */
		if (atomic_load(&j->superseded)) {
			sim_superseded(su, j,
				       "a newer offer replaced it before it "
				       "was installed");
			break;
		}
		sim_installed(su, j);
		break;
	}
}

static void
sim_poll_cb(lws_sorted_usec_list_t *sul)
{
	struct sim_update *su = lws_container_of(sul, struct sim_update, sul);
	struct sim_event *ev, *next;
	struct sim_job *j, *jn;

	su->sul_armed = false;
	pthread_mutex_lock(&su->evmu);
	ev = su->evhead;
	su->evhead = su->evtail = NULL;
	pthread_mutex_unlock(&su->evmu);
	for (; ev != NULL; ev = next) {
		next = ev->next;
		sim_event(su, ev);
		free(ev);
	}
	/* Waits for acknowledgements: the reboot, and the silent exit. */
	for (j = su->active; j != NULL; j = jn) {
		jn = j->next;
		if (j->step == SIM_STEP_REBOOT &&
		    fleet_agent_memory_reports(j->dev->a) == 0) {
			j->step = SIM_STEP_WELCOME;
			fleet_agent_reboot(j->dev->a);
		} else if (j->step == SIM_STEP_SILENT &&
			   fleet_agent_memory_reports(j->dev->a) == 0) {
			log_write(LOG_LEVEL_INFO, sim_logctx(j),
				  "committed; going silent for the rest of "
				  "the run (--update-silent)");
			j->dev->gone = true;
			fleet_agent_stop(j->dev->a);
			sim_job_end(su, j, "silent");
		}
	}
	if (su->active != NULL)
		sim_arm(su);
}

static void
sim_welcome_hook(void *arg, struct fleet_agent *a)
{
	struct sim_dev *dev = arg;

	dev->a = a;
	if (dev->job != NULL && dev->job->step == SIM_STEP_WELCOME)
		sim_verify(dev->su, dev->job);
}

static void
sim_offer_hook(void *arg, struct fleet_agent *a, json_t *offer)
{
	struct sim_dev *dev = arg;
	struct sim_update *su = dev->su;
	const char *dep =
		json_string_value(json_object_get(offer, "deployment_id"));
	const char *camp =
		json_string_value(json_object_get(offer, "campaign_id"));
	const char *sha = json_string_value(json_object_get(offer, "sha256"));
	const char *url =
		json_string_value(json_object_get(offer, "artifact_url"));
	int64_t version = json_integer_value(json_object_get(offer, "version"));
	struct sim_job *j;

	dev->a = a;
	if (dep == NULL)
		dep = "";
	if (dev->gone || su->ctx == NULL || atomic_load(&su->stop))
		return;
	if (dev->job != NULL) {
		json_t *copy;

		/* fleetd offers an open row again at every hello: the one
		 * under way goes on. */
		if (strcmp(dev->job->dep, dep) == 0 &&
		    strcmp(dev->job->sha256, sha != NULL ? sha : "") == 0 &&
		    dev->job->offer_version == version) {
			log_write(LOG_LEVEL_DEBUG, fleet_agent_device_id(a),
				  "update offer %" PRId64 " under way",
				  version);
			return;
		}
		/* Another: taken when this one ends, which is at once
		 * when nothing is installed yet (superseded, as
		 * update.c). */
		copy = json_deep_copy(offer);
		if (copy == NULL)
			return;
		json_decref(dev->pending);
		dev->pending = copy;
		if (dev->job->step == SIM_STEP_POOL)
			atomic_store(&dev->job->superseded, true);
		log_write(LOG_LEVEL_INFO, fleet_agent_device_id(a),
			  "update offer %" PRId64 " waits: %s", version,
			  dev->job->step == SIM_STEP_POOL
				  ? "the update under way is superseded"
				  : "an install is under way");
		return;
	}
	if (strcmp(dev->done_dep, dep) == 0 &&
	    strcmp(dev->done_sha, sha != NULL ? sha : "") == 0 &&
	    dev->done_version == version) {
		log_write(LOG_LEVEL_DEBUG, fleet_agent_device_id(a),
			  "update offer %" PRId64 " ignored: done already",
			  version);
		return;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return;
	j->dev = dev;
	j->step = SIM_STEP_POOL;
	atomic_init(&j->superseded, false);
	j->envelope =
		json_dumps(json_object_get(offer, "envelope"), JSON_COMPACT);
	j->state_dir = fleet_agent_state_dir(a);
	snprintf(j->dep, sizeof(j->dep), "%s", dep);
	snprintf(j->camp, sizeof(j->camp), "%s", camp != NULL ? camp : "");
	snprintf(j->sha256, sizeof(j->sha256), "%s", sha != NULL ? sha : "");
	snprintf(j->url, sizeof(j->url), "%s", url != NULL ? url : "");
	j->size = (uint64_t)json_integer_value(json_object_get(offer, "size"));
	j->offer_version = version;
	if (j->envelope == NULL ||
	    fleet_agent_download_identity(a, j->base, j->cert, j->key,
					  sizeof(j->cert)) != 0) {
		log_write(LOG_LEVEL_ERROR, fleet_agent_device_id(a),
			  "update offer %" PRId64 " not taken (out of memory "
			  "or no identity)",
			  version);
		free(j->envelope);
		free(j);
		return;
	}
	dev->job = j;
	j->next = su->active;
	if (su->active != NULL)
		su->active->prev = j;
	su->active = j;
	su->counts.active++;
	pthread_mutex_lock(&su->qmu);
	if (su->qtail != NULL)
		su->qtail->qnext = j;
	else
		su->qhead = j;
	su->qtail = j;
	pthread_cond_signal(&su->qcv);
	pthread_mutex_unlock(&su->qmu);
	sim_arm(su);
}

/* ---- start and stop ------------------------------------------------------------ */

int
sim_update_start(struct sim_update *su, struct lws_context *ctx, char *err,
		 size_t errlen)
{
	unsigned i;

	su->ctx = ctx;
	for (i = 0; i < su->nthreads; i++) {
		if (pthread_create(&su->thr[i], NULL, sim_pool_main, su) != 0) {
			snprintf(err, errlen,
				 "cannot start the download threads");
			sim_update_stop(su);
			return -1;
		}
		su->started++;
	}
	return 0;
}

void
sim_update_stop(struct sim_update *su)
{
	unsigned i;

	if (su == NULL)
		return;
	if (su->ctx != NULL)
		lws_sul_cancel(&su->sul);
	su->sul_armed = false;
	pthread_mutex_lock(&su->qmu);
	atomic_store(&su->stop, true);
	pthread_cond_broadcast(&su->qcv);
	pthread_mutex_unlock(&su->qmu);
	for (i = 0; i < su->started; i++)
		pthread_join(su->thr[i], NULL);
	su->started = 0;
	su->ctx = NULL;
}

void
sim_update_free(struct sim_update *su)
{
	struct sim_event *ev;
	struct sim_job *j;
	unsigned i;

	if (su == NULL)
		return;
	sim_update_stop(su);
	while ((ev = su->evhead) != NULL) {
		su->evhead = ev->next;
		free(ev);
	}
	/* Every job is on the active list (queued ones too). */
	while ((j = su->active) != NULL) {
		su->active = j->next;
		free(j->envelope);
		free(j);
	}
	for (i = 0; su->devs != NULL && i < su->count; i++)
		json_decref(su->devs[i].pending);
	free(su->devs);
	free(su->keys);
	free(su->ca_file);
	free(su->model);
	free(su->fw_version);
	pthread_mutex_destroy(&su->qmu);
	pthread_mutex_destroy(&su->evmu);
	pthread_cond_destroy(&su->qcv);
	free(su);
}

void
sim_update_get_counts(const struct sim_update *su, struct sim_update_counts *c)
{
	if (su == NULL) {
		memset(c, 0, sizeof(*c));
		return;
	}
	*c = su->counts;
}
