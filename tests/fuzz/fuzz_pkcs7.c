/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer: an EST answer as the agent reads it (base64 text of a
 * certs-only PKCS#7), and the same bytes as raw DER. */
#include "pki.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pki_error err;
	unsigned char *der = NULL;
	size_t der_len = 0, n = 0;
	X509 **certs = NULL;

	if (pki_pkcs7_certs_parse(data, size, 8, &certs, &n, &err) == PKI_OK)
		pki_certs_free(certs, n);
	if (pki_base64_decode(data, size, PKI_PKCS7_MAX_BYTES, &der, &der_len,
			      &err) == PKI_OK) {
		if (pki_pkcs7_certs_parse(der, der_len, 8, &certs, &n, &err) ==
		    PKI_OK)
			pki_certs_free(certs, n);
		free(der);
	}
	return 0;
}
