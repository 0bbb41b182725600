-- SPDX-License-Identifier: Apache-2.0
-- Device reports (fleet.v1 config.status, update.status, cert.csr,
-- cert.installed, cmd.result), delivered at least once and applied exactly
-- once per (device, seq): see core/report.h and docs/internals/reports.md.

-- Which report seqs of a device were applied: the highest one (hwm) and a
-- 64-bit mask of the 64 seqs up to it (bit i: hwm - i applied), the
-- anti-replay window of RFC 4303. Read and written under this row's lock
-- in the transaction that applies a report.
CREATE TABLE device_report_windows (
	device_id uuid PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
	hwm bigint NOT NULL DEFAULT 0 CHECK (hwm >= 0),
	mask bigint NOT NULL DEFAULT 0,
	updated_at timestamptz NOT NULL DEFAULT now()
);

-- The latest report of each kind per device (the one with the highest
-- seq, so a report that arrives late never moves a status back), and how
-- many reports of that kind were applied (each (device, seq) once).
CREATE TABLE device_reports (
	device_id uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
	kind text NOT NULL,
	seq bigint NOT NULL CHECK (seq > 0),
	body jsonb NOT NULL CHECK (jsonb_typeof(body) = 'object'),
	received_at timestamptz NOT NULL DEFAULT now(),
	applied bigint NOT NULL DEFAULT 1 CHECK (applied > 0),
	PRIMARY KEY (device_id, kind)
);
