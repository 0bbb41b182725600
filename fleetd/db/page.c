/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cursor key on PostgreSQL (core/store_page.h): one row of api_keys
 * (migrations/0005_cursor_key.sql), read once per process and cached; it
 * only changes when an operator rotates it (then restart fleetd). Job
 * threads.
 */
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/store_page.h"
#include "db/query.h"
#include "db/store.h"

static pthread_mutex_t page_key_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char page_key_cache[PAGE_KEY_LEN];
static int page_key_loaded;

static int
hexnib(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static enum store_rc
page_key_load(PGconn *conn, unsigned char key[PAGE_KEY_LEN])
{
	PGresult *res = db_query(conn,
				 "SELECT encode(key, 'hex') FROM api_keys "
				 "WHERE name = 'cursor'",
				 0, NULL);
	const char *hex;
	enum store_rc rc = STORE_ERR;
	int i, hi, lo;

	if (res == NULL)
		return STORE_ERR;
	if (PQntuples(res) != 1 ||
	    strlen(hex = PQgetvalue(res, 0, 0)) != 2 * PAGE_KEY_LEN)
		goto out;
	for (i = 0; i < PAGE_KEY_LEN; i++) {
		hi = hexnib(hex[2 * i]);
		lo = hexnib(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			goto out;
		key[i] = (unsigned char)(hi * 16 + lo);
	}
	rc = STORE_OK;
out:
	if (PQntuples(res) == 1)
		OPENSSL_cleanse(PQgetvalue(res, 0, 0),
				(size_t)PQgetlength(res, 0, 0));
	PQclear(res);
	return rc;
}

enum store_rc
store_page_key(struct store *st, unsigned char key[PAGE_KEY_LEN])
{
	enum store_rc rc = STORE_OK;
	PGconn *conn;

	pthread_mutex_lock(&page_key_lock);
	if (!page_key_loaded) {
		conn = store_conn(st);
		rc = conn ? page_key_load(conn, page_key_cache) : STORE_ERR;
		page_key_loaded = rc == STORE_OK;
	}
	if (rc == STORE_OK)
		memcpy(key, page_key_cache, PAGE_KEY_LEN);
	pthread_mutex_unlock(&page_key_lock);
	return rc;
}
