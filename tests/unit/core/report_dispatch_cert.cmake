# SPDX-License-Identifier: Apache-2.0
# The message table sends cert.csr and cert.installed to
# fleetd/channel/cert.c (issue 10), which needs the ca signer and
# PostgreSQL: test_report_dispatch (report_dispatch.cmake, included before
# this file) links stand-ins that take them through the report path.
if(TARGET test_report_dispatch)
	target_sources(test_report_dispatch PRIVATE
		${CMAKE_CURRENT_SOURCE_DIR}/fake_channel_cert.c
		${CMAKE_CURRENT_SOURCE_DIR}/fake_channel_report.c)
endif()
