# SPDX-License-Identifier: Apache-2.0
# fleetctl's wiping heap (fleetd/ctl/secmem.c); fleetctl has no unit part
# of its own, and this module depends on common and OpenSSL only.
fleet_add_unit_test(test_ctl_secmem
	SOURCES test_ctl_secmem.c ${PROJECT_SOURCE_DIR}/fleetd/ctl/secmem.c
	LIBS fleetcommon fleetpki PkgConfig::JANSSON)
target_include_directories(test_ctl_secmem PRIVATE
	${PROJECT_SOURCE_DIR}/fleetd/ctl)
