/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PostgreSQL adapter of core/store_tokens.h and core/store_enroll.h's
 * token half: one implementation for both token tables
 * (enrollment_tokens, admin_tokens), which differ only by their columns.
 * Only hashes reach SQL. Nothing to declare beyond the port.
 */
#ifndef FLEETD_DB_TOKENS_H
#define FLEETD_DB_TOKENS_H

#include "core/store_enroll.h"
#include "core/store_tokens.h"

#endif
