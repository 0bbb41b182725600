/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's side of configuration delivery (DESIGN.md §6, issue 9):
 * config.apply from the server is written to the target file atomically
 * (temp file in the same directory, fsync, `validate` hook on the temp
 * file, rename, fsync of the directory, `reload` hook), the previous file
 * is restored when either hook fails, and the outcome becomes a
 * config.status report (applied, or failed with the hook's reason). The
 * file is re-hashed at start and periodically; a local edit is reported as
 * drifted and, if configured, the applied document is written back.
 *
 * The hash is always canon_sha256_hex() of the parsed document, the same
 * function fleetd uses, so formatting never counts as drift. What was last
 * applied survives restarts in state_dir/config-state.json and the
 * document itself in state_dir/config-applied.json (needed to restore).
 *
 * fleet-sim uses the memory mode: the same messages and checks, no file
 * and no hooks, and a configurable share of simulated failures.
 *
 * Runs on the agent's loop thread; hooks run synchronously with a
 * timeout (the loop waits for them: a device applies one config at a
 * time). The document is untrusted until its hash matches; hook commands
 * come from the trusted agent configuration.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_int.h"
#include "atomicfile.h"
#include "canon.h"
#include "clock.h"
#include "log.h"

#define CONFIG_FILE_MAX (PROTO_CONFIG_DOC_MAX * 4u) /* a pretty-printed doc */
#define HOOK_OUTPUT_MAX 256 /* bytes of a hook's output kept */
#define HOOK_TIMEOUT_MS 30000
#define HASH_LEN 65

struct agent_config {
	char *state_dir;
	struct agent_config_opts o; /* strings point to the copies below */
	char *path, *validate, *reload;
	char logctx[64];
	/* what was last applied (generation 0: nothing yet) */
	int64_t gen;
	char hash[HASH_LEN];
	char status[16]; /* applied, failed, drifted */
	char drift_hash[HASH_LEN]; /* the drifted file's hash, reported */
	uint64_t rng; /* memory mode: simulated failures */
};

static char *
dup_opt(const char *s)
{
	return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

/* ---- persistent state ------------------------------------------------ */

static int
state_path(const struct agent_config *c, const char *name, char *out,
	   size_t cap)
{
	return agent_path(out, cap, c->state_dir, name);
}

static void
state_load(struct agent_config *c)
{
	char path[AGENT_PATH_MAX], err[256], *text = NULL;
	json_t *st;
	size_t len;

	if (state_path(c, AGENT_CONFIG_STATE_FILE, path, sizeof(path)) != 0 ||
	    access(path, F_OK) != 0)
		return;
	if (read_file_bounded(path, 4096, &text, &len, err, sizeof(err)) != 0) {
		log_write(LOG_LEVEL_WARN, c->logctx, "%s", err);
		return;
	}
	st = json_loadb(text, len, 0, NULL);
	free(text);
	if (!json_is_object(st)) {
		log_write(LOG_LEVEL_WARN, c->logctx, "%s is not JSON; ignored",
			  path);
		json_decref(st);
		return;
	}
	c->gen = json_integer_value(json_object_get(st, "config_version"));
	snprintf(c->hash, sizeof(c->hash), "%s",
		 json_string_value(json_object_get(st, "config_hash")) != NULL
			 ? json_string_value(json_object_get(st, "config_hash"))
			 : "");
	snprintf(c->status, sizeof(c->status), "%s",
		 json_string_value(json_object_get(st, "status")) != NULL
			 ? json_string_value(json_object_get(st, "status"))
			 : "applied");
	snprintf(c->drift_hash, sizeof(c->drift_hash), "%s",
		 json_string_value(json_object_get(st, "drift_hash")) != NULL
			 ? json_string_value(json_object_get(st, "drift_hash"))
			 : "");
	if (c->gen < 0 || strlen(c->hash) != 64)
		c->gen = 0;
	json_decref(st);
}

static void
state_save(struct agent_config *c)
{
	char path[AGENT_PATH_MAX], err[256], *text;
	json_t *st;

	if (c->o.memory)
		return;
	st = json_pack("{s:I, s:s, s:s, s:s}", "config_version",
		       (json_int_t)c->gen, "config_hash", c->hash, "status",
		       c->status, "drift_hash", c->drift_hash);
	text = st != NULL ? json_dumps(st, JSON_COMPACT) : NULL;
	if (text == NULL ||
	    state_path(c, AGENT_CONFIG_STATE_FILE, path, sizeof(path)) != 0 ||
	    atomic_write_file(path, text, strlen(text), 0600, err,
			      sizeof(err)) != 0)
		log_write(LOG_LEVEL_ERROR, c->logctx,
			  "configuration state not saved");
	free(text);
	json_decref(st);
}

/* ---- hashing the file ------------------------------------------------- */

/*
 * The hash of the target file as it is now: the canonical hash of its
 * JSON, or, when it is missing or not JSON, the SHA-256 of its bytes
 * (of nothing when missing) so that any change still shows. *why says
 * which ("", "missing", "not JSON").
 */
static int
file_hash(const char *path, char hash[HASH_LEN], const char **why)
{
	char err[256], *text = NULL;
	json_t *doc;
	size_t len = 0;
	int rc;

	*why = "";
	if (access(path, F_OK) != 0) {
		*why = "the file is missing";
		return canon_sha256_hex_bytes("", 0, hash);
	}
	if (read_file_bounded(path, CONFIG_FILE_MAX, &text, &len, err,
			      sizeof(err)) != 0) {
		*why = "the file cannot be read";
		return canon_sha256_hex_bytes("", 0, hash);
	}
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	if (doc == NULL || canon_sha256_hex(doc, hash) != 0) {
		*why = "the file is not JSON";
		rc = canon_sha256_hex_bytes(text, len, hash);
	} else {
		rc = 0;
	}
	json_decref(doc);
	free(text);
	return rc;
}

/* ---- writing the file ------------------------------------------------- */

static int
write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* path + ".fleet-new": the temp file of the switch, in the same directory
 * (rename is atomic only within one file system). */
static int
temp_path(const char *path, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s.fleet-new", path);

	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Writes and fsyncs the temp file (0644, replacing a stale one). */
static int
write_temp(const char *tmp, const char *text, size_t len, char *err,
	   size_t errlen)
{
	int fd;

	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, text, len) != 0 || fsync(fd) != 0) {
		snprintf(err, errlen, "%.200s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		(void)unlink(tmp);
		return -1;
	}
	if (close(fd) != 0) {
		snprintf(err, errlen, "%.200s: %s", tmp, strerror(errno));
		(void)unlink(tmp);
		return -1;
	}
	return 0;
}

static int
fsync_dir_of(const char *path)
{
	char copy[AGENT_PATH_MAX];
	int fd, rc;

	if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy))
		return -1;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* The switch: rename the checked temp file over path, fsync the dir. */
static int
switch_to(const char *tmp, const char *path, char *err, size_t errlen)
{
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "rename %.200s: %s", path,
			 strerror(errno));
		(void)unlink(tmp);
		return -1;
	}
	if (fsync_dir_of(path) != 0) {
		snprintf(err, errlen, "fsync of the directory of %.200s: %s",
			 path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Puts prev (len bytes; NULL: there was no file) back at path. */
static void
restore_previous(struct agent_config *c, const char *prev, size_t len)
{
	char err[256];

	if (prev == NULL) {
		if (unlink(c->o.path) != 0 && errno != ENOENT)
			log_write(LOG_LEVEL_ERROR, c->logctx,
				  "cannot remove %s: %s", c->o.path,
				  strerror(errno));
		else
			(void)fsync_dir_of(c->o.path);
		return;
	}
	if (atomic_write_file(c->o.path, prev, len, 0644, err, sizeof(err)) !=
	    0)
		log_write(LOG_LEVEL_ERROR, c->logctx,
			  "cannot restore the previous %s: %s", c->o.path, err);
}

/* ---- hooks ------------------------------------------------------------ */

/* Child side: stdout and stderr into the pipe, default signals, nothing
 * else inherited, then sh -c cmd with the file as $1. */
static void
hook_child(int out, const char *cmd, const char *file, int64_t gen)
{
	char genbuf[32], script[4096];
	long maxfd = sysconf(_SC_OPEN_MAX);

	signal(SIGPIPE, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	if (dup2(out, 1) < 0 || dup2(out, 2) < 0)
		_exit(127);
	if (maxfd < 0 || maxfd > 65536)
		maxfd = 65536;
	for (long fd = 3; fd < maxfd; fd++)
		(void)close((int)fd);
	snprintf(genbuf, sizeof(genbuf), "%" PRId64, gen);
	(void)setenv("FLEET_CONFIG_FILE", file, 1);
	(void)setenv("FLEET_CONFIG_VERSION", genbuf, 1);
	/* The command is shell text with the file appended as its last
	 * argument ("nginx -t -c" runs "nginx -t -c FILE"); the file name
	 * is passed as $1, never spliced into the text. */
	if (snprintf(script, sizeof(script), "%s \"$1\"", cmd) >=
	    (int)sizeof(script))
		_exit(126);
	execl("/bin/sh", "sh", "-c", script, "fleet-config-hook", file,
	      (char *)NULL);
	_exit(127);
}

/*
 * Runs a hook on file: 0 when it exits 0, else -1 with the reason in
 * reason ("validate hook failed (exit 3): <first line of its output>").
 */
static int
run_hook(const char *what, const char *cmd, const char *file, int64_t gen,
	 char *reason, size_t cap)
{
	char out[HOOK_OUTPUT_MAX + 1];
	size_t got = 0;
	uint64_t start = clock_mono_ms();
	bool timed_out = false;
	int fds[2], status = 0;
	pid_t pid;

	if (pipe(fds) != 0) {
		snprintf(reason, cap, "%s hook not run: %s", what,
			 strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(reason, cap, "%s hook not run: %s", what,
			 strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		close(fds[0]);
		hook_child(fds[1], cmd, file, gen);
	}
	close(fds[1]);
	for (;;) {
		struct pollfd p = {fds[0], POLLIN, 0};
		uint64_t spent = clock_mono_ms() - start;
		char sink[512];
		ssize_t n;

		if (spent >= HOOK_TIMEOUT_MS) {
			timed_out = true;
			kill(pid, SIGKILL);
			break;
		}
		if (poll(&p, 1, (int)(HOOK_TIMEOUT_MS - spent)) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		n = read(fds[0], sink, sizeof(sink));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (got < HOOK_OUTPUT_MAX) {
			size_t take = (size_t)n < HOOK_OUTPUT_MAX - got
					      ? (size_t)n
					      : HOOK_OUTPUT_MAX - got;

			memcpy(out + got, sink, take);
			got += take;
		}
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	out[got] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	if (timed_out) {
		snprintf(reason, cap, "%s hook timed out after %d s", what,
			 HOOK_TIMEOUT_MS / 1000);
		return -1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		snprintf(reason, cap, "%s hook failed (exit %d)%s%s", what,
			 WEXITSTATUS(status), out[0] != '\0' ? ": " : "", out);
	else
		snprintf(reason, cap, "%s hook failed (signal %d)%s%s", what,
			 WIFSIGNALED(status) ? WTERMSIG(status) : 0,
			 out[0] != '\0' ? ": " : "", out);
	return -1;
}

/* ---- reports ---------------------------------------------------------- */

static json_t *
status_report(int64_t gen, const char *hash, const char *state,
	      const char *error)
{
	json_t *r = json_pack("{s:s, s:I, s:s, s:s}", "type", "config.status",
			      "config_version", (json_int_t)gen, "config_hash",
			      hash, "state", state);

	if (r != NULL && error != NULL && error[0] != '\0')
		json_object_set_new(r, "error", json_string(error));
	return r;
}

/* ---- the module ------------------------------------------------------- */

struct agent_config *
agent_config_new(const char *state_dir, const char *logctx,
		 const struct agent_config_opts *o, char *err, size_t errlen)
{
	struct agent_config *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->o = *o;
	c->state_dir = strdup(state_dir);
	c->o.path = c->path = dup_opt(o->path);
	c->o.validate = c->validate = dup_opt(o->validate);
	c->o.reload = c->reload = dup_opt(o->reload);
	snprintf(c->logctx, sizeof(c->logctx), "%s",
		 logctx != NULL ? logctx : "agent");
	snprintf(c->status, sizeof(c->status), "applied");
	c->rng = clock_mono_ms() ^ (uint64_t)(uintptr_t)c ^
		 0x9e3779b97f4a7c15ull;
	if (c->state_dir == NULL || (o->path != NULL && c->o.path == NULL) ||
	    (o->validate != NULL && o->validate[0] != '\0' &&
	     c->o.validate == NULL) ||
	    (o->reload != NULL && o->reload[0] != '\0' &&
	     c->o.reload == NULL)) {
		snprintf(err, errlen, "out of memory");
		agent_config_free(c);
		return NULL;
	}
	if (!c->o.memory && c->o.path != NULL && c->o.path[0] != '/') {
		snprintf(err, errlen, "config_path must be absolute: %s",
			 c->o.path);
		agent_config_free(c);
		return NULL;
	}
	if (c->o.fail_permille > 1000)
		c->o.fail_permille = 1000;
	state_load(c);
	return c;
}

void
agent_config_free(struct agent_config *c)
{
	if (c == NULL)
		return;
	free(c->state_dir);
	free(c->path);
	free(c->validate);
	free(c->reload);
	free(c);
}

bool
agent_config_enabled(const struct agent_config *c)
{
	return c != NULL && (c->o.memory || c->o.path != NULL);
}

long
agent_config_drift_interval(const struct agent_config *c)
{
	return c != NULL && !c->o.memory && c->o.path != NULL
		       ? c->o.drift_interval_s
		       : 0;
}

void
agent_config_hello(const struct agent_config *c, int64_t *version,
		   char hash[HASH_LEN])
{
	const char *why;

	*version = 0;
	hash[0] = '\0';
	if (!agent_config_enabled(c) || c->gen <= 0)
		return;
	*version = c->gen;
	/* The truth: what the file holds now, drifted or not. */
	if (c->o.memory || file_hash(c->o.path, hash, &why) != 0)
		snprintf(hash, HASH_LEN, "%s", c->hash);
}

/* Memory mode: the document is checked and "applied" in memory. */
static json_t *
apply_memory(struct agent_config *c, int64_t gen, const char *hash)
{
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	if (c->o.fail_permille > 0 && c->rng % 1000u < c->o.fail_permille)
		return status_report(gen, hash, "failed",
				     "validate hook failed (exit 1): "
				     "simulated failure");
	c->gen = gen;
	snprintf(c->hash, sizeof(c->hash), "%s", hash);
	snprintf(c->status, sizeof(c->status), "applied");
	return status_report(gen, hash, "applied", NULL);
}

/* File mode: temp file, validate, switch, reload; restore on failure. */
static json_t *
apply_file(struct agent_config *c, int64_t gen, const char *hash,
	   const json_t *doc)
{
	char tmp[AGENT_PATH_MAX], path[AGENT_PATH_MAX], err[256];
	char reason[512];
	char *text = NULL, *prev = NULL, *copy = NULL;
	size_t len, prev_len = 0;
	json_t *report = NULL;

	reason[0] = '\0';
	if (temp_path(c->o.path, tmp, sizeof(tmp)) != 0) {
		snprintf(reason, sizeof(reason), "config_path too long");
		goto failed;
	}
	text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (text == NULL) {
		snprintf(reason, sizeof(reason), "out of memory");
		goto failed;
	}
	len = strlen(text);
	/* The file as it was, to put back if a hook refuses the new one. */
	if (access(c->o.path, F_OK) == 0 &&
	    read_file_bounded(c->o.path, CONFIG_FILE_MAX, &prev, &prev_len, err,
			      sizeof(err)) != 0) {
		snprintf(reason, sizeof(reason),
			 "the current file cannot be read: %s", err);
		goto failed;
	}
	if (write_temp(tmp, text, len, err, sizeof(err)) != 0) {
		snprintf(reason, sizeof(reason), "%s", err);
		goto failed;
	}
	if (c->o.validate != NULL &&
	    run_hook("validate", c->o.validate, tmp, gen, reason,
		     sizeof(reason)) != 0) {
		(void)unlink(tmp);
		goto failed;
	}
	if (switch_to(tmp, c->o.path, err, sizeof(err)) != 0) {
		snprintf(reason, sizeof(reason), "%s", err);
		restore_previous(c, prev, prev_len);
		goto failed;
	}
	if (c->o.reload != NULL && run_hook("reload", c->o.reload, c->o.path,
					    gen, reason, sizeof(reason)) != 0) {
		char ignored[256];

		restore_previous(c, prev, prev_len);
		/* The service goes back to the file it ran with. */
		if (prev != NULL)
			(void)run_hook("reload", c->o.reload, c->o.path, c->gen,
				       ignored, sizeof(ignored));
		goto failed;
	}
	/* Applied: keep the document for restoring after a local edit. */
	copy = canon_json(doc, &len);
	if (copy == NULL ||
	    state_path(c, AGENT_CONFIG_APPLIED_FILE, path, sizeof(path)) != 0 ||
	    atomic_write_file(path, copy, len, 0600, err, sizeof(err)) != 0)
		log_write(LOG_LEVEL_WARN, c->logctx,
			  "applied document not kept: a drift cannot be "
			  "restored");
	c->gen = gen;
	snprintf(c->hash, sizeof(c->hash), "%s", hash);
	snprintf(c->status, sizeof(c->status), "applied");
	c->drift_hash[0] = '\0';
	state_save(c);
	log_write(LOG_LEVEL_INFO, c->logctx,
		  "configuration %" PRId64 " applied to %s", gen, c->o.path);
	report = status_report(gen, hash, "applied", NULL);
	goto out;
failed:
	log_write(LOG_LEVEL_WARN, c->logctx,
		  "configuration %" PRId64 " not applied: %s", gen, reason);
	report = status_report(gen, hash, "failed", reason);
out:
	free(text);
	free(copy);
	free(prev);
	return report;
}

int
agent_config_apply(struct agent_config *c, const struct proto_msg *m,
		   json_t **report)
{
	int64_t gen = proto_int(m, "config_version", -1);
	const char *hash = proto_str(m, "config_hash");
	const json_t *doc = proto_get(m, "document");
	char actual[HASH_LEN], now[HASH_LEN];
	const char *why;

	*report = NULL;
	if (!agent_config_enabled(c)) {
		log_write(LOG_LEVEL_WARN, c != NULL ? c->logctx : "agent",
			  "config.apply ignored: no config_path configured");
		if (gen >= 0 && hash != NULL)
			*report = status_report(
				gen, hash, "failed",
				"this agent has no config_path configured");
		return 0;
	}
	if (gen < 0 || hash == NULL || doc == NULL)
		return -1;
	/* The document must be the one the hash names. */
	if (canon_sha256_hex(doc, actual) != 0 || strcmp(actual, hash) != 0) {
		*report = status_report(gen, hash, "failed",
					"the document does not match its "
					"config_hash");
		return 0;
	}
	if (gen < c->gen) {
		log_write(LOG_LEVEL_INFO, c->logctx,
			  "config.apply %" PRId64
			  " older than the applied %" PRId64 "; ignored",
			  gen, c->gen);
		return 0;
	}
	if (c->o.memory) {
		if (gen == c->gen && strcmp(hash, c->hash) == 0)
			*report = status_report(gen, hash, "applied", NULL);
		else
			*report = apply_memory(c, gen, hash);
		return *report != NULL ? 0 : -1;
	}
	if (gen == c->gen && strcmp(hash, c->hash) == 0 &&
	    strcmp(c->status, "failed") != 0 &&
	    file_hash(c->o.path, now, &why) == 0) {
		/* Applied before (the server did not hear it, or asks
		 * again after a reconnect). */
		if (strcmp(now, hash) == 0) {
			*report = status_report(gen, hash, "applied", NULL);
			return *report != NULL ? 0 : -1;
		}
		/* A local edit the operator chose to keep (no restore): the
		 * same generation does not overwrite it; a new one will. */
		if (!c->o.restore_on_drift) {
			*report = status_report(gen, now, "drifted",
						why[0] != '\0'
							? why
							: "the file was "
							  "changed locally");
			return *report != NULL ? 0 : -1;
		}
	}
	*report = apply_file(c, gen, hash, doc);
	return *report != NULL ? 0 : -1;
}

/* Writes the applied document back over a drifted file. */
static json_t *
restore_drift(struct agent_config *c)
{
	char path[AGENT_PATH_MAX], err[256], *text = NULL;
	json_t *doc = NULL, *report = NULL;
	size_t len;

	if (state_path(c, AGENT_CONFIG_APPLIED_FILE, path, sizeof(path)) != 0 ||
	    read_file_bounded(path, CONFIG_FILE_MAX, &text, &len, err,
			      sizeof(err)) != 0) {
		log_write(LOG_LEVEL_WARN, c->logctx,
			  "drift not restored: the applied document is not "
			  "kept");
		return NULL;
	}
	doc = json_loadb(text, len, 0, NULL);
	free(text);
	if (doc == NULL)
		return NULL;
	report = apply_file(c, c->gen, c->hash, doc);
	json_decref(doc);
	return report;
}

int
agent_config_check(struct agent_config *c, json_t *reports)
{
	char now[HASH_LEN];
	const char *why;
	json_t *r;

	if (!agent_config_enabled(c) || c->o.memory || c->gen <= 0 ||
	    strcmp(c->status, "failed") == 0)
		return 0;
	if (file_hash(c->o.path, now, &why) != 0)
		return -1;
	if (strcmp(now, c->hash) == 0) {
		if (strcmp(c->status, "drifted") == 0) {
			/* Put back by hand: in line again. */
			snprintf(c->status, sizeof(c->status), "applied");
			c->drift_hash[0] = '\0';
			state_save(c);
			json_array_append_new(reports,
					      status_report(c->gen, c->hash,
							    "applied", NULL));
		}
		return 0;
	}
	if (strcmp(c->status, "drifted") != 0 ||
	    strcmp(c->drift_hash, now) != 0) {
		log_write(LOG_LEVEL_WARN, c->logctx,
			  "%s changed locally (%s); configuration %" PRId64
			  " drifted",
			  c->o.path, why[0] != '\0' ? why : "edited", c->gen);
		snprintf(c->status, sizeof(c->status), "drifted");
		snprintf(c->drift_hash, sizeof(c->drift_hash), "%s", now);
		state_save(c);
		json_array_append_new(
			reports,
			status_report(
				c->gen, now, "drifted",
				why[0] != '\0'
					? why
					: "the file was changed locally"));
	}
	if (c->o.restore_on_drift) {
		r = restore_drift(c);
		if (r != NULL)
			json_array_append_new(reports, r);
	}
	return 0;
}
