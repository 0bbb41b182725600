# SPDX-License-Identifier: Apache-2.0
# What fleetctl's configuration commands print (fleetd/ctl/cfg_render.c):
# the diff of two documents, a merge patch as its changes, the progress
# line of a change, NAME@VERSION references. Links output.c (sanitizing,
# compact JSON text) and nothing that talks to a server.
fleet_add_unit_test(test_ctl_cfg_render
	SOURCES test_ctl_cfg_render.c
		${PROJECT_SOURCE_DIR}/fleetd/ctl/cfg_render.c
		${PROJECT_SOURCE_DIR}/fleetd/ctl/output.c
	LIBS fleetcommon fleetpki PkgConfig::JANSSON)
target_include_directories(test_ctl_cfg_render PRIVATE
	${PROJECT_SOURCE_DIR}/fleetd/ctl)
