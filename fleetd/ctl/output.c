/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetctl output: aligned tables for people (-o table) and the API's JSON
 * for scripts (-o json). Text that came from the server is sanitized: a
 * control character is printed as '?', so a label cannot rewrite the
 * operator's terminal.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ctl.h"

struct ctl_table {
	size_t ncols;
	const char *const *headers;
	char **cells; /* nrows * ncols, owned */
	size_t nrows;
	size_t caprows;
};

char *
ctl_sanitize(char *s)
{
	for (unsigned char *p = (unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
	}
	return s;
}

struct ctl_table *
ctl_table_new(size_t ncols, const char *const *headers)
{
	struct ctl_table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->ncols = ncols;
	t->headers = headers;
	return t;
}

int
ctl_table_add(struct ctl_table *t, const char *const *cells)
{
	if (t->nrows == t->caprows) {
		size_t cap = t->caprows > 0 ? t->caprows * 2 : 64;
		char **c = realloc(t->cells, cap * t->ncols * sizeof(*c));

		if (c == NULL)
			return -1;
		t->cells = c;
		t->caprows = cap;
	}
	for (size_t i = 0; i < t->ncols; i++) {
		char *s = strdup(cells[i] != NULL ? cells[i] : "-");

		if (s == NULL) {
			while (i-- > 0)
				free(t->cells[t->nrows * t->ncols + i]);
			return -1;
		}
		t->cells[t->nrows * t->ncols + i] = ctl_sanitize(s);
	}
	t->nrows++;
	return 0;
}

void
ctl_table_print(const struct ctl_table *t, FILE *f)
{
	size_t *width = calloc(t->ncols, sizeof(*width));

	if (width == NULL)
		return;
	for (size_t c = 0; c < t->ncols; c++) {
		width[c] = strlen(t->headers[c]);
		for (size_t r = 0; r < t->nrows; r++) {
			size_t n = strlen(t->cells[r * t->ncols + c]);

			if (n > width[c])
				width[c] = n;
		}
	}
	for (size_t r = 0; r <= t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *s =
				r == 0 ? t->headers[c]
				       : t->cells[(r - 1) * t->ncols + c];

			if (c + 1 == t->ncols)
				fprintf(f, "%s\n", s);
			else
				fprintf(f, "%-*s  ", (int)width[c], s);
		}
	}
	free(width);
}

void
ctl_table_free(struct ctl_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

int
ctl_print_json(const json_t *v)
{
	if (json_dumpf(v, stdout, JSON_INDENT(2)) != 0)
		return -1;
	putchar('\n');
	return 0;
}

void
ctl_print_field(const char *label, const char *value)
{
	char *copy = strdup(value != NULL ? value : "-");

	if (copy == NULL)
		return;
	printf("%-16s %s\n", label, ctl_sanitize(copy));
	free(copy);
}

const char *
ctl_text(const json_t *obj, const char *key, char *buf, size_t buflen)
{
	const json_t *v = json_object_get(obj, key);

	if (v == NULL)
		return NULL;
	switch (json_typeof(v)) {
	case JSON_STRING:
		return json_string_value(v);
	case JSON_INTEGER:
		snprintf(buf, buflen, "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
		return buf;
	case JSON_REAL:
		snprintf(buf, buflen, "%g", json_real_value(v));
		return buf;
	case JSON_TRUE:
		return "yes";
	case JSON_FALSE:
		return "no";
	case JSON_OBJECT:
	case JSON_ARRAY:
		return ctl_json_text(v, buf, buflen);
	default:
		return NULL;
	}
}

const char *
ctl_text_or_dash(const json_t *obj, const char *key, char *buf, size_t buflen)
{
	const char *s = ctl_text(obj, key, buf, buflen);

	return s != NULL ? s : "-";
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const char *
ctl_labels_text(json_t *labels, char *buf, size_t buflen)
{
	const char **keys;
	const char *key;
	json_t *v;
	size_t n = 0, off = 0;

	buf[0] = '\0';
	if (!json_is_object(labels) || json_object_size(labels) == 0)
		return NULL;
	keys = calloc(json_object_size(labels), sizeof(*keys));
	if (keys == NULL)
		return NULL;
	json_object_foreach(labels, key, v) keys[n++] = key;
	qsort(keys, n, sizeof(*keys), cmp_str);
	for (size_t i = 0; i < n && off < buflen; i++) {
		const char *val =
			json_string_value(json_object_get(labels, keys[i]));
		int w = snprintf(buf + off, buflen - off, "%s%s=%s",
				 i > 0 ? "," : "", keys[i],
				 val != NULL ? val : "");

		if (w < 0)
			break;
		off += (size_t)w;
	}
	if (off >= buflen && buflen > 4)
		memcpy(buf + buflen - 4, "...", 4);
	free(keys);
	return buf;
}

const char *
ctl_json_text(const json_t *v, char *buf, size_t buflen)
{
	char *s;
	size_t n;

	if (v == NULL || json_is_null(v))
		return NULL;
	s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (s == NULL)
		return NULL;
	n = strlen(s);
	snprintf(buf, buflen, "%s", s);
	if (n >= buflen && buflen > 4)
		memcpy(buf + buflen - 4, "...", 4);
	free(s);
	return buf;
}

void
ctl_print_secret(const char *what, const char *secret)
{
	char *copy = strdup(secret != NULL ? secret : "");

	if (copy == NULL)
		return;
	printf("\n%s (shown only once; store it now):\n\n    %s\n\n", what,
	       ctl_sanitize(copy));
	OPENSSL_cleanse(copy, strlen(copy));
	free(copy);
}
