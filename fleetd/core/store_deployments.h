/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store port of deployments and release key sets (core/update.h,
 * docs/internals/updates.md); fleetd/db/deployments.c and
 * fleetd/db/release_keysets.c implement it on PostgreSQL against
 * migrations/0011_updates.sql (the contract) and 0012. Each function is
 * one atomic unit of work. Documents for the API are built by PostgreSQL
 * (json_build_object) and handed out as jansson values (db/query.h).
 */
#ifndef FLEETD_CORE_STORE_DEPLOYMENTS_H
#define FLEETD_CORE_STORE_DEPLOYMENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/page.h"
#include "core/report.h"
#include "core/store.h"
#include "core/update.h"

struct idem_record;
struct selector;

enum deploy_rc {
	DEPLOY_OK = 0,
	DEPLOY_ERR_STORE = -1, /* see store_unavailable() */
	DEPLOY_NOTFOUND = 1, /* no such deployment */
	DEPLOY_UNKNOWN_ARTIFACT = 2,
	DEPLOY_ARTIFACT_NOT_READY = 3, /* its file is not (fully) uploaded */
	DEPLOY_ARTIFACT_EXPIRED = 4, /* every agent would refuse it */
	DEPLOY_UNKNOWN_DEVICE = 5, /* device_id: no such active device */
	DEPLOY_NO_MATCH = 6, /* the selector matches no active device */
	DEPLOY_NO_TARGETS = 7, /* matched, but every device was skipped */
	DEPLOY_IDEM_TAKEN = 8, /* a concurrent request holds the key */
	DEPLOY_NOT_ACTIVE = 9, /* cancel: already finished or cancelled */
	DEPLOY_KEYSET_VERSION = 10, /* not the next key set version */
	DEPLOY_CAMPAIGN_OWNED = 11, /* cancel: a campaign's (abort it) */
};

struct deployment_create {
	char id[37]; /* the new deployment's id (lowercase uuid) */
	const char *artifact_id;
	const char *device_id; /* one device, or NULL */
	const struct selector *selector; /* or a selector (parsed) */
	const char *selector_text;
	bool dry_run;
	long heartbeat_timeout_s; /* "offline" in the counts */
	const char *actor;
	const struct idem_record *idem; /* NULL without a key; its body is
					   filled by the store */
};

/*
 * Plans (dry run) or creates a deployment: reads the matched active
 * devices with their open rows (locked unless dry_run), decides each with
 * update_target_of, and for real inserts the deployment, supersedes the
 * open rows it replaces, inserts one pending row per target, writes the
 * audit row `deployment.create` and the Idempotency-Key record, and
 * NOTIFY fleet_update once; all in one transaction. *answer (malloc'd
 * JSON object text) is the API's answer, also the replayed one.
 */
enum deploy_rc store_deployment_create(struct store *st,
				       const struct deployment_create *req,
				       struct update_plan_counts *counts,
				       char **answer);

/* A page of deployments, oldest first (cursor: created_at, id). *items is
 * a JSON array (caller decrefs). */
enum deploy_rc store_deployment_list(struct store *st, const struct page *page,
				     json_t **items,
				     char next[PAGE_CURSOR_MAX]);

/* One deployment with counts per state, the artifact's name and version,
 * and its failures (up to 100: failed, rolled_back, refused with reason
 * and error). DEPLOY_NOTFOUND. */
enum deploy_rc store_deployment_get(struct store *st, const char *id,
				    json_t **doc);

/* The devices of a deployment, page by page (cursor: the device's
 * created_at, id); state NULL for all. DEPLOY_NOTFOUND. */
enum deploy_rc store_deployment_devices(struct store *st, const char *id,
					const char *state,
					const struct page *page, json_t **items,
					char next[PAGE_CURSOR_MAX]);

/*
 * Cancels a deployment: its open rows that were not installing yet
 * (update_state_supersedable) become superseded; rows installing go on
 * and report as usual (agents are not told to abort). Audit row
 * `deployment.cancel`. DEPLOY_NOTFOUND, DEPLOY_NOT_ACTIVE,
 * DEPLOY_CAMPAIGN_OWNED (a campaign made it: pause or abort the
 * campaign instead). *superseded
 * says how many rows it moved.
 */
enum deploy_rc store_deployment_cancel(struct store *st, const char *id,
				       const char *actor, size_t *superseded);

/* ---- release key sets ------------------------------------------------- */

/*
 * Stores release key set `version` (the envelope as received and its
 * payload as parsed, JSON object texts) when it is the next one (the
 * highest stored + 1, or 2 when none), with its audit row and NOTIFY
 * fleet_keys. DEPLOY_KEYSET_VERSION otherwise (*expected says which).
 */
enum deploy_rc store_keyset_add(struct store *st, int64_t version,
				const char *envelope, const char *keyset,
				const char *actor, int64_t *expected);

/* Every stored key set (version 2 up), oldest first, as a JSON array. */
enum deploy_rc store_keyset_list(struct store *st, json_t **items);

/* ---- the channel ------------------------------------------------------ */

/* An offer to send: the device's open row and its artifact. */
struct update_offer {
	char device_id[37]; /* first: the channel searches lists by it */
	char deployment_id[37];
	char campaign_id[37]; /* "" when none */
	char sha256[65];
	int64_t version;
	int64_t size;
	int64_t expires_at; /* the manifest's expiry, epoch s */
	char *envelope; /* JSON object text (malloc'd) */
};

/*
 * Of the n devices in ids, the open rows to offer whose artifact has not
 * expired (update_artifact_offerable, with PostgreSQL's clock: rows of an
 * expired artifact stay pending and are not returned) (pending_only: rows
 * never offered; else every open row, for a device that just said
 * hello); rows in state pending become offered. *out sorted by device id
 * (strcmp order), NULL when empty; free with update_offers_free.
 */
enum store_rc store_update_offers(struct store *st, const char *const *ids,
				  size_t n, bool pending_only,
				  struct update_offer **out, size_t *nout);
void update_offers_free(struct update_offer *list, size_t n);

/* A stored key set to send (update.keys). */
struct update_keyset {
	char device_id[37]; /* whom to send it; first, as in update_offer */
	int64_t version;
	char *envelope; /* JSON object text (malloc'd) */
};

/* After a hello: records the key set version the agent pins (version
 * >= 1; -1 when the hello did not say, then taken as 1 and nothing is
 * recorded) and gives the key sets above it, in order. */
enum store_rc store_update_hello_keys(struct store *st, const char *device_id,
				      int64_t version,
				      struct update_keyset **out, size_t *nout);

/* Of the n devices in ids, every key set above the one each device pins
 * (its last hello or keys.status), by device id (strcmp order) then
 * version. */
enum store_rc store_update_keys_due(struct store *st, const char *const *ids,
				    size_t n, struct update_keyset **out,
				    size_t *nout);
void update_keysets_free(struct update_keyset *list, size_t n);

/*
 * Applies an update.status once: under the device's report window (as
 * store_report_apply), for a new seq only, reads the device's open row,
 * asks update_report_check, and either moves the row (and, for
 * update_status_sets_firmware, the device's fw_version and
 * fw_version_num; and finishes the deployment when no row is open any
 * more) or counts the report as ignored; one transaction. STORE_OK with
 * *verdict (*uv meaningful when *verdict is REPORT_NEW); STORE_NOTFOUND
 * for a device that is not active; STORE_ERR.
 */
enum store_rc store_update_report_apply(struct store *st, const char *device_id,
					const struct report *r,
					const struct update_status *status,
					enum report_verdict *verdict,
					enum update_verdict *uv);

/* Applies a keys.status once: "adopted" stores version as the device's
 * pinned key set version (never lowering it). */
enum store_rc store_keys_report_apply(struct store *st, const char *device_id,
				      const struct report *r, int64_t version,
				      const char *state,
				      enum report_verdict *verdict);

#endif
