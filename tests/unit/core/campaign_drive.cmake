# SPDX-License-Identifier: Apache-2.0
# The campaign driver's pass (core/campaign_drive.c) over an in-memory
# fake of the driver half of core/store_campaigns.h.
fleet_add_unit_test(test_campaign_drive
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_campaign_drive.c
		${CMAKE_CURRENT_LIST_DIR}/fake_store_campaigns.c
	LIBS fleetd_core fleetcommon PkgConfig::JANSSON)
target_include_directories(test_campaign_drive PRIVATE
	${CMAKE_CURRENT_LIST_DIR})
