# The router and the OpenAPI document agree (fleetd/api/api.c,
# fleetd/api/openapi/): every route is documented, every documented path
# is routed. Links the API library as fleetd does (its handlers reach the
# store and signer ports, which are not called here).
fleet_add_unit_test(test_openapi_routes
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_openapi_routes.c
	LIBS fleetd_api fleetd_ca fleetd_store fleetd_config PkgConfig::JANSSON)
