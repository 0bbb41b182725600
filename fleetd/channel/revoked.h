/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The set of refused certificate serials (revoked, and superseded by a
 * renewal the device installed) a net worker checks in every device TLS
 * handshake, so the check costs no database round trip. The
 * listener thread replaces the whole set whenever PostgreSQL notifies a
 * change (and after reconnecting); readers on the loop thread take a lock
 * only for a binary search.
 */
#ifndef FLEETD_CHANNEL_REVOKED_H
#define FLEETD_CHANNEL_REVOKED_H

#include <stdbool.h>
#include <stddef.h>

struct revoked_set;

struct revoked_set *revoked_set_new(void);
void revoked_set_free(struct revoked_set *set);

/* Takes ownership of serials (sorted, as store_revoked_serials returns). */
void revoked_set_replace(struct revoked_set *set, char **serials, size_t n);

/* Takes ownership of two sorted lists (revoked, and superseded
 * certificates, which a handshake refuses alike) and makes them the set. */
void revoked_set_replace_merged(struct revoked_set *set, char **a, size_t na,
				char **b, size_t nb);

/* Frees a list of n serials (NULL ok). */
void revoked_serials_free(char **serials, size_t n);

bool revoked_set_contains(struct revoked_set *set, const char *serial);

/* False until the first successful load: handshakes wait for it. */
bool revoked_set_loaded(struct revoked_set *set);

#endif
