/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Log sink for fleetd, fleetctl and the agent. Lines go to stderr as
 * "time ident[pid] level [ctx] message" or to syslog with the matching
 * priority. Messages are formatted into a bounded stack buffer, so one line
 * is written with one call and lines from threads do not interleave.
 */
#include "log.h"

#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static char log_ident[32] = "fleet";
static enum log_level log_level_max = LOG_LEVEL_INFO;
static bool log_to_syslog;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const int level_priorities[] = {LOG_ERR, LOG_WARNING, LOG_INFO,
				       LOG_DEBUG};

void
log_setup(const char *ident, enum log_level level, bool use_syslog)
{
	snprintf(log_ident, sizeof(log_ident), "%s", ident);
	log_level_max = level;
	log_to_syslog = use_syslog;
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
log_write(enum log_level level, const char *ctx, const char *fmt, ...)
{
	char msg[1536];
	va_list ap;

	if (level > log_level_max)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_emit(level, ctx, msg);
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
