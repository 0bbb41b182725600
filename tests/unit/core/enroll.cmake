# core/enroll.c: enrollment rules and flow over an in-memory store and a
# fake signer.
fleet_add_unit_test(test_enroll
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_enroll.c
		${CMAKE_CURRENT_LIST_DIR}/fake_store_tokens.c
		${CMAKE_CURRENT_LIST_DIR}/fake_signer.c
	LIBS fleetd_core)
target_include_directories(test_enroll PRIVATE ${CMAKE_CURRENT_LIST_DIR})
