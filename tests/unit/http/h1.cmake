# SPDX-License-Identifier: Apache-2.0
# The api listener's HTTP/1.1 head parser (fleetd/http/h1.c): a table of
# heads and the exact answer each gets. OPENSSL_cleanse comes with
# libfleetpki's OpenSSL.
fleet_add_unit_test(test_h1
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_h1.c
		${PROJECT_SOURCE_DIR}/fleetd/http/h1.c
	LIBS fleetpki)
target_include_directories(test_h1 PRIVATE ${PROJECT_SOURCE_DIR}/fleetd)
