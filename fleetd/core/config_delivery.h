/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration delivery rules (issue 9, DESIGN.md §2 and §6): which
 * desired configuration a device's session must be sent, and which
 * config.status report changes the device's reported state.
 *
 * Delivery is level-triggered: on every (re)connect and every fleet_config
 * notification the channel asks the store which of its devices' desired
 * state differs from the reported one (store_config_pending, one
 * statement for all of them) and sends config.apply to each session that
 * has not been sent that generation yet (config_delivery_due).
 *
 * Reports arrive through the acknowledged report path (core/report.h):
 * applied exactly once per (device, seq); a report's effect on the
 * reported state is decided by config_report_check. A report naming a
 * generation (or, for that generation, a hash) that was never sent is
 * ignored and counted, never stored.
 *
 * Transport-free, database-free: plain structs and the store port
 * (core/store_config_delivery.h). Runs on net workers' job threads.
 */
#ifndef FLEETD_CORE_CONFIG_DELIVERY_H
#define FLEETD_CORE_CONFIG_DELIVERY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/report.h"

struct store;

/* What a config.status report says (borrowed strings). */
struct config_status {
	int64_t generation; /* config_version: the generation it is about */
	const char *sha256; /* applied/failed: the hash it was sent;
			       drifted: the hash of the file it has now */
	const char *state; /* "applied", "failed", "drifted" */
	const char *reason; /* the hook's message or what was seen, or NULL */
};

/* The device's desired state as the report is checked against it. */
struct config_desired_state {
	int64_t generation; /* 0: no configuration was ever sent */
	const char *sha256; /* of that generation, or NULL */
};

/* The device's reported state stored so far. */
struct config_reported_state {
	bool present;
	int64_t generation;
	uint64_t seq; /* the seq of the report that set it */
};

enum config_report_verdict {
	CONFIG_REPORT_ACCEPT = 0, /* store it as the reported state */
	CONFIG_REPORT_NEVER_SENT = 1, /* ignore and count */
	CONFIG_REPORT_SUPERSEDED = 2, /* older than what is stored: ignore */
};

/* The rule (see docs/internals/config-delivery.md). seq is the report's. */
enum config_report_verdict
config_report_check(const struct config_desired_state *desired,
		    const struct config_reported_state *reported,
		    const struct config_status *status, uint64_t seq);

/* A word for logs and the ignored counter ("never-sent", ...). */
const char *config_report_verdict_name(enum config_report_verdict v);

/* True when a session that was last sent generation sent_generation (0:
 * nothing on this session) must be sent desired_generation. */
bool config_delivery_due(int64_t desired_generation, int64_t sent_generation);

/*
 * Applies a config.status report once (the report window of core/report.h
 * and config_report_check, in one unit of work) and says what to answer,
 * as report_submit does. *verdict (may be NULL) tells whether the
 * reported state changed; it is meaningful for REPORT_ACK_APPLIED only.
 */
enum report_answer config_delivery_report(struct store *st,
					  const char *device_id,
					  const struct report *r,
					  const struct config_status *status,
					  enum config_report_verdict *verdict);

#endif
