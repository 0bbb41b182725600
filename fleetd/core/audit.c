/* SPDX-License-Identifier: Apache-2.0 */
/* Audit entries (core/audit.h) and the audit list over the store port. */
#include "core/audit.h"

#include <stdlib.h>
#include <string.h>

#include "core/store_audit.h"

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
		free(rows[i].actor_name);
		free(rows[i].action);
		free(rows[i].target);
		free(rows[i].details_json);
	}
	free(rows);
}

int
audit_list(struct store *st, const struct audit_filter *f,
	   const struct page *page, struct audit_row **rows, size_t *n,
	   char next[PAGE_CURSOR_MAX], bool *bad_cursor)
{
	static const struct audit_filter none;

	*bad_cursor = page->after != NULL &&
		      !page_cursor_valid(page->after, PAGE_CURSOR_ID);
	if (*bad_cursor)
		return -1;
	if (f == NULL)
		f = &none;
	return store_audit_list(st, f, page, rows, n, next) == STORE_OK ? 0
									: -1;
}
