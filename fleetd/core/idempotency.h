/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Idempotency-Key on creating POSTs (draft-ietf-httpapi-idempotency-key):
 * (actor, key) -> the request's SHA-256 and the first answer. A retry of
 * the same request replays the answer; the same key with another request
 * is a conflict. The record is written by the creating store function in
 * the same unit of work as the creation, so a crash cannot separate them.
 * Answers are stored without secrets (a token is shown once: a replay
 * shows "token": null). Pure rules here; storage in store_idempotency.h.
 */
#ifndef FLEETD_CORE_IDEMPOTENCY_H
#define FLEETD_CORE_IDEMPOTENCY_H

#include <stdbool.h>
#include <stddef.h>

#include "secret.h"

struct store;

#define IDEM_KEY_MAX 255

/* What a creating store function records with its change. */
struct idem_record {
	const char *actor; /* "token:<uuid>", "enroll:<token sha256>" */
	const char *key; /* the Idempotency-Key header, borrowed */
	char request_sha256[SECRET_SHA256_HEX];
	int status; /* the answer's HTTP status */
	char *body; /* the answer to replay (malloc'd, or NULL until made) */
};

enum idem_rc {
	IDEM_NEW = 0, /* go on and record the answer with the change */
	IDEM_REPLAY, /* *status and *body hold the first answer */
	IDEM_MISMATCH, /* the key was used for another request */
	IDEM_ERR, /* storage failed */
};

/* 1..255 visible ASCII characters (0x21..0x7e). */
bool idem_key_valid(const char *key);

/* The fingerprint of a request: its method, path and body. */
void idem_request_hash(const char *method, const char *path, const void *body,
		       size_t body_len, char out[SECRET_SHA256_HEX]);

/*
 * Looks rec's key up for rec's actor and request hash. On IDEM_REPLAY,
 * *status and *body (malloc'd, caller frees) hold the stored answer.
 */
enum idem_rc idem_lookup(struct store *st, const struct idem_record *rec,
			 int *status, char **body);

#endif
