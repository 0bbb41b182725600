# SPDX-License-Identifier: Apache-2.0
# core/cert_lifecycle.c: the renewal rule, the idempotent answer, the two
# phases, statuses and RFC 5280 reasons, over an in-memory fake of the
# certificate store and the fake signer (issue 10).
fleet_add_unit_test(test_cert_lifecycle
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cert_lifecycle.c
		${CMAKE_CURRENT_LIST_DIR}/fake_store_certs.c
		${CMAKE_CURRENT_LIST_DIR}/fake_signer.c
	LIBS fleetd_core)
target_include_directories(test_cert_lifecycle PRIVATE
	${CMAKE_CURRENT_LIST_DIR})
