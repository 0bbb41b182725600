/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The campaign driver's pass (core/campaign_drive.h): run by the driver
 * thread of the net worker that holds the driver lock
 * (http/campaign_driver.c). Orchestration only: campaign_step decides,
 * the store port (core/store_campaigns.h) writes, each call atomic. It
 * trusts the rows the store hands out (they were checked when made).
 */
#include "core/campaign_drive.h"

#include <stdio.h>
#include <string.h>

#include "core/campaign.h"
#include "core/campaign_json.h"
#include "core/store_campaigns.h"
#include "log.h"

/* Keeps the earliest positive time in *wake_at. */
static void
wake_min(int64_t *wake_at, int64_t t)
{
	if (t > 0 && (*wake_at == 0 || t < *wake_at))
		*wake_at = t;
}

/* Devices the campaign has offered or that are installing now, over all
 * phases: what the concurrency cap counts. */
static uint32_t
open_offers(const struct campaign_def *def, const struct campaign_counts *c)
{
	uint64_t n = 0;
	size_t p;

	for (p = 0; p < def->n_phases; p++)
		n += (uint64_t)c[p].offered + c[p].in_progress;
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

/*
 * Records d. 0 with *applied, or -1 when the store failed. On success the
 * local copy follows the row (record bumps the revision by one), so the
 * admission of the same pass passes the row's guard.
 */
static int
record(struct store *st, struct campaign_row *c,
       const struct campaign_decision *d, int64_t now, bool *applied)
{
	if (store_campaign_record(st, c, d, applied) != STORE_OK)
		return -1;
	if (!*applied) {
		log_info("campaign %s: moved on before the driver's %s; "
			 "looking again next pass",
			 c->id, d->reason);
		return 0;
	}
	c->revision++;
	switch (d->action) {
	case CAMPAIGN_ACT_GATE_MET:
		c->state.gate_met_at = now;
		break;
	case CAMPAIGN_ACT_RELEASE:
		c->state.phase = d->phase;
		c->state.gate_met_at = 0;
		break;
	case CAMPAIGN_ACT_PAUSE:
		c->status = c->state.status = CAMPAIGN_PAUSED;
		break;
	case CAMPAIGN_ACT_COMPLETE:
		c->status = c->state.status = CAMPAIGN_COMPLETED;
		break;
	default:
		break;
	}
	log_info("campaign %s: %s", c->id, d->reason);
	return 0;
}

/* One running or paused campaign: sync, count, step, admit. */
static int
drive_one(struct store *st, struct campaign_row *c, int64_t now,
	  long heartbeat_timeout_s, int64_t *wake_at)
{
	struct campaign_counts counts[CAMPAIGN_MAX_PHASES];
	uint64_t cutoffs[CAMPAIGN_MAX_PHASES];
	struct campaign_decision d;
	uint64_t matched = 0;
	uint32_t budget;
	size_t p, admitted = 0;
	bool applied;
	int steps;

	if (store_campaign_sync(st, c, heartbeat_timeout_s) != STORE_OK)
		return -1;
	memset(counts, 0, sizeof(counts));
	if (store_campaign_counts(st, c, counts, &matched) != STORE_OK)
		return -1;
	campaign_counts_fill(&c->def, counts);
	if (c->status != CAMPAIGN_RUNNING)
		return 0; /* paused: states moved, nothing else to do */
	/* An expired artifact: agents would refuse every offer, so pause
	 * now with the reason rather than let the failure gate trip. */
	if (c->kind == CAMPAIGN_FIRMWARE) {
		if (campaign_artifact_expired(c->artifact_expires_at,
					      c->artifact_label[0] != '\0'
						      ? c->artifact_label
						      : NULL,
					      c->state.phase, now, &d))
			return record(st, c, &d, now, &applied);
		wake_min(wake_at, c->artifact_expires_at);
	}
	/* A gate met with no soak releases at once: step again after it. */
	for (steps = 0; steps < 2; steps++) {
		campaign_step(&c->def, &c->state, counts, now, &d);
		if (d.action == CAMPAIGN_ACT_NONE)
			break;
		if (d.action == CAMPAIGN_ACT_WAIT) {
			wake_min(wake_at, d.wake_at);
			break;
		}
		if (record(st, c, &d, now, &applied) != 0)
			return -1;
		if (!applied)
			return 0;
		if (d.action != CAMPAIGN_ACT_GATE_MET)
			break;
		wake_min(wake_at, d.wake_at);
	}
	if (c->status != CAMPAIGN_RUNNING)
		return 0;
	/* New offers (a released phase, late joiners, devices held back by
	 * the cap) only inside the time window. */
	if (!campaign_in_window(&c->def.window, now)) {
		wake_min(wake_at, campaign_window_next(&c->def.window, now));
		return 0;
	}
	budget = c->kind == CAMPAIGN_FIRMWARE
			 ? campaign_offer_budget(&c->def,
						 open_offers(&c->def, counts))
			 : UINT32_MAX;
	if (budget == 0)
		return 0;
	for (p = 0; p < c->def.n_phases; p++)
		cutoffs[p] = campaign_phase_cutoff(&c->def, p, matched);
	switch (store_campaign_admit(st, c, cutoffs, budget, &admitted)) {
	case STORE_OK:
		break;
	case STORE_CONFLICT:
		/* what it would deliver cannot be delivered: looking again
		 * would fail the same way every pass */
		memset(&d, 0, sizeof(d));
		d.action = CAMPAIGN_ACT_PAUSE;
		d.phase = c->state.phase;
		snprintf(d.reason, sizeof(d.reason),
			 "phase %zu: the campaign's configuration cannot be "
			 "given to a device (with its overrides the document "
			 "exceeds 256 KiB); fix the profile or the overrides "
			 "and resume",
			 c->state.phase + 1);
		return record(st, c, &d, now, &applied);
	default:
		return -1;
	}
	if (admitted > 0)
		log_info("campaign %s: %zu devices admitted (phase %zu "
			 "released)",
			 c->id, admitted, c->state.phase + 1);
	return 0;
}

int
campaign_drive_pass(struct store *st, int64_t now, long heartbeat_timeout_s,
		    int64_t *wake_at)
{
	struct campaign_row *rows = NULL;
	int64_t wake = 0;
	size_t i, n = 0;
	int rc = -1;

	if (store_campaign_due(st, &rows, &n) != STORE_OK)
		return -1;
	for (i = 0; i < n; i++) {
		struct campaign_row *c = &rows[i];

		if (c->status == CAMPAIGN_ABORTED) {
			if (c->abort_done)
				continue;
			if (store_campaign_abort_effects(st, c) != STORE_OK)
				goto out;
			log_info("campaign %s: abort carried out", c->id);
			continue;
		}
		if (c->status == CAMPAIGN_COMPLETED) {
			/* devices still updating: their states only */
			if (store_campaign_sync(st, c, heartbeat_timeout_s) !=
			    STORE_OK)
				goto out;
			continue;
		}
		if (c->status != CAMPAIGN_RUNNING &&
		    c->status != CAMPAIGN_PAUSED)
			continue;
		if (drive_one(st, c, now, heartbeat_timeout_s, &wake) != 0)
			goto out;
	}
	*wake_at = wake;
	rc = 0;
out:
	campaign_rows_free(rows, n);
	return rc;
}
