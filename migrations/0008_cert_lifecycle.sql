-- Certificate lifecycle (issue 10): renewal and rotation over the device
-- channel, two-phase (docs/pki.md, "Renewal and rotation").
--
-- certificates gains what renewal needs:
--   public_key_sha256  SHA-256 of the DER SubjectPublicKeyInfo (hex): a
--                      renewal must bring a key the device never used, and
--                      a repeated cert.csr for the same key gets the same
--                      certificate back (at-least-once reports);
--   pem                the certificate as issued by renewal (NULL for
--                      certificates issued at enrollment), so a lost
--                      cert.issued can be answered again and the API
--                      can show its issuer;
--   csr_seq, rotation_id  the report and the rotation it answered;
--   superseded_at, installed_at  the two phases: installed when the device
--                      reconnected with it and sent cert.installed, and
--                      then every older active certificate of the device
--                      is superseded (refused at the handshake, listed on
--                      the CRL with reason superseded).
ALTER TABLE certificates
	ADD COLUMN public_key_sha256 text
		CHECK (public_key_sha256 ~ '^[0-9a-f]{64}$'),
	ADD COLUMN pem text,
	ADD COLUMN csr_seq bigint,
	ADD COLUMN rotation_id uuid,
	ADD COLUMN superseded_at timestamptz,
	ADD COLUMN installed_at timestamptz;
-- A key is certified once, for one device (a renewal must bring a new key;
-- the lookup of a CSR's key is by this index).
CREATE UNIQUE INDEX certificates_key_idx ON certificates (public_key_sha256)
	WHERE public_key_sha256 IS NOT NULL;
CREATE INDEX certificates_superseded_idx ON certificates (superseded_at)
	WHERE status = 'superseded';

-- A rotation an operator (or later a campaign) asked for. Pending while
-- completed_at is NULL: the worker holding the device sends cert.rotate
-- on every NOTIFY fleet_certs and when the device (re)connects; it
-- completes when the device installs a certificate issued after
-- requested_at. At most one pending rotation per device.
CREATE TABLE cert_rotations (
	id uuid PRIMARY KEY,
	device_id uuid NOT NULL REFERENCES devices (id),
	reason text NOT NULL CHECK (reason IN ('expiring', 'operator',
		'campaign')),
	requested_at timestamptz NOT NULL DEFAULT now(),
	requested_by text NOT NULL,
	completed_at timestamptz,
	serial text
);
CREATE UNIQUE INDEX cert_rotations_pending_idx ON cert_rotations (device_id)
	WHERE completed_at IS NULL;
