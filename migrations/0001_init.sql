-- SPDX-License-Identifier: Apache-2.0
-- Core schema: operators' tokens, enrollment tokens, devices, their
-- certificates, presence and the audit log.

CREATE TABLE admin_tokens (
	id uuid PRIMARY KEY,
	name text NOT NULL,
	role text NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
	token_sha256 text NOT NULL UNIQUE,
	created_at timestamptz NOT NULL DEFAULT now(),
	created_by text NOT NULL,
	last_used_at timestamptz,
	revoked_at timestamptz
);

CREATE TABLE enrollment_tokens (
	id uuid PRIMARY KEY,
	token_sha256 text NOT NULL UNIQUE,
	uses_total integer NOT NULL CHECK (uses_total > 0),
	uses_left integer NOT NULL CHECK (uses_left >= 0),
	expires_at timestamptz NOT NULL,
	labels jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
	profile text,
	created_at timestamptz NOT NULL DEFAULT now(),
	created_by text NOT NULL,
	revoked_at timestamptz
);

CREATE TABLE devices (
	id uuid PRIMARY KEY,
	status text NOT NULL DEFAULT 'active'
		CHECK (status IN ('active', 'decommissioned')),
	labels jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
	model text,
	serial text,
	fw_version text,
	agent_version text,
	boot_id text,
	inventory jsonb NOT NULL DEFAULT '{}',
	profile text,
	enrolled_with uuid REFERENCES enrollment_tokens (id),
	created_at timestamptz NOT NULL DEFAULT now(),
	decommissioned_at timestamptz,
	last_seen timestamptz,
	-- bumped on every change an operator makes; the ETag of the document
	revision bigint NOT NULL DEFAULT 1
);
CREATE INDEX devices_labels_idx ON devices USING gin (labels);

CREATE TABLE certificates (
	serial text PRIMARY KEY,
	device_id uuid NOT NULL REFERENCES devices (id),
	not_before timestamptz NOT NULL,
	not_after timestamptz NOT NULL,
	status text NOT NULL DEFAULT 'active'
		CHECK (status IN ('active', 'superseded', 'revoked')),
	revoked_at timestamptz,
	revoke_reason integer,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX certificates_device_idx ON certificates (device_id);
CREATE INDEX certificates_revoked_idx ON certificates (revoked_at)
	WHERE status = 'revoked';

-- A net worker registers itself here; device sessions name their worker.
-- A worker's successor (or the sweeper, once heartbeat_at is stale)
-- deletes the sessions of a worker that is gone.
CREATE TABLE workers (
	id text PRIMARY KEY,
	host text NOT NULL,
	pid integer NOT NULL,
	slot integer NOT NULL,
	started_at timestamptz NOT NULL DEFAULT now(),
	heartbeat_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE device_sessions (
	device_id uuid PRIMARY KEY REFERENCES devices (id),
	worker_id text NOT NULL REFERENCES workers (id) ON DELETE CASCADE,
	cert_serial text NOT NULL,
	peer text,
	connected_at timestamptz NOT NULL DEFAULT now(),
	last_seen timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX device_sessions_worker_idx ON device_sessions (worker_id);

CREATE TABLE audit_log (
	id bigserial PRIMARY KEY,
	at timestamptz NOT NULL DEFAULT now(),
	actor text NOT NULL,
	action text NOT NULL,
	target text,
	details jsonb NOT NULL DEFAULT '{}'
);

-- Creating POSTs with an Idempotency-Key return the first answer again.
CREATE TABLE idempotency_keys (
	actor text NOT NULL,
	key text NOT NULL,
	request_sha256 text NOT NULL,
	status integer NOT NULL,
	body text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (actor, key)
);

-- CRL numbers must only grow, across all fleetd instances.
CREATE SEQUENCE crl_number_seq;
