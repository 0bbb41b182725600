/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration profiles (DESIGN.md §6, issue 9): the rules on plain
 * structs and JSON values. A profile is a named JSON object with
 * immutable numbered versions; a device has at most one profile (pinned
 * to a version or following the latest) plus overrides, an RFC 7386 merge
 * patch; its effective config is merge(version, overrides), stored and
 * sent as canonical JSON (common/canon.h) whose SHA-256 is the config
 * hash. Also: drift classification, change progress, and the clone
 * computation that db/config.c runs inside its transactions.
 *
 * Pure code, no I/O. Documents and patches come from operators (API
 * bodies) and are checked here; stored texts come from the store.
 * Storage: core/store_config.h. Notes: docs/internals/config.md.
 */
#ifndef FLEETD_CORE_CONFIG_H
#define FLEETD_CORE_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Canonical text of any stored document, version, overrides or
 * effective config: at most 256 KiB (the migration checks it too). */
#define CONFIG_DOC_MAX (256u * 1024u)
#define CONFIG_NAME_MAX 63 /* [a-z0-9][a-z0-9._-]{0,62} */
#define CONFIG_TEXT_MAX 1024 /* description, note */
#define CONFIG_ID_LEN 37 /* canonical uuid + NUL */
#define CONFIG_SHA_LEN 65 /* lowercase hex + NUL */
#define CONFIG_REASON_MAX 4096
/* How many targets of a dry run get a diff in the answer. */
#define CONFIG_SAMPLE_MAX 5
/* How many failed devices GET /config/changes/{id} lists. */
#define CONFIG_FAILED_LIST_MAX 100
/* Versions are numbered 1, 2, ... up to this. */
#define CONFIG_VERSION_MAX 2147483647

enum config_rc {
	CONFIG_OK = 0,
	CONFIG_ERR_STORE = -1, /* see store_unavailable() */
	CONFIG_ERR_NOMEM = -2,
	CONFIG_NOTFOUND = 1, /* the profile/device/change addressed */
	CONFIG_PROFILE_UNKNOWN, /* a profile named in a body */
	CONFIG_VERSION_UNKNOWN, /* a version named in a body */
	CONFIG_NO_VERSION, /* the profile has no published version yet */
	CONFIG_NAME_TAKEN,
	CONFIG_PRECONDITION, /* If-Match differs (or a racing publish) */
	CONFIG_DECOMMISSIONED,
	CONFIG_NO_MATCH, /* the selector matches no active device */
	CONFIG_SOURCE_EMPTY, /* the source device has no configuration */
	CONFIG_TOO_LARGE, /* a document over CONFIG_DOC_MAX */
	CONFIG_INVALID_DOC, /* not an object, or a null member */
	CONFIG_INVALID_PATCH, /* overrides that are not an object patch */
	CONFIG_IDEM_TAKEN, /* a concurrent request holds the key */
};

/* A canonical document: text (malloc'd, NUL-terminated), its length and
 * its SHA-256. */
struct config_doc {
	char *text;
	size_t len;
	char sha256[CONFIG_SHA_LEN];
};

void config_doc_clear(struct config_doc *d);
/* A copy of src into *dst. CONFIG_OK or CONFIG_ERR_NOMEM. */
enum config_rc config_doc_copy(struct config_doc *dst,
			       const struct config_doc *src);

/* --- documents and patches ------------------------------------------ */

/* [a-z0-9][a-z0-9._-]{0,62}: a profile name, safe in a URL path. */
bool config_name_valid(const char *name);

/*
 * Canonicalises doc into *out. CONFIG_TOO_LARGE past CONFIG_DOC_MAX,
 * CONFIG_ERR_NOMEM.
 */
enum config_rc config_canon(const json_t *doc, struct config_doc *out);

/*
 * A profile version's document: a JSON object whose objects (those
 * reached through object members) hold no null member, because a merge
 * patch cannot produce one (null deletes), so a document with nulls could
 * never be an effective config reproduced by a clone. Nulls inside arrays
 * are fine. CONFIG_OK, or CONFIG_INVALID_DOC with err naming the member
 * as a JSON pointer.
 */
enum config_rc config_document_check(const json_t *doc, char *err,
				     size_t errlen);

/* Overrides: an RFC 7386 merge patch that is a JSON object (a patch that
 * is not an object would replace the whole document, which is what a
 * profile is for). CONFIG_OK or CONFIG_INVALID_PATCH with err. */
enum config_rc config_patch_check(const json_t *patch, char *err,
				  size_t errlen);

/*
 * RFC 7386 MergePatch(target, patch): a new value (caller decrefs); the
 * inputs are not changed. target may be NULL (undefined). NULL only when
 * memory runs out.
 */
json_t *config_merge_patch(const json_t *target, const json_t *patch);

/*
 * A merge patch p with MergePatch(from, p) equal to to, for a null-free
 * to (config_document_check): members of from missing in to become null,
 * differing members recurse when both are objects, else are copied.
 * from NULL means {}. A new object (caller decrefs), NULL when out of
 * memory.
 */
json_t *config_merge_diff(const json_t *from, const json_t *to);

/*
 * The effective config merge(base, overrides) of canonical texts: base
 * NULL means no profile ({}), overrides NULL means none (the base as it
 * is). CONFIG_TOO_LARGE, CONFIG_INVALID_DOC when a stored text does not
 * parse, CONFIG_ERR_NOMEM.
 */
enum config_rc config_effective(const char *base, const char *overrides,
				struct config_doc *out);

/* --- desired vs reported ------------------------------------------------ */

enum config_reported_status {
	CONFIG_REPORTED_NONE = 0, /* nothing reported yet */
	CONFIG_REPORTED_APPLIED,
	CONFIG_REPORTED_FAILED,
	CONFIG_REPORTED_DRIFTED,
};

/* "applied", "failed", "drifted" (the stored text) <-> enum; unknown text
 * is CONFIG_REPORTED_NONE. */
enum config_reported_status config_reported_parse(const char *text);
const char *config_reported_name(enum config_reported_status s);

/* Where a device stands. */
enum config_state {
	CONFIG_STATE_NONE = 0, /* no desired configuration */
	CONFIG_STATE_IN_SYNC, /* reported the desired hash as applied */
	CONFIG_STATE_PENDING, /* online; the desired document is on its way */
	CONFIG_STATE_OFFLINE, /* pending, and the device is offline */
	CONFIG_STATE_FAILED, /* the desired generation failed to apply */
	CONFIG_STATE_DRIFTED, /* the file on the device is not the desired */
};
#define CONFIG_STATE_COUNT (CONFIG_STATE_DRIFTED + 1)

const char *config_state_name(enum config_state s);

struct config_desired {
	const char *sha256; /* NULL: no configuration */
	int64_t generation;
};

struct config_reported {
	enum config_reported_status status; /* NONE: never reported */
	const char *sha256; /* may be NULL */
	int64_t generation;
};

/*
 * The drift rule (the SQL mirror is CONFIG_DRIFT_SQL in db/config.c):
 * no desired document -> NONE; the desired generation reported failed ->
 * FAILED; the desired hash reported applied (or drifted back to it) ->
 * IN_SYNC; the desired generation (or a later one) reported with another
 * hash -> DRIFTED; otherwise the document is still to be delivered:
 * PENDING while online, OFFLINE while not.
 */
enum config_state config_classify(const struct config_desired *d,
				  const struct config_reported *r, bool online);

/* Progress of one device in a change set that gave it generation g. */
enum config_member_state {
	CONFIG_MEMBER_PENDING = 0,
	CONFIG_MEMBER_OFFLINE,
	CONFIG_MEMBER_APPLIED,
	CONFIG_MEMBER_FAILED,
	CONFIG_MEMBER_SUPERSEDED, /* a later change set the device again */
};

const char *config_member_state_name(enum config_member_state s);

/*
 * The change-progress rule (SQL mirror CONFIG_MEMBER_SQL in db/config.c):
 * applied when the device reported generation >= g as applied or drifted
 * (it took g; a local edit afterwards is drift, not a failed change), or
 * any later generation; failed when it reported g failed; superseded when
 * its desired generation moved past g (and it has not reported g or
 * later); else pending (online) or offline.
 */
enum config_member_state config_member_classify(int64_t g,
						int64_t desired_generation,
						const struct config_reported *r,
						bool online);

/* --- profiles and versions ---------------------------------------------- */

struct config_profile {
	char id[CONFIG_ID_LEN];
	char name[CONFIG_NAME_MAX + 1];
	char *description; /* malloc'd, never NULL once read */
	int latest_version; /* 0 while none is published */
	char latest_sha256[CONFIG_SHA_LEN]; /* "" while none */
	char *created_by;
	int64_t created_at;
	int64_t updated_at;
};

void config_profile_clear(struct config_profile *p);
void config_profiles_free(struct config_profile *p, size_t n);

struct config_version {
	int version;
	struct config_doc doc; /* doc.text NULL in lists */
	char *note;
	char *created_by;
	int64_t created_at;
};

void config_version_clear(struct config_version *v);
void config_versions_free(struct config_version *v, size_t n);

/*
 * The ETag of a profile is its latest version number: a publish with
 * If-Match n succeeds only while n is still the latest (a racing publish
 * gets CONFIG_PRECONDITION, 412). if_match < 0 means no If-Match.
 * Returns the number of the new version, or 0 when the precondition
 * fails or the numbers are exhausted.
 */
int config_next_version(int latest, int64_t if_match);

/* --- one device ------------------------------------------------------------ */

/* A device's configuration as the store holds it. Strings malloc'd. */
struct device_config {
	char device_id[CONFIG_ID_LEN];
	bool active;
	char profile[CONFIG_NAME_MAX + 1]; /* "" none */
	int pinned_version; /* 0: follows latest */
	int version; /* the version its desired state was built from, 0 */
	char *overrides; /* canonical merge patch, or NULL */
	int64_t revision; /* ETag of the assignment (1 before any) */
	struct config_doc desired; /* sha256 "": none (text NULL in lists) */
	int64_t desired_generation;
	char desired_change_id[CONFIG_ID_LEN]; /* "" none */
	int64_t desired_at;
	enum config_reported_status reported_status; /* NONE: never reported */
	int64_t reported_generation;
	char reported_sha256[CONFIG_SHA_LEN]; /* "" none */
	char *reported_reason;
	int64_t reported_at;
	int64_t session_age_us; /* -1: no session (core/device.h) */
};

void device_config_clear(struct device_config *c);
void device_configs_free(struct device_config *c, size_t n);

/* config_classify of a stored device_config (online per device_online). */
enum config_state device_config_state(const struct device_config *c,
				      long heartbeat_timeout_s);

/* --- clones and publishes -------------------------------------------------- */

enum config_clone_mode {
	/* targets get the source's profile and version (pinned or latest);
	 * their own overrides stay */
	CONFIG_CLONE_ASSIGN = 0,
	/* targets keep their profile; their overrides become the patch that
	 * turns their base into the source's effective document, so every
	 * target's effective config equals the source's */
	CONFIG_CLONE_COPY,
};

/*
 * One target of a clone or publish, as the store read it (under lock, in
 * the transaction that writes the result), with what compute decides.
 */
struct config_target {
	/* in (borrowed, owned by the store's rows) */
	const char *device_id;
	const char *base; /* canonical text of the version it has, or NULL */
	const char *base_key; /* "profile_id:version" of base, or NULL */
	const char *overrides; /* canonical, or NULL */
	const char *desired_sha256; /* NULL: none */
	bool online;
	/* out (owned by the struct config_compute) */
	const struct config_doc *effective;
	const struct config_doc *new_overrides; /* COPY mode; NULL: none */
	bool changed; /* effective hash differs from desired */
};

/* What the targets get. */
struct config_source {
	enum config_clone_mode mode;
	/* ASSIGN: the version document every target gets as its base (the
	 * source's resolved version). COPY: unused. */
	const char *base;
	/* COPY: the source's effective document. ASSIGN: unused. */
	const struct config_doc *effective;
};

/* Cache and owner of the documents a compute produced (targets that
 * share a base and overrides share one result). */
struct config_compute {
	struct config_compute_entry *entries;
	size_t n, cap;
	size_t *slots; /* open addressing: index + 1 into entries, 0 free */
	size_t nslots;
	/* counts over the targets */
	size_t matched, changed, unchanged, offline;
	/* the first target that failed, and why */
	const char *failed_device;
	enum config_rc failed_rc;
};

void config_compute_init(struct config_compute *cc);
void config_compute_clear(struct config_compute *cc);

/*
 * Decides every target's new effective document (and overrides in COPY
 * mode) and whether it changes, filling the counts. Targets with equal
 * (base, overrides) are computed once. CONFIG_OK, or the first error
 * (CONFIG_TOO_LARGE, CONFIG_INVALID_DOC, CONFIG_ERR_NOMEM) with
 * cc->failed_device naming the target.
 */
enum config_rc config_compute_targets(struct config_compute *cc,
				      const struct config_source *src,
				      struct config_target *t, size_t n);

/*
 * A short diff of two canonical documents for the dry-run sample: a JSON
 * merge patch that turns from into to (config_merge_diff). NULL from or
 * to mean {}. A new value, NULL when out of memory or a text does not
 * parse.
 */
json_t *config_diff_texts(const char *from, const char *to);

#endif
