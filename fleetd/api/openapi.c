/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET /api/v1/openapi.json (no token: the document describes the API and
 * holds nothing of the fleet; the source is public too) and the path
 * templates of the document, which label the API request metrics: a
 * template, never a raw path, so ids cannot grow the number of series.
 * Runs on job threads (the template table is built once, under
 * pthread_once). The document is ours, built into the binary.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "api/openapi.h"
#include "log.h"

#define OPENAPI_SEGMENTS_MAX 16

struct openapi_template {
	const char *path; /* as in the document */
	size_t nseg;
	char *seg[OPENAPI_SEGMENTS_MAX]; /* NULL for a "{x}" segment */
};

static struct openapi_template *openapi_templates;
static size_t openapi_ntemplates;
static pthread_once_t openapi_once = PTHREAD_ONCE_INIT;

void
api_openapi(struct api_call *c)
{
	char *body = malloc(api_openapi_doc_len + 1);

	if (body == NULL) {
		api_problem(c->resp, 500, "internal-error", "out of memory");
		return;
	}
	memcpy(body, api_openapi_doc, api_openapi_doc_len + 1);
	api_response_free(c->resp);
	c->resp->body = body;
	c->resp->body_len = api_openapi_doc_len;
	c->resp->status = 200;
	c->resp->content_type = "application/json";
}

/* Splits "/a/{b}/c" into segments; -1 past OPENAPI_SEGMENTS_MAX. */
static int
openapi_split(const char *path, struct openapi_template *t)
{
	const char *p = path;

	t->path = path;
	t->nseg = 0;
	while (*p == '/') {
		const char *end = strchr(p + 1, '/');
		size_t len = end ? (size_t)(end - p - 1) : strlen(p + 1);

		if (t->nseg == OPENAPI_SEGMENTS_MAX)
			return -1;
		if (len >= 2 && p[1] == '{' && p[len] == '}')
			t->seg[t->nseg] = NULL;
		else if ((t->seg[t->nseg] = strndup(p + 1, len)) == NULL)
			return -1;
		t->nseg++;
		p += len + 1;
	}
	return 0;
}

static void
openapi_load(void)
{
	json_t *doc = json_loadb((const char *)api_openapi_doc,
				 api_openapi_doc_len, 0, NULL);
	json_t *paths = json_object_get(doc, "paths");
	const char *key;
	json_t *v;
	size_t n = 0;

	if (!json_is_object(paths)) {
		log_error("the embedded OpenAPI document has no paths");
		json_decref(doc);
		return;
	}
	openapi_templates =
		calloc(json_object_size(paths), sizeof(*openapi_templates));
	if (openapi_templates == NULL) {
		json_decref(doc);
		return;
	}
	json_object_foreach(paths, key, v)
	{
		char *copy = strdup(key);

		if (copy == NULL ||
		    openapi_split(copy, &openapi_templates[n]) != 0) {
			for (size_t i = 0; i < openapi_templates[n].nseg; i++)
				free(openapi_templates[n].seg[i]);
			free(copy);
			log_warn("OpenAPI path %s is not used for metrics",
				 key);
			continue;
		}
		n++;
	}
	openapi_ntemplates = n;
	json_decref(doc);
}

/* Whether path matches t; *score ranks literal segments, earliest first. */
static bool
openapi_match(const struct openapi_template *t, const char *path,
	      unsigned long *score)
{
	const char *p = path;
	size_t i;

	*score = 0;
	for (i = 0; i < t->nseg; i++) {
		const char *end;
		size_t len;

		if (*p != '/')
			return false;
		end = strchr(p + 1, '/');
		len = end ? (size_t)(end - p - 1) : strlen(p + 1);
		if (len == 0)
			return false;
		if (t->seg[i] != NULL) {
			if (strlen(t->seg[i]) != len ||
			    memcmp(t->seg[i], p + 1, len) != 0)
				return false;
			*score |= 1UL << (OPENAPI_SEGMENTS_MAX - 1 - i);
		}
		p += len + 1;
	}
	return *p == '\0';
}

const char *
api_openapi_template(const char *path)
{
	const char *best = NULL;
	unsigned long best_score = 0, score;
	size_t i;

	if (path == NULL || pthread_once(&openapi_once, openapi_load) != 0)
		return NULL;
	for (i = 0; i < openapi_ntemplates; i++) {
		if (!openapi_match(&openapi_templates[i], path, &score))
			continue;
		if (best == NULL || score > best_score) {
			best = openapi_templates[i].path;
			best_score = score;
		}
	}
	return best;
}
