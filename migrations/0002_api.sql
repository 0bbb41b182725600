-- SPDX-License-Identifier: Apache-2.0
-- What the JSON API needs beyond the core schema: indexes for keyset
-- pagination (lists are ordered by (created_at, id)), and the shared CRL
-- cache.

CREATE INDEX devices_created_idx ON devices (created_at, id);
CREATE INDEX enrollment_tokens_created_idx ON enrollment_tokens (created_at, id);
CREATE INDEX admin_tokens_created_idx ON admin_tokens (created_at, id);
CREATE INDEX device_sessions_last_seen_idx ON device_sessions (last_seen);

-- The current CRL, shared by every fleetd instance. GET /pki/v1/crl serves
-- it while it is fresh; a revocation marks it stale in the revoking
-- transaction, and the next GET (under an advisory lock, so one instance
-- signs) re-signs it with the next crl_number_seq value. One row at most.
CREATE TABLE crl_cache (
	id boolean PRIMARY KEY DEFAULT true CHECK (id),
	crl_number bigint NOT NULL,
	der bytea NOT NULL,
	this_update timestamptz NOT NULL DEFAULT now(),
	next_update timestamptz NOT NULL,
	stale boolean NOT NULL DEFAULT false
);

-- RFC 3339 UTC text for the JSON documents, and the opaque keyset cursor
-- "<microseconds since epoch> <id>" of a row.
CREATE FUNCTION fleet_ts(t timestamptz) RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"');

CREATE FUNCTION fleet_cursor(t timestamptz, id uuid) RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN (extract(epoch FROM t) * 1000000)::bigint::text || ' ' || id::text;

CREATE FUNCTION fleet_cursor_ts(us bigint) RETURNS timestamptz
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN 'epoch'::timestamptz + us * interval '1 microsecond';
