/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Selector parser and in-memory match (DESIGN.md §9). Runs in net workers
 * on job threads; the text comes straight from a query string and is
 * untrusted. A hand-written scanner over the bytes: no allocations beyond
 * the result, every length checked against the limits in selector.h. The
 * SQL translation lives in the store (db/selector_sql.c).
 */
#include "core/selector.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct scanner {
	const char *s;
	size_t pos;
	char *err;
	size_t errlen;
};

static void scan_fail(struct scanner *sc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
scan_fail(struct scanner *sc, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (sc->err != NULL && sc->errlen > 0)
		snprintf(sc->err, sc->errlen, "selector column %zu: %s",
			 sc->pos + 1, msg);
}

static int
is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '/' ||
	       c == '-';
}

/* Values: any printable byte (UTF-8 included) but blanks and syntax. */
static int
is_value_char(char c)
{
	unsigned char u = (unsigned char)c;

	if (u < 0x21 || u == 0x7f)
		return 0;
	return c != ',' && c != '(' && c != ')' && c != '=' && c != '!';
}

int
selector_key_valid(const char *key, size_t len)
{
	size_t i;

	if (len == 0 || len > SELECTOR_KEY_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!is_key_char(key[i]))
			return 0;
	return 1;
}

static void
skip_blanks(struct scanner *sc)
{
	while (sc->s[sc->pos] == ' ' || sc->s[sc->pos] == '\t')
		sc->pos++;
}

static char *
dup_span(const char *s, size_t len)
{
	char *p = malloc(len + 1);

	if (p == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/*
 * Scans one run of characters accepted by is_char, at most max bytes, and
 * returns a copy in *out (owned by the caller). Keys and values differ only
 * in their alphabet, their limit and whether they may be empty.
 */
static int
scan_span(struct scanner *sc, int (*is_char)(char), size_t max, int allow_empty,
	  const char *what, char **out)
{
	size_t start = sc->pos;

	while (is_char(sc->s[sc->pos]))
		sc->pos++;
	if (sc->pos == start && !allow_empty) {
		scan_fail(sc, "expected a %s", what);
		return -1;
	}
	if (sc->pos - start > max) {
		sc->pos = start;
		scan_fail(sc, "%s longer than %zu bytes", what, max);
		return -1;
	}
	*out = dup_span(sc->s + start, sc->pos - start);
	if (*out == NULL) {
		scan_fail(sc, "out of memory");
		return -1;
	}
	return 0;
}

static int
scan_key(struct scanner *sc, char **out)
{
	return scan_span(sc, is_key_char, SELECTOR_KEY_MAX, 0, "key", out);
}

static int
scan_value(struct scanner *sc, int allow_empty, char **out)
{
	return scan_span(sc, is_value_char, SELECTOR_VALUE_MAX, allow_empty,
			 "value", out);
}

static int
term_add_value(struct scanner *sc, struct selector_term *t, char *v)
{
	char **nv;

	if (t->nvalues >= SELECTOR_MAX_VALUES) {
		scan_fail(sc, "more than %d values in a list",
			  SELECTOR_MAX_VALUES);
		free(v);
		return -1;
	}
	nv = realloc(t->values, (t->nvalues + 1) * sizeof(*nv));
	if (nv == NULL) {
		scan_fail(sc, "out of memory");
		free(v);
		return -1;
	}
	t->values = nv;
	t->values[t->nvalues++] = v;
	return 0;
}

/* "(a, b, c)" */
static int
scan_list(struct scanner *sc, struct selector_term *t)
{
	char *v = NULL;

	skip_blanks(sc);
	if (sc->s[sc->pos] != '(') {
		scan_fail(sc, "expected '(' after '%s'",
			  t->op == SELECTOR_IN ? "in" : "notin");
		return -1;
	}
	sc->pos++;
	for (;;) {
		skip_blanks(sc);
		if (scan_value(sc, 0, &v) != 0)
			return -1;
		if (term_add_value(sc, t, v) != 0)
			return -1;
		skip_blanks(sc);
		if (sc->s[sc->pos] == ',') {
			sc->pos++;
			continue;
		}
		if (sc->s[sc->pos] == ')') {
			sc->pos++;
			return 0;
		}
		scan_fail(sc, "expected ',' or ')' in a value list");
		return -1;
	}
}

/* Is the word at pos exactly w, followed by a blank or '('? */
static int
at_word(const struct scanner *sc, const char *w)
{
	size_t n = strlen(w);
	char next;

	if (strncmp(sc->s + sc->pos, w, n) != 0)
		return 0;
	next = sc->s[sc->pos + n];
	return next == ' ' || next == '\t' || next == '(';
}

static int
scan_term(struct scanner *sc, struct selector_term *t)
{
	char *v = NULL;

	skip_blanks(sc);
	if (sc->s[sc->pos] == '!') {
		sc->pos++;
		skip_blanks(sc);
		t->op = SELECTOR_NOT_EXISTS;
		return scan_key(sc, &t->key);
	}
	if (scan_key(sc, &t->key) != 0)
		return -1;
	skip_blanks(sc);
	switch (sc->s[sc->pos]) {
	case '\0':
	case ',':
		t->op = SELECTOR_EXISTS;
		return 0;
	case '=':
		sc->pos++;
		if (sc->s[sc->pos] == '=')
			sc->pos++;
		t->op = SELECTOR_EQ;
		break;
	case '!':
		if (sc->s[sc->pos + 1] != '=') {
			sc->pos++;
			scan_fail(sc, "expected '=' after '!'");
			return -1;
		}
		sc->pos += 2;
		t->op = SELECTOR_NE;
		break;
	default:
		if (at_word(sc, "in")) {
			sc->pos += 2;
			t->op = SELECTOR_IN;
			return scan_list(sc, t);
		}
		if (at_word(sc, "notin")) {
			sc->pos += 5;
			t->op = SELECTOR_NOTIN;
			return scan_list(sc, t);
		}
		scan_fail(sc,
			  "expected '=', '!=', 'in', 'notin', ',' or the "
			  "end after key '%s'",
			  t->key);
		return -1;
	}
	skip_blanks(sc);
	if (scan_value(sc, 1, &v) != 0)
		return -1;
	return term_add_value(sc, t, v);
}

static void
term_clear(struct selector_term *t)
{
	size_t i;

	free(t->key);
	for (i = 0; i < t->nvalues; i++)
		free(t->values[i]);
	free(t->values);
}

void
selector_free(struct selector *sel)
{
	size_t i;

	if (sel == NULL)
		return;
	for (i = 0; i < sel->nterms; i++)
		term_clear(&sel->terms[i]);
	free(sel->terms);
	free(sel);
}

/* Built-in keys with a closed set of values: online compares only with
 * true and false, status only with active and decommissioned. */
static int
check_closed(const struct selector *sel, const char *key, const char *a,
	     const char *b, char *err, size_t errlen)
{
	const struct selector_term *t;
	size_t i, j;

	for (i = 0; i < sel->nterms; i++) {
		t = &sel->terms[i];
		if (strcmp(t->key, key) != 0)
			continue;
		for (j = 0; j < t->nvalues; j++) {
			if (strcmp(t->values[j], a) == 0 ||
			    strcmp(t->values[j], b) == 0)
				continue;
			if (err != NULL && errlen > 0)
				snprintf(err, errlen,
					 "selector key '%s' takes %s or %s, "
					 "not '%.64s'",
					 key, a, b, t->values[j]);
			return -1;
		}
	}
	return 0;
}

static int
check_online(const struct selector *sel, char *err, size_t errlen)
{
	if (check_closed(sel, "online", "true", "false", err, errlen) != 0)
		return -1;
	return check_closed(sel, "status", "active", "decommissioned", err,
			    errlen);
}

int
selector_parse(const char *text, struct selector **out, char *err,
	       size_t errlen)
{
	struct scanner sc = {text, 0, err, errlen};
	struct selector *sel = NULL;
	struct selector_term *nt = NULL;

	if (strlen(text) > SELECTOR_MAX_LEN) {
		scan_fail(&sc, "selector longer than %d bytes",
			  SELECTOR_MAX_LEN);
		return -1;
	}
	sel = calloc(1, sizeof(*sel));
	if (sel == NULL)
		goto fail;
	skip_blanks(&sc);
	if (text[sc.pos] == '\0') {
		*out = sel;
		return 0;
	}
	for (;;) {
		if (sel->nterms >= SELECTOR_MAX_TERMS) {
			scan_fail(&sc, "more than %d terms",
				  SELECTOR_MAX_TERMS);
			goto fail;
		}
		nt = realloc(sel->terms, (sel->nterms + 1) * sizeof(*nt));
		if (nt == NULL)
			goto fail;
		sel->terms = nt;
		memset(&sel->terms[sel->nterms], 0, sizeof(*nt));
		sel->nterms++;
		if (scan_term(&sc, &sel->terms[sel->nterms - 1]) != 0)
			goto fail;
		skip_blanks(&sc);
		if (text[sc.pos] == '\0')
			break;
		if (text[sc.pos] != ',') {
			scan_fail(&sc, "expected ',' or the end");
			goto fail;
		}
		sc.pos++;
	}
	if (check_online(sel, err, errlen) != 0)
		goto fail;
	*out = sel;
	return 0;
fail:
	selector_free(sel);
	return -1;
}

int
selector_and_online(struct selector *sel, bool online)
{
	return selector_and_eq(sel, "online", online ? "true" : "false");
}

bool
selector_has_key(const struct selector *sel, const char *key)
{
	size_t i;

	for (i = 0; i < sel->nterms; i++)
		if (strcmp(sel->terms[i].key, key) == 0)
			return true;
	return false;
}

int
selector_and_eq(struct selector *sel, const char *key, const char *value)
{
	struct selector_term *nt, t;

	memset(&t, 0, sizeof(t));
	t.op = SELECTOR_EQ;
	t.key = strdup(key);
	t.values = malloc(sizeof(*t.values));
	if (t.values != NULL) {
		t.values[0] = strdup(value);
		t.nvalues = t.values[0] != NULL ? 1 : 0;
	}
	nt = realloc(sel->terms, (sel->nterms + 1) * sizeof(*nt));
	if (t.key == NULL || t.nvalues != 1 || nt == NULL) {
		if (nt != NULL)
			sel->terms = nt;
		term_clear(&t);
		return -1;
	}
	sel->terms = nt;
	sel->terms[sel->nterms++] = t;
	return 0;
}

/* Matching ------------------------------------------------------------ */

static bool
value_in(const struct selector_term *t, const char *v)
{
	size_t i;

	for (i = 0; i < t->nvalues; i++)
		if (strcmp(t->values[i], v) == 0)
			return true;
	return false;
}

/*
 * One term against one value of the device (NULL: the device has no such
 * key). Absent keys: =, in and "key" fail; !=, notin and "!key" hold. The
 * SQL of db/selector_sql.c mirrors each case.
 */
static bool
term_holds(const struct selector_term *t, const char *v)
{
	switch (t->op) {
	case SELECTOR_EQ:
		return v != NULL && strcmp(v, t->values[0]) == 0;
	case SELECTOR_NE:
		return v == NULL || strcmp(v, t->values[0]) != 0;
	case SELECTOR_IN:
		return v != NULL && value_in(t, v);
	case SELECTOR_NOTIN:
		return v == NULL || !value_in(t, v);
	case SELECTOR_EXISTS:
		return v != NULL;
	case SELECTOR_NOT_EXISTS:
		return v == NULL;
	}
	return false;
}

/* online is a key every device has, with the value "true" or "false";
 * "online" alone means online=true and "!online" online=false. */
static bool
online_holds(const struct selector_term *t, bool online)
{
	switch (t->op) {
	case SELECTOR_EXISTS:
		return online;
	case SELECTOR_NOT_EXISTS:
		return !online;
	default:
		return term_holds(t, online ? "true" : "false");
	}
}

bool
selector_match(const struct selector *sel, const struct selector_target *t)
{
	const struct selector_term *term;
	const char *v;
	size_t i;

	for (i = 0; i < sel->nterms; i++) {
		term = &sel->terms[i];
		if (strcmp(term->key, "online") == 0) {
			if (!online_holds(term, t->online))
				return false;
			continue;
		}
		if (strcmp(term->key, "id") == 0)
			v = t->id;
		else if (strcmp(term->key, "model") == 0)
			v = t->model;
		else if (strcmp(term->key, "fw_version") == 0)
			v = t->fw_version;
		else if (strcmp(term->key, "status") == 0)
			v = t->status;
		else
			v = t->labels != NULL
				    ? label_set_get(t->labels, term->key)
				    : NULL;
		if (!term_holds(term, v))
			return false;
	}
	return true;
}
