/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer: DSSE envelope verification against one trusted key. */
#include "pki.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *trusted;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pki_error err;
	unsigned char *payload = NULL;
	size_t payload_len = 0, n_valid = 0;
	bool verified[1];

	if (trusted == NULL &&
	    pki_key_generate(PKI_KEY_P256, &trusted, &err) != PKI_OK)
		abort();
	if (pki_dsse_verify(data, size, PKI_DSSE_MANIFEST_TYPE, &trusted, 1, 1,
			    verified, &n_valid, &payload, &payload_len,
			    &err) == PKI_OK)
		free(payload);
	return 0;
}
