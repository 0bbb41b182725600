/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Deployment rules (see update.h): states, report effects, superseding,
 * skipped devices and counts. Plain structs only; the adapter applies
 * them in its transactions.
 */
#include "core/update.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "core/store_deployments.h"

static const char *const state_names[UPDATE_STATE_COUNT] = {
	[UPDATE_PENDING] = "pending",
	[UPDATE_OFFERED] = "offered",
	[UPDATE_DOWNLOADING] = "downloading",
	[UPDATE_DOWNLOADED] = "downloaded",
	[UPDATE_INSTALLING] = "installing",
	[UPDATE_INSTALLED] = "installed",
	[UPDATE_REBOOTING] = "rebooting",
	[UPDATE_VERIFYING] = "verifying",
	[UPDATE_COMMITTED] = "committed",
	[UPDATE_FAILED] = "failed",
	[UPDATE_ROLLED_BACK] = "rolled_back",
	[UPDATE_REFUSED] = "refused",
	[UPDATE_SUPERSEDED] = "superseded",
};

const char *
update_state_name(enum update_state s)
{
	if ((unsigned)s >= UPDATE_STATE_COUNT)
		return NULL;
	return state_names[s];
}

int
update_state_parse(const char *name, enum update_state *out)
{
	if (name == NULL)
		return -1;
	for (unsigned i = 0; i < UPDATE_STATE_COUNT; i++) {
		if (strcmp(name, state_names[i]) == 0) {
			*out = (enum update_state)i;
			return 0;
		}
	}
	return -1;
}

bool
update_state_finished(enum update_state s)
{
	return s >= UPDATE_COMMITTED && s < UPDATE_STATE_COUNT;
}

bool
update_state_supersedable(enum update_state s)
{
	return s <= UPDATE_DOWNLOADED;
}

bool
update_state_reportable(enum update_state s)
{
	return s >= UPDATE_DOWNLOADING && s <= UPDATE_REFUSED;
}

enum update_verdict
update_report_check(const struct update_open_row *row,
		    const struct update_status *status, uint64_t seq)
{
	enum update_state to;

	if (status == NULL || update_state_parse(status->state, &to) != 0 ||
	    !update_state_reportable(to))
		return UPDATE_BAD_STATE;
	if (row == NULL || !row->present || row->deployment_id == NULL)
		return UPDATE_NOT_OPEN;
	if (status->deployment_id != NULL) {
		if (strcmp(status->deployment_id, row->deployment_id) != 0)
			return UPDATE_NOT_OPEN;
	} else if (status->version != row->version) {
		return UPDATE_NOT_OPEN;
	}
	/* The open row is never finished (a finished row is not open), so
	 * only overtaking reports of the same deployment are left. */
	if (seq < row->seq)
		return UPDATE_OUT_OF_ORDER;
	return UPDATE_ACCEPT;
}

const char *
update_verdict_name(enum update_verdict v)
{
	switch (v) {
	case UPDATE_ACCEPT:
		return "accepted";
	case UPDATE_NOT_OPEN:
		return "not-open";
	case UPDATE_OUT_OF_ORDER:
		return "out-of-order";
	case UPDATE_BAD_STATE:
		return "bad-state";
	}
	return "unknown";
}

bool
update_status_sets_firmware(const struct update_status *status)
{
	if (status == NULL || status->state == NULL)
		return false;
	if (strcmp(status->state, "committed") != 0 &&
	    strcmp(status->state, "rolled_back") != 0)
		return false;
	return status->running_version >= 0 || status->fw_version != NULL;
}

enum update_target
update_target_of(const struct update_candidate *c, const char *const *hw,
		 size_t nhw)
{
	bool fits = false;

	for (size_t i = 0; c->model != NULL && i < nhw; i++) {
		if (strcmp(c->model, hw[i]) == 0)
			fits = true;
	}
	if (!fits)
		return UPDATE_TARGET_HARDWARE;
	if (!c->has_open)
		return UPDATE_TARGET_OFFER;
	if (!update_state_supersedable(c->open_state))
		return UPDATE_TARGET_BUSY;
	return UPDATE_TARGET_SUPERSEDE;
}

void
update_plan_add(struct update_plan_counts *p, const struct update_candidate *c,
		enum update_target t)
{
	p->matched++;
	switch (t) {
	case UPDATE_TARGET_SUPERSEDE:
		p->supersede++;
		/* fall through */
	case UPDATE_TARGET_OFFER:
		p->targets++;
		if (!c->online)
			p->offline++;
		break;
	case UPDATE_TARGET_HARDWARE:
		p->hardware_mismatch++;
		break;
	case UPDATE_TARGET_BUSY:
		p->busy++;
		break;
	}
}

size_t
update_counts_total(const struct update_counts *c)
{
	size_t n = 0;

	for (unsigned i = 0; i < UPDATE_STATE_COUNT; i++)
		n += c->by_state[i];
	return n;
}

size_t
update_counts_open(const struct update_counts *c)
{
	size_t n = 0;

	for (unsigned i = 0; i < UPDATE_STATE_COUNT; i++) {
		if (!update_state_finished((enum update_state)i))
			n += c->by_state[i];
	}
	return n;
}

bool
update_counts_finished(const struct update_counts *c)
{
	return update_counts_total(c) > 0 && update_counts_open(c) == 0;
}

bool
update_artifact_offerable(int64_t expires_at, int64_t now)
{
	return now < expires_at;
}

bool
update_deployment_stalled(const struct update_stall_input *d, int64_t now,
			  char *reason, size_t len)
{
	char when[40];

	if (!d->active || d->pending <= 0 || d->expires_at <= 0 ||
	    update_artifact_offerable(d->expires_at, now))
		return false;
	clock_format_rfc3339((time_t)d->expires_at, when, sizeof(when));
	snprintf(reason, len,
		 "artifact expired: %s expired at %s; its %lld pending "
		 "device(s) are not offered it, since agents refuse an "
		 "expired release (cancel this deployment and deploy a newer "
		 "release)",
		 d->artifact != NULL ? d->artifact : "the artifact", when,
		 (long long)d->pending);
	return true;
}

size_t
update_offers_drop_expired(struct update_offer *list, size_t *n, int64_t now)
{
	size_t kept = 0, i;

	for (i = 0; i < *n; i++) {
		if (!update_artifact_offerable(list[i].expires_at, now)) {
			free(list[i].envelope);
			list[i].envelope = NULL;
			continue;
		}
		if (kept != i)
			list[kept] = list[i];
		kept++;
	}
	i = *n - kept;
	*n = kept;
	return i;
}
