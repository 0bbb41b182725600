/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers of fleetctl's configuration commands (see cfg.h): documents read
 * from files with a size limit and a strict parser, API calls with
 * If-Match / Idempotency-Key and the ETag kept, a readable diff of two
 * JSON documents, and the progress line of a configuration change.
 *
 * Runs in fleetctl on an operator's machine. The files are the
 * operator's; answers come from the server and are bounded by the HTTPS
 * client and sanitized before they reach the terminal.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cfg.h"

/* ---- documents from files -------------------------------------------- */

json_t *
cfg_read_doc(const char *path, const char *what)
{
	FILE *f = NULL;
	struct buf b;
	json_error_t jerr;
	json_t *doc = NULL;
	char chunk[8192];
	size_t n;

	buf_init(&b, CFG_DOC_MAX);
	if (strcmp(path, "-") == 0) {
		f = stdin;
	} else {
		f = fopen(path, "rb");
		if (f == NULL) {
			ctl_fail("%s %s: %s", what, path, strerror(errno));
			goto out;
		}
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_append(&b, chunk, n) != 0) {
			ctl_fail("%s %s: larger than %u KiB (the limit of a "
				 "configuration document)",
				 what, path, CFG_DOC_MAX / 1024);
			goto out;
		}
	}
	if (ferror(f)) {
		ctl_fail("%s %s: read error", what, path);
		goto out;
	}
	if (b.len == 0) {
		ctl_fail("%s %s: empty file (expected a JSON object)", what,
			 path);
		goto out;
	}
	doc = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL) {
		ctl_fail("%s %s: not JSON: %s at line %d", what, path,
			 jerr.text, jerr.line);
		goto out;
	}
	if (!json_is_object(doc)) {
		ctl_fail("%s %s: the document must be a JSON object", what,
			 path);
		json_decref(doc);
		doc = NULL;
	}
out:
	if (f != NULL && f != stdin)
		fclose(f);
	buf_free(&b);
	return doc;
}

/* ---- API calls with headers -------------------------------------------- */

/* "412 Precondition Failed: detail (hint)" from a problem+json answer. */
static void
report_problem(const struct https_response *r, const char *hint)
{
	const char *title = NULL, *detail = NULL;
	json_t *doc = NULL;
	char msg[1024];
	int n;

	if (r->content_type != NULL && strstr(r->content_type, "json") != NULL)
		doc = json_loadb(r->body, r->body_len, 0, NULL);
	if (json_is_object(doc)) {
		title = json_string_value(json_object_get(doc, "title"));
		detail = json_string_value(json_object_get(doc, "detail"));
	}
	if (title == NULL || title[0] == '\0')
		title = r->reason[0] != '\0' ? r->reason : "HTTP error";
	n = snprintf(msg, sizeof(msg), "%d %s", r->status, title);
	if (detail != NULL && detail[0] != '\0' && n > 0 &&
	    (size_t)n < sizeof(msg))
		n += snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", detail);
	if (hint != NULL && n > 0 && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, " (%s)", hint);
	json_decref(doc);
	ctl_fail("%s", msg);
}

int
cfg_api(struct ctl *ctl, const char *method, const char *path, json_t *body,
	struct cfg_call *call, json_t **out)
{
	struct https_header hdrs[6];
	struct https_request req;
	struct https_response resp;
	char err[HTTPS_ERR_MAX], bearer[512];
	char *text = NULL;
	json_error_t jerr;
	json_t *doc = NULL;
	size_t nh = 0;
	int rc = -1;

	memset(&resp, 0, sizeof(resp));
	if (ctl->token == NULL || ctl->token[0] == '\0') {
		ctl_fail("no admin token: set FLEET_TOKEN or use --token");
		return -1;
	}
	if (strpbrk(ctl->token, "\r\n") != NULL ||
	    (size_t)snprintf(bearer, sizeof(bearer), "Bearer %s", ctl->token) >=
		    sizeof(bearer)) {
		ctl_fail("the admin token is malformed");
		goto out;
	}
	if (ctl_connect(ctl) != 0)
		goto out;
	hdrs[nh++] = (struct https_header){"Accept", "application/json"};
	hdrs[nh++] = (struct https_header){"User-Agent", "fleetctl"};
	hdrs[nh++] = (struct https_header){"Authorization", bearer};
	if (call != NULL && call->if_match != NULL)
		hdrs[nh++] = (struct https_header){"If-Match", call->if_match};
	if (call != NULL && call->idempotency_key != NULL)
		hdrs[nh++] = (struct https_header){"Idempotency-Key",
						   call->idempotency_key};
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.path = path;
	if (body != NULL) {
		text = json_dumps(body, JSON_COMPACT);
		if (text == NULL) {
			ctl_fail("out of memory");
			goto out;
		}
		req.body = text;
		req.body_len = strlen(text);
		hdrs[nh++] = (struct https_header){"Content-Type",
						   "application/json"};
	}
	req.headers = hdrs;
	req.n_headers = nh;
	if (https_request(ctl->https, &ctl->url, &req, &resp, err,
			  sizeof(err)) != 0) {
		ctl_fail("%s", err);
		goto out;
	}
	if (call != NULL) {
		call->status = resp.status;
		call->etag[0] = '\0';
		if (resp.etag != NULL && strlen(resp.etag) < CFG_ETAG_MAX)
			memcpy(call->etag, resp.etag, strlen(resp.etag) + 1);
	}
	if (resp.status < 200 || resp.status > 299) {
		report_problem(&resp, resp.status == 412 && call != NULL
					      ? call->on_412
					      : NULL);
		goto out;
	}
	if (resp.body_len == 0) {
		doc = json_null();
	} else {
		doc = json_loadb(resp.body, resp.body_len, 0, &jerr);
		if (doc == NULL) {
			ctl_fail("%s %s: the server sent invalid JSON: %s",
				 method, path, jerr.text);
			goto out;
		}
	}
	if (out != NULL) {
		*out = doc;
		doc = NULL;
	}
	rc = 0;
out:
	OPENSSL_cleanse(bearer, sizeof(bearer));
	json_decref(doc);
	free(text);
	https_response_free(&resp);
	return rc;
}

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

	d->count++;
	if (d->count > d->max_lines)
		return;
	if (op == '~')
		snprintf(line, sizeof(line), "%s~ %s: %s -> %s", d->indent,
			 path, ctl_json_text(from, a, sizeof(a)),
			 ctl_json_text(to, b, sizeof(b)));
	else
		snprintf(line, sizeof(line), "%s%c %s: %s", d->indent, op, path,
			 ctl_json_text(op == '+' ? to : from, a, sizeof(a)));
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
	diff_walk(&d, from, to);
	if (d.count > max_lines)
		fprintf(f, "%s... %zu more\n", indent, d.count - max_lines);
	buf_free(&d.path);
	return d.count;
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
	if (count_of(counts, "total", &r.total) != 0 &&
	    count_of(counts, "matched", &r.total) != 0 &&
	    count_of(counts, "devices", &r.total) != 0)
		r.total = r.pending + r.applied + r.failed + r.offline;
	*c = r;
	return 0;
}

void
cfg_progress_text(const struct cfg_counts *c, bool bar, char *buf,
		  size_t buflen)
{
	enum { WIDTH = 30 };
	char cells[WIDTH + 1];
	int off = 0;
	long long done = c->applied + c->failed;

	if (bar) {
		int fill =
			c->total > 0 ? (int)(done * WIDTH / c->total) : WIDTH;
		int pct = c->total > 0 ? (int)(done * 100 / c->total) : 100;

		if (fill > WIDTH)
			fill = WIDTH;
		memset(cells, '#', (size_t)fill);
		memset(cells + fill, '.', (size_t)(WIDTH - fill));
		cells[WIDTH] = '\0';
		off = snprintf(buf, buflen, "[%s] %3d%%  ", cells, pct);
		if (off < 0 || (size_t)off >= buflen)
			return;
	}
	snprintf(buf + off, buflen - (size_t)off,
		 "%lld/%lld applied, %lld failed, %lld offline, %lld pending",
		 c->applied, c->total, c->failed, c->offline, c->pending);
}

const char *
cfg_short_hash(const char *hash, char *buf, size_t buflen)
{
	if (hash == NULL)
		return NULL;
	snprintf(buf, buflen, "%.12s", hash);
	return buf;
}

int
cfg_parse_profile_ref(const char *ref, char *namebuf, size_t namelen,
		      long *version, bool *has_version)
{
	const char *at = strrchr(ref, '@');
	size_t n = at != NULL ? (size_t)(at - ref) : strlen(ref);

	if (n == 0 || n >= namelen)
		return -1;
	memcpy(namebuf, ref, n);
	namebuf[n] = '\0';
	*version = 0;
	*has_version = false;
	if (at == NULL || strcmp(at + 1, "latest") == 0)
		return 0;
	if (ctl_parse_long(at + 1, 1, 2147483647L, version) != 0)
		return -1;
	*has_version = true;
	return 0;
}

/* ---- argv -------------------------------------------------------------- */

char **
cfg_argv_file(int argc, char **argv)
{
	char **out = calloc((size_t)argc + 1, sizeof(*out));
	bool rest = false;

	if (out == NULL)
		return NULL;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		struct buf b;

		rest = rest || strcmp(a, "--") == 0;
		buf_init(&b, 65536);
		if (!rest && i > 0 && strncmp(a, "-f", 2) == 0)
			(void)buf_printf(&b, "--file%s%s",
					 a[2] != '\0' ? "=" : "", a + 2);
		else
			(void)buf_printf(&b, "%s", a);
		out[i] = buf_detach(&b, NULL);
		if (out[i] == NULL) {
			cfg_argv_free(i, out);
			return NULL;
		}
	}
	return out;
}

void
cfg_argv_free(int argc, char **argv)
{
	if (argv == NULL)
		return;
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	free(argv);
}
