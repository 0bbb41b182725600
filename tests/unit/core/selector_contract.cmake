# SPDX-License-Identifier: Apache-2.0
# The selector contract program (not a unit test: it needs PostgreSQL);
# tests/integration/test_devices.sh runs it against the test cluster. The
# store's core links the signer port; this program never signs, so the
# fake signer fills the port.
add_executable(selector_contract
	${CMAKE_CURRENT_LIST_DIR}/selector_contract.c
	${CMAKE_CURRENT_LIST_DIR}/fake_signer.c)
target_include_directories(selector_contract PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(selector_contract PRIVATE fleet_build_flags fleetd_store)
