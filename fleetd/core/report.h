/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reports from devices (fleet.v1 config.status, update.status, cert.csr,
 * cert.installed, cmd.result): delivered at least once, applied exactly
 * once. Every report carries a per-device seq; the server keeps, per
 * device, a sliding window over the seqs it has applied (the anti-replay
 * window of IPsec, RFC 4303 section 3.4.3): the highest applied seq and a
 * 64-bit mask of which of the 64 seqs up to it were applied. A seq is
 * new (apply it), a duplicate (applied before: acknowledge only) or stale
 * (64 or more below the highest: acknowledge only). The window is read and
 * written under the device's row lock in the transaction that applies the
 * report, so concurrent job threads and reports that overtake each other
 * (up to 64 seqs) are applied once each. See docs/internals/reports.md.
 *
 * Transport-free, database-free: plain structs and the store port. Runs on
 * a net worker's job threads.
 */
#ifndef FLEETD_CORE_REPORT_H
#define FLEETD_CORE_REPORT_H

#include <stdbool.h>
#include <stdint.h>

struct store;

#define REPORT_WINDOW 64 /* seqs tracked below the highest applied one */

/* Bit i of mask: seq hwm - i was applied (bit 0 is hwm itself); every seq
 * at or below hwm - REPORT_WINDOW counts as applied. {0, 0}: none yet. */
struct report_window {
	uint64_t hwm;
	uint64_t mask;
};

enum report_verdict {
	REPORT_NEW = 0, /* apply, then report_window_mark() */
	REPORT_DUPLICATE = 1, /* applied before */
	REPORT_STALE = 2, /* too far below the window to tell: not again */
};

/* The rule. seq is 1 .. 2^53-1 (the protocol's range). */
enum report_verdict report_window_check(const struct report_window *w,
					uint64_t seq);

/* Records seq (just found REPORT_NEW) as applied. */
void report_window_mark(struct report_window *w, uint64_t seq);

/* One report as decoded by the channel (borrowed strings). */
struct report {
	uint64_t seq;
	const char *kind; /* its message type: "config.status", ... */
	const char *body; /* the whole message as compact JSON text */
};

/* True for the message types that are reports. */
bool report_kind_known(const char *kind);

/* What the channel answers a report. */
enum report_answer {
	REPORT_ACK_APPLIED = 0, /* ack status "applied" */
	REPORT_ACK_DUPLICATE = 1, /* ack status "duplicate" */
	REPORT_ACK_STALE = 2, /* ack status "stale" */
	REPORT_RETRY = 3, /* storage failed: no ack, error "unavailable" */
	REPORT_REFUSED = 4, /* not an active device: no ack, error "refused" */
	REPORT_INVALID = 5, /* not a report: error, never applied */
};

/*
 * Applies r for device_id once (store_report_apply) and says what to
 * answer. Runs on a job thread with that thread's store.
 */
enum report_answer report_submit(struct store *st, const char *device_id,
				 const struct report *r);

/* The ack status word of an answer ("applied", ...), or NULL when the
 * answer is not an ack. */
const char *report_answer_status(enum report_answer a);

/* What a hello reports (borrowed strings; NULL or -1 when absent). A hello
 * has no rule beyond the protocol's: the channel stores it directly with
 * store_device_hello() (core/store_reports.h); the latest hello wins. */
struct device_hello {
	const char *agent_version;
	const char *fw_version;
	int64_t fw_version_num;
	const char *model;
	const char *boot_id;
	int64_t uptime;
	const char *addresses; /* JSON array text, or NULL */
	int64_t config_version;
	const char *config_hash;
	const char *inventory; /* JSON object text, or NULL */
};

#endif
