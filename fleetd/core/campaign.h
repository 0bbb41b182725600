/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Campaign rules (issue 12, DESIGN.md §7): staged rollouts of firmware,
 * configuration or key rotation. Pure functions on plain structs: which
 * phase a device belongs to, whether the driver releases the next phase,
 * waits (for successes, a soak time or the allowed time window), pauses
 * (too many failures) or completes, and which operator transitions are
 * allowed. The driver (one worker at a time, state in PostgreSQL) counts
 * devices per phase and state and acts on campaign_step's decision; it
 * never decides anything itself.
 *
 * Cohorts: a device's rank is a stable hash of (campaign id, device id),
 * so waves are random but reproducible, and a device that matches the
 * selector later joins at its rank: its position among the matched
 * devices ordered by rank puts it in a phase (campaign_phase_of), and if
 * that phase is already released it is offered at once.
 */
#ifndef FLEETD_CORE_CAMPAIGN_H
#define FLEETD_CORE_CAMPAIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAMPAIGN_MAX_PHASES 16
#define CAMPAIGN_ALL UINT32_MAX /* absolute phase value: every device */

enum campaign_kind { CAMPAIGN_FIRMWARE, CAMPAIGN_CONFIG, CAMPAIGN_ROTATION };

enum campaign_status {
	CAMPAIGN_DRAFT,
	CAMPAIGN_RUNNING,
	CAMPAIGN_PAUSED,
	CAMPAIGN_COMPLETED,
	CAMPAIGN_ABORTED,
	CAMPAIGN_STATUS_COUNT
};

enum campaign_event {
	CAMPAIGN_EV_START, /* operator: draft -> running */
	CAMPAIGN_EV_PAUSE, /* operator or a gate: running -> paused */
	CAMPAIGN_EV_RESUME, /* operator: paused -> running */
	CAMPAIGN_EV_ABORT, /* operator: draft, running, paused -> aborted */
	CAMPAIGN_EV_COMPLETE, /* driver: running -> completed */
};

/* The gates of one phase. Shares are in [0, 1]. */
struct campaign_gate {
	double min_success; /* succeeded / devices of the phase, to go on */
	int64_t soak_s; /* then wait this long before the next phase */
	double max_failure; /* failures / finished above this: pause */
	uint32_t min_finished; /* ... once this many devices finished */
	int64_t health_window_s; /* silent this soon after success: failed */
};

struct campaign_phase {
	bool absolute; /* value is a cumulative device count, else a percent */
	uint32_t value; /* cumulative: 1..100 percent, or >= 1 devices, or
			   CAMPAIGN_ALL */
	struct campaign_gate gate;
};

/* When new offers may be made, in UTC; 0 masks mean "always". */
struct campaign_window {
	uint32_t hours; /* bit h: hour h (0..23) allowed */
	uint8_t weekdays; /* bit d: day d allowed, 0 = Sunday */
};

struct campaign_def {
	enum campaign_kind kind;
	size_t n_phases;
	struct campaign_phase phases[CAMPAIGN_MAX_PHASES];
	struct campaign_window window;
	uint32_t max_concurrent; /* offered + in progress at once; 0: no cap */
};

/* Devices of one phase by state. Failures are failed + silent +
 * rolled_back; finished are those plus succeeded. */
struct campaign_counts {
	uint32_t total; /* devices of the phase (pending included) */
	uint32_t pending, offered, in_progress;
	uint32_t succeeded, failed, silent, rolled_back;
};

struct campaign_state {
	enum campaign_status status;
	size_t phase; /* the highest released phase (0-based) */
	int64_t gate_met_at; /* epoch s the phase met min_success; 0: not */
};

enum campaign_action {
	CAMPAIGN_ACT_NONE, /* nothing to do (not running, or waiting for
			      devices) */
	CAMPAIGN_ACT_GATE_MET, /* record gate_met_at = now; soak starts */
	CAMPAIGN_ACT_WAIT, /* soak or time window: look again at wake_at */
	CAMPAIGN_ACT_RELEASE, /* release phase `phase` */
	CAMPAIGN_ACT_PAUSE, /* a failure gate tripped in phase `phase` */
	CAMPAIGN_ACT_COMPLETE, /* the last phase passed its gate and soak */
};

struct campaign_decision {
	enum campaign_action action;
	size_t phase;
	int64_t wake_at; /* CAMPAIGN_ACT_WAIT / GATE_MET: when to look again */
	char reason[256]; /* for the campaign's event log */
};

const char *campaign_kind_name(enum campaign_kind k);
int campaign_kind_parse(const char *s, enum campaign_kind *out);
const char *campaign_status_name(enum campaign_status s);

/*
 * Phases from "1,10,50,100" (cumulative percentages, the last one 100) or,
 * with absolute, "1,10,all" (cumulative device counts; "all" only last).
 * Each phase gets *gate. Returns 0, or -1 with a message.
 */
int campaign_phases_parse(const char *text, bool absolute,
			  const struct campaign_gate *gate,
			  struct campaign_def *def, char *err, size_t errlen);

/* The whole definition: phases strictly increasing, shares in [0, 1],
 * times >= 0. Returns 0, or -1 with a message naming the field. */
int campaign_def_check(const struct campaign_def *def, char *err,
		       size_t errlen);

/* Hours "8-17" or "22-6" (wrapping) and weekdays "mon-fri" or
 * "sat,sun"; NULL or "" for always. Returns 0, or -1 with a message. */
int campaign_window_parse(const char *hours, const char *weekdays,
			  struct campaign_window *w, char *err, size_t errlen);

/* The stable rank of a device in a campaign: the first 8 bytes of
 * SHA-256("<campaign_id>:<device_id>") as a big-endian number. */
uint64_t campaign_rank(const char *campaign_id, const char *device_id);

/* How many of total devices (ordered by rank) phases 0..p cover. */
uint64_t campaign_phase_cutoff(const struct campaign_def *def, size_t p,
			       uint64_t total);

/* The phase of the device at position pos (0-based, by rank) among total
 * matched devices; def->n_phases when no phase covers it. */
size_t campaign_phase_of(const struct campaign_def *def, uint64_t pos,
			 uint64_t total);

/* Devices per phase for a fleet of total (preflight), into
 * sizes[0..n_phases). */
void campaign_phase_sizes(const struct campaign_def *def, uint64_t total,
			  uint64_t *sizes);

/* The least time a campaign can take: the sum of the soak times. */
int64_t campaign_min_duration(const struct campaign_def *def);

/* Whether new offers may be made at now (epoch s), and when the window
 * opens next (now if it is open; -1 if it never does). */
bool campaign_in_window(const struct campaign_window *w, int64_t now);
int64_t campaign_window_next(const struct campaign_window *w, int64_t now);

/* How many more offers the concurrency cap allows now (UINT32_MAX: no
 * cap), given the devices offered or in progress over all phases. */
uint32_t campaign_offer_budget(const struct campaign_def *def,
			       uint32_t offered_or_in_progress);

/*
 * The driver's rule. counts[0..def->n_phases) are per phase. In order:
 * not running: NONE; a released phase whose failures exceed its
 * max_failure with at least min_finished finished: PAUSE (the earliest
 * such phase, with the figures in reason); the current phase below
 * min_success: PAUSE when it can no longer reach it (more failures than
 * (1 - min_success) of its devices), else NONE; gate just met: GATE_MET;
 * soaking: WAIT; the last phase: COMPLETE; outside the time window:
 * WAIT; else RELEASE the next.
 */
void campaign_step(const struct campaign_def *def,
		   const struct campaign_state *st,
		   const struct campaign_counts *counts, int64_t now,
		   struct campaign_decision *out);

/*
 * A firmware campaign's artifact and its expiry (expires_at, epoch s, the
 * signed manifest's `expires`; 0 when unknown): agents refuse an expired
 * manifest (DESIGN.md §5), so once now >= expires_at no device can
 * succeed and the failure gate would pause the campaign without saying
 * why. Then *out is a PAUSE of phase `phase` whose reason names the
 * artifact ("name version"; NULL: unnamed) and when it expired, and the
 * result is true; else false and *out is untouched.
 */
bool campaign_artifact_expired(int64_t expires_at, const char *artifact,
			       size_t phase, int64_t now,
			       struct campaign_decision *out);

/* Operator and driver transitions. Returns 0 with *to, or -1 when the
 * event is not allowed in from (the API answers 409). */
int campaign_transition(enum campaign_status from, enum campaign_event ev,
			enum campaign_status *to);

#endif
