/* SPDX-License-Identifier: Apache-2.0 */
/* Store port: reading the audit log (rows are written by the mutating
 * store functions themselves). */
#ifndef FLEETD_CORE_STORE_AUDIT_H
#define FLEETD_CORE_STORE_AUDIT_H

#include <stddef.h>

#include "core/audit.h"
#include "core/page.h"
#include "core/store.h"

/* Newest first, narrowed by f (never NULL; checked by core);
 * page->after is an ID cursor. *rows malloc'd (n rows, audit_rows_free,
 * actor_name filled); next as in store_token_list. */
enum store_rc store_audit_list(struct store *st, const struct audit_filter *f,
			       const struct page *page, struct audit_row **rows,
			       size_t *n, char next[PAGE_CURSOR_MAX]);

#endif
