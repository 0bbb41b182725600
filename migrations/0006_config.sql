-- SPDX-License-Identifier: Apache-2.0
-- Configuration profiles (issue 9, DESIGN.md §6): profiles with immutable
-- numbered versions, each device's assignment (profile, pinned version or
-- latest, overrides), its DESIRED state materialised, its REPORTED state,
-- and config changes with the devices each one touched.
--
-- Every document is stored as canonical JSON text (common/canon.h) with
-- the lowercase hex SHA-256 of that text, so the hash of a row is the hash
-- the agent computes over the same document. Documents are JSON objects
-- of at most 262144 bytes (256 KiB) of canonical text.
--
-- ===== Contract with the delivery side (channel, cfg-delivery) =====
--
-- READ (desired): device_config.desired_document (canonical text, NULL =
--   the device has no configuration), desired_sha256, desired_generation
--   (> 0 once a document was ever set; only grows, by one per change of
--   the document), desired_change_id (the config change that last set
--   it). Read them in one statement; the generation names the document.
--   Send config.apply(generation, hash, document) when the device's
--   reported (generation, sha256) differs from the desired ones.
--
-- WRITE (reported): one row per device in device_config_reported,
--   upserted from the device's config.status report: generation (the one
--   the agent applied or failed), sha256 (the hash of the file it has),
--   status 'applied' | 'failed' | 'drifted', reason (the hook's message
--   for 'failed', what was seen for 'drifted'; NULL for 'applied'),
--   reported_at (now()). A report naming a generation greater than the
--   device's desired_generation was never sent: ignore it (and count it).
--   Never write the desired columns.
--
-- NOTIFY: exactly ONE pg_notify('fleet_config', <change id as text>) per
--   change set, in the transaction that changes desired state (a device
--   config set, a clone, a publish of a version that devices following
--   `latest` get). The payload is the change id (config_changes.id); its
--   members are config_change_devices rows of that change. Level-
--   triggered: a listener that missed notifications compares desired
--   with reported for its connected devices and loses nothing.
--
-- Change progress is derived, never stored per device: a member device is
--   applied when its reported generation >= the member's generation and
--   its reported status is 'applied' with the member's hash or a later
--   one; failed when reported status is 'failed' for that generation;
--   superseded when a later change set the device again; otherwise
--   pending, or offline when it has no live session.

CREATE TABLE config_profiles (
	id uuid PRIMARY KEY,
	-- the name in URLs: lowercase letters, digits, '.', '_', '-'
	name text NOT NULL UNIQUE
		CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
	description text NOT NULL DEFAULT ''
		CHECK (octet_length(description) <= 1024),
	-- the highest published version; 0 while none is published
	latest_version integer NOT NULL DEFAULT 0 CHECK (latest_version >= 0),
	created_at timestamptz NOT NULL DEFAULT now(),
	created_by text NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX config_profiles_created_idx ON config_profiles (created_at, id);

-- Immutable: the trigger below refuses UPDATE and DELETE.
CREATE TABLE config_versions (
	profile_id uuid NOT NULL REFERENCES config_profiles (id),
	version integer NOT NULL CHECK (version > 0),
	document text NOT NULL CHECK (octet_length(document) <= 262144),
	sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
	note text NOT NULL DEFAULT '' CHECK (octet_length(note) <= 1024),
	created_at timestamptz NOT NULL DEFAULT now(),
	created_by text NOT NULL,
	PRIMARY KEY (profile_id, version)
);

CREATE FUNCTION fleet_config_versions_immutable() RETURNS trigger
	LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'configuration versions are immutable'
		USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER config_versions_immutable
	BEFORE UPDATE OR DELETE ON config_versions
	FOR EACH ROW EXECUTE FUNCTION fleet_config_versions_immutable();

-- Config change sets: a device config set, a clone, a publish that moved
-- devices following `latest`. Written with their audit row.
CREATE TABLE config_changes (
	id uuid PRIMARY KEY,
	actor text NOT NULL,
	kind text NOT NULL CHECK (kind IN ('set', 'clone', 'publish')),
	-- where the document came from: {"device": id} or
	-- {"profile": name, "version": n}, plus the mode of a clone
	source jsonb NOT NULL DEFAULT '{}'
		CHECK (jsonb_typeof(source) = 'object'),
	selector text,
	-- devices matched, and how many of them got a new desired document
	matched integer NOT NULL DEFAULT 0,
	changed integer NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX config_changes_created_idx ON config_changes (created_at, id);

-- Per device: its assignment and its desired state (one row per device
-- that ever had a configuration). revision is the ETag of the device's
-- config document; it grows with every write of the assignment.
CREATE TABLE device_config (
	device_id uuid PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
	profile_id uuid REFERENCES config_profiles (id),
	pinned_version integer, -- NULL: follows the profile's latest
	overrides text, -- canonical RFC 7386 merge patch (object) or NULL
	revision bigint NOT NULL DEFAULT 1 CHECK (revision > 0),
	desired_document text
		CHECK (octet_length(desired_document) <= 262144),
	desired_sha256 text CHECK (desired_sha256 ~ '^[0-9a-f]{64}$'),
	desired_generation bigint NOT NULL DEFAULT 0
		CHECK (desired_generation >= 0),
	-- no foreign key: a clone sets it on 10,000 rows, and each check is
	-- a trigger call; it is written only with its change, in one
	-- transaction, and changes are never deleted
	desired_change_id uuid,
	desired_at timestamptz,
	updated_at timestamptz NOT NULL DEFAULT now(),
	FOREIGN KEY (profile_id, pinned_version)
		REFERENCES config_versions (profile_id, version),
	CHECK (pinned_version IS NULL OR profile_id IS NOT NULL),
	CHECK ((desired_document IS NULL) = (desired_sha256 IS NULL))
) WITH (fillfactor = 70); -- room for HOT updates: clones rewrite rows
-- Documents are stored out of line without compression: a clone writes
-- the same document into every target row, and pglz compressing it
-- 10,000 times costs more than the pages it would save.
ALTER TABLE device_config ALTER desired_document SET STORAGE EXTERNAL;
-- a publish moves the devices that follow the profile's latest version
CREATE INDEX device_config_latest_idx ON device_config (profile_id)
	WHERE pinned_version IS NULL;

-- Per device: what its agent last reported (written by the delivery side
-- only; see the contract above).
CREATE TABLE device_config_reported (
	device_id uuid PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
	generation bigint NOT NULL CHECK (generation >= 0),
	sha256 text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
	status text NOT NULL CHECK (status IN ('applied', 'failed', 'drifted')),
	reason text CHECK (octet_length(reason) <= 4096),
	reported_at timestamptz NOT NULL DEFAULT now()
);

-- The devices of each change set: the desired generation and hash the
-- change gave each one (for a device it left unchanged, the ones it
-- already had). Written only in the transaction that writes its change,
-- from device_config rows locked there; no foreign keys, because their
-- checks are two trigger calls per row (20,000 for a clone of 10,000
-- devices) and neither changes nor devices are ever deleted.
CREATE TABLE config_change_devices (
	change_id uuid NOT NULL,
	device_id uuid NOT NULL,
	generation bigint NOT NULL CHECK (generation >= 0),
	sha256 text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
	PRIMARY KEY (change_id, device_id)
);
