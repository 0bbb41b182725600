# SPDX-License-Identifier: Apache-2.0
# Installers (agent/installer.c) with real update modules: Debian's
# single-file, directory and script (mender-client) and our dir-ab.
# Built from installer.c itself so that it only needs what that module
# needs (common, pki, jansson).
fleet_add_unit_test(test_agent_installer
	SOURCES test_installer.c agent_test_util.c
		${PROJECT_SOURCE_DIR}/agent/installer.c
	LIBS fleetcommon fleetpki PkgConfig::JANSSON)
target_include_directories(test_agent_installer PRIVATE
	${PROJECT_SOURCE_DIR}/agent)
target_compile_definitions(test_agent_installer PRIVATE
	FLEET_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
