# SPDX-License-Identifier: Apache-2.0
# Campaign rules (core/campaign.c): phases, gates, soak, failure
# thresholds with the minimum count, silence, late joiners, time windows,
# transitions.
fleet_add_unit_test(test_campaign SOURCES test_campaign.c LIBS fleetd_core)
