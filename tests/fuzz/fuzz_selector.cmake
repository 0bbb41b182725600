# Core's parsers of operator input (selectors, device refs, sort keys,
# audit times and filters): pure code, no PostgreSQL, no lws.
target_link_libraries(${target} PRIVATE fleetd_core)
