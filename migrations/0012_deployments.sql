-- SPDX-License-Identifier: Apache-2.0
-- Deployments beyond the contract of 0011 (docs/internals/updates.md,
-- "Contract changes"): what the report path and key set delivery need.

-- The seq of the update.status report that set a row's state (0: set by
-- the server: pending, offered, superseded). Reports of one device may
-- overtake each other on several job threads; one below this never moves
-- the row (core/update.c, update_report_check).
ALTER TABLE deployment_devices ADD COLUMN seq bigint NOT NULL DEFAULT 0;

-- update.status reports acknowledged but ignored (not about the device's
-- open deployment, or overtaken), counted per device like
-- config_reports_ignored, so an operator can see a confused agent.
CREATE TABLE update_reports_ignored (
	device_id uuid PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
	count bigint NOT NULL DEFAULT 1,
	last_verdict text NOT NULL,
	last_body jsonb NOT NULL,
	last_at timestamptz NOT NULL DEFAULT now()
);

-- The release key set version the device pins, from its last keys.status
-- "adopted" (NULL: never reported; its image's set is version 1).
ALTER TABLE devices ADD COLUMN keyset_version bigint;

-- A deployment's list of devices is paged by the device's (created_at,
-- id); the state filter uses deployment_devices_state.
