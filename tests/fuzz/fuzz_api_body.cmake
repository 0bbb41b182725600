# The pure API parsers and core, with the in-memory store and fake signer
# of the core unit tests: no PostgreSQL, no libwebsockets.
target_sources(${target} PRIVATE
	${PROJECT_SOURCE_DIR}/fleetd/api/input.c
	${PROJECT_SOURCE_DIR}/tests/unit/core/fake_store_tokens.c
	${PROJECT_SOURCE_DIR}/tests/unit/core/fake_signer.c)
target_include_directories(${target} PRIVATE
	${PROJECT_SOURCE_DIR}/tests/unit/core)
target_link_libraries(${target} PRIVATE fleetd_core)
