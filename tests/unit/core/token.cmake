# core/token.c, core/idempotency.c and core/enroll.c: token, Idempotency-Key
# and enrollment rules over an in-memory fake of the store port and a fake
# signer (test_token, test_enroll).
foreach(_t test_token test_enroll)
	fleet_add_unit_test(${_t}
		SOURCES ${CMAKE_CURRENT_LIST_DIR}/${_t}.c
			${CMAKE_CURRENT_LIST_DIR}/fake_store_tokens.c
			${CMAKE_CURRENT_LIST_DIR}/fake_signer.c
		LIBS fleetd_core)
	target_include_directories(${_t} PRIVATE ${CMAKE_CURRENT_LIST_DIR})
endforeach()
