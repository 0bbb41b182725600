/* SPDX-License-Identifier: Apache-2.0 */
/* The cursor key through the store port (core/page.h). Job threads. */
#include "core/page.h"
#include "core/store_page.h"

int
page_key(struct store *st, unsigned char key[PAGE_KEY_LEN])
{
	return store_page_key(st, key) == STORE_OK ? 0 : -1;
}
