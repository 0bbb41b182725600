-- SPDX-License-Identifier: Apache-2.0
-- The key that authenticates pagination cursors (HMAC-SHA256), shared by
-- every fleetd instance, so that a cursor is accepted only if a server of
-- this fleet made it (docs/internals/api-handlers.md). 256 bits from two
-- random UUIDs (gen_random_uuid() draws from pg_strong_random; 244 of the
-- bits are random). Rotating it (UPDATE, restart) only voids open cursors.
CREATE TABLE api_keys (
	name text PRIMARY KEY,
	key bytea NOT NULL CHECK (length(key) = 32)
);

INSERT INTO api_keys (name, key)
VALUES ('cursor', decode(replace(gen_random_uuid()::text ||
				 gen_random_uuid()::text, '-', ''), 'hex'));
