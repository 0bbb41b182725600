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
struct selector;

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
	char *address; /* the peer address of its session, NULL without */
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
	int64_t keyset_version; /* release key set it pins; 0: not reported */
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
	DEVICE_AMBIGUOUS, /* an id prefix names more than one device */
	DEVICE_BAD_REF, /* neither an id nor a prefix of 8+ characters */
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

/* ---- naming a device by its id or a unique prefix of it -------------- */

#define DEVICE_ID_PREFIX_MIN 8
#define DEVICE_CANDIDATES_MAX 10

/*
 * Reads a reference to a device: a full id, or a prefix of one of at
 * least DEVICE_ID_PREFIX_MIN characters (hex digits, with the dashes
 * where a UUID has them; upper case is read as lower case). 0 with lo
 * and hi, the smallest and largest ids with that prefix (equal for a
 * full id; *full says which), or -1.
 */
int device_ref_parse(const char *text, char lo[DEVICE_ID_LEN],
		     char hi[DEVICE_ID_LEN], bool *full);

/* The devices a prefix may mean (ids in order; more: there are others). */
struct device_candidates {
	size_t n;
	bool more;
	char ids[DEVICE_CANDIDATES_MAX][DEVICE_ID_LEN];
};

/*
 * The one device text names into id: a full id as is (whether or not
 * the device exists: the caller's lookup says 404), a prefix when
 * exactly one device has it. DEVICE_NOTFOUND (no device has the prefix),
 * DEVICE_AMBIGUOUS (*cands lists them), DEVICE_BAD_REF, DEVICE_ERR_STORE.
 */
enum device_rc device_resolve(struct store *st, const char *text,
			      char id[DEVICE_ID_LEN],
			      struct device_candidates *cands);

/* ---- lists ------------------------------------------------------------ */

/* What a list is ordered by; ties and pages by id. Times a device does
 * not have (never seen, no certificate) sort as the oldest. */
enum device_sort_key {
	DEVICE_SORT_CREATED, /* "created" (the default) */
	DEVICE_SORT_LAST_SEEN, /* "last_seen" */
	DEVICE_SORT_CERT_EXPIRY, /* "cert_expiry": certificate not_after */
};

struct device_sort {
	enum device_sort_key key;
	bool desc; /* "-created": newest first */
};

/* "created", "last_seen", "cert_expiry", each optionally with a leading
 * "-" for descending. 0 or -1. */
int device_sort_parse(const char *text, struct device_sort *out);

/* ---- bulk actions on a selector --------------------------------------- */

#define DEVICE_BULK_SAMPLE 10

/* What a bulk action matched (or, dry run, would match). */
struct device_bulk_result {
	int64_t matched; /* active devices the selector matched */
	size_t nsample; /* the first of them by age, at most SAMPLE */
	char sample[DEVICE_BULK_SAMPLE][DEVICE_ID_LEN];
	/* DEVICE_TOO_MANY_LABELS: a device the patch would take past the
	 * label limit (nothing was changed) */
	char blocked[DEVICE_ID_LEN];
	int64_t revoked; /* decommission: certificates revoked */
};

/*
 * Applies a label patch to every active device sel matches (sel is
 * narrowed to status=active here), in one unit of work with one audit
 * row "device.bulk_label" (target: selector_text, details: the patch and
 * the ids). online in sel follows heartbeat_timeout_s. Refused whole (DEVICE_TOO_MANY_LABELS, out->blocked) if any
 * device would pass the rule of device_labels_apply. dry_run: only
 * counts and samples. *out is filled on DEVICE_OK.
 */
enum device_rc device_bulk_label(struct store *st, const char *selector_text,
				 struct selector *sel, long heartbeat_timeout_s,
				 const struct label_patch *p, bool dry_run,
				 const char *actor,
				 struct device_bulk_result *out);

/*
 * Decommissions every active device sel matches (narrowed as above), as
 * device_decommission does one, in one unit of work with one audit row
 * "device.bulk_decommission" and one notification. dry_run: only counts.
 */
enum device_rc device_bulk_decommission(struct store *st,
					const char *selector_text,
					struct selector *sel,
					long heartbeat_timeout_s, bool dry_run,
					const char *actor,
					struct device_bulk_result *out);

#endif
