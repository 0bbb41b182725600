# SPDX-License-Identifier: Apache-2.0
fleet_add_unit_test(test_log SOURCES test_log.c LIBS fleetcommon)
