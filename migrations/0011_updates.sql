-- SPDX-License-Identifier: Apache-2.0
-- Signed software updates (issue 11, DESIGN.md §5): artifacts stored in
-- chunks, the release key sets fleetd hands to agents, and deployments
-- (one artifact offered to a set of devices; the campaign engine adds
-- phases on top of these rows). The contract between the parts that use
-- these tables is docs/internals/updates.md.

-- The bytes of one file, once per sha256 whatever number of releases
-- (envelopes) point at it. Uploaded in chunks of chunk_size bytes (the
-- last one may be shorter); complete once every chunk is in and the
-- sha256 of all of them, in order, matched. Only complete blobs are
-- served.
CREATE TABLE artifact_blobs (
	sha256 text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
	size bigint NOT NULL CHECK (size > 0),
	chunk_size integer NOT NULL CHECK (chunk_size > 0),
	complete boolean NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE artifact_chunks (
	sha256 text NOT NULL REFERENCES artifact_blobs (sha256)
		ON DELETE CASCADE,
	idx integer NOT NULL CHECK (idx >= 0),
	data bytea NOT NULL,
	PRIMARY KEY (sha256, idx)
);
-- Compressed firmware does not compress again: store chunks out of line
-- without trying, so reading one is a plain copy.
ALTER TABLE artifact_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- A release: a DSSE envelope (signed offline) over a manifest naming a
-- blob. fleetd never signs; it copies the manifest's fields out of the
-- envelope it was given so operators can list and select releases.
CREATE TABLE artifacts (
	id uuid PRIMARY KEY,
	sha256 text NOT NULL REFERENCES artifact_blobs (sha256),
	name text NOT NULL,
	version text NOT NULL,
	version_int bigint NOT NULL CHECK (version_int > 0),
	hw text[] NOT NULL,
	installer text NOT NULL,
	size bigint NOT NULL CHECK (size > 0),
	expires_at timestamptz NOT NULL,
	envelope jsonb NOT NULL CHECK (jsonb_typeof(envelope) = 'object'),
	manifest jsonb NOT NULL CHECK (jsonb_typeof(manifest) = 'object'),
	created_by text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (name, version_int, sha256)
);

-- Release key sets after the first (which is baked into device images):
-- version n + 1 is a DSSE envelope signed by the threshold of set n.
-- fleetd stores and forwards them; agents verify them.
CREATE TABLE release_keysets (
	version bigint PRIMARY KEY CHECK (version >= 2),
	envelope jsonb NOT NULL CHECK (jsonb_typeof(envelope) = 'object'),
	keyset jsonb NOT NULL CHECK (jsonb_typeof(keyset) = 'object'),
	created_by text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);

-- A deployment offers one artifact to the devices a selector matched when
-- it was created (or to one device). campaign_id is set when the
-- campaign engine made it.
CREATE TABLE deployments (
	id uuid PRIMARY KEY,
	artifact_id uuid NOT NULL REFERENCES artifacts (id),
	selector text NOT NULL DEFAULT '',
	campaign_id uuid,
	status text NOT NULL DEFAULT 'active'
		CHECK (status IN ('active', 'finished', 'cancelled')),
	created_by text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	finished_at timestamptz
);
CREATE INDEX deployments_artifact ON deployments (artifact_id);

-- Each device's part in a deployment: its state as the agent last
-- reported it (update.status; "pending" before it was offered,
-- "superseded" when a newer deployment replaced it first). A device has
-- at most one unfinished row: the offer fleetd delivers, level-triggered,
-- on every (re)connect and on every NOTIFY fleet_update.
CREATE TABLE deployment_devices (
	deployment_id uuid NOT NULL REFERENCES deployments (id)
		ON DELETE CASCADE,
	device_id uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
	state text NOT NULL DEFAULT 'pending' CHECK (state IN (
		'pending', 'offered', 'downloading', 'downloaded',
		'installing', 'installed', 'rebooting', 'verifying',
		'committed', 'failed', 'rolled_back', 'refused',
		'superseded')),
	finished boolean GENERATED ALWAYS AS (state IN ('committed',
		'failed', 'rolled_back', 'refused', 'superseded')) STORED,
	reason text,
	error text,
	progress integer CHECK (progress BETWEEN 0 AND 100),
	bytes bigint,
	running_version bigint,
	fw_version text,
	offered_at timestamptz,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (deployment_id, device_id)
);
CREATE UNIQUE INDEX deployment_devices_one_open
	ON deployment_devices (device_id) WHERE NOT finished;
CREATE INDEX deployment_devices_state
	ON deployment_devices (deployment_id, state);
