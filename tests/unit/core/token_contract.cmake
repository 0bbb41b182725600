# The token store contract program, built against the in-memory fake and
# against fleetd/db (not unit tests: the second needs PostgreSQL);
# tests/integration/test_api.sh runs both and compares their transcripts.
add_executable(token_contract_fake
	${CMAKE_CURRENT_LIST_DIR}/token_contract.c
	${CMAKE_CURRENT_LIST_DIR}/fake_store_tokens.c
	${CMAKE_CURRENT_LIST_DIR}/fake_signer.c)
target_compile_definitions(token_contract_fake PRIVATE CONTRACT_FAKE)
target_include_directories(token_contract_fake PRIVATE
	${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(token_contract_fake PRIVATE fleet_build_flags
	fleetd_core)
add_executable(token_contract_pg
	${CMAKE_CURRENT_LIST_DIR}/token_contract.c
	${CMAKE_CURRENT_LIST_DIR}/fake_signer.c)
target_include_directories(token_contract_pg PRIVATE
	${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(token_contract_pg PRIVATE fleet_build_flags fleetd_store)
