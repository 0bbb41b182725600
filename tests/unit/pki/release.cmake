# SPDX-License-Identifier: Apache-2.0
# Signed releases and release key sets (pki/release.c): every refusal
# reason, verify-before-parse, rotation chains.
fleet_add_unit_test(test_release
	SOURCES test_release.c pki_test_util.c
	LIBS fleetpki)
