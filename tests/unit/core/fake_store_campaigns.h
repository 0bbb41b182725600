/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An in-memory store for the driver's half of core/store_campaigns.h, for
 * the unit tests of campaign_drive_pass: a few campaigns, each with its
 * devices (rank, whether the selector matches, admitted phase and state).
 * It keeps the contract of db/campaign_drive.c: record and admit are
 * guarded by the campaign's status, phase and revision; admit takes the
 * lowest ranks below the released phase's cutoff up to the budget.
 */
#ifndef FAKE_STORE_CAMPAIGNS_H
#define FAKE_STORE_CAMPAIGNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/store_campaigns.h"

enum fake_call {
	FAKE_DUE,
	FAKE_SYNC,
	FAKE_COUNTS,
	FAKE_RECORD,
	FAKE_ADMIT,
	FAKE_ABORT,
	FAKE_NCALLS
};

/* What a test reads back of one campaign. */
struct fake_campaign_view {
	enum campaign_status status;
	size_t phase;
	int64_t gate_met_at;
	int64_t revision;
	bool abort_done;
	char pause_reason[256];
	size_t records; /* decisions recorded */
};

struct store *fake_campaign_store_new(void);
void fake_campaign_store_free(struct store *st);

/* A campaign in status at phase (0-based) with def; its index. */
size_t fake_campaign_add(struct store *st, const char *id,
			 enum campaign_kind kind, enum campaign_status status,
			 const struct campaign_def *def, size_t phase);
/* n more devices the selector matches ("<prefix>-<i>"). */
void fake_campaign_devices(struct store *st, size_t ci, const char *prefix,
			   size_t n);
/* The first n admitted devices of phase p in state from become to
 * (delivery progress); returns how many changed. */
size_t fake_campaign_move(struct store *st, size_t ci, size_t p,
			  const char *from, const char *to, size_t n);
/* Admitted devices of phase p (-1: all) in state (NULL: any). */
size_t fake_campaign_admitted(struct store *st, size_t ci, int p,
			      const char *state);
/* Whether device id is admitted, and its phase. */
bool fake_campaign_device_admitted(struct store *st, size_t ci, const char *id,
				   size_t *phase);
void fake_campaign_view(struct store *st, size_t ci,
			struct fake_campaign_view *out);
/* Calls of one kind since the store was made. */
size_t fake_campaign_calls(struct store *st, enum fake_call call);
/* The next call of that kind fails (STORE_ERR, nothing written). */
void fake_campaign_fail(struct store *st, enum fake_call call);
/* How many times abort effects ran for campaign ci. */
size_t fake_campaign_abort_runs(struct store *st, size_t ci);
/* From now on admit answers STORE_CONFLICT for campaign ci (what it
 * delivers cannot be given to a device). */
void fake_campaign_undeliverable(struct store *st, size_t ci);
/* Campaign ci's artifact expires at expires_at (epoch s), named label
 * (what store_campaign_due reads from the artifacts row). */
void fake_campaign_artifact(struct store *st, size_t ci, int64_t expires_at,
			    const char *label);

#endif
