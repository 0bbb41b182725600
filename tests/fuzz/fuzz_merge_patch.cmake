# SPDX-License-Identifier: Apache-2.0
# The strict body parser (api/input.c) and core's configuration rules.
target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/fleetd/api/input.c)
target_link_libraries(${target} PRIVATE fleetd_core)
