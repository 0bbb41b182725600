# SPDX-License-Identifier: Apache-2.0
# fleetctl's --watch helpers (fleetd/ctl/watch.c): the progress bar that
# config status and deployments show draw, and the poll loop's line
# discipline (plain lines only when they change; stops when finished).
# cfg_render.c draws its bar with ctl_bar, so test_ctl_cfg_render
# (ctl_cfg_render.cmake, included before this file) links watch.c too.
if(TARGET test_ctl_cfg_render)
	target_sources(test_ctl_cfg_render PRIVATE
		${PROJECT_SOURCE_DIR}/fleetd/ctl/watch.c)
endif()
fleet_add_unit_test(test_ctl_watch
	SOURCES test_ctl_watch.c ${PROJECT_SOURCE_DIR}/fleetd/ctl/watch.c
	LIBS fleetcommon)
target_include_directories(test_ctl_watch PRIVATE
	${PROJECT_SOURCE_DIR}/fleetd/ctl)
