/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Store port: tokens of both kinds (core/token.h). Each function is one
 * atomic unit of work and commits the audit row it is given with its
 * change. Records come back as struct token (caller token_clear()s).
 */
#ifndef FLEETD_CORE_STORE_TOKENS_H
#define FLEETD_CORE_STORE_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#include "core/audit.h"
#include "core/idempotency.h"
#include "core/page.h"
#include "core/store.h"
#include "core/token.h"

/*
 * Inserts tok (hash only, never the text) with its audit row and, when
 * idem is not NULL, the Idempotency-Key record. STORE_OK, STORE_CONFLICT
 * (the key was recorded by a concurrent request; nothing written) or
 * STORE_ERR.
 */
enum store_rc store_token_create(struct store *st, const struct token *tok,
				 const char *sha256,
				 const struct audit_entry *audit,
				 const struct idem_record *idem);

/* STORE_OK (*out filled), STORE_NOTFOUND or STORE_ERR. */
enum store_rc store_token_get(struct store *st, enum token_kind kind,
			      const char *id, struct token *out);

/*
 * One page ordered by (created_at, id); page->after is a TIME_ID cursor.
 * *items is malloc'd (n records); next is the cursor of the last record
 * when more follow, else "".
 */
enum store_rc store_token_list(struct store *st, enum token_kind kind,
			       const struct page *page, struct token **items,
			       size_t *n, char next[PAGE_CURSOR_MAX]);

/*
 * Sets revoked_at = now if not yet revoked, with the audit row.
 * STORE_OK (*out is the revoked record), STORE_NOTFOUND, STORE_CONFLICT
 * (already revoked) or STORE_ERR.
 */
enum store_rc store_token_revoke(struct store *st, enum token_kind kind,
				 const char *id, int64_t now,
				 const struct audit_entry *audit,
				 struct token *out);

/*
 * The unrevoked admin token with this hash; notes its use (last_used_at)
 * when the previous note is older than a minute. STORE_OK, STORE_NOTFOUND
 * or STORE_ERR.
 */
enum store_rc store_admin_token_authenticate(struct store *st,
					     const char *sha256, int64_t now,
					     struct token *out);

#endif
