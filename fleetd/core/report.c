/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reports applied exactly once (see report.h): the seq window rule and the
 * use case the channel calls on a job thread. No transport, no database:
 * storage is the store port (core/store_reports.h).
 */
#include "core/report.h"

#include <stddef.h>
#include <string.h>

#include "core/store_reports.h"

static const char *const report_kinds[] = {
	"config.status",  "update.status", "cert.csr",
	"cert.installed", "cmd.result",	   "keys.status",
};

enum report_verdict
report_window_check(const struct report_window *w, uint64_t seq)
{
	uint64_t behind;

	if (seq > w->hwm)
		return REPORT_NEW;
	behind = w->hwm - seq;
	if (behind >= REPORT_WINDOW)
		return REPORT_STALE;
	return (w->mask >> behind) & 1u ? REPORT_DUPLICATE : REPORT_NEW;
}

void
report_window_mark(struct report_window *w, uint64_t seq)
{
	uint64_t ahead;

	if (seq > w->hwm) {
		ahead = seq - w->hwm;
		w->mask = ahead >= REPORT_WINDOW ? 0 : w->mask << ahead;
		w->mask |= 1u;
		w->hwm = seq;
		return;
	}
	if (w->hwm - seq < REPORT_WINDOW)
		w->mask |= (uint64_t)1 << (w->hwm - seq);
}

bool
report_kind_known(const char *kind)
{
	size_t i;

	if (kind == NULL)
		return false;
	for (i = 0; i < sizeof(report_kinds) / sizeof(report_kinds[0]); i++) {
		if (strcmp(kind, report_kinds[i]) == 0)
			return true;
	}
	return false;
}

enum report_answer
report_submit(struct store *st, const char *device_id, const struct report *r)
{
	enum report_verdict verdict = REPORT_NEW;
	enum store_rc rc;

	if (r == NULL || r->seq == 0 || !report_kind_known(r->kind) ||
	    r->body == NULL || device_id == NULL)
		return REPORT_INVALID;
	rc = store_report_apply(st, device_id, r, &verdict);
	if (rc == STORE_NOTFOUND)
		return REPORT_REFUSED;
	if (rc != STORE_OK)
		return REPORT_RETRY;
	switch (verdict) {
	case REPORT_NEW:
		return REPORT_ACK_APPLIED;
	case REPORT_DUPLICATE:
		return REPORT_ACK_DUPLICATE;
	default:
		return REPORT_ACK_STALE;
	}
}

const char *
report_answer_status(enum report_answer a)
{
	switch (a) {
	case REPORT_ACK_APPLIED:
		return "applied";
	case REPORT_ACK_DUPLICATE:
		return "duplicate";
	case REPORT_ACK_STALE:
		return "stale";
	default:
		return NULL;
	}
}
