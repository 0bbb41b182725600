/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The release key set fleet-agent pins (docs/internals/updates.md "Key
 * set", docs/releases.md "Rotating release keys"): version 1 is the
 * agent's configuration (update_keys: comma-separated public key PEM
 * files, update_threshold), baked into the device image; a later version
 * arrives as update.keys, is verified against the set pinned now
 * (pki_keyset_verify: signed by its threshold, version exactly one above)
 * and only then written to state_dir/keyset.json (the payload, atomically),
 * which from then on wins over the configuration.
 *
 * The pinned set lives on disk, not in a shared structure: the update
 * worker (update.c) loads it for each offer with agent_keyset_load, the
 * loop thread adopts new versions, and an atomic rename is all the two
 * share. Everything here returns 0 / -1 with a message unless said.
 */
#ifndef FLEET_AGENT_KEYSET_H
#define FLEET_AGENT_KEYSET_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "proto/proto.h"
#include "release.h"

#define AGENT_KEYSET_FILE "keyset.json" /* the adopted payload, 0644 */
#define AGENT_KEYSET_FILE_MAX (256u * 1024u)

/*
 * The pinned set: state_dir/keyset.json when it is there (a file that
 * does not parse is an error, never a silent fall back to the retired
 * version 1 keys), else version 1 from update_keys_csv (paths separated by
 * commas, blanks around them ignored) with threshold (<= 0: 1). Returns 1
 * with *ks filled (owned: pki_keyset_clear), 0 when neither exists (no
 * update keys configured: *ks zeroed, updates are refused), -1 with err.
 */
int agent_keyset_load(const char *state_dir, const char *update_keys_csv,
		      long threshold, struct pki_keyset *ks, char *err,
		      size_t errlen);

/*
 * Adopts a key set envelope (the DSSE envelope's JSON bytes): verified
 * against *current with pki_keyset_verify, then written to
 * state_dir/keyset.json atomically, then *current is replaced (the old
 * keys freed). Returns 0 (adopted), 1 (refused: *reason set, why says
 * why), -1 (verified but not stored: why says why, *current unchanged).
 */
int agent_keyset_adopt(const char *state_dir, struct pki_keyset *current,
		       const void *envelope, size_t len,
		       enum pki_release_reason *reason, char *why,
		       size_t whylen);

/* The version hello reports as keyset_version: ks's, 0 when ks is empty
 * (no update keys configured). */
int64_t agent_keyset_version(const struct pki_keyset *ks);

/* The same without keeping a set: keyset.json's version, else 1 when
 * update_keys_csv names keys, else 0 (also when keyset.json is
 * unreadable: then nothing verifies and hello should not claim a set). */
int64_t agent_keyset_pinned_version(const char *state_dir,
				    const char *update_keys_csv);

/*
 * Handles a decoded update.keys on the loop: loads the pinned set, adopts
 * the message's envelope (a version equal to the pinned one is answered
 * adopted again: delivery is at least once), and sets *report to the
 * keys.status to queue (a new object without seq; the caller queues it
 * with fleet_agent_report and releases it). 0, or -1 when out of memory.
 */
int agent_keyset_on_update_keys(const char *state_dir,
				const char *update_keys_csv, long threshold,
				const struct proto_msg *m, json_t **report);

#endif
