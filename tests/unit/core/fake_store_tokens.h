/* SPDX-License-Identifier: Apache-2.0 */
/*
 * In-memory fake of the store port for tokens, enrollment, audit and
 * Idempotency-Key (core/store_tokens.h, store_enroll.h, store_audit.h,
 * store_idempotency.h), for the core unit tests: plain arrays, each
 * function all-or-nothing like the PostgreSQL adapter. Tests can make the
 * next calls fail (fail_next) and look at what was written.
 */
#ifndef FAKE_STORE_TOKENS_H
#define FAKE_STORE_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/store_audit.h"
#include "core/store_enroll.h"
#include "core/store_idempotency.h"
#include "core/store_tokens.h"

#define FAKE_MAX 64

struct fake_token {
	struct token tok;
	char sha256[SECRET_SHA256_HEX];
};

struct fake_device {
	char id[SECRET_UUID_LEN];
	char token_id[SECRET_UUID_LEN];
	struct label_set labels;
	char cert_serial[64];
	char issuer[65];
	char *model, *serial, *profile;
};

struct fake_audit {
	char actor[AUDIT_ACTOR_MAX];
	char action[40];
	char target[SECRET_UUID_LEN];
	size_t nfields;
	char keys[AUDIT_FIELDS_MAX][32];
	char strs[AUDIT_FIELDS_MAX][80]; /* AUDIT_STR values, "" if NULL */
};

struct fake_idem {
	char actor[AUDIT_ACTOR_MAX];
	char key[256];
	char sha256[SECRET_SHA256_HEX];
	int status;
	char *body;
};

struct store {
	struct fake_token tokens[FAKE_MAX];
	size_t ntokens;
	struct fake_device devices[FAKE_MAX];
	size_t ndevices;
	struct fake_audit audit[FAKE_MAX];
	size_t naudit;
	struct fake_idem idem[FAKE_MAX];
	size_t nidem;
	int fail_next; /* the next N store calls answer STORE_ERR */
	bool fail_record; /* store_enroll_record answers STORE_ERR */
	bool unavailable; /* what store_unavailable() says */
	uint64_t session; /* what store_session() says */
	/* Called by store_enroll_record before its guard: what a
	 * concurrent request does between core's read and the record. */
	void (*on_record)(struct store *st);
	int finds, records; /* calls */
};

struct store *fake_store_new(void);
void fake_store_free(struct store *st);
/* The token record with this id (NULL if none). */
struct fake_token *fake_store_token(struct store *st, const char *id);
/* The audit rows with this action. */
size_t fake_store_audit_count(const struct store *st, const char *action);

#endif
