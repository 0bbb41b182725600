/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The set of refused certificate serials (revoked, and superseded by a
 * renewal the device installed) a net worker checks in every device TLS
 * handshake, so the check costs no database round trip. The
 * listener thread loads the whole set at first, after reconnecting and
 * once a minute, and in between adds what was refused since its last load
 * whenever PostgreSQL notifies a change; readers on the loop thread take a
 * lock only for a binary search.
 */
#ifndef FLEETD_CHANNEL_REVOKED_H
#define FLEETD_CHANNEL_REVOKED_H

#include <stdbool.h>
#include <stddef.h>

struct revoked_set;

struct revoked_set *revoked_set_new(void);
void revoked_set_free(struct revoked_set *set);

/* Takes ownership of serials (sorted, as store_refused_serials returns)
 * and makes them the set. */
void revoked_set_replace(struct revoked_set *set, char **serials, size_t n);

/* Takes ownership of a sorted list and adds it to the set (a delta: what
 * was refused since the last load; serials already in the set are
 * dropped). */
void revoked_set_add(struct revoked_set *set, char **more, size_t nmore);

/* Frees a list of n serials (NULL ok). */
void revoked_serials_free(char **serials, size_t n);

bool revoked_set_contains(struct revoked_set *set, const char *serial);

/* False until the first successful load: handshakes wait for it. */
bool revoked_set_loaded(struct revoked_set *set);

#endif
