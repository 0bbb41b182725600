# SPDX-License-Identifier: Apache-2.0
# The agent's update state machine: its journal and resume decisions
# (agent/update.c), and downloads (agent/download.c) against a real TLS
# server on loopback.
find_package(Threads REQUIRED)
fleet_add_unit_test(test_agent_update SOURCES test_update.c agent_test_util.c LIBS fleetagent)
fleet_add_unit_test(test_agent_update_download SOURCES test_update_download.c
	agent_test_util.c ${PROJECT_SOURCE_DIR}/tests/unit/common/tls_cert_fixture.c
	LIBS fleetagent Threads::Threads)
target_include_directories(test_agent_update_download PRIVATE
	${PROJECT_SOURCE_DIR}/tests/unit/common)
