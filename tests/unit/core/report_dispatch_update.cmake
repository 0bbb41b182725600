# SPDX-License-Identifier: Apache-2.0
# The message table sends update.status and keys.status to
# fleetd/channel/update.c (issue 11) and tells it about every hello; that
# file needs PostgreSQL and the worker's sessions: test_report_dispatch
# (report_dispatch.cmake, included before this file) links stand-ins that
# take the reports through the report path. tests/integration/
# test_deployments.sh drives update.c end to end; its rules are
# unit-tested in test_update_rules.
if(TARGET test_report_dispatch)
	target_sources(test_report_dispatch PRIVATE
		${CMAKE_CURRENT_SOURCE_DIR}/fake_channel_update.c)
endif()
