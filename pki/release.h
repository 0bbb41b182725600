/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Signed releases (DESIGN.md §5, docs/internals/updates.md): the manifest
 * a release engineer signs offline, the release key sets agents pin, and
 * the rules an agent applies before it downloads or installs anything.
 * Pure functions over plain structs plus DSSE verification; used by
 * fleetctl (sign, verify, key rotation), fleetd (reads the manifest of an
 * uploaded envelope; it never verifies or signs on a device's behalf) and
 * fleet-agent (verify, then check, then download).
 *
 * Order of checks on the agent, each refusal with its stable reason code
 * (docs/protocol.md, update.status `reason`): verify the envelope's bytes
 * (bad-envelope, bad-signature, unknown-key, threshold), only then parse
 * the manifest (bad-envelope), then check it against the device and the
 * offer (expired, not-newer, hardware, size-mismatch, hash-mismatch).
 */
#ifndef FLEET_PKI_RELEASE_H
#define FLEET_PKI_RELEASE_H

#include "pki.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define PKI_RELEASE_MANIFEST_TYPE PKI_DSSE_MANIFEST_TYPE
#define PKI_RELEASE_KEYSET_TYPE "application/vnd.fleet.keyset+json"
#define PKI_RELEASE_MAX_HW 16
#define PKI_RELEASE_MAX_KEYS 16
#define PKI_RELEASE_NAME_MAX 128 /* name, display version, hw model */
#define PKI_RELEASE_INSTALLER_MAX 64 /* [a-z0-9._-]+ */

/* Why a release or a key set is refused; PKI_RELEASE_OK when it is not.
 * pki_release_reason_code() gives the protocol's code for each. */
enum pki_release_reason {
	PKI_RELEASE_OK,
	PKI_RELEASE_BAD_ENVELOPE, /* "bad-envelope": JSON, type, dup sig */
	PKI_RELEASE_BAD_SIGNATURE, /* "bad-signature": a pinned key's fails */
	PKI_RELEASE_UNKNOWN_KEY, /* "unknown-key": short, signers unpinned */
	PKI_RELEASE_THRESHOLD, /* "threshold": fewer than k pinned keys */
	PKI_RELEASE_EXPIRED, /* "expired" */
	PKI_RELEASE_NOT_NEWER, /* "not-newer": version <= installed */
	PKI_RELEASE_HARDWARE, /* "hardware": model not in hw */
	PKI_RELEASE_SIZE_MISMATCH, /* "size-mismatch" */
	PKI_RELEASE_HASH_MISMATCH, /* "hash-mismatch" */
	PKI_RELEASE_REASON_COUNT
};

const char *pki_release_reason_code(enum pki_release_reason r);

/*
 * The signed manifest. JSON field names (the payload of the envelope):
 *   "name": string, "version": string (display), "version_int": integer
 *   >= 1 (monotonic), "hw": [string, ...] (1 to 16 models),
 *   "installer": string ([a-z0-9._-], e.g. "dir-ab", "single-file"),
 *   "size": integer >= 1, "sha256": 64 lowercase hex digits,
 *   "expires": RFC 3339 UTC ("2027-01-01T00:00:00Z"),
 *   "created": RFC 3339 UTC.
 * Unknown fields are refused (a manifest means exactly what it says).
 */
struct pki_manifest {
	char name[PKI_RELEASE_NAME_MAX + 1];
	char version[PKI_RELEASE_NAME_MAX + 1];
	int64_t version_int;
	char hw[PKI_RELEASE_MAX_HW][PKI_RELEASE_NAME_MAX + 1];
	size_t n_hw;
	char installer[PKI_RELEASE_INSTALLER_MAX + 1];
	uint64_t size;
	char sha256[65];
	time_t expires;
	time_t created;
};

/* Parse verified payload bytes (strict JSON, all fields required):
 * PKI_OK or PKI_ERR_PARSE with a message naming the field. */
enum pki_result pki_manifest_parse(const void *payload, size_t len,
				   struct pki_manifest *out,
				   struct pki_error *err);

/* Canonical JSON of m (sorted keys, no whitespace): what
 * `fleetctl release sign` signs. *json owned by the caller (free). */
enum pki_result pki_manifest_json(const struct pki_manifest *m, char **json,
				  size_t *len, struct pki_error *err);

/*
 * A release key set: the public keys an agent trusts for releases and how
 * many of them must sign (threshold). Version 1 is the set baked into the
 * device image (the agent's update_keys and update_threshold); version n+1
 * is a DSSE envelope of type PKI_RELEASE_KEYSET_TYPE whose payload is
 *   {"version": n+1, "threshold": k, "keys": [{"keyid": hex, "public_key":
 *    PEM}, ...], "created": RFC 3339}
 * signed by at least the threshold of set n's keys.
 */
struct pki_keyset {
	int64_t version;
	size_t threshold;
	size_t n;
	EVP_PKEY *keys[PKI_RELEASE_MAX_KEYS]; /* owned: pki_keyset_clear */
	char ids[PKI_RELEASE_MAX_KEYS][PKI_KEY_ID_LEN];
};

/* Set version 1 from public key PEM files; refuses duplicates and a
 * threshold outside 1..n. */
enum pki_result pki_keyset_from_files(const char *const *paths, size_t n,
				      size_t threshold, struct pki_keyset *out,
				      struct pki_error *err);
void pki_keyset_clear(struct pki_keyset *ks);

/* The keyset JSON payload (as above) and back; used to store the adopted
 * set on the device and by `fleetctl release keys rotate`. */
enum pki_result pki_keyset_json(const struct pki_keyset *ks, char **json,
				size_t *len, struct pki_error *err);
enum pki_result pki_keyset_parse(const void *payload, size_t len,
				 struct pki_keyset *out, struct pki_error *err);

/*
 * Verify a release envelope against the pinned set and parse its manifest.
 * Refuses (never parsing an unverified byte): not an envelope of the
 * manifest type or a signature listed twice (BAD_ENVELOPE); a signature by
 * a pinned key that does not verify (BAD_SIGNATURE); fewer than threshold
 * distinct pinned keys with valid signatures (UNKNOWN_KEY when some
 * signatures came from keys not pinned, else THRESHOLD); a manifest that
 * does not parse (BAD_ENVELOPE). why gets one line for people.
 */
enum pki_release_reason pki_release_verify(const void *envelope, size_t len,
					   const struct pki_keyset *pinned,
					   struct pki_manifest *out, char *why,
					   size_t whylen);

/* The device-side checks of a verified manifest, in this order: expiry
 * (now >= expires), version_int <= installed_version, model not in hw. */
enum pki_release_reason pki_manifest_check(const struct pki_manifest *m,
					   time_t now,
					   int64_t installed_version,
					   const char *model, char *why,
					   size_t whylen);

/* The offer (or the downloaded file) against the manifest: size first,
 * then sha256 (lowercase hex). */
enum pki_release_reason pki_manifest_match(const struct pki_manifest *m,
					   uint64_t size, const char *sha256,
					   char *why, size_t whylen);

/*
 * Verify a key set envelope against the currently pinned set (the same
 * signature rules as releases) and parse it into *next; its version must
 * be exactly current->version + 1 (NOT_NEWER otherwise).
 */
enum pki_release_reason pki_keyset_verify(const void *envelope, size_t len,
					  const struct pki_keyset *current,
					  struct pki_keyset *next, char *why,
					  size_t whylen);

#endif
