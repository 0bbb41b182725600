# SPDX-License-Identifier: Apache-2.0
# A net worker's refused-serial set (fleetd/channel/revoked.c): full loads
# and the deltas merged between them.
fleet_add_unit_test(test_revoked_set
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_revoked_set.c
		${PROJECT_SOURCE_DIR}/fleetd/channel/revoked.c
	LIBS fleetcommon)
target_include_directories(test_revoked_set PRIVATE ${PROJECT_SOURCE_DIR}/fleetd)
