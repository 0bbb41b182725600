/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging for every fleet process: levels, stderr or syslog, an optional
 * context string (device id, request id). The sink is chosen once at
 * start-up by log_setup() and only read afterwards; that write-once setting
 * and the rate limiter's table of recent lines (behind a mutex) are the
 * process state of common/. Never pass a secret (key,
 * token, password) to these functions.
 */
#ifndef FLEET_COMMON_LOG_H
#define FLEET_COMMON_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* ident names the process in each line; use_syslog sends lines to syslog. */
void log_setup(const char *ident, enum log_level level, bool use_syslog);

/* Parses "error", "warn", "info" or "debug". Returns 0, or -1 if unknown. */
int log_level_parse(const char *name, enum log_level *out);

enum log_level log_current_level(void);

/* ctx may be NULL; otherwise it is printed in brackets, e.g. "device=..". */
void log_write(enum log_level level, const char *ctx, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Repeated lines: at most burst lines of one call site (format) and context
 * per window_ms; the rest are counted and summarised ("suppressed N similar
 * lines: ...") when the window is over. Errors always pass. burst 0 turns
 * the limit off. Defaults: 20 lines per 10 s. Thread-safe.
 */
void log_set_rate_limit(unsigned burst, unsigned window_ms);

/* Writes the summaries of windows that are over; call now and then (the
 * next line would bring them too, but a flood may be followed by quiet). */
void log_flush_suppressed(void);

/* Logs and clears the OpenSSL error queue, each entry prefixed by what. */
void log_openssl(enum log_level level, const char *what);

#define log_error(...) log_write(LOG_LEVEL_ERROR, NULL, __VA_ARGS__)
#define log_warn(...) log_write(LOG_LEVEL_WARN, NULL, __VA_ARGS__)
#define log_info(...) log_write(LOG_LEVEL_INFO, NULL, __VA_ARGS__)
#define log_debug(...) log_write(LOG_LEVEL_DEBUG, NULL, __VA_ARGS__)

#endif
