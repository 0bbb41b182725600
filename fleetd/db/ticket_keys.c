/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_tls_ticket_keys_sync on PostgreSQL (core/store_tls_tickets.h): the
 * device listener's TLS ticket keys, one table (migration 0017) read by
 * every net worker of every host. Called by a worker at start and by its
 * channel listener thread every few seconds. Which keys to add and remove
 * is core's rule (core/tls_tickets.c); here it runs in one transaction
 * under an advisory lock, with PostgreSQL's clock, so that two workers
 * never both add a key for the same rotation. Secrets travel as hex text
 * over the (local or TLS) database connection and are wiped here after
 * use.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/store_tls_tickets.h"
#include "db/query.h"
#include "db/store.h"
#include "secret.h"

/* pg_advisory_xact_lock's key: "fleet tls tickets" in no other lock. */
#define TICKET_LOCK_SQL "7460723163616654"
#define KEYS_MAX_SQL "64"
_Static_assert(TLS_TICKET_KEYS_MAX == 64, "KEYS_MAX_SQL");

struct sync_arg {
	const struct tls_ticket_policy *p;
	const struct tls_ticket_key *fresh;
	struct tls_ticket_key *keys;
	size_t n;
	int64_t now;
};

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Exactly len bytes from 2*len hex digits; -1 otherwise. */
static int
hex_decode(const char *hex, unsigned char *out, size_t len)
{
	if (hex == NULL || strlen(hex) != 2 * len)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/* clang-format off */
static const char sync_read_sql[] =
	"SELECT encode(name, 'hex'), encode(secret, 'hex'), "
	DB_EPOCH("created_at") ", " DB_EPOCH("expires_at") ", "
	DB_EPOCH("now()") " FROM tls_ticket_keys "
	"ORDER BY created_at DESC, name DESC LIMIT " KEYS_MAX_SQL;
/* clang-format on */

/* Reads every key (newest first) into a->keys; the store's clock into
 * a->now. */
static enum store_rc
sync_read(PGconn *conn, struct sync_arg *a)
{
	PGresult *res = db_query(conn, sync_read_sql, 0, NULL);
	enum store_rc rc = STORE_ERR;
	int rows;

	if (res == NULL)
		return STORE_ERR;
	rows = PQntuples(res);
	a->n = 0;
	if (rows == 0) {
		PQclear(res);
		res = db_query(conn, "SELECT " DB_EPOCH("now()"), 0, NULL);
		if (res == NULL || PQntuples(res) != 1)
			goto out;
		a->now = db_int(res, 0, 0);
		rc = STORE_OK;
		goto out;
	}
	a->now = db_int(res, 0, 4);
	for (int i = 0; i < rows && a->n < TLS_TICKET_KEYS_MAX; i++) {
		struct tls_ticket_key *k = &a->keys[a->n];

		if (hex_decode(PQgetvalue(res, i, 0), k->name,
			       sizeof(k->name)) != 0 ||
		    hex_decode(PQgetvalue(res, i, 1), k->secret,
			       sizeof(k->secret)) != 0)
			goto out;
		k->created = db_int(res, i, 2);
		k->expires = db_int(res, i, 3);
		a->n++;
	}
	rc = STORE_OK;
out:
	if (res != NULL) {
		/* The hex secrets are in the result's memory. */
		for (int i = 0; i < PQntuples(res) && PQnfields(res) > 1; i++)
			OPENSSL_cleanse(PQgetvalue(res, i, 1),
					(size_t)PQgetlength(res, i, 1));
		PQclear(res);
	}
	return rc;
}

static enum store_rc
sync_remove(PGconn *conn, struct sync_arg *a)
{
	size_t kept = 0;

	for (size_t i = 0; i < a->n; i++) {
		char name[2 * TLS_TICKET_NAME_LEN + 1];
		const char *params[1] = {name};

		if (!tls_ticket_key_removable(&a->keys[i], a->now)) {
			if (kept != i)
				a->keys[kept] = a->keys[i];
			kept++;
			continue;
		}
		hex_encode(a->keys[i].name, TLS_TICKET_NAME_LEN, name);
		if (db_command(conn,
			       "DELETE FROM tls_ticket_keys "
			       "WHERE name = decode($1, 'hex')",
			       1, params) != STORE_OK)
			return STORE_ERR;
	}
	OPENSSL_cleanse(a->keys + kept, (a->n - kept) * sizeof(*a->keys));
	a->n = kept;
	return STORE_OK;
}

static enum store_rc
sync_add(PGconn *conn, struct sync_arg *a)
{
	char name[2 * TLS_TICKET_NAME_LEN + 1];
	char secret[2 * TLS_TICKET_SECRET_LEN + 1];
	char created[32], expires[32];
	const char *params[4] = {name, secret, created, expires};
	struct tls_ticket_key k = *a->fresh;
	enum store_rc rc;

	k.created = a->now;
	k.expires = tls_ticket_key_expires(a->p, a->now);
	hex_encode(k.name, sizeof(k.name), name);
	hex_encode(k.secret, sizeof(k.secret), secret);
	snprintf(created, sizeof(created), "%lld", (long long)k.created);
	snprintf(expires, sizeof(expires), "%lld", (long long)k.expires);
	rc = db_command(conn,
			"INSERT INTO tls_ticket_keys "
			"(name, secret, created_at, expires_at) VALUES "
			"(decode($1, 'hex'), decode($2, 'hex'), "
			"to_timestamp($3::bigint), to_timestamp($4::bigint))",
			4, params);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (rc != STORE_OK)
		goto out;
	/* Newest first; the oldest falls off when the array is full. */
	if (a->n == TLS_TICKET_KEYS_MAX)
		a->n--;
	memmove(a->keys + 1, a->keys, a->n * sizeof(*a->keys));
	a->keys[0] = k;
	a->n++;
out:
	OPENSSL_cleanse(&k, sizeof(k));
	return rc;
}

static enum store_rc
sync_unit(PGconn *conn, void *arg)
{
	struct sync_arg *a = arg;

	if (db_command(conn,
		       "SELECT pg_advisory_xact_lock(" TICKET_LOCK_SQL ")", 0,
		       NULL) != STORE_OK ||
	    sync_read(conn, a) != STORE_OK || sync_remove(conn, a) != STORE_OK)
		return STORE_ERR;
	if (a->fresh != NULL &&
	    tls_ticket_keys_need_new(a->keys, a->n, a->p, a->now))
		return sync_add(conn, a);
	return STORE_OK;
}

enum store_rc
store_tls_ticket_keys_sync(struct store *st, const struct tls_ticket_policy *p,
			   const struct tls_ticket_key *fresh,
			   struct tls_ticket_key *keys, size_t *n,
			   int64_t *now_s)
{
	struct sync_arg a = {p, fresh, keys, 0, 0};
	enum store_rc rc = db_unit(st, sync_unit, &a, NULL, NULL);

	if (rc != STORE_OK) {
		OPENSSL_cleanse(keys, TLS_TICKET_KEYS_MAX * sizeof(*keys));
		return rc;
	}
	*n = a.n;
	*now_s = a.now;
	return STORE_OK;
}
