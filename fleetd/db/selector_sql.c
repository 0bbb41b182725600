/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Selector terms (core/selector.h) as an SQL WHERE fragment for the
 * device queries of db/devices.c: $n placeholders and a parameter array,
 * so selector text never becomes SQL text. Runs on job threads; the terms
 * come from an untrusted query string, already parsed and bounded.
 *
 * Each case mirrors term_holds()/online_holds() in core/selector.c, the
 * definition of the semantics (absent keys: =, in and "key" fail; !=,
 * notin and "!key" hold). The selector contract test
 * (tests/integration/test_devices.sh) runs both on the same table.
 */
#include "db/selector_sql.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "db/query.h"
#include "log.h"

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

/*
 * A jsonb object of n key/value pairs as one parameter: "$7::jsonb". One
 * constant, where jsonb_build_object($k, $v) was evaluated again for
 * every row a scan filtered (a third of a seq scan's time), and what the
 * planner estimates containment from.
 */
static int
gen_object(struct sqlgen *g, const char *const *kv, size_t n)
{
	json_t *o = json_object();
	char *text = NULL;
	size_t i;
	int k = 0;

	for (i = 0; o != NULL && i < n; i++)
		if (json_object_set_new(o, kv[2 * i],
					json_string(kv[2 * i + 1])) != 0) {
			json_decref(o);
			o = NULL;
		}
	text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	if (text == NULL)
		g->failed = 1;
	else
		k = gen_param(g, text);
	free(text);
	json_decref(o);
	return k;
}

/* "lab @> $n::jsonb" for {key: value}. */
static void
gen_contains(struct sqlgen *g, const char *lab, const char *key,
	     const char *value)
{
	const char *kv[2] = {key, value};

	gen(g, "%s @> $%d::jsonb", lab, gen_object(g, kv, 1));
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
gen_online(struct sqlgen *g, const struct selector_term *t, const char *online,
	   char *err, size_t errlen)
{
	int want_true = 0, want_false = 0;
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
			/* selector_parse admits only true and false */
			if (strcmp(t->values[i], "true") != 0 &&
			    strcmp(t->values[i], "false") != 0) {
				snprintf(err, errlen,
					 "selector key 'online' takes true or "
					 "false, not '%s'",
					 t->values[i]);
				return -1;
			}
			if (strcmp(t->values[i], "true") == 0)
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
		gen(g, "NOT coalesce((%s), false)", online);
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

/* Labels: equality and in as jsonb containment so the GIN index can serve
 * them. */
static void
gen_label(struct sqlgen *g, const struct selector_term *t, const char *lab)
{
	size_t i;

	switch (t->op) {
	case SELECTOR_EQ:
		gen_contains(g, lab, t->key, t->values[0]);
		break;
	case SELECTOR_NE:
		gen(g, "NOT (");
		gen_contains(g, lab, t->key, t->values[0]);
		gen(g, ")");
		break;
	case SELECTOR_IN:
		/* One containment per value, ORed: the GIN index serves each
		 * (a BitmapOr), where "labels ->> key IN (...)" read every
		 * row. The same answer: label values are always strings. */
		gen(g, "(");
		for (i = 0; i < t->nvalues; i++) {
			gen(g, "%s", i ? " OR " : "");
			gen_contains(g, lab, t->key, t->values[i]);
		}
		gen(g, ")");
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

static bool
is_builtin(const char *key)
{
	static const char *const builtin[] = {"online", "id", "model",
					      "fw_version", "status"};
	size_t i;

	for (i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
		if (strcmp(key, builtin[i]) == 0)
			return true;
	return false;
}

/*
 * Which terms go into one containment. PostgreSQL estimates each
 * "labels @> {k: v}" alone and multiplies, so labels that imply each
 * other (rack r13 is always at site s3) look rare: 371 estimated for
 * 20,000 matching, and it then collects every match to sort it instead
 * of walking the list's order (docs/internals/device-list.md). One
 * "labels @> {k1: v1, k2: v2}" is estimated from the sampled label sets
 * as a whole, so the correlation is in the estimate; the GIN index
 * serves it the same way. The label equalities with distinct keys are
 * merged (the first of a repeated key: jsonb_build_object keeps one
 * value per key, "site=a,site=b" must match nothing); the first label
 * "in" on another key takes them into each of its values (with
 * equalities E: "labels @> E+{k: v1} OR labels @> E+{k: v2}"). merged[i]
 * marks the merged terms; *in the distributing term or SIZE_MAX.
 * Returns how many equalities merged.
 */
static size_t
label_merge(const struct selector *sel, bool *merged, size_t *in)
{
	const struct selector_term *t;
	size_t i, j, n = 0;
	bool seen;

	*in = SIZE_MAX;
	for (i = 0; i < sel->nterms; i++) {
		t = &sel->terms[i];
		merged[i] = false;
		if (t->op != SELECTOR_EQ || is_builtin(t->key))
			continue;
		seen = false;
		for (j = 0; j < i && !seen; j++)
			seen = merged[j] &&
			       strcmp(sel->terms[j].key, t->key) == 0;
		if (!seen) {
			merged[i] = true;
			n++;
		}
	}
	for (i = 0; n > 0 && i < sel->nterms && *in == SIZE_MAX; i++) {
		t = &sel->terms[i];
		if (t->op != SELECTOR_IN || is_builtin(t->key))
			continue;
		seen = false;
		for (j = 0; j < sel->nterms && !seen; j++)
			seen = merged[j] &&
			       strcmp(sel->terms[j].key, t->key) == 0;
		if (!seen)
			*in = i;
	}
	return n;
}

/*
 * The merged equalities as one containment, "lab @> $n::jsonb", or with
 * the values of the term in, one containment per value ORed.
 */
static void
gen_merged(struct sqlgen *g, const struct selector *sel, const bool *merged,
	   const struct selector_term *in, const char *lab)
{
	const char **kv = calloc(2 * (sel->nterms + 1), sizeof(*kv));
	size_t i, n = 0, v;

	if (kv == NULL) {
		g->failed = 1;
		return;
	}
	for (i = 0; i < sel->nterms; i++) {
		if (!merged[i])
			continue;
		kv[2 * n] = sel->terms[i].key;
		kv[2 * n + 1] = sel->terms[i].values[0];
		n++;
	}
	if (in == NULL) {
		gen(g, "%s @> $%d::jsonb", lab, gen_object(g, kv, n));
	} else {
		kv[2 * n] = in->key;
		for (v = 0; v < in->nvalues; v++) {
			kv[2 * n + 1] = in->values[v];
			gen(g, "%s%s @> $%d::jsonb", v ? " OR " : "", lab,
			    gen_object(g, kv, n + 1));
		}
	}
	free(kv);
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
	bool *merged = NULL;
	size_t i, in = SIZE_MAX, nmerged = 0;
	int nout = 0;

	memset(out, 0, sizeof(*out));
	memset(&g, 0, sizeof(g));
	buf_init(&g.where, 64 * 1024);
	g.out = out;
	g.next = first_param;
	merged = calloc(sel->nterms + 1, sizeof(*merged));
	if (merged == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	nmerged = label_merge(sel, merged, &in);
	/* One equality alone, and no "in" to take it: a term as any. */
	if (nmerged == 1 && in == SIZE_MAX) {
		memset(merged, 0, (sel->nterms + 1) * sizeof(*merged));
		nmerged = 0;
	}
	if (nmerged > 0) {
		gen(&g, "(");
		gen_merged(&g, sel, merged,
			   in != SIZE_MAX ? &sel->terms[in] : NULL,
			   cols->labels);
		gen(&g, ")");
		nout++;
	}
	if (sel->nterms == 0)
		gen(&g, "TRUE");
	for (i = 0; i < sel->nterms; i++) {
		t = &sel->terms[i];
		if (merged[i] || i == in)
			continue; /* in the containment above */
		gen(&g, "%s(", nout++ ? " AND " : "");
		if (strcmp(t->key, "online") == 0) {
			if (gen_online(&g, t, cols->online, err, errlen) != 0)
				goto fail;
		} else if (strcmp(t->key, "id") == 0) {
			gen_column(&g, t, cols->id);
		} else if (strcmp(t->key, "model") == 0) {
			gen_column(&g, t, cols->model);
		} else if (strcmp(t->key, "fw_version") == 0) {
			gen_column(&g, t, cols->fw_version);
		} else if (strcmp(t->key, "status") == 0) {
			gen_column(&g, t,
				   cols->status ? cols->status : "NULL::text");
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
	free(merged);
	return 0;
fail:
	free(merged);
	buf_free(&g.where);
	selector_sql_free(out);
	return -1;
}

PGresult *
selector_query(PGconn *conn, const struct selector *sel,
	       const struct selector_columns *cols, const char *fmt,
	       const char *const *fixed, size_t nfixed, const char *what)
{
	struct selector_sql q;
	const char **params = NULL;
	PGresult *res = NULL;
	const char *hole;
	struct buf sql;
	char err[160];
	size_t i;

	memset(&q, 0, sizeof(q));
	buf_init(&sql, 64 * 1024);
	if (sel == NULL || selector_to_sql(sel, cols, (int)nfixed + 1, &q, err,
					   sizeof(err)) != 0) {
		log_warn("%s: selector: %s", what,
			 sel == NULL ? "none given" : err);
		goto out;
	}
	hole = strstr(fmt, "%s");
	params = calloc(nfixed + q.nparams + 1, sizeof(*params));
	if (hole == NULL || params == NULL ||
	    buf_append(&sql, fmt, (size_t)(hole - fmt)) != 0 ||
	    buf_append(&sql, q.where, strlen(q.where)) != 0 ||
	    buf_append(&sql, hole + 2, strlen(hole + 2)) != 0)
		goto out;
	for (i = 0; i < nfixed; i++)
		params[i] = fixed[i];
	for (i = 0; i < q.nparams; i++)
		params[nfixed + i] = q.params[i];
	res = db_query(conn, sql.data, (int)(nfixed + q.nparams), params);
out:
	free(params);
	buf_free(&sql);
	selector_sql_free(&q);
	return res;
}
