/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Campaign definitions and counts as JSON (docs/internals/campaigns.md,
 * "Definition"): what POST /api/v1/campaigns accepts, what the
 * campaigns.definition column stores, and what show answers per phase.
 */
#ifndef FLEETD_CORE_CAMPAIGN_JSON_H
#define FLEETD_CORE_CAMPAIGN_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/campaign.h"

/*
 * The definition from the API's create body (members phases, unit, gate,
 * gates, window, max_concurrent; others are the caller's) or from the
 * stored form, which is the same shape with every field explicit.
 * Defaults: unit percent, min_success 0.9, soak 0, max_failure 0.1,
 * min_finished 1, health_window 600 s, no window, no cap. Checked with
 * campaign_def_check. Returns 0, or -1 with a message naming the member.
 */
int campaign_def_from_json(const json_t *body, struct campaign_def *def,
			   char *err, size_t errlen);

/* The stored form (every field explicit; gates one per phase; window
 * hours and weekdays as arrays of numbers), malloc'd JSON text, NULL on
 * ENOMEM. campaign_def_from_json(campaign_def_to_json(d)) == d. */
char *campaign_def_to_json(const struct campaign_def *def);

/* total = pending + admitted, per phase (the store counts both: pending
 * are the matched devices without a row, by the phase their position
 * puts them in; store_campaign_counts). */
void campaign_counts_fill(const struct campaign_def *def,
			  struct campaign_counts *counts);

/* One phase's counts as the API shows them: {phase (1-based), devices,
 * pending, offered, in_progress, succeeded, failed, silent, rolled_back,
 * finished, failure_share}; phase SIZE_MAX leaves "phase" out (totals).
 * New reference, NULL on ENOMEM. */
json_t *campaign_counts_to_json(size_t phase, const struct campaign_counts *c);

#endif
