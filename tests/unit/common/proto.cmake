# SPDX-License-Identifier: Apache-2.0
# fleet.v1 codec: table-driven encode/decode/validate of every message type.
fleet_add_unit_test(test_proto SOURCES test_proto.c LIBS fleetcommon)
# The contract in prose must match the table (checked row by row).
target_compile_definitions(test_proto PRIVATE
	FLEET_PROTOCOL_DOC="${PROJECT_SOURCE_DIR}/docs/protocol.md")
