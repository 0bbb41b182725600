/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The readiness part of the store port (core/store.h), for GET /readyz:
 * which of the migrations this build ships are missing from the database.
 * Implemented on PostgreSQL by fleetd/db/ready.c.
 */
#ifndef FLEETD_CORE_STORE_READY_H
#define FLEETD_CORE_STORE_READY_H

#include <stddef.h>

#include "core/store.h"

/*
 * versions: the n migration numbers this build ships. On STORE_OK,
 * *missing is how many of them the database has not applied, and
 * first_missing (if not NULL) the lowest of those (0 when none).
 * STORE_ERR when the store does not answer.
 */
enum store_rc store_schema_missing(struct store *st, const int *versions,
				   size_t n, size_t *missing,
				   int *first_missing);

#endif
