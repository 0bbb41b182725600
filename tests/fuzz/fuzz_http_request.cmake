# SPDX-License-Identifier: Apache-2.0
# The parser is one pure file of fleetd/http; OPENSSL_cleanse comes with
# libfleetpki's OpenSSL.
target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/fleetd/http/h1.c)
target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/fleetd)
