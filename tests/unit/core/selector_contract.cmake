# SPDX-License-Identifier: Apache-2.0
# The selector contract program (not a unit test: it needs PostgreSQL);
# tests/integration/test_devices.sh runs it against the test cluster.
add_executable(selector_contract
	${CMAKE_CURRENT_LIST_DIR}/selector_contract.c)
target_link_libraries(selector_contract PRIVATE fleet_build_flags fleetd_store)
