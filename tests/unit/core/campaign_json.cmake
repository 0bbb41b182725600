# SPDX-License-Identifier: Apache-2.0
# Campaign definitions and counts as JSON (core/campaign_json.c).
fleet_add_unit_test(test_campaign_json SOURCES test_campaign_json.c
	LIBS fleetd_core PkgConfig::JANSSON)
