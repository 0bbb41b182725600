-- Campaigns (issue 12, DESIGN.md §7): staged rollouts of firmware,
-- configuration versions and certificate rotations. The contract between
-- the parts is docs/internals/campaigns.md; the rules are
-- fleetd/core/campaign.h. All state lives here, so any worker of any
-- instance can drive a campaign (one at a time: pg_try_advisory_lock) and
-- a driver killed mid-phase is replaced without losing or repeating an
-- offer.

CREATE TABLE campaigns (
	id uuid PRIMARY KEY,
	name text NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 200),
	kind text NOT NULL CHECK (kind IN ('firmware', 'config', 'rotation')),
	status text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft',
		'running', 'paused', 'completed', 'aborted')),
	selector text NOT NULL DEFAULT '',
	-- firmware: the artifact, and the deployment the driver makes for it
	-- at its first tick (deployments.campaign_id points back)
	artifact_id uuid REFERENCES artifacts (id),
	deployment_id uuid REFERENCES deployments (id),
	-- config: the profile version every device gets (assign mode)
	profile_id uuid REFERENCES config_profiles (id),
	profile_version integer,
	-- phases, gates, window, max_concurrent: campaign_def_to_json's form
	definition jsonb NOT NULL CHECK (jsonb_typeof(definition) = 'object'),
	-- the highest released phase (0-based); 0 once started
	phase integer NOT NULL DEFAULT 0 CHECK (phase >= 0),
	phase_started_at timestamptz,
	gate_met_at timestamptz, -- the current phase met min_success
	pause_reason text,
	paused_by text, -- an operator, or 'campaign-driver' for a gate
	-- aborted: the driver has done the abort's effects (cancelled the
	-- deployment's open offers, reverted configurations)
	abort_done boolean NOT NULL DEFAULT false,
	created_by text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	started_at timestamptz,
	finished_at timestamptz,
	updated_at timestamptz NOT NULL DEFAULT now(),
	revision bigint NOT NULL DEFAULT 1, -- the ETag
	CHECK ((kind = 'firmware') = (artifact_id IS NOT NULL)),
	CHECK ((kind = 'config') = (profile_id IS NOT NULL
		AND profile_version IS NOT NULL)),
	FOREIGN KEY (profile_id, profile_version)
		REFERENCES config_versions (profile_id, version)
);
CREATE INDEX campaigns_created_idx ON campaigns (created_at, id);
CREATE INDEX campaigns_live_idx ON campaigns (status)
	WHERE status IN ('running', 'paused')
		OR (status = 'aborted' AND NOT abort_done);

ALTER TABLE deployments ADD FOREIGN KEY (campaign_id)
	REFERENCES campaigns (id);

-- A device the campaign has admitted (its phase was released, or it
-- joined later at its rank). Devices that match but are not admitted yet
-- have no row: they are "pending", counted from the selector.
CREATE TABLE campaign_devices (
	campaign_id uuid NOT NULL REFERENCES campaigns (id)
		ON DELETE CASCADE,
	device_id uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
	rank text NOT NULL CHECK (rank ~ '^[0-9a-f]{16}$'),
	phase integer NOT NULL CHECK (phase >= 0),
	state text NOT NULL DEFAULT 'offered' CHECK (state IN ('offered',
		'in_progress', 'succeeded', 'failed', 'silent', 'rolled_back',
		'excluded', 'reverted')),
	reason text CHECK (octet_length(reason) <= 4096),
	admitted_at timestamptz NOT NULL DEFAULT now(),
	finished_at timestamptz, -- when it succeeded or failed
	updated_at timestamptz NOT NULL DEFAULT now(),
	-- config: the assignment before the campaign (restored on abort) and
	-- the desired generation the campaign gave the device
	prev_profile_id uuid,
	prev_pinned_version integer,
	prev_overrides text,
	generation bigint,
	-- rotation: the cert_rotations row the campaign asked for
	rotation_id uuid,
	PRIMARY KEY (campaign_id, device_id)
);
CREATE INDEX campaign_devices_state_idx
	ON campaign_devices (campaign_id, phase, state);
CREATE INDEX campaign_devices_device_idx ON campaign_devices (device_id);

-- The campaign's log: every transition, with who made it and why.
CREATE TABLE campaign_events (
	id bigserial PRIMARY KEY,
	campaign_id uuid NOT NULL REFERENCES campaigns (id)
		ON DELETE CASCADE,
	at timestamptz NOT NULL DEFAULT now(),
	actor text NOT NULL,
	kind text NOT NULL CHECK (kind IN ('created', 'started',
		'phase_released', 'gate_met', 'paused', 'resumed',
		'selector_changed', 'completed', 'aborted', 'reverted',
		'cancelled_offers')),
	phase integer, -- 0-based; the API shows phase + 1
	message text NOT NULL CHECK (octet_length(message) <= 4096),
	details jsonb NOT NULL DEFAULT '{}'
		CHECK (jsonb_typeof(details) = 'object')
);
CREATE INDEX campaign_events_campaign_idx ON campaign_events (campaign_id, id);
