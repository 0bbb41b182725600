# SPDX-License-Identifier: Apache-2.0
# config.status reports are applied in batches (fleetd/channel/
# config_status.c, docs/internals/perf.md): test_report_dispatch gets the
# seam functions and the batch store call the handler uses, faked.
if(TARGET test_report_dispatch)
	target_sources(test_report_dispatch PRIVATE
		${CMAKE_CURRENT_SOURCE_DIR}/fake_channel_config_batch.c)
endif()
