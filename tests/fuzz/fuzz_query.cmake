# The pure API query parsers and core page cursors: no PostgreSQL, no lws.
target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/fleetd/api/input.c)
target_link_libraries(${target} PRIVATE fleetd_core)
