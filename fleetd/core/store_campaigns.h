/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store port of campaigns (core/campaign.h, issue 12; the contract is
 * docs/internals/campaigns.md). Two halves, two adapters:
 *
 * - the operator's half (fleetd/db/campaigns.c): create (and preflight),
 *   list, show, devices, events, and the operator transitions. These
 *   change only the campaigns and campaign_events rows (and the audit
 *   log), then NOTIFY fleet_campaign: the effects on devices are the
 *   driver's, so they happen once, level-triggered, whoever drives.
 * - the driver's half (fleetd/db/campaign_drive.c): the advisory lock,
 *   the campaigns to look at, syncing device states from the rows of the
 *   delivery they use (deployment_devices, device_config_reported,
 *   cert_rotations), counting, acting on campaign_step's decision, and
 *   admitting devices set-based (one statement and one NOTIFY per tick).
 *
 * Each function is one atomic unit of work. Documents for the API are
 * built by PostgreSQL and handed out as jansson values, like the
 * deployments' (store_deployments.h).
 */
#ifndef FLEETD_CORE_STORE_CAMPAIGNS_H
#define FLEETD_CORE_STORE_CAMPAIGNS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/campaign.h"
#include "core/page.h"
#include "core/store.h"

struct idem_record;
struct selector;

enum campaign_rc {
	CAMPAIGN_OK = 0,
	CAMPAIGN_ERR_STORE = -1, /* see store_unavailable() */
	CAMPAIGN_NOTFOUND = 1, /* no such campaign */
	CAMPAIGN_UNKNOWN_ARTIFACT = 2,
	CAMPAIGN_ARTIFACT_NOT_READY = 3, /* its file is not uploaded */
	CAMPAIGN_ARTIFACT_EXPIRED = 4,
	CAMPAIGN_PROFILE_UNKNOWN = 5,
	CAMPAIGN_VERSION_UNKNOWN = 6,
	CAMPAIGN_NO_MATCH = 7, /* the selector matches no active device */
	CAMPAIGN_IDEM_TAKEN = 8, /* a concurrent request holds the key */
	CAMPAIGN_BAD_TRANSITION = 9, /* not allowed in its status: 409 */
	CAMPAIGN_PRECONDITION = 10, /* If-Match revision differs: 412 */
};

/* ---- the operator's half (db/campaigns.c) ----------------------------- */

struct campaign_create {
	char id[37]; /* the new campaign's id, made by the caller */
	const char *name;
	enum campaign_kind kind;
	const struct campaign_def *def; /* checked (campaign_def_check) */
	const char *definition; /* campaign_def_to_json text of def */
	const struct selector *selector; /* parsed */
	const char *selector_text; /* "" matches every active device */
	const char *artifact_id; /* firmware */
	const char *profile; /* config: profile name ... */
	int profile_version; /* ... and version (>= 1) */
	bool start; /* created running (phase 0 released) */
	bool dry_run; /* preflight: answer, write nothing */
	long heartbeat_timeout_s; /* "offline" in the preflight */
	const char *actor;
	const struct idem_record *idem; /* NULL without a key */
};

/*
 * Preflight or create. Both check the target (artifact exists, is
 * complete and not expired; profile version exists) and count the
 * active devices the selector matches (CAMPAIGN_NO_MATCH when none).
 * A dry run answers {dry_run, matched, offline, phases: [{phase,
 * devices}], min_duration_seconds, earliest_completion} (phase sizes by
 * campaign_phase_sizes; earliest = now + campaign_min_duration). For real
 * it inserts the campaign (status draft, or running with phase 0 and
 * started_at when start), the events `created` (and `started`,
 * `phase_released`), the audit row `campaign.create`, the
 * Idempotency-Key record, and NOTIFY fleet_campaign; *answer is the
 * campaign's document as store_campaign_get makes it. *answer is
 * malloc'd JSON object text, also what the key replays.
 */
enum campaign_rc store_campaign_create(struct store *st,
				       const struct campaign_create *req,
				       char **answer);

/* A page of campaigns, newest first (cursor: created_at, id); status
 * NULL for all. Items without per-phase counts. */
enum campaign_rc store_campaign_list(struct store *st, const char *status,
				     const struct page *page, json_t **items,
				     char next[PAGE_CURSOR_MAX]);

/* One campaign: its fields, definition, and per-phase counts (by
 * store_campaign_counts and campaign_counts_fill) as documented in
 * docs/internals/campaigns.md. CAMPAIGN_NOTFOUND. */
enum campaign_rc store_campaign_get(struct store *st, const char *id,
				    long heartbeat_timeout_s, json_t **doc);

/* The admitted devices of a campaign, page by page (cursor: rank,
 * device id); state NULL for all, phase -1 for all. */
enum campaign_rc store_campaign_devices(struct store *st, const char *id,
					const char *state, int phase,
					const struct page *page, json_t **items,
					char next[PAGE_CURSOR_MAX]);

/* The campaign's events, oldest first (cursor: event id). */
enum campaign_rc store_campaign_events(struct store *st, const char *id,
				       const struct page *page, json_t **items,
				       char next[PAGE_CURSOR_MAX]);

struct campaign_op {
	const char *id;
	enum campaign_event ev; /* START, PAUSE, RESUME, ABORT */
	int64_t if_match; /* revision expected, -1: any */
	const char *actor;
	const char *reason; /* free text for the event, or NULL */
	/* RESUME only, or NULL: the new selector (parsed and text). Admitted
	 * devices it no longer matches that have not succeeded become
	 * `excluded` (no longer counted); event `selector_changed`. */
	const struct selector *selector;
	const char *selector_text;
};

/*
 * An operator transition, checked with campaign_transition under the row
 * lock: START (phase 0 released: phase_started_at, started_at), PAUSE
 * (pause_reason, paused_by), RESUME (clears them, and gate_met_at so the
 * current phase's gate is judged afresh), ABORT (finished_at; abort_done
 * false: the driver does the rest). Writes the event, the audit row
 * `campaign.<start|pause|resume|abort>`, bumps revision, NOTIFY
 * fleet_campaign. CAMPAIGN_NOTFOUND, CAMPAIGN_BAD_TRANSITION,
 * CAMPAIGN_PRECONDITION. *doc: the campaign after (store_campaign_get).
 */
enum campaign_rc store_campaign_op(struct store *st,
				   const struct campaign_op *op,
				   long heartbeat_timeout_s, json_t **doc);

/* ---- the driver's half (db/campaign_drive.c) -------------------------- */

/*
 * Tries pg_try_advisory_lock(CAMPAIGN_DRIVER_LOCK) on this store's
 * connection (session-level: held until the connection ends). *held is
 * true while this store holds it; it becomes false again when the
 * connection was lost (then try again). The store given here is the
 * driver's own, used for nothing else but the driver's calls.
 */
#define CAMPAIGN_DRIVER_LOCK 0x666c6565 /* "flee" */
enum store_rc store_campaign_driver_lock(struct store *st, bool *held);

/* LISTEN fleet_campaign on the driver's connection (after each (re)lock),
 * then wait up to timeout_ms for a notification. *woken: one arrived. */
enum store_rc store_campaign_wait(struct store *st, int timeout_ms,
				  bool *woken);

/* A campaign as the driver sees it. */
struct campaign_row {
	char id[37];
	enum campaign_kind kind;
	enum campaign_status status;
	struct campaign_def def;
	struct campaign_state state; /* status, phase, gate_met_at */
	char *selector; /* malloc'd text */
	bool abort_done;
	char artifact_id[37]; /* firmware, else "" */
	/* firmware: the artifact's expiry (epoch s) and "name version";
	 * filled by store_campaign_due only (0 and "" elsewhere) */
	int64_t artifact_expires_at;
	char artifact_label[96];
	char deployment_id[37]; /* firmware once made, else "" */
	char profile_id[37]; /* config, else "" */
	int profile_version;
	int64_t revision;
};
void campaign_row_clear(struct campaign_row *r);

/* The campaigns to look at: running, paused (their device states still
 * move), aborted ones whose abort is not done, and completed ones with
 * devices still offered or in progress (synced until they finish).
 * *out malloc'd. */
enum store_rc store_campaign_due(struct store *st, struct campaign_row **out,
				 size_t *n);
void campaign_rows_free(struct campaign_row *rows, size_t n);

/*
 * Brings campaign_devices.state up to date from the delivery's rows
 * (mapping in docs/internals/campaigns.md), in one statement per kind:
 * firmware from deployment_devices, config from device_config_reported,
 * rotation from cert_rotations; then `silent`: succeeded devices offline
 * now whose last contact was within health_window_s of finished_at
 * (a silent device that comes back is succeeded again).
 */
enum store_rc store_campaign_sync(struct store *st,
				  const struct campaign_row *c,
				  long heartbeat_timeout_s);

/*
 * Counts per phase for c: *matched, the active devices the selector
 * matches now plus admitted devices that no longer match (not excluded
 * or reverted); the admitted devices by phase and state into counts[p]
 * (excluded and reverted are not counted); and counts[p].pending, the
 * matched devices without a row whose position by rank puts them in
 * phase p (campaign_phase_cutoff for *matched): exactly those admit
 * would take for p. campaign_counts_fill then adds `total`. counts has
 * CAMPAIGN_MAX_PHASES entries.
 */
enum store_rc store_campaign_counts(struct store *st,
				    const struct campaign_row *c,
				    struct campaign_counts *counts,
				    uint64_t *matched);

/*
 * Records a driver decision, only if the campaign is still running at
 * the phase and revision c says (an operator's pause wins): GATE_MET
 * (gate_met_at = now, event gate_met), RELEASE (phase = d->phase,
 * phase_started_at = now, gate_met_at NULL, event phase_released), PAUSE
 * (status paused, paused_by 'campaign-driver', pause_reason d->reason,
 * event paused, audit campaign.auto_pause), COMPLETE (status completed,
 * finished_at, event completed, audit campaign.complete). Bumps revision
 * and NOTIFY fleet_campaign (watchers). *applied false when the row had
 * moved on.
 */
enum store_rc store_campaign_record(struct store *st,
				    const struct campaign_row *c,
				    const struct campaign_decision *d,
				    bool *applied);

/*
 * Admits, set-based, up to budget devices of the released phases that
 * have no campaign_devices row: ranks (campaign_rank's hex form) of the
 * matched devices, their position among matched ones by rank, the phase
 * from cutoffs[0..n_phases) (campaign_phase_cutoff for *matched of
 * store_campaign_counts), lowest rank first. For each kind, in the same
 * transaction: firmware: makes the campaign's deployment if missing and
 * gives each admitted device a pending deployment_devices row (a device
 * whose model is not in the artifact's hw is admitted as excluded
 * 'hardware'; one already running version_int or newer as succeeded
 * 'already-running'; one with an open row in another deployment that is
 * installing is skipped this time, a not-yet-installing one superseded);
 * config: the assignment (profile, pinned version, overrides kept) as
 * CONFIG_CLONE_ASSIGN does, remembering the previous one; rotation: a
 * cert_rotations row (reason 'campaign'), reusing a pending one. One
 * NOTIFY of the delivery's topic when any device was admitted. The
 * statement is guarded by the campaign row (still running at this phase
 * and revision) so a replaced driver never admits twice. STORE_CONFLICT
 * (nothing admitted) when what the campaign delivers cannot be given to
 * a device: a config whose document with the device's overrides exceeds
 * the limit; the driver pauses the campaign.
 */
enum store_rc store_campaign_admit(struct store *st,
				   const struct campaign_row *c,
				   const uint64_t *cutoffs, uint32_t budget,
				   size_t *admitted);

/*
 * The effects of an abort, once (abort_done): firmware: the deployment's
 * open rows that were not installing yet become superseded and the
 * deployment cancelled (event cancelled_offers); config: each device the
 * campaign changed whose desired state is still the campaign's gets its
 * previous assignment back (new generation; state reverted; one change
 * row and one NOTIFY fleet_config; event reverted with the count);
 * rotation: pending rotations it asked for are withdrawn.
 */
enum store_rc store_campaign_abort_effects(struct store *st,
					   const struct campaign_row *c);

#endif
