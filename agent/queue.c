/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-device sequence numbers and the on-disk report queue: reports that
 * cannot be sent now wait in state_dir/queue/<seq>.json (one file each,
 * written atomically, names zero-padded so that name order is seq order)
 * and go out oldest first after the next welcome; each stays until the
 * server acknowledges its seq (outbox.c). The seq file is written before a
 * number is used, so a crash never hands out a number twice, and numbers
 * are handed out under an flock so that `fleet-agent report` and the
 * daemon can queue at the same time.
 * Runs in the agent's event loop; the files are our own but are still
 * read with size bounds.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_int.h"
#include "atomicfile.h"

#define QUEUE_SCAN_MAX (AGENT_QUEUE_MAX * 2) /* entries read per scan */
#define SEQ_DIGITS 20

static int
queue_dir(const char *dir, char *out, size_t cap, bool create, char *err,
	  size_t errlen)
{
	if (agent_path(out, cap, dir, AGENT_QUEUE_DIR) != 0) {
		snprintf(err, errlen, "state directory path too long");
		return -1;
	}
	if (create && mkdir(out, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", out, strerror(errno));
		return -1;
	}
	return 0;
}

/* "00000000000000000042.json" -> 42; -1 for other names. */
static int
parse_name(const char *name, uint64_t *seq)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < SEQ_DIGITS; i++) {
		if (name[i] < '0' || name[i] > '9')
			return -1;
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	if (strcmp(name + SEQ_DIGITS, ".json") != 0 || v == 0)
		return -1;
	*seq = v;
	return 0;
}

/* One bounded pass over the queue: count, lowest and highest seq, and the
 * lowest seq above after (0: none). */
static int
queue_scan_after(const char *dir, uint64_t after, long *count, uint64_t *lowest,
		 uint64_t *highest, uint64_t *next)
{
	char qdir[AGENT_PATH_MAX], err[64];
	struct dirent *de;
	uint64_t lo = 0, hi = 0, nx = 0, s;
	long n = 0, seen = 0;
	DIR *d;

	if (queue_dir(dir, qdir, sizeof(qdir), false, err, sizeof(err)) != 0)
		return -1;
	d = opendir(qdir);
	if (d == NULL) {
		if (errno != ENOENT)
			return -1;
		*count = 0;
		*lowest = *highest = *next = 0;
		return 0;
	}
	while ((de = readdir(d)) != NULL && seen++ < QUEUE_SCAN_MAX) {
		if (parse_name(de->d_name, &s) != 0)
			continue;
		n++;
		if (lo == 0 || s < lo)
			lo = s;
		if (s > hi)
			hi = s;
		if (s > after && (nx == 0 || s < nx))
			nx = s;
	}
	closedir(d);
	*count = n;
	*lowest = lo;
	*highest = hi;
	*next = nx;
	return 0;
}

static int
queue_scan(const char *dir, long *count, uint64_t *lowest, uint64_t *highest)
{
	uint64_t next;

	return queue_scan_after(dir, 0, count, lowest, highest, &next);
}

int
agent_seq_load(const char *dir, uint64_t *last, char *err, size_t errlen)
{
	char path[AGENT_PATH_MAX], *text = NULL, *end = NULL;
	uint64_t v = 0, lo, hi;
	size_t len;
	long n;

	if (agent_path(path, sizeof(path), dir, AGENT_SEQ_FILE) != 0) {
		snprintf(err, errlen, "state directory path too long");
		return -1;
	}
	if (access(path, F_OK) == 0) {
		if (read_file_bounded(path, 64, &text, &len, err, errlen) != 0)
			return -1;
		errno = 0;
		v = strtoull(text, &end, 10);
		if (errno != 0 || end == text || (*end != '\n' && *end != 0)) {
			snprintf(err, errlen, "%s: not a number", path);
			free(text);
			return -1;
		}
		free(text);
	}
	if (queue_scan(dir, &n, &lo, &hi) != 0) {
		snprintf(err, errlen, "%s: cannot read the queue", dir);
		return -1;
	}
	*last = hi > v ? hi : v;
	return 0;
}

int
agent_seq_store(const char *dir, uint64_t seq, char *err, size_t errlen)
{
	char path[AGENT_PATH_MAX], text[32];
	int n;

	if (agent_path(path, sizeof(path), dir, AGENT_SEQ_FILE) != 0) {
		snprintf(err, errlen, "state directory path too long");
		return -1;
	}
	n = snprintf(text, sizeof(text), "%" PRIu64 "\n", seq);
	return atomic_write_file(path, text, (size_t)n, 0600, err, errlen);
}

static int
report_path(const char *dir, uint64_t seq, char *out, size_t cap, bool create,
	    char *err, size_t errlen)
{
	char qdir[AGENT_PATH_MAX];
	int n;

	if (queue_dir(dir, qdir, sizeof(qdir), create, err, errlen) != 0)
		return -1;
	n = snprintf(out, cap, "%s/%020" PRIu64 ".json", qdir, seq);
	if (n < 0 || (size_t)n >= cap) {
		snprintf(err, errlen, "state directory path too long");
		return -1;
	}
	return 0;
}

int
agent_queue_push(const char *dir, uint64_t seq, const char *text, size_t len,
		 char *err, size_t errlen)
{
	char path[AGENT_PATH_MAX];
	uint64_t lo, hi;
	long n;

	if (seq == 0 || len > AGENT_REPORT_MAX) {
		snprintf(err, errlen, "report too large or without seq");
		return -1;
	}
	if (queue_scan(dir, &n, &lo, &hi) != 0) {
		snprintf(err, errlen, "%s: cannot read the queue", dir);
		return -1;
	}
	if (n >= AGENT_QUEUE_MAX) {
		snprintf(err, errlen, "report queue full (%d reports)",
			 AGENT_QUEUE_MAX);
		return -1;
	}
	if (report_path(dir, seq, path, sizeof(path), true, err, errlen) != 0)
		return -1;
	return atomic_write_file(path, text, len, 0600, err, errlen);
}

int
agent_queue_oldest(const char *dir, uint64_t *seq, char **text, size_t *len,
		   char *err, size_t errlen)
{
	char path[AGENT_PATH_MAX];
	uint64_t lo, hi;
	long n;

	if (queue_scan(dir, &n, &lo, &hi) != 0) {
		snprintf(err, errlen, "%s: cannot read the queue", dir);
		return -1;
	}
	if (n == 0)
		return 0;
	if (report_path(dir, lo, path, sizeof(path), false, err, errlen) != 0 ||
	    read_file_bounded(path, AGENT_REPORT_MAX, text, len, err, errlen) !=
		    0)
		return -1;
	*seq = lo;
	return 1;
}

int
agent_queue_next(const char *dir, uint64_t after, uint64_t *seq, char **text,
		 size_t *len, char *err, size_t errlen)
{
	char path[AGENT_PATH_MAX];
	uint64_t lo, hi, next;
	long n;

	if (queue_scan_after(dir, after, &n, &lo, &hi, &next) != 0) {
		snprintf(err, errlen, "%s: cannot read the queue", dir);
		return -1;
	}
	if (next == 0)
		return 0;
	if (report_path(dir, next, path, sizeof(path), false, err, errlen) != 0)
		return -1;
	*seq = next;
	if (read_file_bounded(path, AGENT_REPORT_MAX, text, len, err, errlen) !=
	    0)
		return -2;
	return 1;
}

int
agent_queue_list(const char *dir, uint64_t after, uint64_t *out, int max)
{
	char qdir[AGENT_PATH_MAX], err[64];
	struct dirent *de;
	long seen = 0;
	uint64_t s;
	int n = 0, i;
	DIR *d;

	if (max <= 0 ||
	    queue_dir(dir, qdir, sizeof(qdir), false, err, sizeof(err)) != 0)
		return -1;
	d = opendir(qdir);
	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	/* Keep the max lowest seqs above after, sorted (insertion). */
	while ((de = readdir(d)) != NULL && seen++ < QUEUE_SCAN_MAX) {
		if (parse_name(de->d_name, &s) != 0 || s <= after)
			continue;
		if (n == max && s >= out[n - 1])
			continue;
		i = n < max ? n++ : n - 1;
		while (i > 0 && out[i - 1] > s) {
			out[i] = out[i - 1];
			i--;
		}
		out[i] = s;
	}
	closedir(d);
	return n;
}

int
agent_queue_read(const char *dir, uint64_t seq, char **text, size_t *len,
		 char *err, size_t errlen)
{
	char path[AGENT_PATH_MAX];

	if (report_path(dir, seq, path, sizeof(path), false, err, errlen) != 0)
		return -1;
	if (read_file_bounded(path, AGENT_REPORT_MAX, text, len, err, errlen) ==
	    0)
		return 1;
	return access(path, F_OK) != 0 && errno == ENOENT ? 0 : -1;
}

int
agent_queue_remove(const char *dir, uint64_t seq, char *err, size_t errlen)
{
	char path[AGENT_PATH_MAX];

	if (report_path(dir, seq, path, sizeof(path), false, err, errlen) != 0)
		return -1;
	if (unlink(path) != 0 && errno != ENOENT) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int
agent_queue_quarantine(const char *dir, uint64_t seq, char *err, size_t errlen)
{
	char path[AGENT_PATH_MAX], bad[AGENT_PATH_MAX + 8];

	if (report_path(dir, seq, path, sizeof(path), false, err, errlen) != 0)
		return -1;
	snprintf(bad, sizeof(bad), "%s.bad", path);
	if (rename(path, bad) != 0 && errno != ENOENT) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

long
agent_queue_count(const char *dir)
{
	uint64_t lo, hi;
	long n;

	return queue_scan(dir, &n, &lo, &hi) != 0 ? -1 : n;
}

int
agent_report_enqueue(const char *dir, json_t *msg, uint64_t *seq, char *err,
		     size_t errlen)
{
	const struct proto_def *def;
	struct proto_error perr;
	char path[AGENT_PATH_MAX], *text = NULL;
	uint64_t next;
	size_t len;
	int fd = -1, rc = -1;

	def = proto_lookup(json_string_value(json_object_get(msg, "type")),
			   PROTO_TO_SERVER);
	if (!json_is_object(msg) || def == NULL || !def->report) {
		snprintf(err, errlen,
			 "a report is an object whose type is a fleet.v1 "
			 "report (config.status, update.status, cert.csr, "
			 "cert.installed, cmd.result)");
		return -1;
	}
	if (agent_path(path, sizeof(path), dir, AGENT_SEQ_LOCK) != 0) {
		snprintf(err, errlen, "state directory path too long");
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (agent_seq_load(dir, &next, err, errlen) != 0)
		goto out;
	next++;
	if (json_object_set_new(msg, "seq", json_integer((json_int_t)next)) !=
	    0) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	text = proto_encode(def->type, json_deep_copy(msg), &len, &perr);
	if (text == NULL) {
		snprintf(err, errlen, "%s", perr.message);
		goto out;
	}
	/* The number is used up before anything carries it. */
	if (agent_seq_store(dir, next, err, errlen) != 0 ||
	    agent_queue_push(dir, next, text, len, err, errlen) != 0)
		goto out;
	if (seq != NULL)
		*seq = next;
	rc = 0;
out:
	free(text);
	if (fd >= 0)
		close(fd); /* releases the lock */
	return rc;
}
