# The metrics registry (fleetd/core/metrics.c): label escaping, counters,
# gauges, histograms, the text format, a full table, a worker restart.
fleet_add_unit_test(test_metrics_registry
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_metrics_registry.c
	LIBS fleetd_core fleetcommon pthread)
