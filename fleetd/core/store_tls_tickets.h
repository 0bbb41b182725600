/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TLS ticket keys' part of the store port (core/store.h), implemented
 * on PostgreSQL by fleetd/db/tls_tickets.c. Every net worker of every
 * host reads the same keys, so a device resumes its session on any of
 * them and after a restart (docs/internals/tls-resumption.md).
 */
#ifndef FLEETD_CORE_STORE_TLS_TICKETS_H
#define FLEETD_CORE_STORE_TLS_TICKETS_H

#include <stddef.h>

#include "core/store.h"
#include "core/tls_tickets.h"

/*
 * One unit of work: removes the keys tls_ticket_key_removable says are
 * done, adds `fresh` (its name and secret; created and expires are set
 * from the store's clock) when tls_ticket_keys_need_new says one is due
 * (checked under a lock, so concurrent workers and hosts add one between
 * them), and returns the keys left, newest first, at most
 * TLS_TICKET_KEYS_MAX, in keys (capacity TLS_TICKET_KEYS_MAX) and *n.
 * *now_s is the store's clock. The caller wipes fresh and keys after use.
 */
enum store_rc store_tls_ticket_keys_sync(struct store *st,
					 const struct tls_ticket_policy *p,
					 const struct tls_ticket_key *fresh,
					 struct tls_ticket_key *keys, size_t *n,
					 int64_t *now_s);

#endif
