/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration rules on plain structs and JSON values (see config.h):
 * names, document and patch checks, RFC 7386 merge patch and its inverse,
 * effective documents, drift and change progress, version numbering.
 * Pure code, no I/O; runs on API job threads and inside the store's
 * transactions (db/config.c). Documents from operators are untrusted and
 * checked here; stored texts are canonical (common/canon.h).
 */
#include "core/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "core/device.h"

void
config_doc_clear(struct config_doc *d)
{
	if (d == NULL)
		return;
	free(d->text);
	memset(d, 0, sizeof(*d));
}

enum config_rc
config_doc_copy(struct config_doc *dst, const struct config_doc *src)
{
	char *text = NULL;

	if (src->text != NULL) {
		text = malloc(src->len + 1);
		if (text == NULL)
			return CONFIG_ERR_NOMEM;
		memcpy(text, src->text, src->len + 1);
	}
	dst->text = text;
	dst->len = src->len;
	memcpy(dst->sha256, src->sha256, sizeof(dst->sha256));
	return CONFIG_OK;
}

bool
config_name_valid(const char *name)
{
	size_t i, n;

	if (name == NULL)
		return false;
	n = strlen(name);
	if (n == 0 || n > CONFIG_NAME_MAX)
		return false;
	for (i = 0; i < n; i++) {
		char c = name[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return false;
	}
	return true;
}

enum config_rc
config_canon(const json_t *doc, struct config_doc *out)
{
	size_t len = 0;
	char *text = canon_json(doc, &len);

	if (text == NULL)
		return CONFIG_ERR_NOMEM;
	if (len > CONFIG_DOC_MAX) {
		free(text);
		return CONFIG_TOO_LARGE;
	}
	if (canon_sha256_hex_bytes(text, len, out->sha256) != 0) {
		free(text);
		return CONFIG_ERR_NOMEM;
	}
	out->text = text;
	out->len = len;
	return CONFIG_OK;
}

/* Appends "/key" (RFC 6901 escaped) to a JSON pointer, truncating. */
static void
pointer_push(char *ptr, size_t cap, const char *key, size_t key_len)
{
	size_t n = strlen(ptr), i;

	if (n + 1 < cap)
		ptr[n++] = '/';
	for (i = 0; i < key_len && n + 2 < cap; i++) {
		if (key[i] == '~' || key[i] == '/') {
			ptr[n++] = '~';
			ptr[n++] = key[i] == '~' ? '0' : '1';
		} else {
			ptr[n++] = key[i];
		}
	}
	ptr[n] = '\0';
}

static bool
nulls_free(const json_t *obj, char *ptr, size_t cap)
{
	const char *key;
	size_t key_len, mark = strlen(ptr);
	json_t *v;

	json_object_keylen_foreach((json_t *)(uintptr_t)obj, key, key_len, v)
	{
		if (json_is_null(v) || json_is_object(v)) {
			pointer_push(ptr, cap, key, key_len);
			if (json_is_null(v))
				return false;
			if (!nulls_free(v, ptr, cap))
				return false;
			ptr[mark] = '\0';
		}
	}
	return true;
}

enum config_rc
config_document_check(const json_t *doc, char *err, size_t errlen)
{
	char ptr[256] = "";

	if (!json_is_object(doc)) {
		snprintf(err, errlen,
			 "a configuration document is a JSON "
			 "object");
		return CONFIG_INVALID_DOC;
	}
	if (!nulls_free(doc, ptr, sizeof(ptr))) {
		snprintf(err, errlen,
			 "%s is null: configuration documents hold no null "
			 "members (null deletes in a merge patch)",
			 ptr);
		return CONFIG_INVALID_DOC;
	}
	return CONFIG_OK;
}

enum config_rc
config_patch_check(const json_t *patch, char *err, size_t errlen)
{
	if (!json_is_object(patch)) {
		snprintf(err, errlen,
			 "overrides are a JSON merge patch object (RFC 7386)");
		return CONFIG_INVALID_PATCH;
	}
	return CONFIG_OK;
}

/* MergePatch on a target we own (may be NULL); returns the new target. */
static json_t *
merge_owned(json_t *target, const json_t *patch)
{
	const char *key;
	size_t key_len;
	json_t *v;

	if (!json_is_object(patch)) {
		json_decref(target);
		return json_deep_copy(patch);
	}
	if (!json_is_object(target)) {
		json_decref(target);
		target = json_object();
		if (target == NULL)
			return NULL;
	}
	json_object_keylen_foreach((json_t *)(uintptr_t)patch, key, key_len, v)
	{
		json_t *cur, *merged;

		if (json_is_null(v)) {
			(void)json_object_deln(target, key, key_len);
			continue;
		}
		cur = json_incref(json_object_getn(target, key, key_len));
		merged = merge_owned(cur, v);
		if (merged == NULL ||
		    json_object_setn_new(target, key, key_len, merged) != 0) {
			json_decref(target);
			return NULL;
		}
	}
	return target;
}

json_t *
config_merge_patch(const json_t *target, const json_t *patch)
{
	json_t *copy = NULL;

	if (patch == NULL)
		return target != NULL ? json_deep_copy(target) : NULL;
	if (target != NULL && json_is_object(patch)) {
		copy = json_deep_copy(target);
		if (copy == NULL)
			return NULL;
	}
	return merge_owned(copy, patch);
}

json_t *
config_merge_diff(const json_t *from, const json_t *to)
{
	json_t *p = json_object(), *v, *f;
	const char *key;
	size_t key_len;

	if (p == NULL)
		return NULL;
	if (!json_is_object(from))
		from = NULL;
	if (from != NULL) {
		json_object_keylen_foreach((json_t *)(uintptr_t)from, key,
					   key_len, v)
		{
			if (json_object_getn(to, key, key_len) == NULL &&
			    json_object_setn_new(p, key, key_len,
						 json_null()) != 0)
				goto fail;
		}
	}
	json_object_keylen_foreach((json_t *)(uintptr_t)to, key, key_len, v)
	{
		json_t *d;

		f = from != NULL ? json_object_getn(from, key, key_len) : NULL;
		if (f != NULL && json_equal(f, v))
			continue;
		if (f != NULL && json_is_object(f) && json_is_object(v))
			d = config_merge_diff(f, v);
		else
			d = json_deep_copy(v);
		if (d == NULL || json_object_setn_new(p, key, key_len, d) != 0)
			goto fail;
	}
	return p;
fail:
	json_decref(p);
	return NULL;
}

/* A stored canonical text back into a value (they may hold \u0000). */
static json_t *
parse_stored(const char *text)
{
	return json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
}

enum config_rc
config_effective(const char *base, const char *overrides,
		 struct config_doc *out)
{
	json_t *b = NULL, *o = NULL, *m = NULL;
	enum config_rc rc = CONFIG_INVALID_DOC;

	if (overrides == NULL) {
		/* The base as it is: already canonical. */
		const char *text = base != NULL ? base : "{}";
		size_t len = strlen(text);

		if (len > CONFIG_DOC_MAX)
			return CONFIG_TOO_LARGE;
		out->text = malloc(len + 1);
		if (out->text == NULL)
			return CONFIG_ERR_NOMEM;
		memcpy(out->text, text, len + 1);
		out->len = len;
		if (canon_sha256_hex_bytes(text, len, out->sha256) != 0) {
			config_doc_clear(out);
			return CONFIG_ERR_NOMEM;
		}
		return CONFIG_OK;
	}
	if (base != NULL && (b = parse_stored(base)) == NULL)
		goto out;
	o = parse_stored(overrides);
	if (o == NULL)
		goto out;
	m = config_merge_patch(b != NULL ? b : NULL, o);
	if (m == NULL) {
		rc = CONFIG_ERR_NOMEM;
		goto out;
	}
	/* A merge over nothing with an object patch is an object. */
	rc = config_canon(m, out);
out:
	json_decref(b);
	json_decref(o);
	json_decref(m);
	return rc;
}

json_t *
config_diff_texts(const char *from, const char *to)
{
	json_t *f = NULL, *t = NULL, *d = NULL;

	if (from != NULL && (f = parse_stored(from)) == NULL)
		goto out;
	t = to != NULL ? parse_stored(to) : json_object();
	if (t == NULL)
		goto out;
	d = config_merge_diff(f, t);
out:
	json_decref(f);
	json_decref(t);
	return d;
}

enum config_reported_status
config_reported_parse(const char *text)
{
	if (text == NULL)
		return CONFIG_REPORTED_NONE;
	if (strcmp(text, "applied") == 0)
		return CONFIG_REPORTED_APPLIED;
	if (strcmp(text, "failed") == 0)
		return CONFIG_REPORTED_FAILED;
	if (strcmp(text, "drifted") == 0)
		return CONFIG_REPORTED_DRIFTED;
	return CONFIG_REPORTED_NONE;
}

const char *
config_reported_name(enum config_reported_status s)
{
	switch (s) {
	case CONFIG_REPORTED_APPLIED:
		return "applied";
	case CONFIG_REPORTED_FAILED:
		return "failed";
	case CONFIG_REPORTED_DRIFTED:
		return "drifted";
	case CONFIG_REPORTED_NONE:
		break;
	}
	return "none";
}

const char *
config_state_name(enum config_state s)
{
	switch (s) {
	case CONFIG_STATE_IN_SYNC:
		return "in_sync";
	case CONFIG_STATE_PENDING:
		return "pending";
	case CONFIG_STATE_OFFLINE:
		return "offline";
	case CONFIG_STATE_FAILED:
		return "failed";
	case CONFIG_STATE_DRIFTED:
		return "drifted";
	case CONFIG_STATE_NONE:
		break;
	}
	return "none";
}

static bool
sha_equal(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

enum config_state
config_classify(const struct config_desired *d, const struct config_reported *r,
		bool online)
{
	if (d->sha256 == NULL)
		return CONFIG_STATE_NONE;
	if (r->status == CONFIG_REPORTED_FAILED &&
	    r->generation == d->generation)
		return CONFIG_STATE_FAILED;
	if (r->status != CONFIG_REPORTED_NONE &&
	    r->status != CONFIG_REPORTED_FAILED &&
	    sha_equal(r->sha256, d->sha256))
		return CONFIG_STATE_IN_SYNC;
	if (r->status != CONFIG_REPORTED_NONE && r->generation >= d->generation)
		return CONFIG_STATE_DRIFTED;
	return online ? CONFIG_STATE_PENDING : CONFIG_STATE_OFFLINE;
}

const char *
config_member_state_name(enum config_member_state s)
{
	switch (s) {
	case CONFIG_MEMBER_OFFLINE:
		return "offline";
	case CONFIG_MEMBER_APPLIED:
		return "applied";
	case CONFIG_MEMBER_FAILED:
		return "failed";
	case CONFIG_MEMBER_SUPERSEDED:
		return "superseded";
	case CONFIG_MEMBER_PENDING:
		break;
	}
	return "pending";
}

enum config_member_state
config_member_classify(int64_t g, int64_t desired_generation,
		       const struct config_reported *r, bool online)
{
	if (r->status != CONFIG_REPORTED_NONE) {
		if (r->generation > g)
			return CONFIG_MEMBER_APPLIED;
		if (r->generation == g) {
			if (r->status == CONFIG_REPORTED_FAILED)
				return CONFIG_MEMBER_FAILED;
			return CONFIG_MEMBER_APPLIED;
		}
	}
	if (desired_generation > g)
		return CONFIG_MEMBER_SUPERSEDED;
	return online ? CONFIG_MEMBER_PENDING : CONFIG_MEMBER_OFFLINE;
}

void
config_profile_clear(struct config_profile *p)
{
	if (p == NULL)
		return;
	free(p->description);
	free(p->created_by);
	memset(p, 0, sizeof(*p));
}

void
config_profiles_free(struct config_profile *p, size_t n)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < n; i++)
		config_profile_clear(&p[i]);
	free(p);
}

void
config_version_clear(struct config_version *v)
{
	if (v == NULL)
		return;
	config_doc_clear(&v->doc);
	free(v->note);
	free(v->created_by);
	memset(v, 0, sizeof(*v));
}

void
config_versions_free(struct config_version *v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		config_version_clear(&v[i]);
	free(v);
}

int
config_next_version(int latest, int64_t if_match)
{
	if (if_match >= 0 && if_match != latest)
		return 0;
	if (latest < 0 || latest >= CONFIG_VERSION_MAX)
		return 0;
	return latest + 1;
}

void
device_config_clear(struct device_config *c)
{
	if (c == NULL)
		return;
	free(c->overrides);
	config_doc_clear(&c->desired);
	free(c->reported_reason);
	memset(c, 0, sizeof(*c));
}

void
device_configs_free(struct device_config *c, size_t n)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < n; i++)
		device_config_clear(&c[i]);
	free(c);
}

enum config_state
device_config_state(const struct device_config *c, long heartbeat_timeout_s)
{
	struct config_desired d = {
		c->desired.sha256[0] != '\0' ? c->desired.sha256 : NULL,
		c->desired_generation};
	struct config_reported r = {
		c->reported_status,
		c->reported_sha256[0] != '\0' ? c->reported_sha256 : NULL,
		c->reported_generation};

	return config_classify(
		&d, &r, device_online(c->session_age_us, heartbeat_timeout_s));
}
