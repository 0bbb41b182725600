/* SPDX-License-Identifier: Apache-2.0 */
/* Audit entries (core/audit.h) and page cursors (core/page.h). Pure. */
#include "core/audit.h"

#include <stdlib.h>
#include <string.h>

#include "core/store_audit.h"
#include "secret.h"

static struct audit_field *
audit_next(struct audit_entry *e, const char *key, enum audit_kind kind)
{
	struct audit_field *f;

	if (e->n >= AUDIT_FIELDS_MAX)
		return NULL;
	f = &e->fields[e->n++];
	memset(f, 0, sizeof(*f));
	f->key = key;
	f->kind = kind;
	return f;
}

void
audit_add_str(struct audit_entry *e, const char *key, const char *str)
{
	struct audit_field *f = audit_next(e, key, AUDIT_STR);

	if (f != NULL)
		f->str = str;
}

void
audit_add_int(struct audit_entry *e, const char *key, int64_t num)
{
	struct audit_field *f = audit_next(e, key, AUDIT_INT);

	if (f != NULL)
		f->num = num;
}

void
audit_add_labels(struct audit_entry *e, const char *key,
		 const struct label_set *labels)
{
	struct audit_field *f = audit_next(e, key, AUDIT_LABELS);

	if (f != NULL)
		f->labels = labels;
}

void
audit_rows_free(struct audit_row *rows, size_t n)
{
	size_t i;

	if (rows == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(rows[i].actor);
		free(rows[i].action);
		free(rows[i].target);
		free(rows[i].details_json);
	}
	free(rows);
}

/* Canonical decimal of len bytes, value in [lo, hi]. */
static bool
decimal_in(const char *s, size_t len, uint64_t lo, uint64_t hi)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 19 || (len > 1 && s[0] == '0'))
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0'); /* < 10^19 < 2^64 */
	}
	return v >= lo && v <= hi;
}

/* 9999-12-31T23:59:59.999999Z in microseconds since 1970. */
#define PAGE_TIME_MAX_US 253402300799999999ULL

bool
page_cursor_valid(const char *text, enum page_cursor_kind kind)
{
	const char *sp;

	if (text == NULL)
		return false;
	if (kind == PAGE_CURSOR_ID)
		return decimal_in(text, strlen(text), 1, INT64_MAX);
	sp = strchr(text, ' ');
	return sp != NULL &&
	       decimal_in(text, (size_t)(sp - text), 0, PAGE_TIME_MAX_US) &&
	       secret_is_uuid(sp + 1);
}

int
audit_list(struct store *st, const struct page *page, struct audit_row **rows,
	   size_t *n, char next[PAGE_CURSOR_MAX], bool *bad_cursor)
{
	*bad_cursor = page->after != NULL &&
		      !page_cursor_valid(page->after, PAGE_CURSOR_ID);
	if (*bad_cursor)
		return -1;
	return store_audit_list(st, page, rows, n, next) == STORE_OK ? 0 : -1;
}
