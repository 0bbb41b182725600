/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Selector parser and SQL translator (DESIGN.md §9). Runs in net workers on
 * job threads; the text comes straight from a query string and is
 * untrusted. A hand-written scanner over the bytes: no allocations beyond
 * the result, every length checked against the limits in selector.h. The
 * SQL it writes contains only the caller's column expressions, fixed
 * operators and $n placeholders; values travel as parameters.
 */
#include "core/selector.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

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

static int
scan_key(struct scanner *sc, char **out)
{
	size_t start = sc->pos;

	while (is_key_char(sc->s[sc->pos]))
		sc->pos++;
	if (sc->pos == start) {
		scan_fail(sc, "expected a key");
		return -1;
	}
	if (sc->pos - start > SELECTOR_KEY_MAX) {
		sc->pos = start;
		scan_fail(sc, "key longer than %d bytes", SELECTOR_KEY_MAX);
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
scan_value(struct scanner *sc, int allow_empty, char **out)
{
	size_t start = sc->pos;

	while (is_value_char(sc->s[sc->pos]))
		sc->pos++;
	if (sc->pos == start && !allow_empty) {
		scan_fail(sc, "expected a value");
		return -1;
	}
	if (sc->pos - start > SELECTOR_VALUE_MAX) {
		sc->pos = start;
		scan_fail(sc, "value longer than %d bytes", SELECTOR_VALUE_MAX);
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
	*out = sel;
	return 0;
fail:
	selector_free(sel);
	return -1;
}

/* SQL generation ------------------------------------------------------ */

struct sqlgen {
	struct buf where;
	struct selector_sql *out;
	int next;
	int failed;
};

static int
gen_param(struct sqlgen *g, const char *value)
{
	char **np;
	char *copy;

	np = realloc(g->out->params, (g->out->nparams + 1) * sizeof(*np));
	if (np == NULL) {
		g->failed = 1;
		return 0;
	}
	g->out->params = np;
	copy = strdup(value);
	if (copy == NULL) {
		g->failed = 1;
		return 0;
	}
	g->out->params[g->out->nparams++] = copy;
	return g->next++;
}

static void gen(struct sqlgen *g, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
gen(struct sqlgen *g, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp) ||
	    buf_append(&g->where, tmp, (size_t)n) != 0)
		g->failed = 1;
}

/* "($3, $4, $5)" for the term's values. */
static void
gen_list(struct sqlgen *g, const struct selector_term *t)
{
	size_t i;

	gen(g, "(");
	for (i = 0; i < t->nvalues; i++)
		gen(g, "%s$%d", i ? ", " : "", gen_param(g, t->values[i]));
	gen(g, ")");
}

static int
parse_bool(const char *v, int *out)
{
	if (strcmp(v, "true") == 0)
		*out = 1;
	else if (strcmp(v, "false") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

static int
gen_online(struct sqlgen *g, const struct selector_term *t, const char *online,
	   char *err, size_t errlen)
{
	int want_true = 0, want_false = 0, b;
	size_t i;

	switch (t->op) {
	case SELECTOR_EXISTS:
		want_true = 1;
		break;
	case SELECTOR_NOT_EXISTS:
		want_false = 1;
		break;
	default:
		for (i = 0; i < t->nvalues; i++) {
			if (parse_bool(t->values[i], &b) != 0) {
				snprintf(err, errlen,
					 "selector key 'online' takes true or "
					 "false, not '%s'",
					 t->values[i]);
				return -1;
			}
			if (b)
				want_true = 1;
			else
				want_false = 1;
		}
		/* != and notin match the complement of the named set */
		if (t->op == SELECTOR_NE || t->op == SELECTOR_NOTIN) {
			want_true = !want_true;
			want_false = !want_false;
		}
	}
	if (want_true && want_false)
		gen(g, "TRUE");
	else if (want_true)
		gen(g, "(%s)", online);
	else if (want_false)
		gen(g, "NOT (%s)", online);
	else
		gen(g, "FALSE");
	return 0;
}

/* A built-in text column: NULL means "no such key" for this device. */
static void
gen_column(struct sqlgen *g, const struct selector_term *t, const char *col)
{
	switch (t->op) {
	case SELECTOR_EQ:
		gen(g, "%s = $%d", col, gen_param(g, t->values[0]));
		break;
	case SELECTOR_NE:
		gen(g, "%s IS DISTINCT FROM $%d", col,
		    gen_param(g, t->values[0]));
		break;
	case SELECTOR_IN:
		gen(g, "%s IN ", col);
		gen_list(g, t);
		break;
	case SELECTOR_NOTIN:
		gen(g, "NOT coalesce(%s IN ", col);
		gen_list(g, t);
		gen(g, ", false)");
		break;
	case SELECTOR_EXISTS:
		gen(g, "%s IS NOT NULL", col);
		break;
	case SELECTOR_NOT_EXISTS:
		gen(g, "%s IS NULL", col);
		break;
	}
}

/* Labels: equality as jsonb containment so the GIN index can serve it. */
static void
gen_label(struct sqlgen *g, const struct selector_term *t, const char *lab)
{
	int k;

	switch (t->op) {
	case SELECTOR_EQ:
		k = gen_param(g, t->key);
		gen(g, "%s @> jsonb_build_object($%d::text, $%d::text)", lab, k,
		    gen_param(g, t->values[0]));
		break;
	case SELECTOR_NE:
		k = gen_param(g, t->key);
		gen(g, "NOT (%s @> jsonb_build_object($%d::text, $%d::text))",
		    lab, k, gen_param(g, t->values[0]));
		break;
	case SELECTOR_IN:
		gen(g, "(%s ->> $%d::text) IN ", lab, gen_param(g, t->key));
		gen_list(g, t);
		break;
	case SELECTOR_NOTIN:
		gen(g, "NOT coalesce((%s ->> $%d::text) IN ", lab,
		    gen_param(g, t->key));
		gen_list(g, t);
		gen(g, ", false)");
		break;
	case SELECTOR_EXISTS:
		gen(g, "%s ? $%d::text", lab, gen_param(g, t->key));
		break;
	case SELECTOR_NOT_EXISTS:
		gen(g, "NOT (%s ? $%d::text)", lab, gen_param(g, t->key));
		break;
	}
}

void
selector_sql_free(struct selector_sql *q)
{
	size_t i;

	if (q == NULL)
		return;
	free(q->where);
	for (i = 0; i < q->nparams; i++)
		free(q->params[i]);
	free(q->params);
	memset(q, 0, sizeof(*q));
}

int
selector_to_sql(const struct selector *sel, const struct selector_columns *cols,
		int first_param, struct selector_sql *out, char *err,
		size_t errlen)
{
	struct sqlgen g;
	const struct selector_term *t;
	size_t i;

	memset(out, 0, sizeof(*out));
	memset(&g, 0, sizeof(g));
	buf_init(&g.where, 64 * 1024);
	g.out = out;
	g.next = first_param;
	if (sel->nterms == 0)
		gen(&g, "TRUE");
	for (i = 0; i < sel->nterms; i++) {
		t = &sel->terms[i];
		gen(&g, "%s(", i ? " AND " : "");
		if (strcmp(t->key, "online") == 0) {
			if (gen_online(&g, t, cols->online, err, errlen) != 0)
				goto fail;
		} else if (strcmp(t->key, "id") == 0) {
			gen_column(&g, t, cols->id);
		} else if (strcmp(t->key, "model") == 0) {
			gen_column(&g, t, cols->model);
		} else if (strcmp(t->key, "fw_version") == 0) {
			gen_column(&g, t, cols->fw_version);
		} else {
			gen_label(&g, t, cols->labels);
		}
		gen(&g, ")");
	}
	if (g.failed) {
		snprintf(err, errlen, "selector too large");
		goto fail;
	}
	out->where = buf_detach(&g.where, NULL);
	return 0;
fail:
	buf_free(&g.where);
	selector_sql_free(out);
	return -1;
}
