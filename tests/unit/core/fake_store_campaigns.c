/* SPDX-License-Identifier: Apache-2.0 */
/*
 * In-memory driver half of the campaign store port (see
 * fake_store_campaigns.h). Single-threaded, bounded tables.
 */
#include "fake_store_campaigns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAKE_CAMPAIGNS 4
#define FAKE_DEVICES 512

struct fake_device {
	char id[40];
	uint64_t rank;
	bool matched; /* the selector matches it now */
	bool admitted;
	size_t phase;
	char state[16];
};

struct fake_campaign {
	struct campaign_row row; /* selector NULL: not needed */
	struct fake_device dev[FAKE_DEVICES];
	size_t ndev;
	size_t records;
	size_t abort_runs;
	bool undeliverable; /* admit answers STORE_CONFLICT */
	char pause_reason[256];
};

struct store {
	struct fake_campaign c[FAKE_CAMPAIGNS];
	size_t n;
	size_t calls[FAKE_NCALLS];
	bool fail[FAKE_NCALLS];
};

bool
store_unavailable(struct store *st)
{
	(void)st;
	return false;
}

/* Counts the call; true when it must fail. */
static bool
fake_enter(struct store *st, enum fake_call call)
{
	st->calls[call]++;
	if (st->fail[call]) {
		st->fail[call] = false;
		return true;
	}
	return false;
}

static struct fake_campaign *
fake_find(struct store *st, const char *id)
{
	size_t i;

	for (i = 0; i < st->n; i++)
		if (strcmp(st->c[i].row.id, id) == 0)
			return &st->c[i];
	return NULL;
}

struct store *
fake_campaign_store_new(void)
{
	return calloc(1, sizeof(struct store));
}

void
fake_campaign_store_free(struct store *st)
{
	free(st);
}

size_t
fake_campaign_add(struct store *st, const char *id, enum campaign_kind kind,
		  enum campaign_status status, const struct campaign_def *def,
		  size_t phase)
{
	struct fake_campaign *c = &st->c[st->n];

	memset(c, 0, sizeof(*c));
	snprintf(c->row.id, sizeof(c->row.id), "%s", id);
	c->row.kind = kind;
	c->row.status = status;
	c->row.def = *def;
	c->row.state.status = status;
	c->row.state.phase = phase;
	c->row.revision = 1;
	return st->n++;
}

void
fake_campaign_devices(struct store *st, size_t ci, const char *prefix, size_t n)
{
	struct fake_campaign *c = &st->c[ci];
	size_t i;

	for (i = 0; i < n && c->ndev < FAKE_DEVICES; i++) {
		struct fake_device *d = &c->dev[c->ndev];

		memset(d, 0, sizeof(*d));
		snprintf(d->id, sizeof(d->id), "%s-%zu", prefix, c->ndev);
		d->rank = campaign_rank(c->row.id, d->id);
		d->matched = true;
		c->ndev++;
	}
}

size_t
fake_campaign_move(struct store *st, size_t ci, size_t p, const char *from,
		   const char *to, size_t n)
{
	struct fake_campaign *c = &st->c[ci];
	size_t i, moved = 0;

	for (i = 0; i < c->ndev && moved < n; i++) {
		struct fake_device *d = &c->dev[i];

		if (d->admitted && d->phase == p &&
		    strcmp(d->state, from) == 0) {
			snprintf(d->state, sizeof(d->state), "%s", to);
			moved++;
		}
	}
	return moved;
}

size_t
fake_campaign_admitted(struct store *st, size_t ci, int p, const char *state)
{
	struct fake_campaign *c = &st->c[ci];
	size_t i, n = 0;

	for (i = 0; i < c->ndev; i++) {
		const struct fake_device *d = &c->dev[i];

		if (d->admitted && (p < 0 || d->phase == (size_t)p) &&
		    (state == NULL || strcmp(d->state, state) == 0))
			n++;
	}
	return n;
}

bool
fake_campaign_device_admitted(struct store *st, size_t ci, const char *id,
			      size_t *phase)
{
	struct fake_campaign *c = &st->c[ci];
	size_t i;

	for (i = 0; i < c->ndev; i++) {
		if (strcmp(c->dev[i].id, id) == 0 && c->dev[i].admitted) {
			*phase = c->dev[i].phase;
			return true;
		}
	}
	return false;
}

void
fake_campaign_view(struct store *st, size_t ci, struct fake_campaign_view *out)
{
	const struct fake_campaign *c = &st->c[ci];

	memset(out, 0, sizeof(*out));
	out->status = c->row.status;
	out->phase = c->row.state.phase;
	out->gate_met_at = c->row.state.gate_met_at;
	out->revision = c->row.revision;
	out->abort_done = c->row.abort_done;
	out->records = c->records;
	snprintf(out->pause_reason, sizeof(out->pause_reason), "%s",
		 c->pause_reason);
}

size_t
fake_campaign_calls(struct store *st, enum fake_call call)
{
	return st->calls[call];
}

void
fake_campaign_fail(struct store *st, enum fake_call call)
{
	st->fail[call] = true;
}

size_t
fake_campaign_abort_runs(struct store *st, size_t ci)
{
	return st->c[ci].abort_runs;
}

/* ---- the port --------------------------------------------------------- */

void
campaign_row_clear(struct campaign_row *r)
{
	if (r == NULL)
		return;
	free(r->selector);
	r->selector = NULL;
}

void
campaign_rows_free(struct campaign_row *rows, size_t n)
{
	size_t i;

	for (i = 0; rows != NULL && i < n; i++)
		campaign_row_clear(&rows[i]);
	free(rows);
}

/* Devices offered or in progress: a completed campaign still syncs. */
static bool
fake_moving(const struct fake_campaign *fc)
{
	size_t i;

	for (i = 0; i < fc->ndev; i++)
		if (fc->dev[i].admitted &&
		    (strcmp(fc->dev[i].state, "offered") == 0 ||
		     strcmp(fc->dev[i].state, "in_progress") == 0))
			return true;
	return false;
}

enum store_rc
store_campaign_due(struct store *st, struct campaign_row **out, size_t *n)
{
	struct campaign_row *rows;
	size_t i, k = 0;

	if (fake_enter(st, FAKE_DUE))
		return STORE_ERR;
	rows = calloc(FAKE_CAMPAIGNS, sizeof(*rows));
	if (rows == NULL)
		return STORE_ERR;
	for (i = 0; i < st->n; i++) {
		const struct campaign_row *r = &st->c[i].row;

		if (r->status == CAMPAIGN_RUNNING ||
		    r->status == CAMPAIGN_PAUSED ||
		    (r->status == CAMPAIGN_ABORTED && !r->abort_done) ||
		    (r->status == CAMPAIGN_COMPLETED &&
		     fake_moving(&st->c[i]))) {
			rows[k] = *r;
			rows[k].selector = strdup("site=plant-1");
			k++;
		}
	}
	*out = rows;
	*n = k;
	return STORE_OK;
}

enum store_rc
store_campaign_sync(struct store *st, const struct campaign_row *c,
		    long heartbeat_timeout_s)
{
	(void)c;
	(void)heartbeat_timeout_s;
	if (fake_enter(st, FAKE_SYNC))
		return STORE_ERR;
	return STORE_OK;
}

/* Matched or admitted (not excluded): the devices that get a position. */
static bool
fake_counted(const struct fake_device *d)
{
	return d->matched ||
	       (d->admitted && strcmp(d->state, "excluded") != 0 &&
		strcmp(d->state, "reverted") != 0);
}

static int
fake_rank_cmp(const void *a, const void *b)
{
	const struct fake_device *x = *(const struct fake_device *const *)a;
	const struct fake_device *y = *(const struct fake_device *const *)b;

	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return strcmp(x->id, y->id);
}

enum store_rc
store_campaign_counts(struct store *st, const struct campaign_row *c,
		      struct campaign_counts *counts, uint64_t *matched)
{
	struct fake_campaign *fc = fake_find(st, c->id);
	uint64_t m = 0;
	size_t i;

	if (fake_enter(st, FAKE_COUNTS) || fc == NULL)
		return STORE_ERR;
	memset(counts, 0, CAMPAIGN_MAX_PHASES * sizeof(*counts));
	for (i = 0; i < fc->ndev; i++) {
		const struct fake_device *d = &fc->dev[i];
		struct campaign_counts *k = &counts[d->phase];

		if (fake_counted(d))
			m++;
		if (!d->admitted)
			continue;
		if (strcmp(d->state, "offered") == 0)
			k->offered++;
		else if (strcmp(d->state, "in_progress") == 0)
			k->in_progress++;
		else if (strcmp(d->state, "succeeded") == 0)
			k->succeeded++;
		else if (strcmp(d->state, "failed") == 0)
			k->failed++;
		else if (strcmp(d->state, "silent") == 0)
			k->silent++;
		else if (strcmp(d->state, "rolled_back") == 0)
			k->rolled_back++;
	}
	/* pending: devices without a row, by the phase of their position
	 * among the counted ones, as the real store does */
	{
		struct fake_device *order[FAKE_DEVICES];
		size_t n = 0, p;

		for (i = 0; i < fc->ndev; i++)
			if (fake_counted(&fc->dev[i]))
				order[n++] = &fc->dev[i];
		qsort(order, n, sizeof(order[0]), fake_rank_cmp);
		for (i = 0; i < n; i++) {
			if (order[i]->admitted)
				continue;
			p = campaign_phase_of(&c->def, i, m);
			if (p < c->def.n_phases)
				counts[p].pending++;
		}
	}
	*matched = m;
	return STORE_OK;
}

/* The guard of record and admit: the row is where the driver saw it. */
static bool
fake_current(const struct fake_campaign *fc, const struct campaign_row *c)
{
	return fc->row.status == CAMPAIGN_RUNNING &&
	       fc->row.state.phase == c->state.phase &&
	       fc->row.revision == c->revision;
}

enum store_rc
store_campaign_record(struct store *st, const struct campaign_row *c,
		      const struct campaign_decision *d, bool *applied)
{
	struct fake_campaign *fc = fake_find(st, c->id);
	struct campaign_row *r;

	if (fake_enter(st, FAKE_RECORD) || fc == NULL)
		return STORE_ERR;
	r = &fc->row;
	if (!fake_current(fc, c)) {
		*applied = false;
		return STORE_OK;
	}
	switch (d->action) {
	case CAMPAIGN_ACT_GATE_MET:
		/* the test's clock: wake_at - soak is now */
		r->state.gate_met_at =
			d->wake_at - r->def.phases[r->state.phase].gate.soak_s;
		break;
	case CAMPAIGN_ACT_RELEASE:
		r->state.phase = d->phase;
		r->state.gate_met_at = 0;
		break;
	case CAMPAIGN_ACT_PAUSE:
		r->status = r->state.status = CAMPAIGN_PAUSED;
		snprintf(fc->pause_reason, sizeof(fc->pause_reason), "%s",
			 d->reason);
		break;
	case CAMPAIGN_ACT_COMPLETE:
		r->status = r->state.status = CAMPAIGN_COMPLETED;
		break;
	default:
		return STORE_ERR; /* NONE and WAIT are never recorded */
	}
	r->revision++;
	fc->records++;
	*applied = true;
	return STORE_OK;
}

enum store_rc
store_campaign_admit(struct store *st, const struct campaign_row *c,
		     const uint64_t *cutoffs, uint32_t budget, size_t *admitted)
{
	struct fake_campaign *fc = fake_find(st, c->id);
	struct fake_device *order[FAKE_DEVICES];
	size_t i, k = 0, n = 0, p;

	if (fake_enter(st, FAKE_ADMIT) || fc == NULL)
		return STORE_ERR;
	if (!fake_current(fc, c)) {
		*admitted = 0;
		return STORE_OK;
	}
	if (fc->undeliverable) {
		*admitted = 0;
		return STORE_CONFLICT;
	}
	for (i = 0; i < fc->ndev; i++)
		if (fake_counted(&fc->dev[i]))
			order[k++] = &fc->dev[i];
	qsort(order, k, sizeof(order[0]), fake_rank_cmp);
	for (i = 0; i < k && n < budget; i++) {
		struct fake_device *d = order[i];

		if (d->admitted)
			continue;
		for (p = 0; p < c->def.n_phases; p++)
			if (i < cutoffs[p])
				break;
		if (p > c->state.phase)
			continue;
		d->admitted = true;
		d->phase = p;
		snprintf(d->state, sizeof(d->state), "offered");
		n++;
	}
	*admitted = n;
	return STORE_OK;
}

enum store_rc
store_campaign_abort_effects(struct store *st, const struct campaign_row *c)
{
	struct fake_campaign *fc = fake_find(st, c->id);

	if (fake_enter(st, FAKE_ABORT) || fc == NULL)
		return STORE_ERR;
	if (fc->row.abort_done)
		return STORE_OK;
	fc->row.abort_done = true;
	fc->abort_runs++;
	return STORE_OK;
}

void
fake_campaign_undeliverable(struct store *st, size_t ci)
{
	st->c[ci].undeliverable = true;
}

void
fake_campaign_artifact(struct store *st, size_t ci, int64_t expires_at,
		       const char *label)
{
	st->c[ci].row.artifact_expires_at = expires_at;
	snprintf(st->c[ci].row.artifact_label,
		 sizeof(st->c[ci].row.artifact_label), "%s", label);
}
