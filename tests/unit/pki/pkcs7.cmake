# SPDX-License-Identifier: Apache-2.0
# PKCS#7 certs-only and base64 (pki/pkcs7.c), with openssl as the oracle.
fleet_add_unit_test(test_pki_pkcs7
	SOURCES test_pki_pkcs7.c pki_test_util.c
	LIBS fleetpki)
