/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer: the release formats an agent receives from fleetd, which is
 * trusted for nothing (pki/release.c). The first input byte picks the
 * target: 0 the manifest parser, 1 the key set parser, 2 release envelope
 * verification (then the device checks), 3 key set envelope verification.
 * The pinned set is one fixed Ed25519 key (a test key, below), so the seed
 * envelopes in corpus/release/ verify and the fuzzer reaches the parsers
 * behind the signatures, not only the envelope checks.
 */
#include "pki.h"
#include "release.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Test key only; its private half signed the seed corpus. */
static const char pinned_pem[] =
	"-----BEGIN PUBLIC KEY-----\n"
	"MCowBQYDK2VwAyEAwd58nciYGTvrSO8tbEHrmNLlnAP/ZBmn5EY6KRt/Njw=\n"
	"-----END PUBLIC KEY-----\n";

static struct pki_keyset pinned;

static void
init_pinned(void)
{
	struct pki_error err;

	if (pinned.n > 0)
		return;
	if (pki_key_public_from_pem(pinned_pem, strlen(pinned_pem),
				    &pinned.keys[0], &err) != PKI_OK ||
	    pki_key_id(pinned.keys[0], pinned.ids[0], &err) != PKI_OK)
		abort();
	pinned.n = 1;
	pinned.threshold = 1;
	pinned.version = 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pki_manifest m;
	struct pki_keyset ks;
	struct pki_error err;
	char why[256];
	char *json = NULL;

	init_pinned();
	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0:
		if (pki_manifest_parse(data + 1, size - 1, &m, &err) ==
			    PKI_OK &&
		    pki_manifest_json(&m, &json, NULL, &err) != PKI_OK)
			abort(); /* what parses must serialise */
		free(json);
		break;
	case 1:
		memset(&ks, 0, sizeof(ks));
		if (pki_keyset_parse(data + 1, size - 1, &ks, &err) == PKI_OK) {
			if (pki_keyset_json(&ks, &json, NULL, &err) != PKI_OK)
				abort();
			free(json);
		}
		pki_keyset_clear(&ks);
		break;
	case 2:
		if (pki_release_verify(data + 1, size - 1, &pinned, &m, why,
				       sizeof(why)) == PKI_RELEASE_OK) {
			(void)pki_manifest_check(&m, 0, 0, "rpi4", why,
						 sizeof(why));
			(void)pki_manifest_match(&m, 4, m.sha256, why,
						 sizeof(why));
		}
		break;
	case 3:
		memset(&ks, 0, sizeof(ks));
		(void)pki_keyset_verify(data + 1, size - 1, &pinned, &ks, why,
					sizeof(why));
		pki_keyset_clear(&ks);
		break;
	}
	return 0;
}
