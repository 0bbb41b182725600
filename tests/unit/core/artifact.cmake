# SPDX-License-Identifier: Apache-2.0
# core/artifact.c: the streamed upload loop over an in-memory fake of the
# artifacts store port (the fake is in the test file).
fleet_add_unit_test(test_artifact
	SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_artifact.c
	LIBS fleetd_core PkgConfig::OPENSSL)
