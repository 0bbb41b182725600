/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store port on PostgreSQL (see db/store.h): one connection per
 * thread, reconnected on demand by db/db.c.
 */
#include "db/store.h"

#include <stdlib.h>

#include "db/db.h"
#include "db/group_commit.h"

struct store {
	struct db *db;
};

struct store *
store_new(const char *conninfo)
{
	struct store *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return NULL;
	st->db = db_new(conninfo);
	if (st->db == NULL) {
		free(st);
		return NULL;
	}
	return st;
}

void
store_free(struct store *st)
{
	if (st == NULL)
		return;
	db_free(st->db);
	free(st);
}

PGconn *
store_conn(struct store *st)
{
	return db_conn(st->db);
}

uint64_t
store_session(const struct store *st)
{
	return db_session(st->db);
}

bool
store_unavailable(struct store *st)
{
	return db_lost(st->db);
}

int
store_failure(const struct store *st)
{
	return (int)db_failure(st->db);
}

enum store_rc
store_group_commit(struct group_commit *q, struct store *st, const void *record)
{
	int why = 0;
	enum store_rc rc = group_commit(q, st, record, &why);

	if (rc == STORE_ERR)
		db_failure_adopt((enum db_failure)why);
	return rc;
}

bool
store_write_unconfirmed(struct store *st)
{
	(void)st;
	return db_commit_unconfirmed();
}
