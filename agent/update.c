/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's update state machine (update.h, docs/internals/agent-update.md).
 * Runs in fleet-agent on one worker thread per agent; the lws loop hands
 * it offers (agent_update_offer) and welcomes (agent_update_welcome) and
 * sends the reports it queues. Offers are untrusted until the envelope
 * verified against the pinned key set; after that the signed manifest,
 * not the offer, says what is downloaded and installed.
 *
 * Every step boundary is written to state_dir/update/journal.json
 * (atomically) before the step's report is queued, and the report is
 * recorded in the journal after: a kill anywhere resumes from the journal
 * (download resumed, install re-run, reboot verified, health re-checked,
 * commit or rollback re-run: the installer states are idempotent by the
 * Mender protocol), and a step's report is queued once (a report already
 * in the queue is not queued again).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent_int.h"
#include "atomicfile.h"
#include "clock.h"
#include "download.h"
#include "installer.h"
#include "keyset.h"
#include "log.h"
#include "release.h"
#include "update.h"

extern char **environ;

#define UPD_JOURNAL_MAX (256u * 1024u)
#define UPD_PROGRESS_MS 3000u /* downloading reports at most this often */
#define UPD_REBOOT_WAIT_S 300 /* the reboot command returned: wait */
#define UPD_HEALTH_RETRY_MS 2000u
#define UPD_DEFAULT_MODULES "/usr/share/fleet-agent/modules"
#define UPD_MENDER_MODULES "/usr/share/mender/modules/v3"
#define UPD_CMDLINE_MAX 8192
#define UPD_ARGV_MAX 64

static const char *const step_names[UPD_STEP_COUNT] = {
	"none",	      "verified",     "downloading", "downloaded",
	"installing", "installed",    "rebooting",   "verifying",
	"committing", "rolling_back", "done"};

const char *
upd_step_name(enum upd_step s)
{
	return (unsigned)s < UPD_STEP_COUNT ? step_names[s] : "none";
}

enum upd_step
upd_step_parse(const char *name)
{
	int i;

	for (i = 0; name != NULL && i < UPD_STEP_COUNT; i++)
		if (strcmp(name, step_names[i]) == 0)
			return (enum upd_step)i;
	return UPD_NONE;
}

/* Copies src into dst, cut at cap - 1 bytes (messages for people). */
static void
upd_copy(char *dst, size_t cap, const char *src)
{
	size_t n = src != NULL ? strlen(src) : 0;

	if (n >= cap)
		n = cap - 1;
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

/* ---- firmware.json ------------------------------------------------------ */

int
agent_firmware_read(const char *state_dir, struct agent_firmware *fw)
{
	char path[AGENT_PATH_MAX], err[256], *text = NULL;
	json_t *doc;
	size_t len;
	int rc = -1;

	if (agent_path(path, sizeof(path), state_dir, AGENT_FIRMWARE_FILE) != 0)
		return -1;
	if (access(path, F_OK) != 0)
		return 0;
	if (read_file_bounded(path, 4096, &text, &len, err, sizeof(err)) != 0)
		return -1;
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	free(text);
	if (json_is_integer(json_object_get(doc, "version_int")) &&
	    json_integer_value(json_object_get(doc, "version_int")) >= 0) {
		memset(fw, 0, sizeof(*fw));
		fw->version_int =
			json_integer_value(json_object_get(doc, "version_int"));
		snprintf(fw->version, sizeof(fw->version), "%s",
			 json_string_value(json_object_get(doc, "version"))
				 ? json_string_value(
					   json_object_get(doc, "version"))
				 : "");
		snprintf(fw->name, sizeof(fw->name), "%s",
			 json_string_value(json_object_get(doc, "name"))
				 ? json_string_value(
					   json_object_get(doc, "name"))
				 : "");
		rc = 1;
	}
	json_decref(doc);
	return rc;
}

int
agent_firmware_write(const char *state_dir, const struct agent_firmware *fw,
		     char *err, size_t errlen)
{
	char path[AGENT_PATH_MAX], *text;
	json_t *doc;
	int rc = -1;

	doc = json_pack("{s:I, s:s, s:s}", "version_int",
			(json_int_t)fw->version_int, "version", fw->version,
			"name", fw->name);
	text = doc != NULL ? json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS)
			   : NULL;
	if (text == NULL) {
		snprintf(err, errlen, "out of memory");
	} else if (agent_path(path, sizeof(path), state_dir,
			      AGENT_FIRMWARE_FILE) != 0) {
		snprintf(err, errlen, "state directory path too long");
	} else {
		rc = atomic_write_file(path, text, strlen(text), 0644, err,
				       errlen);
	}
	free(text);
	json_decref(doc);
	return rc;
}

int64_t
agent_update_fw_version_num(const char *state_dir, long configured,
			    char *fw_version, size_t fwlen)
{
	struct agent_firmware fw;

	if (agent_firmware_read(state_dir, &fw) == 1) {
		if (fw_version != NULL && fw.version[0] != '\0')
			snprintf(fw_version, fwlen, "%s", fw.version);
		return fw.version_int;
	}
	return configured > 0 ? configured : 0;
}

/* ---- the journal -------------------------------------------------------- */

void
upd_journal_clear(struct upd_journal *j)
{
	free(j->envelope);
	memset(j, 0, sizeof(*j));
}

static void
jstr(char *out, size_t cap, json_t *doc, const char *key)
{
	const char *v = json_string_value(json_object_get(doc, key));

	snprintf(out, cap, "%s", v != NULL ? v : "");
}

static int64_t
jint(json_t *doc, const char *key)
{
	return json_integer_value(json_object_get(doc, key));
}

static bool
jbool(json_t *doc, const char *key)
{
	return json_is_true(json_object_get(doc, key));
}

int
upd_journal_load(const char *dir, struct upd_journal *j, char *err,
		 size_t errlen)
{
	char path[AGENT_PATH_MAX], *text = NULL;
	json_error_t jerr;
	json_t *doc;
	size_t len;

	memset(j, 0, sizeof(*j));
	if (agent_path(path, sizeof(path), dir, AGENT_UPDATE_JOURNAL) != 0) {
		snprintf(err, errlen, "path too long");
		return -1;
	}
	if (access(path, F_OK) != 0)
		return 0;
	if (read_file_bounded(path, UPD_JOURNAL_MAX, &text, &len, err,
			      errlen) != 0)
		return -1;
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	free(text);
	if (!json_is_object(doc)) {
		snprintf(err, errlen, "%s: not a JSON object: %s", path,
			 jerr.text);
		json_decref(doc);
		return -1;
	}
	j->step =
		upd_step_parse(json_string_value(json_object_get(doc, "step")));
	if (j->step == UPD_NONE) {
		snprintf(err, errlen, "%s: unknown step", path);
		json_decref(doc);
		return -1;
	}
	if (json_is_string(json_object_get(doc, "envelope")))
		j->envelope = strdup(
			json_string_value(json_object_get(doc, "envelope")));
	jstr(j->deployment_id, sizeof(j->deployment_id), doc, "deployment_id");
	jstr(j->campaign_id, sizeof(j->campaign_id), doc, "campaign_id");
	jstr(j->url, sizeof(j->url), doc, "url");
	jstr(j->sha256, sizeof(j->sha256), doc, "sha256");
	j->size = (uint64_t)jint(doc, "size");
	j->version_int = jint(doc, "version_int");
	jstr(j->version, sizeof(j->version), doc, "version");
	jstr(j->name, sizeof(j->name), doc, "name");
	jstr(j->installer, sizeof(j->installer), doc, "installer");
	j->prev_version_int = jint(doc, "prev_version_int");
	jstr(j->prev_version, sizeof(j->prev_version), doc, "prev_version");
	jstr(j->prev_name, sizeof(j->prev_name), doc, "prev_name");
	j->needs_reboot = jbool(doc, "needs_reboot");
	j->automatic_reboot = jbool(doc, "automatic_reboot");
	j->supports_rollback = jbool(doc, "supports_rollback");
	j->rebooted = jbool(doc, "rebooted");
	j->rb_rebooting = jbool(doc, "rb_rebooting");
	j->verify_since = jint(doc, "verify_since");
	jstr(j->outcome, sizeof(j->outcome), doc, "outcome");
	jstr(j->reason, sizeof(j->reason), doc, "reason");
	jstr(j->error, sizeof(j->error), doc, "error");
	jstr(j->reported, sizeof(j->reported), doc, "reported");
	json_decref(doc);
	return 1;
}

int
upd_journal_save(const char *dir, const struct upd_journal *j, char *err,
		 size_t errlen)
{
	char path[AGENT_PATH_MAX], *text = NULL;
	json_t *doc;
	int rc = -1;

	doc = json_pack(
		"{s:s, s:s?, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:s, "
		"s:I, s:s, s:s, s:b, s:b, s:b, s:b, s:b, s:I, s:s, s:s, s:s, "
		"s:s}",
		"step", upd_step_name(j->step), "envelope", j->envelope,
		"deployment_id", j->deployment_id, "campaign_id",
		j->campaign_id, "url", j->url, "sha256", j->sha256, "size",
		(json_int_t)j->size, "version_int", (json_int_t)j->version_int,
		"version", j->version, "name", j->name, "installer",
		j->installer, "prev_version_int",
		(json_int_t)j->prev_version_int, "prev_version",
		j->prev_version, "prev_name", j->prev_name, "needs_reboot",
		j->needs_reboot, "automatic_reboot", j->automatic_reboot,
		"supports_rollback", j->supports_rollback, "rebooted",
		j->rebooted, "rb_rebooting", j->rb_rebooting, "verify_since",
		(json_int_t)j->verify_since, "outcome", j->outcome, "reason",
		j->reason, "error", j->error, "reported", j->reported);
	if (doc != NULL)
		text = json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS);
	if (text == NULL)
		snprintf(err, errlen, "journal: out of memory");
	else if (agent_path(path, sizeof(path), dir, AGENT_UPDATE_JOURNAL) != 0)
		snprintf(err, errlen, "path too long");
	else
		rc = atomic_write_file(path, text, strlen(text), 0600, err,
				       errlen);
	free(text);
	json_decref(doc);
	return rc;
}

static bool
upd_same_offer(const struct upd_journal *j, const char *deployment_id,
	       const char *sha256, int64_t version)
{
	if (strcmp(j->deployment_id,
		   deployment_id != NULL ? deployment_id : "") != 0)
		return false;
	return strcmp(j->sha256, sha256 != NULL ? sha256 : "") == 0 &&
	       j->version_int == version;
}

enum upd_offer_action
upd_offer_decide(const struct upd_journal *j, const char *deployment_id,
		 const char *sha256, int64_t version)
{
	if (j->step == UPD_NONE)
		return UPD_OFFER_NEW;
	if (upd_same_offer(j, deployment_id, sha256, version))
		return j->step == UPD_DONE ? UPD_OFFER_IGNORE
					   : UPD_OFFER_RESUME;
	if (j->step == UPD_DONE)
		return UPD_OFFER_NEW;
	/* Nothing of the current one is installed yet: the newer offer
	 * replaces it. From the install on, the device finishes (commits
	 * or rolls back) first; fleetd offers again afterwards. */
	if (j->step <= UPD_DOWNLOADED)
		return UPD_OFFER_SUPERSEDE;
	return UPD_OFFER_IGNORE;
}

enum upd_resume_action
upd_resume_decide(const struct upd_journal *j)
{
	switch (j->step) {
	case UPD_VERIFIED:
	case UPD_DOWNLOADING:
		return UPD_RESUME_DOWNLOAD;
	case UPD_DOWNLOADED:
	case UPD_INSTALLING:
		return UPD_RESUME_INSTALL;
	case UPD_INSTALLED:
		return UPD_RESUME_AFTER_INSTALL;
	case UPD_REBOOTING:
		return UPD_RESUME_VERIFY_REBOOT;
	case UPD_VERIFYING:
		return UPD_RESUME_HEALTH;
	case UPD_COMMITTING:
		return UPD_RESUME_COMMIT;
	case UPD_ROLLING_BACK:
		return UPD_RESUME_ROLLBACK;
	case UPD_NONE:
	case UPD_DONE:
	default:
		return UPD_RESUME_NOTHING;
	}
}

/* ---- the worker ------------------------------------------------------------ */

struct agent_update {
	/* configuration (owned copies) */
	char *keys, *modules_dir, *reboot_cmd, *health_cmd, *fw_version_cfg;
	char *state_dir, *model, *ca_file, *base_url;
	long threshold, dl_deadline_s, stall_s, health_deadline_s;
	long fw_num_cfg, state_timeout_s;
	bool modules_dir_given;
	char dir[AGENT_PATH_MAX]; /* state_dir/update */
	char part[AGENT_PATH_MAX];
	char logctx[64];
	char pause_at[24];
	void (*wake)(void *);
	void *wake_arg;

	/* shared with the loop, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	json_t *offer; /* the latest offer not yet taken */
	uint64_t welcomes;
	bool stop;
	bool cancelable; /* the current update has nothing installed */
	char cur_key[160]; /* deployment_id/sha256/version of it */
	volatile bool cancel; /* download: stop (stop, or superseded) */

	/* worker only */
	pthread_t thr;
	bool started;
	struct upd_journal j;
	struct installer *inst;
	uint64_t progress_ms;
	bool resumed; /* this step came from the journal: dedupe reports */
};

static void
upd_key(char *out, size_t cap, const char *dep, const char *sha,
	int64_t version)
{
	snprintf(out, cap, "%s/%s/%" PRId64, dep != NULL ? dep : "",
		 sha != NULL ? sha : "", version);
}

static char *
dup_opt(const char *s)
{
	return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

struct agent_update *
agent_update_new(const struct agent_update_opts *o, const char *state_dir,
		 const char *model, const char *ca_file, const char *logctx,
		 char *err, size_t errlen)
{
	struct agent_update *u = calloc(1, sizeof(*u));
	const char *pause = getenv(AGENT_UPDATE_PAUSE_ENV);

	if (u == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&u->mu, NULL);
	pthread_cond_init(&u->cv, NULL);
	u->keys = dup_opt(o->keys);
	u->modules_dir = dup_opt(o->modules_dir);
	u->modules_dir_given = u->modules_dir != NULL;
	if (u->modules_dir == NULL)
		u->modules_dir = strdup(UPD_DEFAULT_MODULES);
	u->reboot_cmd = dup_opt(o->reboot_command);
	u->health_cmd = dup_opt(o->health_command);
	u->fw_version_cfg = strdup(o->fw_version != NULL ? o->fw_version : "");
	u->state_dir = strdup(state_dir);
	u->model = strdup(model != NULL ? model : "generic");
	u->ca_file = strdup(ca_file);
	u->threshold = o->threshold > 0 ? o->threshold : 1;
	u->dl_deadline_s =
		o->download_deadline_s > 0 ? o->download_deadline_s : 3600;
	u->stall_s = o->stall_s > 0 ? o->stall_s : 60;
	u->health_deadline_s =
		o->health_deadline_s > 0 ? o->health_deadline_s : 300;
	u->fw_num_cfg = o->fw_version_num;
	u->state_timeout_s = o->state_timeout_s > 0 ? o->state_timeout_s : 600;
	snprintf(u->logctx, sizeof(u->logctx), "%s",
		 logctx != NULL ? logctx : "");
	/* Test knob (docs/agent.md): stop at this step boundary. */
	if (pause != NULL && (upd_step_parse(pause) != UPD_NONE ||
			      strcmp(pause, "partial") == 0))
		snprintf(u->pause_at, sizeof(u->pause_at), "%s", pause);
	if (u->keys == NULL || u->modules_dir == NULL ||
	    u->fw_version_cfg == NULL || u->state_dir == NULL ||
	    u->model == NULL || u->ca_file == NULL) {
		snprintf(err, errlen,
			 u->keys == NULL ? "update_keys is required for updates"
					 : "out of memory");
		agent_update_free(u);
		return NULL;
	}
	if (agent_path(u->dir, sizeof(u->dir), state_dir, AGENT_UPDATE_DIR) !=
		    0 ||
	    agent_path(u->part, sizeof(u->part), u->dir, AGENT_UPDATE_PART) !=
		    0) {
		snprintf(err, errlen, "state directory path too long");
		agent_update_free(u);
		return NULL;
	}
	return u;
}

static void upd_worker_stop(struct agent_update *u);

void
agent_update_free(struct agent_update *u)
{
	if (u == NULL)
		return;
	upd_worker_stop(u);
	json_decref(u->offer);
	if (u->inst != NULL)
		installer_close(u->inst, false);
	upd_journal_clear(&u->j);
	free(u->keys);
	free(u->modules_dir);
	free(u->reboot_cmd);
	free(u->health_cmd);
	free(u->fw_version_cfg);
	free(u->state_dir);
	free(u->model);
	free(u->ca_file);
	free(u->base_url);
	pthread_mutex_destroy(&u->mu);
	pthread_cond_destroy(&u->cv);
	free(u);
}

void
agent_update_offer(struct agent_update *u, const struct proto_msg *m)
{
	char key[160];

	if (u == NULL)
		return;
	upd_key(key, sizeof(key), proto_str(m, "deployment_id"),
		proto_str(m, "sha256"), proto_int(m, "version", 0));
	pthread_mutex_lock(&u->mu);
	json_decref(u->offer);
	u->offer = json_deep_copy(m->body);
	/* A different offer while the current one downloads: stop the
	 * download so the worker can take the new one. */
	if (u->cancelable && u->cur_key[0] != '\0' &&
	    strcmp(u->cur_key, key) != 0)
		u->cancel = true;
	pthread_cond_broadcast(&u->cv);
	pthread_mutex_unlock(&u->mu);
}

void
agent_update_welcome(struct agent_update *u)
{
	if (u == NULL)
		return;
	pthread_mutex_lock(&u->mu);
	u->welcomes++;
	pthread_cond_broadcast(&u->cv);
	pthread_mutex_unlock(&u->mu);
}

static bool
upd_stopping(struct agent_update *u)
{
	bool s;

	pthread_mutex_lock(&u->mu);
	s = u->stop;
	pthread_mutex_unlock(&u->mu);
	return s;
}

/* Waits up to ms (or until stop); true when stopping. */
static bool
upd_wait_ms(struct agent_update *u, uint64_t ms)
{
	struct timespec ts;
	bool s;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(ms / 1000u);
	ts.tv_nsec += (long)(ms % 1000u) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&u->mu);
	while (!u->stop &&
	       pthread_cond_timedwait(&u->cv, &u->mu, &ts) != ETIMEDOUT)
		;
	s = u->stop;
	pthread_mutex_unlock(&u->mu);
	return s;
}

/* The version the device runs now (firmware.json, else the config). */
static void
upd_running(struct agent_update *u, int64_t *num, char *ver, size_t verlen,
	    char *name, size_t namelen)
{
	struct agent_firmware fw;

	if (agent_firmware_read(u->state_dir, &fw) == 1) {
		*num = fw.version_int;
		snprintf(ver, verlen, "%s", fw.version);
		if (name != NULL)
			snprintf(name, namelen, "%s", fw.name);
		return;
	}
	*num = u->fw_num_cfg > 0 ? u->fw_num_cfg : 0;
	snprintf(ver, verlen, "%s", u->fw_version_cfg);
	if (name != NULL)
		name[0] = '\0';
}

/* ---- reports --------------------------------------------------------------- */

/* True when the queue holds an update.status of this deployment and
 * state already (queued before a kill, not yet acknowledged). */
static bool
upd_report_queued(struct agent_update *u, const char *state)
{
	uint64_t seqs[256];
	char err[128], *text;
	size_t len;
	int n, i;
	bool found = false;

	n = agent_queue_list(u->state_dir, 0, seqs, 256);
	for (i = 0; i < n && !found; i++) {
		json_t *doc;

		text = NULL;
		if (agent_queue_read(u->state_dir, seqs[i], &text, &len, err,
				     sizeof(err)) != 1)
			continue;
		doc = json_loadb(text, len, 0, NULL);
		free(text);
		found = doc != NULL &&
			strcmp(json_string_value(json_object_get(doc, "type"))
				       ? json_string_value(
						 json_object_get(doc, "type"))
				       : "",
			       "update.status") == 0 &&
			strcmp(json_string_value(json_object_get(doc, "state"))
				       ? json_string_value(
						 json_object_get(doc, "state"))
				       : "",
			       state) == 0 &&
			json_integer_value(json_object_get(doc, "version")) ==
				u->j.version_int &&
			strcmp(json_string_value(
				       json_object_get(doc, "deployment_id"))
				       ? json_string_value(json_object_get(
						 doc, "deployment_id"))
				       : "",
			       u->j.deployment_id) == 0;
		json_decref(doc);
	}
	return found;
}

/* Queues an update.status about the journal's offer. */
static void
upd_report(struct agent_update *u, const char *state, const char *reason,
	   const char *error, int64_t bytes)
{
	char err[256], ver[129];
	int64_t running;
	uint64_t seq = 0;
	json_t *r;

	r = json_pack("{s:s, s:s, s:I}", "type", "update.status", "state",
		      state, "version", (json_int_t)u->j.version_int);
	if (r == NULL)
		return;
	if (u->j.deployment_id[0] != '\0')
		json_object_set_new(r, "deployment_id",
				    json_string(u->j.deployment_id));
	if (u->j.campaign_id[0] != '\0')
		json_object_set_new(r, "campaign_id",
				    json_string(u->j.campaign_id));
	if (u->j.sha256[0] != '\0')
		json_object_set_new(r, "sha256", json_string(u->j.sha256));
	if (reason != NULL && reason[0] != '\0')
		json_object_set_new(r, "reason", json_string(reason));
	if (error != NULL && error[0] != '\0') {
		char e[1024];

		snprintf(e, sizeof(e), "%s", error);
		json_object_set_new(r, "error", json_string(e));
	}
	if (bytes >= 0) {
		json_object_set_new(r, "bytes", json_integer(bytes));
		if (u->j.size > 0)
			json_object_set_new(
				r, "progress",
				json_integer((json_int_t)((uint64_t)bytes *
							  100u / u->j.size)));
	}
	if (strcmp(state, "committed") == 0 || strcmp(state, "failed") == 0 ||
	    strcmp(state, "rolled_back") == 0 ||
	    strcmp(state, "refused") == 0) {
		upd_running(u, &running, ver, sizeof(ver), NULL, 0);
		json_object_set_new(r, "running_version",
				    json_integer((json_int_t)running));
		if (ver[0] != '\0')
			json_object_set_new(r, "fw_version", json_string(ver));
	}
	if (agent_report_enqueue(u->state_dir, r, &seq, err, sizeof(err)) != 0)
		log_write(LOG_LEVEL_ERROR, u->logctx,
			  "update.status %s not queued: %s", state, err);
	else
		log_write(strcmp(state, "downloading") == 0 ? LOG_LEVEL_DEBUG
							    : LOG_LEVEL_INFO,
			  u->logctx,
			  "update.status %s queued (version %" PRId64
			  ", seq %" PRIu64 ")",
			  state, u->j.version_int, seq);
	json_decref(r);
	if (u->wake != NULL)
		u->wake(u->wake_arg);
}

static void
upd_save(struct agent_update *u)
{
	char err[256];

	if (upd_journal_save(u->dir, &u->j, err, sizeof(err)) != 0)
		log_write(LOG_LEVEL_ERROR, u->logctx, "update journal: %s",
			  err);
}

/* Test knob: stop at this step boundary (or, "partial", in the middle
 * of a download) until killed or stopped. */
static void
upd_pause_named(struct agent_update *u, const char *name)
{
	char path[AGENT_PATH_MAX], err[128];

	if (u->pause_at[0] == '\0' || strcmp(u->pause_at, name) != 0)
		return;
	if (agent_path(path, sizeof(path), u->dir, AGENT_UPDATE_PAUSED) == 0)
		(void)atomic_write_file(path, name, strlen(name), 0644, err,
					sizeof(err));
	log_write(LOG_LEVEL_WARN, u->logctx,
		  "update paused at %s (" AGENT_UPDATE_PAUSE_ENV ")", name);
	while (!upd_wait_ms(u, 1000))
		;
}

static void
upd_pause_point(struct agent_update *u)
{
	upd_pause_named(u, upd_step_name(u->j.step));
}

/*
 * A step boundary: the journal moves to step (written), then the step's
 * report (state, may be NULL) is queued once and recorded.
 */
static void
upd_step(struct agent_update *u, enum upd_step step, const char *state)
{
	u->j.step = step;
	upd_save(u);
	if (state != NULL && strcmp(u->j.reported, state) != 0) {
		if (!(u->resumed && upd_report_queued(u, state)))
			upd_report(u, state, u->j.reason, u->j.error, -1);
		snprintf(u->j.reported, sizeof(u->j.reported), "%s", state);
		upd_save(u);
	}
	u->resumed = false;
	log_write(LOG_LEVEL_INFO, u->logctx, "update %s (%s): %s", u->j.version,
		  u->j.name, upd_step_name(step));
	upd_pause_point(u);
}

/* The end: outcome reported once, the journal done, files removed. */
static void
upd_finish(struct agent_update *u, const char *outcome, const char *reason,
	   const char *error)
{
	char r[sizeof(u->j.reason)], e[sizeof(u->j.error)];

	/* reason and error may be the journal's own fields */
	upd_copy(r, sizeof(r), reason);
	upd_copy(e, sizeof(e), error);
	snprintf(u->j.outcome, sizeof(u->j.outcome), "%s", outcome);
	memcpy(u->j.reason, r, sizeof(r));
	memcpy(u->j.error, e, sizeof(e));
	reason = u->j.reason;
	error = u->j.error;
	if (u->inst != NULL) {
		installer_close(u->inst, true);
		u->inst = NULL;
	}
	unlink(u->part);
	free(u->j.envelope); /* the journal keeps who it was about only */
	u->j.envelope = NULL;
	log_write(strcmp(outcome, "committed") == 0 ? LOG_LEVEL_INFO
						    : LOG_LEVEL_WARN,
		  u->logctx, "update %s: %s%s%s%s%s", u->j.version, outcome,
		  reason != NULL && reason[0] != '\0' ? " (" : "",
		  reason != NULL ? reason : "",
		  reason != NULL && reason[0] != '\0' ? ")" : "",
		  error != NULL && error[0] != '\0' ? "" : "");
	if (error != NULL && error[0] != '\0')
		log_write(LOG_LEVEL_WARN, u->logctx, "update %s: %s",
			  u->j.version, error);
	upd_step(u, UPD_DONE, outcome);
	pthread_mutex_lock(&u->mu);
	u->cancelable = false;
	u->cur_key[0] = '\0';
	pthread_mutex_unlock(&u->mu);
}

/* ---- commands -------------------------------------------------------------- */

/*
 * Runs cmd with /bin/sh -c in its own process group, with
 * FLEET_AGENT_PID and FLEET_UPDATE_VERSION in its environment, killed
 * after timeout_s. Its exit status, or -1 (could not run or killed).
 */
static int
upd_run_command(struct agent_update *u, const char *cmd, long timeout_s,
		char *err, size_t errlen)
{
	char pidvar[64], vervar[192];
	char **envp = NULL;
	size_t n = 0, i;
	uint64_t end = clock_mono_ms() + (uint64_t)timeout_s * 1000u;
	pid_t pid;
	int status, rc = -1;

	while (environ[n] != NULL)
		n++;
	envp = calloc(n + 3, sizeof(*envp));
	if (envp == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++)
		envp[i] = environ[i];
	snprintf(pidvar, sizeof(pidvar), "FLEET_AGENT_PID=%d", (int)getpid());
	snprintf(vervar, sizeof(vervar), "FLEET_UPDATE_VERSION=%s",
		 u->j.version);
	envp[n] = pidvar;
	envp[n + 1] = vervar;
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		free(envp);
		return -1;
	}
	if (pid == 0) {
		setpgid(0, 0);
		execle("/bin/sh", "sh", "-c", cmd, (char *)NULL, envp);
		_exit(127);
	}
	free(envp);
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			snprintf(err, errlen, "waitpid: %s", strerror(errno));
			return -1;
		}
		if (clock_mono_ms() >= end || upd_stopping(u)) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			snprintf(err, errlen, "'%s' killed after %ld s", cmd,
				 timeout_s);
			return -1;
		}
		clock_sleep_ms(50);
	}
	if (WIFEXITED(status)) {
		rc = WEXITSTATUS(status);
		if (rc != 0)
			snprintf(err, errlen, "'%s' exited with %d", cmd, rc);
	} else {
		snprintf(err, errlen, "'%s' killed by signal %d", cmd,
			 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	}
	return rc;
}

/*
 * The reboot command "reexec": the agent executes itself again (the
 * same binary and arguments, the same pid), which is what a reboot looks
 * like to the state machine. Every descriptor but stdio is closed on
 * exec, so the old channel goes with the old image. Returns only on
 * failure.
 */
static void
upd_reexec(struct agent_update *u, char *err, size_t errlen)
{
	char *cmdline = NULL, *argv[UPD_ARGV_MAX + 1];
	size_t len = 0, off = 0;
	DIR *d;
	struct dirent *e;
	int argc = 0, fd;

	/* /proc files have no size: read until the end. */
	fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	cmdline = malloc(UPD_CMDLINE_MAX + 1);
	while (fd >= 0 && cmdline != NULL && len < UPD_CMDLINE_MAX) {
		ssize_t n = read(fd, cmdline + len, UPD_CMDLINE_MAX - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (fd >= 0)
		close(fd);
	if (cmdline == NULL || len == 0) {
		snprintf(err, errlen, "/proc/self/cmdline unreadable");
		free(cmdline);
		return;
	}
	cmdline[len] = '\0';
	while (off < len && argc < UPD_ARGV_MAX) {
		argv[argc++] = cmdline + off;
		off += strlen(cmdline + off) + 1;
	}
	argv[argc] = NULL;
	d = opendir("/proc/self/fd");
	while (d != NULL && (e = readdir(d)) != NULL) {
		char *end = NULL;
		long n = strtol(e->d_name, &end, 10);

		if (end != e->d_name && *end == '\0' && n > 2 && n != dirfd(d))
			(void)fcntl((int)n, F_SETFD, FD_CLOEXEC);
	}
	if (d != NULL)
		closedir(d);
	log_write(LOG_LEVEL_WARN, u->logctx,
		  "update %s: re-executing the agent (reboot)", u->j.version);
	if (argc > 0)
		execv("/proc/self/exe", argv);
	snprintf(err, errlen, "re-executing the agent: %s", strerror(errno));
	free(cmdline);
}

/* Runs the reboot command; returns only when the reboot did not happen
 * (-1 with err), or 0 when there is no command. */
static int
upd_reboot(struct agent_update *u, char *err, size_t errlen)
{
	int rc;

	if (u->reboot_cmd == NULL)
		return 0;
	if (strcmp(u->reboot_cmd, "reexec") == 0) {
		upd_reexec(u, err, errlen);
		return -1;
	}
	rc = upd_run_command(u, u->reboot_cmd, 120, err, errlen);
	if (rc != 0)
		return -1;
	/* A real reboot takes the agent down soon after the command. */
	log_write(LOG_LEVEL_INFO, u->logctx,
		  "reboot command ran; waiting to be stopped");
	if (upd_wait_ms(u, (uint64_t)UPD_REBOOT_WAIT_S * 1000u)) {
		/* Stopped by the shutdown: the journal resumes after it. */
		snprintf(err, errlen, "stopping");
		return 1;
	}
	snprintf(err, errlen, "the device did not reboot within %d s",
		 UPD_REBOOT_WAIT_S);
	return -1;
}

/* ---- installer states ------------------------------------------------------ */

static int
upd_installer(struct agent_update *u, char *err, size_t errlen)
{
	struct pki_manifest m;
	struct inst_env env;

	if (u->inst != NULL)
		return 0;
	memset(&m, 0, sizeof(m));
	snprintf(m.name, sizeof(m.name), "%s", u->j.name);
	snprintf(m.version, sizeof(m.version), "%s", u->j.version);
	m.version_int = u->j.version_int;
	snprintf(m.installer, sizeof(m.installer), "%s", u->j.installer);
	m.size = u->j.size;
	snprintf(m.sha256, sizeof(m.sha256), "%s", u->j.sha256);
	snprintf(m.hw[0], sizeof(m.hw[0]), "%s", u->model);
	m.n_hw = 1;
	memset(&env, 0, sizeof(env));
	env.modules_dir = u->modules_dir;
	env.work_dir = u->dir;
	env.device_type = u->model;
	env.current_name = u->j.prev_name;
	env.timeout_s = (int)u->state_timeout_s;
	if (installer_open(&env, &m, u->part, &u->inst, err, errlen) == 0)
		return 0;
	if (!u->modules_dir_given) {
		env.modules_dir = UPD_MENDER_MODULES;
		if (installer_open(&env, &m, u->part, &u->inst, err, errlen) ==
		    0)
			return 0;
	}
	return -1;
}

static int
upd_state(struct agent_update *u, enum inst_state s, char *answer,
	  size_t answer_len, char *err, size_t errlen)
{
	if (upd_installer(u, err, errlen) != 0)
		return -1;
	log_write(LOG_LEVEL_DEBUG, u->logctx, "installer %s: %s",
		  u->j.installer, inst_state_name(s));
	if (installer_run(u->inst, s, answer, answer_len, err, errlen) != 0) {
		log_write(LOG_LEVEL_WARN, u->logctx, "installer %s %s: %s",
			  u->j.installer, inst_state_name(s), err);
		return -1;
	}
	return 0;
}

/* ---- the steps ------------------------------------------------------------- */

static void
upd_progress(void *arg, uint64_t bytes)
{
	struct agent_update *u = arg;
	uint64_t now = clock_mono_ms();

	/* Test knob "partial": half of the file is on disk. */
	if (bytes * 2 >= u->j.size && bytes < u->j.size)
		upd_pause_named(u, "partial");
	if (now - u->progress_ms < UPD_PROGRESS_MS && bytes < u->j.size)
		return;
	u->progress_ms = now;
	upd_report(u, "downloading", NULL, NULL, (int64_t)bytes);
}

/* The client identity the download presents (the current generation). */
static int
upd_identity_files(struct agent_update *u, char *cert, char *key, size_t cap)
{
	struct agent_identity id;
	struct agent_identity_files f;
	char err[256];

	if (agent_identity_load(u->state_dir, &id, err, sizeof(err)) != 1 ||
	    agent_identity_files(id.generation, &f) != 0 ||
	    agent_path(cert, cap, u->state_dir, f.client) != 0 ||
	    agent_path(key, cap, u->state_dir, f.key) != 0)
		return -1;
	return 0;
}

/* 0: downloaded; 1: cancelled (stop or superseded); -1: failed (done). */
static int
upd_download(struct agent_update *u)
{
	char err[512], cert[AGENT_PATH_MAX], key[AGENT_PATH_MAX];
	struct dl_opts o;
	enum dl_result r;
	bool have_id;

	if (u->j.step != UPD_DOWNLOADING)
		upd_step(u, UPD_DOWNLOADING, NULL);
	have_id = upd_identity_files(u, cert, key, sizeof(cert)) == 0;
	memset(&o, 0, sizeof(o));
	o.url = u->j.url;
	o.base_url = u->base_url;
	o.ca_file = u->ca_file;
	o.cert_file = have_id ? cert : NULL;
	o.key_file = have_id ? key : NULL;
	o.part_path = u->part;
	o.size = u->j.size;
	o.sha256 = u->j.sha256;
	o.deadline_s = u->dl_deadline_s;
	o.stall_s = u->stall_s;
	o.retries = 5;
	o.backoff_base_ms = 1000;
	o.progress = upd_progress;
	o.arg = u;
	o.cancel = &u->cancel;
	u->progress_ms = 0;
	upd_progress(u, 0);
	r = dl_fetch(&o, err, sizeof(err));
	if (r == DL_OK) {
		upd_step(u, UPD_DOWNLOADED, "downloaded");
		return 0;
	}
	if (r == DL_CANCELLED)
		return 1;
	upd_finish(u, "failed", dl_result_reason(r), err);
	return -1;
}

/* Switches back (SupportsRollback), reports rolled_back (or failed when
 * the installer cannot roll back) with what really runs. */
static void
upd_rollback(struct agent_update *u)
{
	char err[512], why[600];

	if (u->j.step != UPD_ROLLING_BACK)
		upd_step(u, UPD_ROLLING_BACK, NULL);
	snprintf(why, sizeof(why), "%s", u->j.error);
	if (!u->j.supports_rollback) {
		(void)upd_state(u, INST_ARTIFACT_FAILURE, NULL, 0, err,
				sizeof(err));
		(void)upd_state(u, INST_CLEANUP, NULL, 0, err, sizeof(err));
		upd_finish(u, "failed", u->j.reason,
			   "the installer cannot roll back; the device may "
			   "run a partial update");
		return;
	}
	if (!u->j.rb_rebooting) {
		if (upd_state(u, INST_ARTIFACT_ROLLBACK, NULL, 0, err,
			      sizeof(err)) != 0)
			snprintf(why, sizeof(why), "%.250s; rollback: %.300s",
				 u->j.error, err);
		if (u->j.needs_reboot && u->j.rebooted &&
		    u->reboot_cmd != NULL) {
			u->j.rb_rebooting = true;
			upd_save(u);
			(void)upd_state(u, INST_ARTIFACT_ROLLBACK_REBOOT, NULL,
					0, err, sizeof(err));
			if (upd_reboot(u, err, sizeof(err)) > 0)
				return; /* stopping */
			/* no reboot: verify the rollback in place */
		}
	}
	if (u->j.rb_rebooting &&
	    upd_state(u, INST_ARTIFACT_VERIFY_ROLLBACK_REBOOT, NULL, 0, err,
		      sizeof(err)) != 0)
		snprintf(why, sizeof(why), "%.250s; rollback verify: %.300s",
			 u->j.error, err);
	(void)upd_state(u, INST_ARTIFACT_FAILURE, NULL, 0, err, sizeof(err));
	(void)upd_state(u, INST_CLEANUP, NULL, 0, err, sizeof(err));
	upd_finish(u, "rolled_back", u->j.reason, why);
}

static void
upd_fail_after_install(struct agent_update *u, const char *reason,
		       const char *error)
{
	snprintf(u->j.reason, sizeof(u->j.reason), "%s", reason);
	upd_copy(u->j.error, sizeof(u->j.error), error);
	upd_step(u, UPD_ROLLING_BACK, NULL);
	upd_rollback(u);
}

/* Install: Download and ArtifactInstall, then the two queries. */
static int
upd_install(struct agent_update *u)
{
	char err[512], ans[32], hex[65];

	/* The file is checked again: a kill or a disk may have hurt it
	 * since (the hash before any installer state is the rule). */
	if (dl_file_sha256(u->part, u->j.size, hex) != 0 ||
	    strcmp(hex, u->j.sha256) != 0) {
		upd_finish(u, "failed", "hash-mismatch",
			   "the downloaded file changed on the device");
		return -1;
	}
	pthread_mutex_lock(&u->mu);
	u->cancelable = false;
	pthread_mutex_unlock(&u->mu);
	if (upd_installer(u, err, sizeof(err)) != 0) {
		upd_finish(u, "failed", "installer", err);
		return -1;
	}
	if (u->j.step != UPD_INSTALLING)
		upd_step(u, UPD_INSTALLING, "installing");
	if (upd_state(u, INST_DOWNLOAD, NULL, 0, err, sizeof(err)) != 0) {
		(void)upd_state(u, INST_CLEANUP, NULL, 0, err, sizeof(err));
		upd_finish(u, "failed", "install-failed", err);
		return -1;
	}
	/* From here the device may have changed: rollback on failure. */
	u->j.supports_rollback = true;
	if (upd_state(u, INST_SUPPORTS_ROLLBACK, ans, sizeof(ans), err,
		      sizeof(err)) == 0)
		u->j.supports_rollback = strcmp(ans, "Yes") == 0;
	if (upd_state(u, INST_ARTIFACT_INSTALL, NULL, 0, err, sizeof(err)) !=
	    0) {
		upd_fail_after_install(u, "install-failed", err);
		return -1;
	}
	ans[0] = '\0';
	if (upd_state(u, INST_NEEDS_ARTIFACT_REBOOT, ans, sizeof(ans), err,
		      sizeof(err)) != 0) {
		upd_fail_after_install(u, "install-failed", err);
		return -1;
	}
	u->j.needs_reboot =
		strcmp(ans, "Yes") == 0 || strcmp(ans, "Automatic") == 0;
	u->j.automatic_reboot = strcmp(ans, "Automatic") == 0;
	upd_step(u, UPD_INSTALLED, "installed");
	return 0;
}

/* Installed: reboot into it (when it asks and a command is set), else
 * straight to the health check. 0, or 1 when stopping. */
static int
upd_after_install(struct agent_update *u)
{
	char err[512];
	int rc;

	if (u->j.needs_reboot && u->reboot_cmd != NULL) {
		u->j.rebooted = true;
		upd_step(u, UPD_REBOOTING, "rebooting");
		if (!u->j.automatic_reboot &&
		    upd_state(u, INST_ARTIFACT_REBOOT, NULL, 0, err,
			      sizeof(err)) != 0) {
			upd_fail_after_install(u, "reboot-failed", err);
			return 0;
		}
		rc = upd_reboot(u, err, sizeof(err));
		if (rc > 0)
			return 1;
		upd_fail_after_install(u, "reboot-failed", err);
		return 0;
	}
	u->j.verify_since = clock_wall_s();
	upd_step(u, UPD_VERIFYING, "verifying");
	return 0;
}

/* After the restart: did we come up in the new version? */
static void
upd_verify_reboot(struct agent_update *u)
{
	char err[512];

	if (u->j.needs_reboot && upd_state(u, INST_ARTIFACT_VERIFY_REBOOT, NULL,
					   0, err, sizeof(err)) != 0) {
		upd_fail_after_install(u, "reboot-failed", err);
		return;
	}
	u->j.verify_since = clock_wall_s();
	upd_step(u, UPD_VERIFYING, "verifying");
}

/* Reconnected to fleetd and the health hook passes, within the window.
 * 0: healthy; 1: stopping; -1: rolled back. */
static int
upd_health(struct agent_update *u)
{
	char err[512] = "";
	int64_t end = u->j.verify_since + u->health_deadline_s;
	bool welcomed;

	for (;;) {
		int64_t left = end - clock_wall_s();

		if (upd_stopping(u))
			return 1;
		pthread_mutex_lock(&u->mu);
		welcomed = u->welcomes > 0;
		pthread_mutex_unlock(&u->mu);
		if (left <= 0) {
			if (!welcomed)
				snprintf(err, sizeof(err),
					 "not reconnected to fleetd within "
					 "%ld s",
					 u->health_deadline_s);
			else if (err[0] == '\0')
				snprintf(err, sizeof(err),
					 "health check not passed within "
					 "%ld s",
					 u->health_deadline_s);
			upd_fail_after_install(u, "health-failed", err);
			return -1;
		}
		if (welcomed) {
			if (u->health_cmd == NULL)
				return 0;
			if (upd_run_command(u, u->health_cmd, left, err,
					    sizeof(err)) == 0)
				return 0;
			log_write(LOG_LEVEL_WARN, u->logctx,
				  "update %s: health check: %s", u->j.version,
				  err);
			if (upd_wait_ms(u, UPD_HEALTH_RETRY_MS))
				return 1;
			continue;
		}
		if (upd_wait_ms(u, 500))
			return 1;
	}
}

static void
upd_commit(struct agent_update *u)
{
	struct agent_firmware fw;
	char err[512];

	if (u->j.step != UPD_COMMITTING)
		upd_step(u, UPD_COMMITTING, NULL);
	if (upd_state(u, INST_ARTIFACT_COMMIT, NULL, 0, err, sizeof(err)) !=
	    0) {
		upd_fail_after_install(u, "install-failed", err);
		return;
	}
	memset(&fw, 0, sizeof(fw));
	fw.version_int = u->j.version_int;
	snprintf(fw.version, sizeof(fw.version), "%s", u->j.version);
	snprintf(fw.name, sizeof(fw.name), "%s", u->j.name);
	if (agent_firmware_write(u->state_dir, &fw, err, sizeof(err)) != 0)
		log_write(LOG_LEVEL_ERROR, u->logctx, "firmware.json: %s", err);
	(void)upd_state(u, INST_CLEANUP, NULL, 0, err, sizeof(err));
	upd_finish(u, "committed", NULL, NULL);
}

/* Runs the journal's update from its step to the end (or a stop). */
static void
upd_run(struct agent_update *u)
{
	for (;;) {
		if (upd_stopping(u))
			return;
		switch (upd_resume_decide(&u->j)) {
		case UPD_RESUME_NOTHING:
			return;
		case UPD_RESUME_DOWNLOAD:
			if (upd_download(u) != 0)
				return;
			break;
		case UPD_RESUME_INSTALL:
			if (upd_install(u) != 0)
				return;
			break;
		case UPD_RESUME_AFTER_INSTALL:
			if (upd_after_install(u) != 0)
				return;
			break;
		case UPD_RESUME_VERIFY_REBOOT:
			upd_verify_reboot(u);
			break;
		case UPD_RESUME_HEALTH:
			if (upd_health(u) != 0)
				return;
			upd_commit(u);
			break;
		case UPD_RESUME_COMMIT:
			upd_commit(u);
			break;
		case UPD_RESUME_ROLLBACK:
			upd_rollback(u);
			break;
		}
	}
}

/* ---- offers ---------------------------------------------------------------- */

/* Refuses an offer: reported, journaled as done (a re-sent offer is not
 * checked and reported again), the device keeps running. */
static void
upd_refuse(struct agent_update *u, json_t *offer, const struct pki_manifest *m,
	   const char *reason, const char *why)
{
	const char *dep =
		json_string_value(json_object_get(offer, "deployment_id"));
	const char *camp =
		json_string_value(json_object_get(offer, "campaign_id"));

	upd_journal_clear(&u->j);
	snprintf(u->j.deployment_id, sizeof(u->j.deployment_id), "%s",
		 dep != NULL ? dep : "");
	snprintf(u->j.campaign_id, sizeof(u->j.campaign_id), "%s",
		 camp != NULL ? camp : "");
	snprintf(u->j.sha256, sizeof(u->j.sha256), "%s",
		 json_string_value(json_object_get(offer, "sha256")));
	u->j.version_int =
		json_integer_value(json_object_get(offer, "version"));
	if (m != NULL && m->name[0] != '\0') {
		snprintf(u->j.name, sizeof(u->j.name), "%s", m->name);
		snprintf(u->j.version, sizeof(u->j.version), "%s", m->version);
	} else {
		snprintf(u->j.version, sizeof(u->j.version), "%" PRId64,
			 u->j.version_int);
	}
	upd_finish(u, "refused", reason, why);
}

static void
upd_offer(struct agent_update *u, json_t *offer)
{
	const char *dep =
		json_string_value(json_object_get(offer, "deployment_id"));
	const char *camp =
		json_string_value(json_object_get(offer, "campaign_id"));
	const char *sha = json_string_value(json_object_get(offer, "sha256"));
	const char *url =
		json_string_value(json_object_get(offer, "artifact_url"));
	int64_t version = json_integer_value(json_object_get(offer, "version"));
	uint64_t size =
		(uint64_t)json_integer_value(json_object_get(offer, "size"));
	struct pki_keyset ks;
	struct pki_manifest m;
	enum pki_release_reason r;
	char why[512], err[256], *env = NULL, running_ver[129];
	char running_name[129];
	int64_t running;

	switch (upd_offer_decide(&u->j, dep, sha, version)) {
	case UPD_OFFER_IGNORE:
		log_write(LOG_LEVEL_DEBUG, u->logctx,
			  "update offer %" PRId64 " ignored (%s)", version,
			  u->j.step == UPD_DONE ? "done already"
						: "an install is under way");
		return;
	case UPD_OFFER_RESUME:
		upd_run(u);
		return;
	case UPD_OFFER_SUPERSEDE:
		log_write(LOG_LEVEL_INFO, u->logctx,
			  "update %s superseded by offer %" PRId64,
			  u->j.version, version);
		upd_finish(u, "failed", "superseded",
			   "a newer offer replaced it before it was installed");
		break;
	case UPD_OFFER_NEW:
		break;
	}
	memset(&m, 0, sizeof(m));
	memset(&ks, 0, sizeof(ks));
	env = json_dumps(json_object_get(offer, "envelope"), JSON_COMPACT);
	if (env == NULL) {
		upd_refuse(u, offer, NULL, "bad-envelope", "no envelope");
		return;
	}
	switch (agent_keyset_load(u->state_dir, u->keys, u->threshold, &ks, err,
				  sizeof(err))) {
	case 1:
		break;
	case 0:
		upd_refuse(u, offer, NULL, "unknown-key",
			   "this device pins no release keys");
		free(env);
		return;
	default:
		upd_refuse(u, offer, NULL, "internal", err);
		free(env);
		return;
	}
	/* Verify the bytes, only then parse them (pki/release.h). */
	r = pki_release_verify(env, strlen(env), &ks, &m, why, sizeof(why));
	pki_keyset_clear(&ks);
	upd_running(u, &running, running_ver, sizeof(running_ver), running_name,
		    sizeof(running_name));
	if (r == PKI_RELEASE_OK)
		r = pki_manifest_check(&m, (time_t)clock_wall_s(), running,
				       u->model, why, sizeof(why));
	if (r == PKI_RELEASE_OK)
		r = pki_manifest_match(&m, size, sha, why, sizeof(why));
	if (r != PKI_RELEASE_OK) {
		log_write(LOG_LEVEL_WARN, u->logctx,
			  "update offer %" PRId64 " refused: %s: %s", version,
			  pki_release_reason_code(r), why);
		upd_refuse(u, offer,
			   r == PKI_RELEASE_BAD_ENVELOPE ||
					   r == PKI_RELEASE_BAD_SIGNATURE ||
					   r == PKI_RELEASE_UNKNOWN_KEY ||
					   r == PKI_RELEASE_THRESHOLD
				   ? NULL
				   : &m,
			   pki_release_reason_code(r), why);
		free(env);
		return;
	}
	/* Accepted: from here the manifest says what this update is. */
	upd_journal_clear(&u->j);
	u->j.envelope = env;
	snprintf(u->j.deployment_id, sizeof(u->j.deployment_id), "%s",
		 dep != NULL ? dep : "");
	snprintf(u->j.campaign_id, sizeof(u->j.campaign_id), "%s",
		 camp != NULL ? camp : "");
	snprintf(u->j.url, sizeof(u->j.url), "%s", url != NULL ? url : "");
	snprintf(u->j.sha256, sizeof(u->j.sha256), "%s", m.sha256);
	u->j.size = m.size;
	u->j.version_int = m.version_int;
	snprintf(u->j.version, sizeof(u->j.version), "%s", m.version);
	snprintf(u->j.name, sizeof(u->j.name), "%s", m.name);
	snprintf(u->j.installer, sizeof(u->j.installer), "%s", m.installer);
	u->j.prev_version_int = running;
	snprintf(u->j.prev_version, sizeof(u->j.prev_version), "%s",
		 running_ver);
	snprintf(u->j.prev_name, sizeof(u->j.prev_name), "%s", running_name);
	unlink(u->part); /* a new artifact: nothing of an old one counts */
	pthread_mutex_lock(&u->mu);
	u->cancel = false;
	u->cancelable = true;
	upd_key(u->cur_key, sizeof(u->cur_key), dep, sha, version);
	pthread_mutex_unlock(&u->mu);
	log_write(LOG_LEVEL_INFO, u->logctx,
		  "update offer accepted: %s %s (version %" PRId64 ", %" PRIu64
		  " bytes, installer %s)",
		  m.name, m.version, m.version_int, m.size, m.installer);
	upd_step(u, UPD_VERIFIED, NULL);
	upd_run(u);
}

/* ---- the thread -------------------------------------------------------------- */

static void *
upd_main(void *arg)
{
	struct agent_update *u = arg;
	char err[256];
	json_t *offer;
	int found;

	found = upd_journal_load(u->dir, &u->j, err, sizeof(err));
	if (found < 0) {
		char bad[AGENT_PATH_MAX + 8], path[AGENT_PATH_MAX];

		log_write(LOG_LEVEL_ERROR, u->logctx,
			  "update journal unreadable, set aside: %s", err);
		if (agent_path(path, sizeof(path), u->dir,
			       AGENT_UPDATE_JOURNAL) == 0) {
			snprintf(bad, sizeof(bad), "%s.bad", path);
			rename(path, bad);
		}
		upd_journal_clear(&u->j);
	} else if (found == 1 && u->j.step != UPD_DONE) {
		char key[160];

		log_write(LOG_LEVEL_INFO, u->logctx, "resuming update %s at %s",
			  u->j.version, upd_step_name(u->j.step));
		upd_key(key, sizeof(key), u->j.deployment_id, u->j.sha256,
			u->j.version_int);
		pthread_mutex_lock(&u->mu);
		snprintf(u->cur_key, sizeof(u->cur_key), "%s", key);
		u->cancelable = u->j.step <= UPD_DOWNLOADED;
		pthread_mutex_unlock(&u->mu);
		u->resumed = true;
		upd_pause_point(u);
		upd_run(u);
	}
	for (;;) {
		pthread_mutex_lock(&u->mu);
		while (!u->stop && u->offer == NULL)
			pthread_cond_wait(&u->cv, &u->mu);
		if (u->stop) {
			pthread_mutex_unlock(&u->mu);
			break;
		}
		offer = u->offer;
		u->offer = NULL;
		u->cancel = false;
		pthread_mutex_unlock(&u->mu);
		upd_offer(u, offer);
		json_decref(offer);
	}
	return NULL;
}

int
agent_update_start(struct agent_update *u, const char *base_url,
		   const char *logctx, void (*wake)(void *), void *arg,
		   char *err, size_t errlen)
{
	if (u == NULL || u->started)
		return 0;
	snprintf(u->logctx, sizeof(u->logctx), "%s", logctx);
	if (mkdir(u->dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", u->dir, strerror(errno));
		return -1;
	}
	free(u->base_url);
	u->base_url = strdup(base_url);
	u->wake = wake;
	u->wake_arg = arg;
	if (u->base_url == NULL ||
	    pthread_create(&u->thr, NULL, upd_main, u) != 0) {
		snprintf(err, errlen, "cannot start the update worker");
		return -1;
	}
	u->started = true;
	return 0;
}

static void
upd_worker_stop(struct agent_update *u)
{
	if (!u->started)
		return;
	pthread_mutex_lock(&u->mu);
	u->stop = true;
	u->cancel = true;
	pthread_cond_broadcast(&u->cv);
	pthread_mutex_unlock(&u->mu);
	pthread_join(u->thr, NULL);
	u->started = false;
}
