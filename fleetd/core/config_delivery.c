/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration delivery rules (see config_delivery.h): when a session is
 * due a config.apply, and which config.status reports become the reported
 * state. Plain structs and the store port only.
 */
#include "core/config_delivery.h"

#include <stddef.h>
#include <string.h>

#include "core/store_config_delivery.h"

enum config_report_verdict
config_report_check(const struct config_desired_state *desired,
		    const struct config_reported_state *reported,
		    const struct config_status *status, uint64_t seq)
{
	bool drifted = strcmp(status->state, "drifted") == 0;

	/* Nothing was ever sent, or not this generation yet. */
	if (desired->generation <= 0 || status->generation <= 0 ||
	    status->generation > desired->generation)
		return CONFIG_REPORT_NEVER_SENT;
	/* applied/failed name the hash they were sent: for the current
	 * generation it is known, and any other hash was never sent. A
	 * drifted report carries the hash of the edited file instead. */
	if (!drifted && status->generation == desired->generation &&
	    (desired->sha256 == NULL ||
	     strcmp(status->sha256, desired->sha256) != 0))
		return CONFIG_REPORT_NEVER_SENT;
	/* Reports of one device may overtake each other (several job
	 * threads): a later generation, or a later report about the same
	 * one, wins; the state never moves back. */
	if (reported->present && (status->generation < reported->generation ||
				  (status->generation == reported->generation &&
				   seq < reported->seq)))
		return CONFIG_REPORT_SUPERSEDED;
	return CONFIG_REPORT_ACCEPT;
}

const char *
config_report_verdict_name(enum config_report_verdict v)
{
	switch (v) {
	case CONFIG_REPORT_ACCEPT:
		return "accepted";
	case CONFIG_REPORT_NEVER_SENT:
		return "never-sent";
	case CONFIG_REPORT_SUPERSEDED:
		return "superseded";
	}
	return "unknown";
}

bool
config_delivery_due(int64_t desired_generation, int64_t sent_generation)
{
	return desired_generation > 0 && desired_generation > sent_generation;
}

enum report_answer
config_delivery_report(struct store *st, const char *device_id,
		       const struct report *r,
		       const struct config_status *status,
		       enum config_report_verdict *verdict)
{
	enum report_verdict rv = REPORT_NEW;
	enum config_report_verdict cv = CONFIG_REPORT_ACCEPT;
	enum store_rc rc;

	if (r == NULL || r->seq == 0 || r->kind == NULL ||
	    strcmp(r->kind, "config.status") != 0 || r->body == NULL ||
	    device_id == NULL || status == NULL || status->sha256 == NULL ||
	    status->state == NULL)
		return REPORT_INVALID;
	rc = store_config_report_apply(st, device_id, r, status, &rv, &cv);
	if (rc == STORE_NOTFOUND)
		return REPORT_REFUSED;
	if (rc != STORE_OK)
		return REPORT_RETRY;
	if (verdict != NULL)
		*verdict = cv;
	switch (rv) {
	case REPORT_NEW:
		return REPORT_ACK_APPLIED;
	case REPORT_DUPLICATE:
		return REPORT_ACK_DUPLICATE;
	default:
		return REPORT_ACK_STALE;
	}
}
