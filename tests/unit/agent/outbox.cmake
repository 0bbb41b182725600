# SPDX-License-Identifier: Apache-2.0
# The agent's reports until acknowledged: seq allocation, window, acks,
# resends after a reconnect, queue across restarts.
fleet_add_unit_test(test_agent_outbox SOURCES test_outbox.c agent_test_util.c LIBS fleetagent)
