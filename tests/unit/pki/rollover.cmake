# SPDX-License-Identifier: Apache-2.0
# Issuing-CA rollover in a PKI directory (pki/rollover.c), openssl as oracle.
fleet_add_unit_test(test_pki_rollover
	SOURCES test_pki_rollover.c pki_test_util.c
	LIBS fleetpki)
