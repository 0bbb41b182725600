/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Log sink for fleetd, fleetctl and the agent. Lines go to stderr as
 * "time ident[pid] level [ctx] message" or to syslog with the matching
 * priority. When stderr is the journal (a systemd service: $JOURNAL_STREAM
 * names the device and inode of stderr), lines are "<N>name[pid]: [ctx]
 * message": the syslog priority as a prefix journald understands, no
 * timestamp of our own (the journal has one), and the process name
 * (fleetd-net1, fleetd-ca) with its pid, since every fleetd process shares
 * the supervisor's stream. Messages are formatted into a bounded stack
 * buffer, so one line is written with one call and lines from threads do
 * not interleave.
 *
 * Repeated lines are rate-limited, so that a peer that makes fleetd log on
 * every message cannot fill the disk: lines of one call site (format) and
 * context (device id, request id) are written at most `burst` times per
 * window; the rest are counted, and once the window is over a line says
 * how many were suppressed. Errors are never suppressed.
 */
#include "log.h"

#include <openssl/err.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static char log_ident[32] = "fleet";
static enum log_level log_level_max = LOG_LEVEL_INFO;
static bool log_to_syslog;
static bool log_to_journal;

#define LOG_SLOTS 64
#define LOG_SAMPLE_MAX 160

/* One rate-limited kind of line: a call site in one context. */
struct log_slot {
	uint64_t key; /* 0 = free */
	uint64_t window_start_ms;
	unsigned lines; /* written in this window */
	unsigned long suppressed;
	enum log_level level;
	char sample[LOG_SAMPLE_MAX]; /* the first line, for the summary */
};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct log_slot log_slots[LOG_SLOTS];
static unsigned log_burst = 20;
static unsigned log_window_ms = 10000;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const int level_priorities[] = {LOG_ERR, LOG_WARNING, LOG_INFO,
				       LOG_DEBUG};

/*
 * Whether stderr is the journal's stream: systemd sets JOURNAL_STREAM to
 * "device:inode" of the stream it connected to stdout/stderr; a process
 * whose stderr was redirected since (a shell under the service) no longer
 * matches and keeps the plain format.
 */
static bool
log_stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char tail;

	if (env == NULL || sscanf(env, "%llu:%llu%c", &dev, &ino, &tail) != 2 ||
	    fstat(STDERR_FILENO, &st) != 0)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void
log_setup(const char *ident, enum log_level level, bool use_syslog)
{
	snprintf(log_ident, sizeof(log_ident), "%s", ident);
	log_level_max = level;
	log_to_syslog = use_syslog;
	log_to_journal = !use_syslog && log_stderr_is_journal();
	if (use_syslog)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

int
log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]);
	     i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

enum log_level
log_current_level(void)
{
	return log_level_max;
}

static void
log_emit(enum log_level level, const char *ctx, const char *msg)
{
	char stamp[32];
	struct timespec ts;
	struct tm tm;
	char line[2048];

	if (log_to_syslog) {
		if (ctx != NULL)
			syslog(level_priorities[level], "[%s] %s", ctx, msg);
		else
			syslog(level_priorities[level], "%s", msg);
		return;
	}
	if (log_to_journal) {
		char name[17] = "";

		/* The thread's name: fleetd, fleetd-ca, fleetd-net1... */
		if (prctl(PR_GET_NAME, name, 0, 0, 0) != 0 || name[0] == '\0')
			snprintf(name, sizeof(name), "%.16s", log_ident);
		snprintf(line, sizeof(line), "<%d>%s[%ld]: %s%s%s%s\n",
			 level_priorities[level], name, (long)getpid(),
			 ctx != NULL ? "[" : "", ctx != NULL ? ctx : "",
			 ctx != NULL ? "] " : "", msg);
		fputs(line, stderr);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(line, sizeof(line), "%s.%03ldZ %s[%ld] %s %s%s%s%s\n", stamp,
		 ts.tv_nsec / 1000000, log_ident, (long)getpid(),
		 level_names[level], ctx != NULL ? "[" : "",
		 ctx != NULL ? ctx : "", ctx != NULL ? "] " : "", msg);
	fputs(line, stderr);
}

void
log_set_rate_limit(unsigned burst, unsigned window_ms)
{
	pthread_mutex_lock(&log_lock);
	log_burst = burst;
	log_window_ms = window_ms;
	memset(log_slots, 0, sizeof(log_slots));
	pthread_mutex_unlock(&log_lock);
}

static uint64_t
log_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* FNV-1a over the call site, the level and the context. */
static uint64_t
log_key(enum log_level level, const char *ctx, const char *fmt)
{
	uint64_t h = 1469598103934665603ull;
	uintptr_t site = (uintptr_t)fmt;

	for (size_t i = 0; i < sizeof(site); i++) {
		h ^= (site >> (8 * i)) & 0xff;
		h *= 1099511628211ull;
	}
	h ^= (uint64_t)level;
	h *= 1099511628211ull;
	for (const char *c = ctx != NULL ? ctx : ""; *c != '\0'; c++) {
		h ^= (unsigned char)*c;
		h *= 1099511628211ull;
	}
	return h != 0 ? h : 1;
}

/* Under log_lock: the summary of a slot's suppressed lines, if any. */
static void
log_flush_slot(struct log_slot *slot)
{
	char msg[LOG_SAMPLE_MAX + 64];

	if (slot->suppressed == 0)
		return;
	snprintf(msg, sizeof(msg), "suppressed %lu similar lines: %s",
		 slot->suppressed, slot->sample);
	slot->suppressed = 0;
	log_emit(slot->level, NULL, msg);
}

/* Under log_lock: closes the windows that are over, with summaries. */
static void
log_close_windows(uint64_t now)
{
	for (size_t i = 0; i < LOG_SLOTS; i++) {
		struct log_slot *s = &log_slots[i];

		if (s->key != 0 && now - s->window_start_ms >= log_window_ms) {
			log_flush_slot(s);
			s->key = 0;
		}
	}
}

void
log_flush_suppressed(void)
{
	pthread_mutex_lock(&log_lock);
	log_close_windows(log_now_ms());
	pthread_mutex_unlock(&log_lock);
}

/* Under log_lock: whether a line of this kind may be written now. Closes
 * the windows that are over, with their summaries first. */
static bool
log_admit(enum log_level level, const char *ctx, const char *fmt,
	  const char *msg)
{
	uint64_t now = log_now_ms();
	uint64_t key = log_key(level, ctx, fmt);
	struct log_slot *slot = &log_slots[key % LOG_SLOTS];

	log_close_windows(now);
	if (level == LOG_LEVEL_ERROR || log_burst == 0)
		return true;
	if (slot->key != key) {
		/* A new kind of line (or another one in the same slot). */
		log_flush_slot(slot);
		slot->key = key;
		slot->window_start_ms = now;
		slot->lines = 0;
		slot->level = level;
		snprintf(slot->sample, sizeof(slot->sample), "%s%.64s%s%.80s",
			 ctx != NULL ? "[" : "", ctx != NULL ? ctx : "",
			 ctx != NULL ? "] " : "", msg);
	}
	if (slot->lines < log_burst) {
		slot->lines++;
		return true;
	}
	slot->suppressed++;
	return false;
}

void
log_write(enum log_level level, const char *ctx, const char *fmt, ...)
{
	char msg[1536];
	va_list ap;

	if (level > log_level_max)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&log_lock);
	if (log_admit(level, ctx, fmt, msg))
		log_emit(level, ctx, msg);
	pthread_mutex_unlock(&log_lock);
}

void
log_openssl(enum log_level level, const char *what)
{
	unsigned long code;
	char buf[256];

	while ((code = ERR_get_error()) != 0) {
		ERR_error_string_n(code, buf, sizeof(buf));
		log_write(level, NULL, "%s: %s", what, buf);
	}
}
