# SPDX-License-Identifier: Apache-2.0
# https_stream (common/https.c) against a real TLS server on loopback.
find_package(Threads REQUIRED)
fleet_add_unit_test(test_https_stream SOURCES test_https_stream.c tls_cert_fixture.c
	LIBS fleetcommon Threads::Threads)
