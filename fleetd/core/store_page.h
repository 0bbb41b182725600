/* SPDX-License-Identifier: Apache-2.0 */
/* Store port: the key that seals pagination cursors (core/page.h). */
#ifndef FLEETD_CORE_STORE_PAGE_H
#define FLEETD_CORE_STORE_PAGE_H

#include "core/page.h"
#include "core/store.h"

/* The fleet-wide cursor key (the adapter may cache it). STORE_OK or
 * STORE_ERR. */
enum store_rc store_page_key(struct store *st, unsigned char key[PAGE_KEY_LEN]);

#endif
