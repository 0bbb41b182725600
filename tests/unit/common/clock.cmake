# SPDX-License-Identifier: Apache-2.0
fleet_add_unit_test(test_clock SOURCES test_clock.c LIBS fleetcommon)
