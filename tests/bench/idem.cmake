# SPDX-License-Identifier: Apache-2.0
# idem_bench: the Idempotency-Key lookup before/after the retention and the
# sweep's batches over COUNT records (default 1,000,000).
# `cmake --build B --target idem_bench_run`, or
# tests/bench/idem_bench.sh BUILD_DIR [COUNT].
if(TARGET fleetd)
	add_custom_target(idem_bench_run
		COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/idem_bench.sh
			${PROJECT_BINARY_DIR} $ENV{COUNT}
		DEPENDS fleetd
		USES_TERMINAL
		COMMENT "Idempotency-Key lookup and sweep over many records")
endif()
