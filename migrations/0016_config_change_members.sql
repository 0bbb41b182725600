-- SPDX-License-Identifier: Apache-2.0
-- The members of a configuration change set, one row per change instead of
-- one row per device (issue 9: a clone onto 10,000 devices within 3 s).
-- Inserting 10,000 config_change_devices rows (heap, primary key, the
-- hash's CHECK) took a quarter of the clone's one statement; three arrays
-- in one row cost one TOASTed tuple. The arrays are parallel: element i of
-- each describes one device. A change may add members in several
-- statements of its transaction (a campaign's abort clears some devices
-- and reassigns others): each appends to the arrays.
--
-- config_change_devices stays as a view with the columns it had, so the
-- queries that read a change's members (progress, failures, tests) read
-- it unchanged; PostgreSQL pushes `change_id = $1` into it.
CREATE TABLE config_change_members (
	change_id uuid PRIMARY KEY,
	device_ids uuid[] NOT NULL,
	generations bigint[] NOT NULL,
	sha256s text[] NOT NULL, -- an element is NULL: no document
	CHECK (cardinality(generations) = cardinality(device_ids)
	       AND cardinality(sha256s) = cardinality(device_ids))
);

INSERT INTO config_change_members (change_id, device_ids, generations, sha256s)
SELECT change_id, array_agg(device_id ORDER BY device_id),
       array_agg(generation ORDER BY device_id),
       array_agg(sha256 ORDER BY device_id)
FROM config_change_devices GROUP BY change_id;

DROP TABLE config_change_devices;

CREATE VIEW config_change_devices AS
SELECT m.change_id, u.device_id, u.generation, u.sha256
FROM config_change_members m,
     unnest(m.device_ids, m.generations, m.sha256s)
	AS u(device_id, generation, sha256);
