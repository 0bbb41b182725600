/* SPDX-License-Identifier: Apache-2.0 */
/* In-memory fake of the token/enrollment/audit store port (see .h). */
#include "fake_store_tokens.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct store *
fake_store_new(void)
{
	return calloc(1, sizeof(struct store));
}

void
fake_store_free(struct store *st)
{
	size_t i;

	if (st == NULL)
		return;
	for (i = 0; i < st->ntokens; i++)
		token_clear(&st->tokens[i].tok);
	for (i = 0; i < st->ndevices; i++) {
		label_set_clear(&st->devices[i].labels);
		free(st->devices[i].model);
		free(st->devices[i].serial);
		free(st->devices[i].profile);
	}
	for (i = 0; i < st->nidem; i++)
		free(st->idem[i].body);
	free(st);
}

uint64_t
store_session(const struct store *st)
{
	return st->session;
}

bool
store_unavailable(struct store *st)
{
	return st->unavailable;
}

static bool
failing(struct store *st)
{
	if (st->fail_next <= 0)
		return false;
	st->fail_next--;
	return true;
}

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int
token_copy(const struct token *src, struct token *dst)
{
	*dst = *src;
	dst->labels.n = 0;
	dst->labels.items = NULL;
	dst->profile = dup_or_null(src->profile);
	dst->name = dup_or_null(src->name);
	return label_set_copy(&src->labels, &dst->labels) == LABEL_OK ? 0 : -1;
}

struct fake_token *
fake_store_token(struct store *st, const char *id)
{
	size_t i;

	for (i = 0; i < st->ntokens; i++)
		if (strcmp(st->tokens[i].tok.id, id) == 0)
			return &st->tokens[i];
	return NULL;
}

/* The token of this kind and id, after the failure injection. */
static enum store_rc
token_of_kind(struct store *st, enum token_kind kind, const char *id,
	      struct fake_token **out)
{
	if (failing(st))
		return STORE_ERR;
	*out = fake_store_token(st, id);
	if (*out == NULL || (*out)->tok.kind != kind)
		return STORE_NOTFOUND;
	return STORE_OK;
}

static struct fake_token *
token_by_hash(struct store *st, const char *sha256)
{
	size_t i;

	for (i = 0; i < st->ntokens; i++)
		if (st->tokens[i].tok.kind == TOKEN_ENROLL &&
		    strcmp(st->tokens[i].sha256, sha256) == 0)
			return &st->tokens[i];
	return NULL;
}

size_t
fake_store_audit_count(const struct store *st, const char *action)
{
	size_t i, n = 0;

	for (i = 0; i < st->naudit; i++)
		n += strcmp(st->audit[i].action, action) == 0;
	return n;
}

static void
audit_put(struct store *st, const struct audit_entry *a)
{
	struct fake_audit *r = &st->audit[st->naudit++];
	size_t i;

	memset(r, 0, sizeof(*r));
	snprintf(r->actor, sizeof(r->actor), "%s", a->actor);
	snprintf(r->action, sizeof(r->action), "%s", a->action);
	snprintf(r->target, sizeof(r->target), "%s",
		 a->target ? a->target : "");
	r->nfields = a->n;
	for (i = 0; i < a->n; i++) {
		snprintf(r->keys[i], sizeof(r->keys[i]), "%s",
			 a->fields[i].key);
		if (a->fields[i].kind == AUDIT_STR && a->fields[i].str)
			snprintf(r->strs[i], sizeof(r->strs[i]), "%s",
				 a->fields[i].str);
	}
}

/* 0, or STORE_CONFLICT when the key is taken. */
static enum store_rc
idem_put(struct store *st, const struct idem_record *rec)
{
	struct fake_idem *r;
	size_t i;

	for (i = 0; i < st->nidem; i++)
		if (strcmp(st->idem[i].actor, rec->actor) == 0 &&
		    strcmp(st->idem[i].key, rec->key) == 0)
			return STORE_CONFLICT;
	r = &st->idem[st->nidem++];
	snprintf(r->actor, sizeof(r->actor), "%s", rec->actor);
	snprintf(r->key, sizeof(r->key), "%s", rec->key);
	snprintf(r->sha256, sizeof(r->sha256), "%s", rec->request_sha256);
	r->status = rec->status;
	r->body = strdup(rec->body);
	return STORE_OK;
}

enum store_rc
store_token_create(struct store *st, const struct token *tok,
		   const char *sha256, const struct audit_entry *audit,
		   const struct idem_record *idem)
{
	struct fake_token *t;

	if (failing(st) || st->ntokens >= FAKE_MAX)
		return STORE_ERR;
	if (idem != NULL && idem_put(st, idem) != STORE_OK)
		return STORE_CONFLICT;
	t = &st->tokens[st->ntokens++];
	if (token_copy(tok, &t->tok) != 0)
		return STORE_ERR;
	snprintf(t->sha256, sizeof(t->sha256), "%s", sha256);
	audit_put(st, audit);
	return STORE_OK;
}

enum store_rc
store_token_get(struct store *st, enum token_kind kind, const char *id,
		struct token *out)
{
	struct fake_token *t = NULL;
	enum store_rc rc = token_of_kind(st, kind, id, &t);

	if (rc != STORE_OK)
		return rc;
	return token_copy(&t->tok, out) == 0 ? STORE_OK : STORE_ERR;
}

enum store_rc
store_token_list(struct store *st, enum token_kind kind,
		 const struct page *page, struct token **items, size_t *n,
		 char next[PAGE_CURSOR_MAX])
{
	struct token *arr = calloc(FAKE_MAX, sizeof(*arr));
	size_t i, count = 0;
	bool started = page->after == NULL;
	char cursor[PAGE_CURSOR_MAX];

	next[0] = '\0';
	if (arr == NULL || failing(st)) {
		free(arr);
		return STORE_ERR;
	}
	/* Insertion order stands for (created_at, id). */
	for (i = 0; i < st->ntokens; i++) {
		const struct token *t = &st->tokens[i].tok;

		if (t->kind != kind)
			continue;
		snprintf(cursor, sizeof(cursor), "%" PRId64 " %s",
			 t->created_at * 1000000 + (int64_t)i, t->id);
		if (!started) {
			started = strcmp(cursor, page->after) == 0;
			continue;
		}
		if (count == (size_t)page->limit) {
			snprintf(next, PAGE_CURSOR_MAX, "%s", cursor);
			break;
		}
		if (token_copy(t, &arr[count++]) != 0) {
			tokens_free(arr, count);
			return STORE_ERR;
		}
	}
	/* next names the last row returned, as the adapter's does. */
	if (next[0] != '\0' && count > 0) {
		for (i = 0; i < st->ntokens; i++)
			if (strcmp(st->tokens[i].tok.id, arr[count - 1].id) ==
			    0)
				snprintf(
					next, PAGE_CURSOR_MAX, "%" PRId64 " %s",
					st->tokens[i].tok.created_at * 1000000 +
						(int64_t)i,
					st->tokens[i].tok.id);
	}
	*items = arr;
	*n = count;
	return STORE_OK;
}

enum store_rc
store_token_revoke(struct store *st, enum token_kind kind, const char *id,
		   int64_t now, const struct audit_entry *audit,
		   struct token *out)
{
	struct fake_token *t = NULL;
	enum store_rc rc = token_of_kind(st, kind, id, &t);

	if (rc != STORE_OK)
		return rc;
	if (t->tok.revoked_at != 0)
		return STORE_CONFLICT;
	t->tok.revoked_at = now;
	audit_put(st, audit);
	return token_copy(&t->tok, out) == 0 ? STORE_OK : STORE_ERR;
}

enum store_rc
store_admin_token_authenticate(struct store *st, const char *sha256,
			       int64_t now, struct token *out)
{
	size_t i;

	if (failing(st))
		return STORE_ERR;
	for (i = 0; i < st->ntokens; i++) {
		struct token *t = &st->tokens[i].tok;

		if (t->kind != TOKEN_ADMIN ||
		    strcmp(st->tokens[i].sha256, sha256) != 0)
			continue;
		/* Revoked and expired tokens are found (core says why they
		 * are refused); only a valid one's use is noted. */
		if (t->revoked_at == 0 &&
		    (t->expires_at == 0 || t->expires_at > now) &&
		    (t->last_used_at == 0 || t->last_used_at < now - 60))
			t->last_used_at = now;
		return token_copy(t, out) == 0 ? STORE_OK : STORE_ERR;
	}
	return STORE_NOTFOUND;
}

enum store_rc
store_enroll_token_find(struct store *st, const char *sha256, struct token *out)
{
	struct fake_token *t;

	st->finds++;
	if (failing(st))
		return STORE_ERR;
	t = token_by_hash(st, sha256);
	if (t == NULL)
		return STORE_NOTFOUND;
	return token_copy(&t->tok, out) == 0 ? STORE_OK : STORE_ERR;
}

enum store_rc
store_enroll_record(struct store *st, const struct enrollment *e,
		    const struct audit_entry *audit,
		    const struct idem_record *idem)
{
	struct fake_device *d;
	struct fake_token *t;

	st->records++;
	if (failing(st) || st->fail_record || st->ndevices >= FAKE_MAX)
		return STORE_ERR;
	if (st->on_record != NULL)
		st->on_record(st);
	t = fake_store_token(st, e->token_id);
	if (t == NULL)
		return STORE_ERR; /* the adapter locks the row it names */
	/* The adapter's guard, written out (not via core's rule, so the
	 * tests compare two statements of it). */
	if (t->tok.uses_left <= 0 || t->tok.expires_at <= e->now ||
	    t->tok.revoked_at != 0)
		return STORE_NOTFOUND;
	if (idem != NULL && idem_put(st, idem) != STORE_OK)
		return STORE_CONFLICT;
	t->tok.uses_left--;
	d = &st->devices[st->ndevices++];
	memset(d, 0, sizeof(*d));
	snprintf(d->id, sizeof(d->id), "%s", e->device_id);
	snprintf(d->token_id, sizeof(d->token_id), "%s", e->token_id);
	snprintf(d->cert_serial, sizeof(d->cert_serial), "%s", e->cert_serial);
	snprintf(d->issuer, sizeof(d->issuer), "%s",
		 e->issuer != NULL ? e->issuer : "");
	(void)label_set_copy(e->labels, &d->labels);
	d->model = dup_or_null(e->model);
	d->serial = dup_or_null(e->serial);
	d->profile = dup_or_null(e->profile);
	audit_put(st, audit);
	return STORE_OK;
}

enum store_rc
store_idempotency_get(struct store *st, const char *actor, const char *key,
		      char request_sha256[SECRET_SHA256_HEX], int *status,
		      char **body)
{
	size_t i;

	if (failing(st))
		return STORE_ERR;
	for (i = 0; i < st->nidem; i++) {
		if (strcmp(st->idem[i].actor, actor) != 0 ||
		    strcmp(st->idem[i].key, key) != 0)
			continue;
		snprintf(request_sha256, SECRET_SHA256_HEX, "%s",
			 st->idem[i].sha256);
		*status = st->idem[i].status;
		*body = strdup(st->idem[i].body);
		return *body ? STORE_OK : STORE_ERR;
	}
	return STORE_NOTFOUND;
}

enum store_rc
store_audit_list(struct store *st, const struct audit_filter *f,
		 const struct page *page, struct audit_row **rows, size_t *n,
		 char next[PAGE_CURSOR_MAX])
{
	(void)f;
	(void)page;
	next[0] = '\0';
	if (failing(st))
		return STORE_ERR;
	*rows = calloc(1, sizeof(**rows));
	*n = 0;
	return *rows ? STORE_OK : STORE_ERR;
}
