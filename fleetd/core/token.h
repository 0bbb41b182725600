/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tokens, the one implementation behind both kinds:
 *   enrollment tokens ("fle_" + 64 hex): operators make them, enrolling
 *     devices spend them; they expire, have a use count, and carry the
 *     labels and profile a new device gets;
 *   admin tokens ("fla_" + 64 hex): API bearer tokens with a role
 *     (viewer < operator < admin).
 * A token's text is 256 random bits, shown once, stored only as its
 * SHA-256, looked up by that hash (so there is no secret comparison to
 * time). The rules live here on plain structs; storage goes through the
 * store port (core/store_tokens.h). Runs on API job threads and in
 * `fleetd token create`; every input is untrusted.
 */
#ifndef FLEETD_CORE_TOKEN_H
#define FLEETD_CORE_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/label_set.h"
#include "core/page.h"
#include "secret.h"

struct store;
struct idem_record;

enum token_kind {
	TOKEN_ENROLL = 0,
	TOKEN_ADMIN,
};

enum token_role {
	TOKEN_ROLE_NONE = 0,
	TOKEN_ROLE_VIEWER,
	TOKEN_ROLE_OPERATOR,
	TOKEN_ROLE_ADMIN,
};

#define TOKEN_TEXT_MAX 72 /* "fle_" + 64 hex + NUL, rounded up */
#define TOKEN_USES_MAX 1000000L
#define TOKEN_EXPIRES_MAX (366L * 86400)
#define TOKEN_EXPIRES_DEFAULT 86400L
#define TOKEN_TEXT_FIELD_MAX 255 /* name, profile */

/* One token record of either kind, without its secret. */
struct token {
	enum token_kind kind;
	char id[SECRET_UUID_LEN];
	int64_t created_at; /* epoch seconds */
	int64_t revoked_at; /* 0 when not revoked */
	/* enrollment tokens */
	long uses_total;
	long uses_left;
	int64_t expires_at; /* admin tokens: 0 when it never expires */
	struct label_set labels;
	char *profile; /* malloc'd or NULL */
	/* admin tokens */
	enum token_role role;
	char *name; /* malloc'd, "" when none */
	int64_t last_used_at; /* 0 when never */
};

/* What a create request asks for (validated by token_spec_check). */
struct token_spec {
	enum token_kind kind;
	long uses; /* enrollment: 1..TOKEN_USES_MAX */
	/* enrollment: seconds, 1..TOKEN_EXPIRES_MAX; admin: 0 (never, the
	 * default) or 1..TOKEN_EXPIRES_MAX */
	long expires_in;
	struct label_set labels; /* enrollment; owned by the spec */
	const char *profile; /* enrollment; borrowed, may be NULL */
	enum token_role role; /* admin */
	const char *name; /* admin; borrowed, may be NULL */
};

/* Why a request or a token is refused. */
enum token_rc {
	TOKEN_OK = 0,
	TOKEN_ERR_STORE, /* storage failed: see store_unavailable() */
	TOKEN_ERR_NOMEM, /* or no randomness */
	TOKEN_ERR_USES, /* spec: uses out of range */
	TOKEN_ERR_EXPIRES, /* spec: expires_in out of range */
	TOKEN_ERR_ROLE, /* spec: no valid role */
	TOKEN_ERR_TEXT, /* spec: name or profile too long or not text */
	TOKEN_NOTFOUND, /* no such token */
	TOKEN_ALREADY_REVOKED,
	TOKEN_IDEM_TAKEN, /* a concurrent request used the Idempotency-Key */
	/* Refusals of a presented token, most specific first. */
	TOKEN_UNKNOWN,
	TOKEN_REVOKED,
	TOKEN_EXPIRED,
	TOKEN_EXHAUSTED,
};

/* "fle_" / "fla_". */
const char *token_prefix(enum token_kind kind);

/* True if text has the shape of a token of this kind (prefix and 64
 * lowercase hex digits); a false one costs no storage round trip. */
bool token_text_valid(enum token_kind kind, const char *text);

/* "admin" / "operator" / "viewer" and back (TOKEN_ROLE_NONE if none). */
enum token_role token_role_parse(const char *text);
const char *token_role_name(enum token_role role);

/*
 * A duration: "86400", "90s", "30m", "24h", "7d". Returns seconds in
 * 1..TOKEN_EXPIRES_MAX, or -1 when invalid or out of range.
 */
long token_duration_parse(const char *text);

/* Fills the defaults of a kind (1 use, 24 h; no labels). */
void token_spec_init(struct token_spec *spec, enum token_kind kind);
/* Checks the ranges and texts of a spec. */
enum token_rc token_spec_check(const struct token_spec *spec);
void token_spec_clear(struct token_spec *spec);

/*
 * The refusal of a presented enrollment token as of now: revoked before
 * expired before exhausted (the most durable reason first, so a retry
 * does not change the answer); TOKEN_OK when usable.
 */
enum token_rc token_enroll_refusal(const struct token *tok, int64_t now);

/*
 * Makes a new token from a checked spec: a fresh id and secret, the record
 * as it will be stored (created now), and the secret's SHA-256. *text is
 * the secret to show once (wipe it with OPENSSL_cleanse). Nothing stored
 * yet: the caller may render the answer first (for Idempotency-Key) and
 * then call token_store(). TOKEN_OK or TOKEN_ERR_NOMEM.
 */
enum token_rc token_make(const struct token_spec *spec, int64_t now,
			 struct token *out, char text[TOKEN_TEXT_MAX],
			 char sha256[SECRET_SHA256_HEX]);

/*
 * Stores a made token with its audit row (actor, "<kind>.create") and,
 * when idem is not NULL, the Idempotency-Key record, in one unit of work.
 * TOKEN_OK, TOKEN_IDEM_TAKEN or TOKEN_ERR_STORE.
 */
enum token_rc token_store(struct store *st, const struct token *tok,
			  const char *sha256, const char *actor,
			  const struct idem_record *idem);

/* TOKEN_OK (*out filled, token_clear it), TOKEN_NOTFOUND, ERR_STORE. */
enum token_rc token_get(struct store *st, enum token_kind kind, const char *id,
			struct token *out);

/* One page, oldest first; *items (n of them) freed with tokens_free. */
enum token_rc token_list(struct store *st, enum token_kind kind,
			 const struct page *page, struct token **items,
			 size_t *n, char next[PAGE_CURSOR_MAX]);

/* Revokes now, with its audit row. TOKEN_OK (*out is the revoked token),
 * TOKEN_NOTFOUND, TOKEN_ALREADY_REVOKED or TOKEN_ERR_STORE. */
enum token_rc token_revoke(struct store *st, enum token_kind kind,
			   const char *id, const char *actor, int64_t now,
			   struct token *out);

/*
 * The admin token a bearer presents: TOKEN_OK with *out (its role, id),
 * TOKEN_UNKNOWN (wrong shape or unknown), TOKEN_REVOKED, TOKEN_EXPIRED
 * (its expires_at passed) or TOKEN_ERR_STORE. Notes the use of a valid
 * token (at most once a minute).
 */
enum token_rc token_authenticate(struct store *st, const char *text,
				 int64_t now, struct token *out);

/* The audit action of a kind's verb: "token.create", "admin_token.revoke". */
const char *token_action(enum token_kind kind, bool revoke);

void token_clear(struct token *tok);
void tokens_free(struct token *items, size_t n);

#endif
