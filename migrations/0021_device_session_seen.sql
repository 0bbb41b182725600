-- SPDX-License-Identifier: Apache-2.0
-- The selector key "online" on the devices rows (issue 15,
-- docs/internals/device-list.md, "online without a join"). A device is
-- online while its device_sessions row was seen within the heartbeat
-- timeout (core/device.c, device_online); a selector with "online" and
-- other terms joined a session row per device it looked at (about 3,300
-- index lookups to count 1,001 online devices over 1,000,000, 100 to
-- 160 ms).
--
-- Two columns follow device_sessions:
-- - in_session: the device has a session row. Changes only when a session
--   opens or closes; devices_online_idx holds these devices only, in the
--   list's order, so "online" starts from them.
-- - session_seen: NULL without a session row, else the row's last_seen
--   rounded down to its minute (date_bin), so at most 60 seconds below
--   it and never above it. Not indexed, so its writes stay HOT (no
--   devices index is touched).
-- (A row last seen over two hours before this migration keeps both
-- unset until its next write: see the backfill at the end.)
-- fleetd/db/devices.c then reads "online" as
--   in_session AND (session_seen > now() - timeout
--     OR (session_seen > now() - timeout - 60 s
--         AND EXISTS (a session row seen within the timeout)))
-- which is exactly the rule of device_online, and looks a session up
-- only for the devices in the 60-second band below the boundary (few:
-- a live worker's tick refreshes its sessions every heartbeat).
--
-- Row triggers on device_sessions keep both, in the transaction of every
-- write of a session row: the opens, closes and ticks of
-- fleetd/db/presence.c, the sweep of a dead worker's sessions (the ON
-- DELETE CASCADE from workers runs these triggers too), and any other
-- write (tests insert sessions with SQL), so they never disagree. Row
-- triggers, not statement triggers over transition tables: each is one
-- primary-key lookup whatever the statement's size, where PL/pgSQL plans
-- a join with a transition table once and could keep a plan made for
-- another size. The tick rewrites a session row about once a heartbeat;
-- the trigger of an UPDATE runs only when the row's minute changes (its
-- WHEN clause is evaluated without calling PL/pgSQL), so a device row is
-- written about once a minute per online device, and a tick's other
-- writes cost a comparison. A session open writes the columns itself
-- (presence.c; its device row is written in that statement anyway), so
-- its trigger finds nothing to do.
ALTER TABLE devices ADD COLUMN in_session boolean NOT NULL DEFAULT false,
	ADD COLUMN session_seen timestamptz;

CREATE FUNCTION device_sessions_seen_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		-- device_id is the key: no other row of the device is left.
		UPDATE devices SET in_session = false, session_seen = NULL
		WHERE id = OLD.device_id
		  AND (in_session OR session_seen IS NOT NULL);
	ELSE
		UPDATE devices SET in_session = true,
			session_seen = date_bin('60 seconds', NEW.last_seen,
						timestamptz 'epoch')
		WHERE id = NEW.device_id
		  AND (NOT in_session OR session_seen IS DISTINCT FROM
		       date_bin('60 seconds', NEW.last_seen,
				timestamptz 'epoch'));
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER device_sessions_open_close AFTER INSERT OR DELETE
	ON device_sessions
	FOR EACH ROW EXECUTE FUNCTION device_sessions_seen_sync();
CREATE TRIGGER device_sessions_seen_minute AFTER UPDATE OF last_seen
	ON device_sessions FOR EACH ROW
	WHEN (date_bin('60 seconds', OLD.last_seen, timestamptz 'epoch')
	      IS DISTINCT FROM
	      date_bin('60 seconds', NEW.last_seen, timestamptz 'epoch'))
	EXECUTE FUNCTION device_sessions_seen_sync();

-- The sessions that exist now (the trigger holds every later write back
-- until this transaction commits), but only those seen in the last two
-- hours and a minute (the longest heartbeat_timeout fleetd accepts, plus
-- the slack): an older row is offline under any configuration, and it
-- stays so until a write of its last_seen, which the trigger sees. So the
-- backfill writes one device row per online device, not one per device
-- (the columns were added without a rewrite).
UPDATE devices d SET in_session = true,
	session_seen = date_bin('60 seconds', s.last_seen, timestamptz 'epoch')
FROM device_sessions s WHERE s.device_id = d.id
  AND s.last_seen > now() - interval '7260 seconds';

-- Plain CREATE INDEX: a migration runs in a transaction (as 0014).
CREATE INDEX devices_online_idx ON devices (created_at, id) WHERE in_session;
