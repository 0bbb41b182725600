/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Admin (API bearer) tokens: stored as SHA-256 only. Documents follow
 * docs/api.md without the token; callers own returned json_t.
 */
#ifndef FLEETD_DB_ADMIN_TOKENS_H
#define FLEETD_DB_ADMIN_TOKENS_H

#include <jansson.h>
#include <libpq-fe.h>

#include "db/query.h"
#include "secret.h"

int db_admin_token_create(PGconn *conn, const char *id,
			  const char *token_sha256, const char *role,
			  const char *name, const char *created_by,
			  json_t **out);
int db_admin_token_get(PGconn *conn, const char *id, json_t **out);
int db_admin_token_list(PGconn *conn, const struct db_page *page,
			json_t **items, char next[DB_CURSOR_MAX]);
/* DB_OK, DB_NOTFOUND or DB_CONFLICT (already revoked). */
int db_admin_token_revoke(PGconn *conn, const char *id, json_t **out);

/*
 * Finds the unrevoked token with this hash and notes its use (at most once
 * a minute, to spare writes). DB_OK with id and role ("admin", ...),
 * DB_NOTFOUND, or DB_ERR. One round trip.
 */
int db_admin_token_authenticate(PGconn *conn, const char *token_sha256,
				char id[SECRET_UUID_LEN], char role[16]);

#endif
