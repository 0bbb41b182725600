# SPDX-License-Identifier: Apache-2.0
# The agent's pinned release key set (agent/keyset.c): load, adoption of a
# rotated set, keys.status answers.
fleet_add_unit_test(test_agent_keyset SOURCES test_keyset.c agent_test_util.c LIBS fleetagent)
