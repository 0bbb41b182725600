-- SPDX-License-Identifier: Apache-2.0
-- Configuration delivery (issue 9; core/config_delivery.h,
-- docs/internals/config-delivery.md), on top of 0006's contract.

-- The seq of the config.status report that set the reported state: reports
-- of one device overtake each other on several job threads, and within one
-- generation the later report (drifted, then applied again after a
-- restore) must win whatever order they commit in.
ALTER TABLE device_config_reported
	ADD COLUMN seq bigint NOT NULL DEFAULT 0 CHECK (seq >= 0);

-- config.status reports that were acknowledged but not stored: a
-- generation (or a hash for it) that was never sent, or a report older
-- than the stored state. Counted per device, with the last reason, so an
-- operator can see an agent that reports nonsense.
CREATE TABLE config_reports_ignored (
	device_id uuid PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
	count bigint NOT NULL DEFAULT 1 CHECK (count > 0),
	last_verdict text NOT NULL,
	last_body jsonb NOT NULL,
	last_at timestamptz NOT NULL DEFAULT now()
);
