# SPDX-License-Identifier: Apache-2.0
# fleet.v1 codec: table-driven encode/decode/validate of every message type.
fleet_add_unit_test(test_proto SOURCES test_proto.c LIBS fleetcommon)
