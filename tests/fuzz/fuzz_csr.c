/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer: the server-side CSR check (PEM or DER from the network). */
#include "pki.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pki_policy policy;
	struct pki_error err;
	X509_REQ *req = NULL;

	pki_policy_default(&policy);
	if (pki_csr_parse_check(data, size, &policy, &req, &err) == PKI_OK)
		X509_REQ_free(req);
	return 0;
}
