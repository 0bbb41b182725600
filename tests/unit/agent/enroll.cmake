# SPDX-License-Identifier: Apache-2.0
# The pending enrollment request: its Idempotency-Key and body are made
# once, survive a restart byte for byte, and go only after identity.json.
fleet_add_unit_test(test_agent_enroll SOURCES test_enroll.c agent_test_util.c LIBS fleetagent)
