# SPDX-License-Identifier: Apache-2.0
# The agent's configuration apply (agent/config.c): atomic write, hooks,
# restore on failure, drift, memory mode.
fleet_add_unit_test(test_agent_config SOURCES test_config.c agent_test_util.c LIBS fleetagent)
