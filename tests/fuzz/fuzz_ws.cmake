# SPDX-License-Identifier: Apache-2.0
# The device listener's upgrade and frame parser is one pure file of
# fleetd/channel (OpenSSL for SHA-1 comes with libfleetpki's OpenSSL).
target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/fleetd/channel/ws.c)
target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/fleetd)
