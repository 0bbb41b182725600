/* SPDX-License-Identifier: Apache-2.0 */
/* A fake of the signer port: answers what the test set, counts calls. */
#include "fake_signer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum signer_status
signer_issue_device(struct signer_client *sc, const char *csr_pem,
		    size_t csr_len, const char *device_id, long validity_s,
		    struct signer_issued *out, char *err, size_t errlen)
{
	(void)csr_pem;
	(void)csr_len;
	sc->calls++;
	snprintf(sc->last_device_id, sizeof(sc->last_device_id), "%s",
		 device_id);
	if (sc->answer != SIGNER_OK) {
		snprintf(err, errlen, "%s",
			 sc->answer == SIGNER_REJECTED ? "bad signature"
						       : "ca timed out");
		return sc->answer;
	}
	memset(out, 0, sizeof(*out));
	out->cert_pem = strdup("-----BEGIN CERTIFICATE-----\n");
	snprintf(out->serial, sizeof(out->serial), "0A%02X", sc->calls);
	/* a key id's shape: the ca answers the key that signed */
	snprintf(out->issuer, sizeof(out->issuer), "%064x", 0xca);
	out->not_before = 1000;
	out->not_after = 1000 + validity_s;
	return out->cert_pem ? SIGNER_OK : SIGNER_UNAVAILABLE;
}

enum signer_status
signer_sign_crl(struct signer_client *sc, const struct signer_revoked *revoked,
		size_t n, uint64_t crl_number, long next_update_s,
		unsigned char **out_der, size_t *out_len, char *err,
		size_t errlen)
{
	(void)sc;
	(void)revoked;
	(void)n;
	(void)crl_number;
	(void)next_update_s;
	(void)out_der;
	(void)out_len;
	snprintf(err, errlen, "not in this fake");
	return SIGNER_UNAVAILABLE;
}

enum signer_status
signer_ping(struct signer_client *sc, char *err, size_t errlen)
{
	if (sc->answer == SIGNER_UNAVAILABLE) {
		snprintf(err, errlen, "ca timed out");
		return SIGNER_UNAVAILABLE;
	}
	return SIGNER_OK;
}

void
signer_issued_free(struct signer_issued *issued)
{
	if (issued == NULL)
		return;
	free(issued->cert_pem);
	memset(issued, 0, sizeof(*issued));
}
