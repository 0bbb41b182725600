# SPDX-License-Identifier: Apache-2.0
# An established device connection forgets its handshake's session and
# certificate (fleetd/channel/tls_trim.c) and keeps working: data, key
# updates and the close, over TLS 1.3, TLS 1.2 and a resumed session.
fleet_add_unit_test(test_tls_trim
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_tls_trim.c
		${PROJECT_SOURCE_DIR}/fleetd/channel/tls_trim.c
		${PROJECT_SOURCE_DIR}/tests/unit/common/tls_cert_fixture.c
	LIBS fleetcommon PkgConfig::OPENSSL)
target_include_directories(test_tls_trim PRIVATE
	${PROJECT_SOURCE_DIR}/tests/unit/common)
