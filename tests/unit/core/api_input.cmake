# api/input.c (strict JSON, query parameters, cursors) and core label sets:
# pure parsers, linked without PostgreSQL or libwebsockets.
fleet_add_unit_test(test_api_input
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_api_input.c
		${PROJECT_SOURCE_DIR}/fleetd/api/input.c
	LIBS fleetd_core)
