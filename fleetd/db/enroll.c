/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Enrollment's record on PostgreSQL (core/store_enroll.h): the device, its
 * first certificate, the audit row and the Idempotency-Key record in one
 * transaction. The token's use was reserved before (db/tokens.c), so this
 * transaction locks no token row. Runs on API job threads.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "db/query.h"
#include "db/tokens.h"

static enum store_rc
enroll_record_tx(PGconn *conn, void *arg)
{
	const struct enrollment *e = arg;
	char nb[24], na[24], *labels = NULL;
	const char *params[9];
	enum store_rc rc;

	labels = db_labels_json(e->labels);
	if (labels == NULL)
		return STORE_ERR;
	snprintf(nb, sizeof(nb), "%" PRId64, e->not_before);
	snprintf(na, sizeof(na), "%" PRId64, e->not_after);
	params[0] = e->device_id;
	params[1] = labels;
	params[2] = e->model;
	params[3] = e->serial;
	params[4] = e->profile;
	params[5] = e->token_id;
	params[6] = e->cert_serial;
	params[7] = nb;
	params[8] = na;
	/* The certificate's FK is checked at the end of the statement, when
	 * the device row of the first CTE exists. */
	rc = db_command(conn,
			"WITH dev AS (INSERT INTO devices (id, labels, model, "
			"serial, profile, enrolled_with) VALUES ($1::uuid, "
			"$2::jsonb, $3, $4, $5, $6::uuid) RETURNING id) "
			"INSERT INTO certificates (serial, device_id, "
			"not_before, not_after) SELECT $7, id, "
			"to_timestamp($8::bigint), to_timestamp($9::bigint) "
			"FROM dev",
			9, params);
	free(labels);
	return rc;
}

enum store_rc
store_enroll_record(struct store *st, const struct enrollment *e,
		    const struct audit_entry *audit,
		    const struct idem_record *idem)
{
	return db_unit(st, enroll_record_tx, (void *)(uintptr_t)e, audit, idem);
}
