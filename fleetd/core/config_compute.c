/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a clone, a publish or a device set gives each target device (see
 * config_compute_targets in config.h), and the answer document of a
 * clone. Pure code: the store calls it inside the transaction that read
 * the targets under lock, and the core unit tests call it on tables.
 * Targets that share a base and overrides share one computed document,
 * so a fleet of 100,000 devices on one profile costs one merge.
 */
#include "core/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/store_config.h"

struct config_compute_entry {
	char *key; /* base_key "\n" overrides (or the COPY base_key) */
	uint64_t hash;
	struct config_doc effective; /* ASSIGN: owned; COPY: unused */
	struct config_doc overrides; /* COPY: owned, text NULL for none */
	bool has_overrides;
};

void
config_compute_init(struct config_compute *cc)
{
	memset(cc, 0, sizeof(*cc));
}

void
config_compute_clear(struct config_compute *cc)
{
	size_t i;

	if (cc == NULL)
		return;
	for (i = 0; i < cc->n; i++) {
		free(cc->entries[i].key);
		config_doc_clear(&cc->entries[i].effective);
		config_doc_clear(&cc->entries[i].overrides);
	}
	free(cc->entries);
	free(cc->slots);
	memset(cc, 0, sizeof(*cc));
}

static uint64_t
fnv1a(const char *a, const char *b)
{
	uint64_t h = 1469598103934665603ULL;
	const char *p;

	for (p = a; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ '\n') * 1099511628211ULL;
	for (p = b; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h;
}

static bool
key_is(const char *key, const char *a, const char *b)
{
	size_t na = strlen(a);

	return strncmp(key, a, na) == 0 && key[na] == '\n' &&
	       strcmp(key + na + 1, b) == 0;
}

/* Doubles the slot table (load at most one half). */
static int
rehash(struct config_compute *cc)
{
	size_t nslots = cc->nslots ? cc->nslots * 2 : 64, i, s;
	size_t *slots = calloc(nslots, sizeof(*slots));

	if (slots == NULL)
		return -1;
	for (i = 0; i < cc->n; i++) {
		s = (size_t)cc->entries[i].hash & (nslots - 1);
		while (slots[s] != 0)
			s = (s + 1) & (nslots - 1);
		slots[s] = i + 1;
	}
	free(cc->slots);
	cc->slots = slots;
	cc->nslots = nslots;
	return 0;
}

/* The entry of (a, b), or a new empty one (*fresh); NULL on ENOMEM. */
static struct config_compute_entry *
entry_get(struct config_compute *cc, const char *a, const char *b, bool *fresh)
{
	uint64_t h = fnv1a(a, b);
	struct config_compute_entry *e;
	size_t s, la = strlen(a), lb = strlen(b);

	*fresh = false;
	if (cc->nslots != 0) {
		for (s = (size_t)h & (cc->nslots - 1); cc->slots[s] != 0;
		     s = (s + 1) & (cc->nslots - 1)) {
			e = &cc->entries[cc->slots[s] - 1];
			if (e->hash == h && key_is(e->key, a, b))
				return e;
		}
	}
	if ((cc->n + 1) * 2 > cc->nslots && rehash(cc) != 0)
		return NULL;
	if (cc->n == cc->cap) {
		size_t cap = cc->cap ? cc->cap * 2 : 16;
		void *p = realloc(cc->entries, cap * sizeof(*cc->entries));

		if (p == NULL)
			return NULL;
		cc->entries = p;
		cc->cap = cap;
	}
	e = &cc->entries[cc->n];
	memset(e, 0, sizeof(*e));
	e->key = malloc(la + lb + 2);
	if (e->key == NULL)
		return NULL;
	memcpy(e->key, a, la);
	e->key[la] = '\n';
	memcpy(e->key + la + 1, b, lb + 1);
	e->hash = h;
	for (s = (size_t)h & (cc->nslots - 1); cc->slots[s] != 0;
	     s = (s + 1) & (cc->nslots - 1))
		;
	cc->slots[s] = cc->n + 1;
	cc->n++;
	*fresh = true;
	return e;
}

/* COPY: the overrides that turn base into the source's effective. */
static enum config_rc
copy_overrides(const char *base, const struct config_doc *eff,
	       struct config_compute_entry *e)
{
	json_t *d = config_diff_texts(base, eff->text);
	enum config_rc rc;

	if (d == NULL)
		return base != NULL ? CONFIG_INVALID_DOC : CONFIG_ERR_NOMEM;
	if (json_object_size(d) == 0 && base != NULL) {
		/* The base already is the source's document. */
		json_decref(d);
		e->has_overrides = false;
		return CONFIG_OK;
	}
	rc = config_canon(d, &e->overrides);
	json_decref(d);
	if (rc == CONFIG_OK)
		e->has_overrides = true;
	return rc;
}

enum config_rc
config_compute_targets(struct config_compute *cc,
		       const struct config_source *src, struct config_target *t,
		       size_t n)
{
	size_t i;

	cc->failed_device = NULL;
	cc->failed_rc = CONFIG_OK;
	for (i = 0; i < n; i++) {
		struct config_target *x = &t[i];
		struct config_compute_entry *e;
		enum config_rc rc = CONFIG_OK;
		bool fresh = false;

		if (src->mode == CONFIG_CLONE_ASSIGN)
			e = entry_get(cc, "",
				      x->overrides != NULL ? x->overrides
							   : "\x01",
				      &fresh);
		else
			e = entry_get(cc,
				      x->base_key != NULL ? x->base_key : "",
				      "", &fresh);
		if (e == NULL) {
			rc = CONFIG_ERR_NOMEM;
		} else if (fresh && src->mode == CONFIG_CLONE_ASSIGN) {
			rc = config_effective(src->base, x->overrides,
					      &e->effective);
		} else if (fresh) {
			rc = copy_overrides(x->base, src->effective, e);
		}
		if (rc != CONFIG_OK) {
			cc->failed_device = x->device_id;
			cc->failed_rc = rc;
			/* A half-made entry would be found by the next
			 * target of the same key: none is reused after an
			 * error, the caller stops. */
			return rc;
		}
		if (src->mode == CONFIG_CLONE_ASSIGN) {
			x->effective = &e->effective;
			x->new_overrides = NULL;
		} else {
			x->effective = src->effective;
			x->new_overrides =
				e->has_overrides ? &e->overrides : NULL;
		}
		x->changed =
			x->desired_sha256 == NULL ||
			strcmp(x->desired_sha256, x->effective->sha256) != 0;
		cc->matched++;
		if (x->changed)
			cc->changed++;
		else
			cc->unchanged++;
		if (!x->online)
			cc->offline++;
	}
	return CONFIG_OK;
}

void
config_clone_result_clear(struct config_clone_result *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nsamples; i++) {
		free(r->samples[i].current);
		free(r->samples[i].next);
	}
	memset(r, 0, sizeof(*r));
}

void
config_change_clear(struct config_change *c)
{
	size_t i;

	if (c == NULL)
		return;
	free(c->actor);
	free(c->source_json);
	free(c->selector);
	for (i = 0; i < c->nfailures; i++)
		free(c->failures[i].reason);
	free(c->failures);
	memset(c, 0, sizeof(*c));
}

char *
config_clone_answer(const struct config_clone_result *r)
{
	json_t *doc, *samples = NULL;
	char *text = NULL;
	size_t i;

	doc = json_pack("{s:b, s:{s:I, s:I, s:I, s:I}, s:s}", "dry_run",
			r->dry_run, "counts", "matched", (json_int_t)r->matched,
			"would_change", (json_int_t)r->changed, "unchanged",
			(json_int_t)r->unchanged, "offline",
			(json_int_t)r->offline, "sha256", r->source_sha256);
	if (doc == NULL)
		return NULL;
	if (json_object_set_new(doc, "change_id",
				r->change_id[0] != '\0'
					? json_string(r->change_id)
					: json_null()) != 0)
		goto out;
	if (r->profile[0] != '\0' &&
	    json_object_set_new(
		    doc, "assign",
		    json_pack("{s:s, s:o, s:i}", "profile", r->profile,
			      "version",
			      r->pinned_version > 0
				      ? json_integer(r->pinned_version)
				      : json_string("latest"),
			      "resolved_version", r->version)) != 0)
		goto out;
	if (r->dry_run) {
		samples = json_array();
		if (samples == NULL)
			goto out;
		for (i = 0; i < r->nsamples; i++) {
			json_t *d = config_diff_texts(r->samples[i].current,
						      r->samples[i].next);

			if (d == NULL ||
			    json_array_append_new(
				    samples,
				    json_pack("{s:s, s:o}", "device_id",
					      r->samples[i].device_id, "diff",
					      d)) != 0)
				goto out;
		}
		if (json_object_set_new(doc, "samples", samples) != 0) {
			samples = NULL;
			goto out;
		}
		samples = NULL;
	}
	text = json_dumps(doc, JSON_COMPACT);
out:
	json_decref(samples);
	json_decref(doc);
	return text;
}
