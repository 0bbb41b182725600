/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Deployment rules (issue 11, DESIGN.md §5, docs/internals/updates.md):
 * the states of a device's part in a deployment (deployment_devices,
 * migrations/0011_updates.sql), which update.status report moves a row
 * where, which rows a new deployment (or a cancel) supersedes, which
 * devices a deployment skips, and the per-state counts of a deployment.
 *
 * Transport-free, database-free: plain structs. The PostgreSQL adapter
 * (fleetd/db/deployments.c) asks these rules inside the transactions that
 * apply them, as db/config_delivery.c asks config_report_check. Runs on
 * net workers' job threads.
 */
#ifndef FLEETD_CORE_UPDATE_H
#define FLEETD_CORE_UPDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The states of migrations/0011_updates.sql, in the order an update goes
 * through them; the last five are final ("finished"). */
enum update_state {
	UPDATE_PENDING = 0, /* not offered yet */
	UPDATE_OFFERED,
	UPDATE_DOWNLOADING,
	UPDATE_DOWNLOADED,
	UPDATE_INSTALLING,
	UPDATE_INSTALLED,
	UPDATE_REBOOTING,
	UPDATE_VERIFYING,
	UPDATE_COMMITTED,
	UPDATE_FAILED,
	UPDATE_ROLLED_BACK,
	UPDATE_REFUSED,
	UPDATE_SUPERSEDED,
	UPDATE_STATE_COUNT
};

/* The state's word ("pending", ...); NULL when out of range. */
const char *update_state_name(enum update_state s);
/* 0 with *out, or -1 for a word that is not a state. */
int update_state_parse(const char *name, enum update_state *out);
/* committed, failed, rolled_back, refused, superseded. */
bool update_state_finished(enum update_state s);
/* pending, offered, downloading, downloaded: nothing was installed yet,
 * so a newer deployment or a cancel may supersede the row. */
bool update_state_supersedable(enum update_state s);
/* The states an agent reports (update.status `state`): every state but
 * pending, offered and superseded. */
bool update_state_reportable(enum update_state s);

/* The device's unfinished row (at most one), as a report is checked
 * against it. */
struct update_open_row {
	bool present;
	const char *deployment_id; /* lowercase uuid text */
	int64_t version; /* the artifact's version_int */
	enum update_state state;
	uint64_t seq; /* of the report that set the state; 0: none */
};

/* What an update.status report says (borrowed strings; NULL or -1 when
 * absent). */
struct update_status {
	const char *deployment_id;
	const char *state;
	int64_t version; /* the manifest version it is about */
	int64_t running_version;
	const char *fw_version;
	const char *reason;
	const char *error;
	int64_t progress;
	int64_t bytes;
};

enum update_verdict {
	UPDATE_ACCEPT = 0, /* move the open row to status->state */
	UPDATE_NOT_OPEN = 1, /* not the device's open deployment: ignore,
				count */
	UPDATE_OUT_OF_ORDER = 2, /* older than what set the row: ignore */
	UPDATE_BAD_STATE = 3, /* a state agents do not report: ignore */
};

/*
 * The rule. A report is about the open row when it names the row's
 * deployment, or, without deployment_id (an older agent), when its
 * version is the row's artifact version. A report whose seq is below the
 * one that set the row never moves it (reports of one device may
 * overtake each other on several job threads), and a finished row is not
 * open, so a late report never moves it back.
 */
enum update_verdict update_report_check(const struct update_open_row *row,
					const struct update_status *status,
					uint64_t seq);

/* A word for logs and the ignored counter ("not-open", ...). */
const char *update_verdict_name(enum update_verdict v);

/* True when an accepted report also tells what the device runs now
 * (committed or rolled_back with running_version or fw_version): the
 * device's firmware fields are updated from it. */
bool update_status_sets_firmware(const struct update_status *status);

/* ---- creating a deployment --------------------------------------------- */

/* One device a selector (or device_id) matched. */
struct update_candidate {
	const char *model; /* NULL when the device never said */
	bool online;
	bool has_open; /* it has an unfinished row (another deployment) */
	enum update_state open_state;
};

enum update_target {
	UPDATE_TARGET_OFFER = 0, /* gets a pending row */
	UPDATE_TARGET_SUPERSEDE = 1, /* gets one; its open row is superseded */
	UPDATE_TARGET_HARDWARE = 2, /* skipped: model not in the manifest */
	UPDATE_TARGET_BUSY = 3, /* skipped: installing another release */
};

/*
 * What a new deployment of an artifact for models hw[0..nhw) does with
 * one matched device: skip it when its model is not in hw (it would
 * refuse the offer: better counted than offered), or when its open row
 * is past downloading (an install in progress is never cut; deploy again
 * once it finished), else offer, superseding an open row that was not
 * installing yet.
 */
enum update_target update_target_of(const struct update_candidate *c,
				    const char *const *hw, size_t nhw);

/* What a deployment does with the devices it matched (dry run or not). */
struct update_plan_counts {
	size_t matched; /* active devices the selector or id matched */
	size_t targets; /* rows created (OFFER + SUPERSEDE) */
	size_t supersede; /* of targets: an open row superseded */
	size_t offline; /* of targets: not connected now */
	size_t hardware_mismatch;
	size_t busy;
};

/* Adds one device's verdict to the counts. */
void update_plan_add(struct update_plan_counts *p,
		     const struct update_candidate *c, enum update_target t);

/* ---- offering ----------------------------------------------------------- */

/*
 * Whether an artifact whose signed manifest expires at expires_at (epoch
 * s) may be offered at now: only before it expires. An agent refuses an
 * expired manifest (DESIGN.md §5), so an offer after that only makes
 * every device refuse it (and a campaign's failure gate trip without
 * saying why). db/deployments.c's offer statement applies the same rule
 * with PostgreSQL's clock, so that rows are not marked offered for it.
 */
bool update_artifact_offerable(int64_t expires_at, int64_t now);

/*
 * Why an active deployment waits for nothing. Once its artifact expired,
 * its `pending` rows are never offered it (update_artifact_offerable):
 * they would stay pending until cancelled, and a deployment of no
 * campaign has no driver to pause it and say so.
 */
struct update_stall_input {
	bool active; /* the deployment's status is "active" */
	int64_t pending; /* its rows never offered */
	int64_t expires_at; /* the artifact's expiry, epoch s (0: unknown) */
	const char *artifact; /* "name version" */
};

/*
 * When d is active with pending rows and its artifact expired at or
 * before now, writes into reason (at most len bytes) how many devices
 * wait, for which artifact and since when, and what to do; returns true.
 * Else returns false and leaves reason untouched.
 */
bool update_deployment_stalled(const struct update_stall_input *d, int64_t now,
			       char *reason, size_t len);

struct update_offer;

/*
 * Drops from list[0..*n) the offers whose artifact is not offerable at
 * now (their envelopes freed), keeping the order of the others; *n
 * becomes the number kept. Returns how many were dropped.
 */
size_t update_offers_drop_expired(struct update_offer *list, size_t *n,
				  int64_t now);

/* ---- a deployment's progress -------------------------------------------- */

struct update_counts {
	size_t by_state[UPDATE_STATE_COUNT];
};

/* Rows not finished. */
size_t update_counts_open(const struct update_counts *c);
size_t update_counts_total(const struct update_counts *c);
/* A deployment is finished when it has rows and none is open. */
bool update_counts_finished(const struct update_counts *c);

#endif
