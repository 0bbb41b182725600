-- SPDX-License-Identifier: Apache-2.0
-- Issuing-CA rollover and CRLs per issuing CA (issue 10; docs/pki.md,
-- "Issuing-CA rollover" and "CRLs").
--
-- issuing_cas: the device issuing CAs the fleet has had, by key id (hex
-- SHA-256 of the CA's SubjectPublicKeyInfo, pki_key_id). Registered by
-- `fleetd pki rotate-issuing` (the CA made by `fleetd pki init`, marked
-- first, and the new one); while none is registered the fleet has one
-- issuing CA and everything works as before. status: current (issues new
-- certificates), previous (trusted and CRL-signed during the overlap, no
-- longer issuing), retired (`fleetd pki retire-issuing`, once no active
-- certificate of it remains: no longer trusted).
CREATE TABLE issuing_cas (
	key_id text PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{64}$'),
	cert_pem text NOT NULL,
	status text NOT NULL CHECK (status IN ('current', 'previous', 'retired')),
	first boolean NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL DEFAULT now(),
	retired_at timestamptz
);
CREATE UNIQUE INDEX issuing_cas_one_current ON issuing_cas (status)
	WHERE status = 'current';
CREATE UNIQUE INDEX issuing_cas_one_first ON issuing_cas (first)
	WHERE first;

-- The issuing CA of each certificate. NULL: issued before any rollover,
-- i.e. by the first CA (rotate-issuing fills these in when it registers
-- it). New rows get the current CA: the ca process switches keys only
-- after the new CA is registered (rotate-issuing, then SIGHUP), so a row
-- written in between names the new CA for a certificate of the old one;
-- the old CA's CRL therefore also lists revoked certificates of the new
-- CA recorded within a day of its registration (serials are random 128-bit
-- numbers: an extra serial on a CRL revokes nothing else).
ALTER TABLE certificates ADD COLUMN issuer text;
CREATE INDEX certificates_issuer_revoked_idx ON certificates (issuer, revoked_at)
	WHERE status <> 'active';
CREATE INDEX certificates_issuer_active_idx ON certificates (issuer, not_after)
	WHERE status = 'active';

CREATE FUNCTION fleet_certificate_issuer() RETURNS trigger
	LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.issuer IS NULL THEN
		NEW.issuer := (SELECT key_id FROM issuing_cas
			WHERE status = 'current');
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER certificates_issuer BEFORE INSERT ON certificates
	FOR EACH ROW EXECUTE FUNCTION fleet_certificate_issuer();

-- The cached CRL of each registered issuing CA (crl_cache keeps the one
-- CRL of a fleet that never rolled over). Fresh under the same rule:
-- built from the current revocation generation, more than 3 days before
-- its nextUpdate (core/crl.c).
CREATE TABLE crl_cache_ca (
	issuer text PRIMARY KEY REFERENCES issuing_cas (key_id),
	crl_number bigint NOT NULL,
	der bytea NOT NULL,
	this_update timestamptz NOT NULL,
	next_update timestamptz NOT NULL,
	generation bigint NOT NULL
);
