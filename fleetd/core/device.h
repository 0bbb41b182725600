/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Devices as plain structs and their rules: presence (the "online" rule),
 * label patches, and what decommissioning does. Storage goes through the
 * store port (core/store_devices.h). Runs on API job threads; patches and
 * ids come from the network and are checked here or by the caller.
 */
#ifndef FLEETD_CORE_DEVICE_H
#define FLEETD_CORE_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/label_set.h"
#include "core/store_certificates.h"

struct store;

#define DEVICE_ID_LEN 37 /* canonical uuid + NUL */
/* Without If-Match a patch is re-applied when a concurrent change wins;
 * with n concurrent writers each round lets one through, so n - 1 retries
 * suffice. */
#define DEVICE_LABEL_PATCH_RETRIES 16

/* One device as the store holds it. Strings are malloc'd, NULL when
 * unknown; release with device_clear. */
struct device {
	char id[DEVICE_ID_LEN];
	bool active; /* false once decommissioned */
	struct label_set labels;
	char *model;
	char *serial; /* the hardware serial the device enrolled with */
	char *fw_version;
	char *agent_version;
	char *inventory_json; /* JSON object text as reported, or NULL */
	int64_t created_at; /* epoch seconds */
	int64_t decommissioned_at; /* 0 when active */
	int64_t last_seen; /* last frame from the device; 0 never */
	int64_t connected_at; /* of its session; 0 without one */
	/* Presence: age of the device's session row (time since the row was
	 * last refreshed, on the store's clock), or -1 without a session. */
	int64_t session_age_us;
	/* In lists: the store's own answer to "online?" (its mirror of
	 * device_online, read with session_age_us), for the contract test;
	 * the API uses device_online(). */
	bool store_online;
	int64_t revision; /* bumped by every operator change: the ETag */
	struct cert_info cert; /* cert.serial "" when none */
};

void device_clear(struct device *d);
void devices_free(struct device *d, size_t n);

/*
 * The "online" rule, the one definition of presence: a device is online
 * while it has a session whose row was refreshed less than
 * heartbeat_timeout_s ago. The SQL mirror is DB_DEVICE_ONLINE_SQL in
 * db/devices.c ("s.last_seen > now() - timeout"); the selector contract
 * test checks that both agree, boundaries included.
 */
bool device_online(int64_t session_age_us, long heartbeat_timeout_s);

/* A merge patch of labels (RFC 7386 on a flat object of strings): set
 * these, remove those. */
struct label_patch {
	struct label_set set;
	char **remove; /* keys, malloc'd */
	size_t nremove;
};

/* Adds "remove key" to the patch (copies key). LABEL_OK or an error. */
enum label_rc label_patch_remove(struct label_patch *p, const char *key);
void label_patch_clear(struct label_patch *p);

/*
 * The labels after applying p to cur (into *out, label_set_clear it):
 * removals first, then sets. LABEL_ERR_TOO_MANY when the result would
 * hold more than LABELS_MAX labels.
 */
enum label_rc device_labels_apply(const struct label_set *cur,
				  const struct label_patch *p,
				  struct label_set *out);

enum device_rc {
	DEVICE_OK = 0,
	DEVICE_ERR_STORE, /* see store_unavailable() */
	DEVICE_NOTFOUND,
	DEVICE_PRECONDITION, /* If-Match differs */
	DEVICE_CONFLICT, /* decommissioned: no more changes */
	DEVICE_TOO_MANY_LABELS,
	DEVICE_ERR_NOMEM,
};

/*
 * Applies a label patch for actor (audit). if_match < 0: no precondition
 * (the patch is applied to whatever revision is current, retrying when a
 * concurrent change wins). *out is the device afterwards.
 */
enum device_rc device_patch_labels(struct store *st, const char *id,
				   int64_t if_match,
				   const struct label_patch *p,
				   const char *actor, struct device *out);

/* RFC 5280 reason for the certificates of a decommissioned device. */
#define DEVICE_DECOMMISSION_REASON 5 /* cessationOfOperation */

/*
 * Decommissions: the device stops being active, every certificate of it
 * is revoked (DEVICE_DECOMMISSION_REASON), the CRL's generation moves on
 * and live sessions are closed, in one unit of work with its audit row.
 * *out is the device afterwards.
 */
enum device_rc device_decommission(struct store *st, const char *id,
				   int64_t if_match, const char *actor,
				   struct device *out);

#endif
