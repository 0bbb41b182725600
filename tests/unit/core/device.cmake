# SPDX-License-Identifier: Apache-2.0
# core/device.c, device_ops.c and crl.c against the in-memory fake store.
fleet_add_unit_test(test_device
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_device.c
		${CMAKE_CURRENT_LIST_DIR}/fake_store_devices.c
	LIBS fleetd_core)
fleet_add_unit_test(test_crl
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_crl.c
		${CMAKE_CURRENT_LIST_DIR}/fake_store_devices.c
	LIBS fleetd_core)
