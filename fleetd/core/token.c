/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Token rules for both kinds (see core/token.h): shapes, roles, ranges,
 * the refusal order of a presented enrollment token, and the create,
 * revoke and authenticate flows over the store port. Runs on API job
 * threads and in `fleetd token create`.
 */
#include "core/token.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/store_tokens.h"

#define TOKEN_HEX_LEN 64
#define TOKEN_PREFIX_LEN 4

const char *
token_prefix(enum token_kind kind)
{
	return kind == TOKEN_ADMIN ? "fla_" : "fle_";
}

bool
token_text_valid(enum token_kind kind, const char *text)
{
	size_t i;

	if (text == NULL ||
	    strncmp(text, token_prefix(kind), TOKEN_PREFIX_LEN) != 0 ||
	    strlen(text) != TOKEN_PREFIX_LEN + TOKEN_HEX_LEN)
		return false;
	for (i = TOKEN_PREFIX_LEN; i < TOKEN_PREFIX_LEN + TOKEN_HEX_LEN; i++)
		if (!((text[i] >= '0' && text[i] <= '9') ||
		      (text[i] >= 'a' && text[i] <= 'f')))
			return false;
	return true;
}

static const char *const token_role_names[] = {
	[TOKEN_ROLE_VIEWER] = "viewer",
	[TOKEN_ROLE_OPERATOR] = "operator",
	[TOKEN_ROLE_ADMIN] = "admin",
};

enum token_role
token_role_parse(const char *text)
{
	int r;

	if (text == NULL)
		return TOKEN_ROLE_NONE;
	for (r = TOKEN_ROLE_VIEWER; r <= TOKEN_ROLE_ADMIN; r++)
		if (strcmp(text, token_role_names[r]) == 0)
			return (enum token_role)r;
	return TOKEN_ROLE_NONE;
}

const char *
token_role_name(enum token_role role)
{
	if (role < TOKEN_ROLE_VIEWER || role > TOKEN_ROLE_ADMIN)
		return "none";
	return token_role_names[role];
}

long
token_duration_parse(const char *text)
{
	const char *p = text;
	long long n = 0;
	long unit = 1;

	if (text == NULL || *p < '0' || *p > '9')
		return -1;
	/* Digits only (strtoll would take signs and blanks); bounded. */
	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (*p - '0');
		if (n > TOKEN_EXPIRES_MAX)
			return -1;
	}
	if (strcmp(p, "d") == 0)
		unit = 86400;
	else if (strcmp(p, "h") == 0)
		unit = 3600;
	else if (strcmp(p, "m") == 0)
		unit = 60;
	else if (strcmp(p, "s") != 0 && *p != '\0')
		return -1;
	n *= unit;
	return n >= 1 && n <= TOKEN_EXPIRES_MAX ? (long)n : -1;
}

void
token_spec_init(struct token_spec *spec, enum token_kind kind)
{
	memset(spec, 0, sizeof(*spec));
	spec->kind = kind;
	spec->uses = 1;
	/* Admin tokens never expire unless asked to (the first one is made
	 * on the server host and must outlive a weekend). */
	spec->expires_in = kind == TOKEN_ADMIN ? 0 : TOKEN_EXPIRES_DEFAULT;
}

enum token_rc
token_spec_check(const struct token_spec *spec)
{
	if (spec->kind == TOKEN_ADMIN) {
		if (spec->role == TOKEN_ROLE_NONE)
			return TOKEN_ERR_ROLE;
		if (spec->name != NULL &&
		    !label_text_valid(spec->name, TOKEN_TEXT_FIELD_MAX))
			return TOKEN_ERR_TEXT;
		if (spec->expires_in < 0 ||
		    spec->expires_in > TOKEN_EXPIRES_MAX)
			return TOKEN_ERR_EXPIRES;
		return TOKEN_OK;
	}
	if (spec->uses < 1 || spec->uses > TOKEN_USES_MAX)
		return TOKEN_ERR_USES;
	if (spec->expires_in < 1 || spec->expires_in > TOKEN_EXPIRES_MAX)
		return TOKEN_ERR_EXPIRES;
	if (spec->profile != NULL &&
	    !label_text_valid(spec->profile, TOKEN_TEXT_FIELD_MAX))
		return TOKEN_ERR_TEXT;
	return TOKEN_OK;
}

void
token_spec_clear(struct token_spec *spec)
{
	if (spec != NULL)
		label_set_clear(&spec->labels);
}

enum token_rc
token_enroll_refusal(const struct token *tok, int64_t now)
{
	if (tok->revoked_at != 0)
		return TOKEN_REVOKED;
	if (tok->expires_at <= now)
		return TOKEN_EXPIRED;
	if (tok->uses_left <= 0)
		return TOKEN_EXHAUSTED;
	return TOKEN_OK;
}

const char *
token_action(enum token_kind kind, bool revoke)
{
	if (kind == TOKEN_ADMIN)
		return revoke ? "admin_token.revoke" : "admin_token.create";
	return revoke ? "token.revoke" : "token.create";
}

static char *
strdup_or_null(const char *s, bool *failed)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d == NULL)
		*failed = true;
	return d;
}

enum token_rc
token_make(const struct token_spec *spec, int64_t now, struct token *out,
	   char text[TOKEN_TEXT_MAX], char sha256[SECRET_SHA256_HEX])
{
	struct token tok;
	bool failed = false;

	memset(&tok, 0, sizeof(tok));
	tok.kind = spec->kind;
	tok.created_at = now;
	if (spec->kind == TOKEN_ADMIN) {
		tok.role = spec->role;
		tok.name =
			strdup_or_null(spec->name ? spec->name : "", &failed);
		tok.expires_at =
			spec->expires_in > 0 ? now + spec->expires_in : 0;
	} else {
		tok.uses_total = spec->uses;
		tok.uses_left = spec->uses;
		tok.expires_at = now + spec->expires_in;
		tok.profile = strdup_or_null(spec->profile, &failed);
		if (label_set_copy(&spec->labels, &tok.labels) != LABEL_OK)
			failed = true;
	}
	if (failed || secret_uuid_v4(tok.id) != 0 ||
	    secret_token_new(token_prefix(spec->kind), text, TOKEN_TEXT_MAX) !=
		    0) {
		OPENSSL_cleanse(text, TOKEN_TEXT_MAX);
		token_clear(&tok);
		return TOKEN_ERR_NOMEM;
	}
	secret_sha256_hex(text, strlen(text), sha256);
	*out = tok;
	return TOKEN_OK;
}

/* The audit row of a create: what was granted, never the secret. */
static void
token_create_audit(const struct token *tok, const char *actor,
		   struct audit_entry *a)
{
	memset(a, 0, sizeof(*a));
	a->actor = actor;
	a->action = token_action(tok->kind, false);
	a->target = tok->id;
	if (tok->kind == TOKEN_ADMIN) {
		audit_add_str(a, "role", token_role_name(tok->role));
		audit_add_str(a, "name", tok->name);
		if (tok->expires_at != 0)
			audit_add_int(a, "expires_in",
				      tok->expires_at - tok->created_at);
		return;
	}
	audit_add_int(a, "uses", tok->uses_total);
	audit_add_int(a, "expires_in", tok->expires_at - tok->created_at);
	audit_add_labels(a, "labels", &tok->labels);
	audit_add_str(a, "profile", tok->profile);
}

enum token_rc
token_store(struct store *st, const struct token *tok, const char *sha256,
	    const char *actor, const struct idem_record *idem)
{
	struct audit_entry a;
	enum store_rc rc;

	token_create_audit(tok, actor, &a);
	rc = store_token_create(st, tok, sha256, &a, idem);
	if (rc == STORE_CONFLICT)
		return TOKEN_IDEM_TAKEN;
	return rc == STORE_OK ? TOKEN_OK : TOKEN_ERR_STORE;
}

enum token_rc
token_get(struct store *st, enum token_kind kind, const char *id,
	  struct token *out)
{
	enum store_rc rc = store_token_get(st, kind, id, out);

	if (rc == STORE_NOTFOUND)
		return TOKEN_NOTFOUND;
	return rc == STORE_OK ? TOKEN_OK : TOKEN_ERR_STORE;
}

enum token_rc
token_list(struct store *st, enum token_kind kind, const struct page *page,
	   struct token **items, size_t *n, char next[PAGE_CURSOR_MAX])
{
	if (page->after != NULL &&
	    !page_cursor_valid(page->after, PAGE_CURSOR_TIME_ID))
		return TOKEN_NOTFOUND;
	return store_token_list(st, kind, page, items, n, next) == STORE_OK
		       ? TOKEN_OK
		       : TOKEN_ERR_STORE;
}

enum token_rc
token_revoke(struct store *st, enum token_kind kind, const char *id,
	     const char *actor, int64_t now, struct token *out)
{
	struct audit_entry a;
	enum store_rc rc;

	memset(&a, 0, sizeof(a));
	a.actor = actor;
	a.action = token_action(kind, true);
	a.target = id;
	rc = store_token_revoke(st, kind, id, now, &a, out);
	if (rc == STORE_NOTFOUND)
		return TOKEN_NOTFOUND;
	if (rc == STORE_CONFLICT)
		return TOKEN_ALREADY_REVOKED;
	return rc == STORE_OK ? TOKEN_OK : TOKEN_ERR_STORE;
}

enum token_rc
token_authenticate(struct store *st, const char *text, int64_t now,
		   struct token *out)
{
	char sha256[SECRET_SHA256_HEX];
	enum store_rc rc;

	if (!token_text_valid(TOKEN_ADMIN, text))
		return TOKEN_UNKNOWN;
	secret_sha256_hex(text, strlen(text), sha256);
	rc = store_admin_token_authenticate(st, sha256, now, out);
	if (rc == STORE_NOTFOUND)
		return TOKEN_UNKNOWN;
	if (rc != STORE_OK)
		return TOKEN_ERR_STORE;
	/* Most durable reason first, so the 401 can say why. */
	if (out->role == TOKEN_ROLE_NONE) {
		token_clear(out);
		return TOKEN_UNKNOWN;
	}
	if (out->revoked_at != 0) {
		token_clear(out);
		return TOKEN_REVOKED;
	}
	if (out->expires_at != 0 && out->expires_at <= now) {
		token_clear(out);
		return TOKEN_EXPIRED;
	}
	return TOKEN_OK;
}

void
token_clear(struct token *tok)
{
	if (tok == NULL)
		return;
	label_set_clear(&tok->labels);
	free(tok->profile);
	free(tok->name);
	memset(tok, 0, sizeof(*tok));
}

void
tokens_free(struct token *items, size_t n)
{
	size_t i;

	if (items == NULL)
		return;
	for (i = 0; i < n; i++)
		token_clear(&items[i]);
	free(items);
}
