/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetctl's heap wipes what it frees. Admin tokens, enrollment tokens,
 * new tokens in API answers and private keys pass through jansson (while
 * a body is built, dumped and parsed, in strings and in the growing
 * buffers of its lexer) and through OpenSSL (PEM decoding, key objects);
 * wiping at each call site would miss the copies these libraries make.
 * So both allocate from the C heap and free through ctl_free_wiped(),
 * which overwrites the whole block (malloc_usable_size) first. The cost is
 * a memset per free, nothing for a command-line tool.
 */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ctl.h"

void
ctl_free_wiped(void *p)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, malloc_usable_size(p));
	free(p);
}

static void *
ossl_malloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return malloc(n);
}

/* realloc would leave the old block unwiped: copy, then wipe it. */
static void *
ossl_realloc(void *p, size_t n, const char *file, int line)
{
	size_t old;
	void *q;

	(void)file;
	(void)line;
	if (p == NULL)
		return malloc(n);
	if (n == 0) {
		ctl_free_wiped(p);
		return NULL;
	}
	q = malloc(n);
	if (q == NULL)
		return NULL;
	old = malloc_usable_size(p);
	memcpy(q, p, old < n ? old : n);
	ctl_free_wiped(p);
	return q;
}

static void
ossl_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	ctl_free_wiped(p);
}

void
ctl_secmem_init(void)
{
	/* Fails only if OpenSSL allocated already; then its frees are
	 * plain, which loses the wipe but nothing else. */
	(void)CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free);
	json_set_alloc_funcs(malloc, ctl_free_wiped);
}
