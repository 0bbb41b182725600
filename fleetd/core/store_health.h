/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The health part of the store port (core/store.h), for GET /healthz.
 * Implemented on PostgreSQL by fleetd/db/health.c.
 */
#ifndef FLEETD_CORE_STORE_HEALTH_H
#define FLEETD_CORE_STORE_HEALTH_H

#include "core/store.h"

/* STORE_OK when the store answers a trivial query now, else STORE_ERR. */
enum store_rc store_ping(struct store *st);

#endif
