# core/token.c, core/idempotency.c: token and Idempotency-Key rules over an
# in-memory fake of the store port.
fleet_add_unit_test(test_token
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_token.c
		${CMAKE_CURRENT_LIST_DIR}/fake_store_tokens.c
		${CMAKE_CURRENT_LIST_DIR}/fake_signer.c
	LIBS fleetd_core)
target_include_directories(test_token PRIVATE ${CMAKE_CURRENT_LIST_DIR})
