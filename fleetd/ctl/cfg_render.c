/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What fleetctl's configuration commands print (see cfg.h): a readable
 * diff of two JSON documents, a JSON merge patch as the changes it makes,
 * the progress line of a configuration change, short hashes and NAME@V
 * references. Pure functions over jansson values (unit-tested by
 * tests/unit/common/test_ctl_cfg_render.c).
 *
 * Runs in fleetctl. The values come from the server and are untrusted:
 * every line printed is bounded and sanitized (ctl_sanitize).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "watch.h"

/* ---- diff -------------------------------------------------------------- */

#define CFG_VALUE_TEXT 120
#define CFG_PATH_MAX 4096

struct diff {
	FILE *f;
	const char *indent;
	size_t max_lines, count;
	struct buf path;
};

static int
cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The sorted member names of obj (NULL or not an object: none). */
static const char **
sorted_keys(json_t *obj, size_t *n)
{
	const char **keys;
	const char *key;
	json_t *v;
	size_t i = 0;

	*n = json_is_object(obj) ? json_object_size(obj) : 0;
	keys = calloc(*n > 0 ? *n : 1, sizeof(*keys));
	if (keys == NULL)
		return NULL;
	if (*n > 0) {
		json_object_foreach(obj, key, v) keys[i++] = key;
		qsort(keys, *n, sizeof(*keys), cmp_key);
	}
	return keys;
}

static void
diff_line(struct diff *d, char op, const json_t *from, const json_t *to)
{
	char a[CFG_VALUE_TEXT + 4], b[CFG_VALUE_TEXT + 4], line[512];
	const char *path = d->path.len > 0 ? d->path.data : "(document)";
	const char *x, *y;

	d->count++;
	if (d->count > d->max_lines)
		return;
	/* ctl_json_text is NULL for an absent value: a removal whose old
	 * value is unknown (a patch without its base) shows no value. */
	x = ctl_json_text(from, a, sizeof(a));
	y = ctl_json_text(to, b, sizeof(b));
	if (op == '~')
		snprintf(line, sizeof(line), "%s~ %s: %s -> %s", d->indent,
			 path, x != NULL ? x : "null", y != NULL ? y : "null");
	else if ((op == '+' ? y : x) == NULL)
		snprintf(line, sizeof(line), "%s%c %s", d->indent, op, path);
	else
		snprintf(line, sizeof(line), "%s%c %s: %s", d->indent, op, path,
			 op == '+' ? y : x);
	fprintf(d->f, "%s\n", ctl_sanitize(line));
}

/* Appends "/" and key escaped as RFC 6901 says (~ -> ~0, / -> ~1). */
static int
path_push(struct buf *p, const char *key)
{
	if (buf_append(p, "/", 1) != 0)
		return -1;
	for (; *key != '\0'; key++) {
		const char *s = *key == '~' ? "~0" : *key == '/' ? "~1" : NULL;

		if (buf_append(p, s != NULL ? s : key, s != NULL ? 2 : 1) != 0)
			return -1;
	}
	return 0;
}

static void
diff_walk(struct diff *d, json_t *from, json_t *to)
{
	const char **ka = NULL, **kb = NULL;
	size_t na, nb, i = 0, j = 0, len = d->path.len;

	if (from == NULL && to == NULL)
		return;
	if (from != NULL && to != NULL && json_equal(from, to))
		return;
	if (!json_is_object(from) || !json_is_object(to)) {
		diff_line(d,
			  from == NULL ? '+'
			  : to == NULL ? '-'
				       : '~',
			  from, to);
		return;
	}
	ka = sorted_keys(from, &na);
	kb = sorted_keys(to, &nb);
	if (ka == NULL || kb == NULL) {
		diff_line(d, '~', from, to);
		goto out;
	}
	while (i < na || j < nb) {
		int c = i >= na ? 1 : j >= nb ? -1 : strcmp(ka[i], kb[j]);
		const char *key = c <= 0 ? ka[i] : kb[j];
		json_t *x = c <= 0 ? json_object_get(from, key) : NULL;
		json_t *y = c >= 0 ? json_object_get(to, key) : NULL;

		if (path_push(&d->path, key) == 0) {
			diff_walk(d, x, y);
		} else {
			/* Deeper than CFG_PATH_MAX: report it whole. */
			diff_line(d, '~', from, to);
			i = na;
			j = nb;
		}
		d->path.len = len;
		if (d->path.data != NULL)
			d->path.data[len] = '\0';
		i += c <= 0;
		j += c >= 0;
	}
out:
	free(ka);
	free(kb);
}

size_t
cfg_diff_print(FILE *f, json_t *from, json_t *to, const char *indent,
	       size_t max_lines)
{
	struct diff d = {f, indent, max_lines, 0, {NULL, 0, 0, 0}};

	buf_init(&d.path, CFG_PATH_MAX);
	/* No document on one side is {} beside an object: list members. */
	if (from == NULL && json_is_object(to))
		from = json_object();
	else
		json_incref(from);
	if (to == NULL && json_is_object(from))
		to = json_object();
	else
		json_incref(to);
	diff_walk(&d, from, to);
	json_decref(from);
	json_decref(to);
	if (d.count > max_lines)
		fprintf(f, "%s... %zu more\n", indent, d.count - max_lines);
	buf_free(&d.path);
	return d.count;
}

static void
patch_walk(struct diff *d, json_t *base, json_t *patch)
{
	const char **keys = NULL;
	size_t n, len = d->path.len;

	if (!json_is_object(patch)) {
		/* A patch that is not an object replaces the whole value. */
		if (base == NULL || !json_equal(base, patch))
			diff_line(d, base == NULL ? '+' : '~', base, patch);
		return;
	}
	keys = sorted_keys(patch, &n);
	if (keys == NULL) {
		diff_line(d, '~', base, patch);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *p = json_object_get(patch, keys[i]);
		json_t *b = json_is_object(base)
				    ? json_object_get(base, keys[i])
				    : NULL;

		if (path_push(&d->path, keys[i]) != 0) {
			diff_line(d, '~', base, patch);
			break;
		}
		if (json_is_null(p)) {
			if (b != NULL || !json_is_object(base))
				diff_line(d, '-', b, NULL);
		} else if (json_is_object(p) && json_is_object(b)) {
			patch_walk(d, b, p);
		} else if (b == NULL || !json_equal(b, p)) {
			diff_line(d, b == NULL ? '+' : '~', b, p);
		}
		d->path.len = len;
		if (d->path.data != NULL)
			d->path.data[len] = '\0';
	}
	free(keys);
}

size_t
cfg_patch_print(FILE *f, json_t *base, json_t *patch, const char *indent,
		size_t max_lines)
{
	struct diff d = {f, indent, max_lines, 0, {NULL, 0, 0, 0}};

	buf_init(&d.path, CFG_PATH_MAX);
	patch_walk(&d, base, patch);
	if (d.count > max_lines)
		fprintf(f, "%s... %zu more\n", indent, d.count - max_lines);
	buf_free(&d.path);
	return d.count;
}

static int
nulls_walk(json_t *v, struct buf *path)
{
	const char **keys;
	size_t n, len = path->len;
	int rc = 0;

	if (!json_is_object(v))
		return 0;
	keys = sorted_keys(v, &n);
	if (keys == NULL)
		return 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		json_t *m = json_object_get(v, keys[i]);

		if (path_push(path, keys[i]) != 0)
			break;
		if (json_is_null(m))
			rc = -1;
		else
			rc = nulls_walk(m, path);
		if (rc == 0) {
			path->len = len;
			path->data[len] = '\0';
		}
	}
	free(keys);
	return rc;
}

int
cfg_doc_nulls(json_t *doc, char *where, size_t wherelen)
{
	struct buf path;
	int rc;

	buf_init(&path, CFG_PATH_MAX);
	rc = nulls_walk(doc, &path);
	if (rc != 0)
		snprintf(where, wherelen, "%s",
			 path.data != NULL ? path.data : "");
	buf_free(&path);
	return rc;
}

/* ---- change progress ---------------------------------------------------- */

static int
count_of(const json_t *obj, const char *key, long long *out)
{
	const json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = json_integer_value(v);
	return 0;
}

int
cfg_counts_read(const json_t *change, struct cfg_counts *c)
{
	const json_t *counts = json_object_get(change, "counts");
	struct cfg_counts r;

	/* The counts are in "counts", or members of the change itself. */
	if (!json_is_object(counts))
		counts = change;
	memset(&r, 0, sizeof(r));
	if (count_of(counts, "pending", &r.pending) != 0 ||
	    count_of(counts, "applied", &r.applied) != 0 ||
	    count_of(counts, "failed", &r.failed) != 0)
		return -1;
	(void)count_of(counts, "offline", &r.offline);
	(void)count_of(counts, "superseded", &r.superseded);
	if (count_of(counts, "total", &r.total) != 0 &&
	    count_of(counts, "matched", &r.total) != 0 &&
	    count_of(counts, "devices", &r.total) != 0)
		r.total = r.pending + r.applied + r.failed + r.offline +
			  r.superseded;
	*c = r;
	return 0;
}

void
cfg_progress_text(const struct cfg_counts *c, bool bar, char *buf,
		  size_t buflen)
{
	int off = 0;
	long long done = c->applied + c->failed + c->superseded;

	/* The bar is watch.c's, shared with `deployments show --watch`. */
	if (bar) {
		off = (int)ctl_bar(buf, buflen, done, c->total);
		if (off == 0)
			return;
	}
	off += snprintf(buf + off, buflen - (size_t)off,
			"%lld/%lld applied, %lld failed, %lld offline, %lld "
			"pending",
			c->applied, c->total, c->failed, c->offline,
			c->pending);
	if (c->superseded > 0 && off > 0 && (size_t)off < buflen)
		snprintf(buf + off, buflen - (size_t)off, ", %lld superseded",
			 c->superseded);
}

const char *
cfg_short_hash(const char *hash, char *buf, size_t buflen)
{
	size_t n;

	if (hash == NULL || buflen == 0)
		return NULL;
	/* hash may already be in buf (a cell): move, do not copy. */
	n = strnlen(hash, buflen - 1);
	memmove(buf, hash, n);
	buf[n] = '\0';
	return buf;
}

int
cfg_parse_profile_ref(const char *ref, char *namebuf, size_t namelen,
		      long *version, bool *has_version)
{
	const char *at = strrchr(ref, '@');
	size_t n = at != NULL ? (size_t)(at - ref) : strlen(ref);
	char *end = NULL;
	long v;

	if (n == 0 || n >= namelen)
		return -1;
	memcpy(namebuf, ref, n);
	namebuf[n] = '\0';
	*version = 0;
	*has_version = false;
	if (at == NULL || strcmp(at + 1, "latest") == 0)
		return 0;
	errno = 0;
	v = strtol(at + 1, &end, 10);
	if (errno != 0 || end == at + 1 || *end != '\0' || v < 1 ||
	    v > 2147483647L || at[1] < '0' || at[1] > '9')
		return -1;
	*version = v;
	*has_version = true;
	return 0;
}
