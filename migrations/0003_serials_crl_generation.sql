-- SPDX-License-Identifier: Apache-2.0
-- Certificate serials in the one format (pki_cert_serial_hex, docs/pki.md):
-- exactly as `openssl x509 -serial` prints them, uppercase hex with two
-- digits per octet, so a leading zero digit is kept ("06AFAD95...", not
-- "6afad95..."). Earlier versions stored lowercase hex without leading
-- zeros; every stored copy is converted here: certificates, live
-- sessions, and the audit details that name serials.
--
-- And the CRL revocation generation (docs/internals/core.md, "CRL"): a
-- counter that every revoking transaction increments. A cached CRL is
-- fresh only while it was built from the current generation, read in the
-- same snapshot as the revoked set it lists; a revocation that commits
-- while a CRL is being signed therefore leaves that CRL stale, whatever
-- order the two transactions finish in.

CREATE FUNCTION fleet_serial(s text) RETURNS text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN CASE WHEN s IS NULL THEN NULL
		WHEN length(s) % 2 = 1 THEN '0' || upper(s)
		ELSE upper(s) END;

UPDATE certificates SET serial = fleet_serial(serial)
	WHERE serial <> fleet_serial(serial);
UPDATE device_sessions SET cert_serial = fleet_serial(cert_serial)
	WHERE cert_serial <> fleet_serial(cert_serial);
UPDATE audit_log SET details = jsonb_set(details, '{certificate_serial}',
		to_jsonb(fleet_serial(details ->> 'certificate_serial')))
	WHERE jsonb_typeof(details -> 'certificate_serial') = 'string';
UPDATE audit_log SET details = jsonb_set(details, '{revoked_certificates}',
		(SELECT coalesce(jsonb_agg(to_jsonb(fleet_serial(e))
			ORDER BY n), '[]'::jsonb)
		 FROM jsonb_array_elements_text(details -> 'revoked_certificates')
			WITH ORDINALITY AS a(e, n)))
	WHERE jsonb_typeof(details -> 'revoked_certificates') = 'array';

-- New serials must arrive in the format; a lowercase or odd-length one is
-- a bug that would silently miss the revoked-serial set.
ALTER TABLE certificates ADD CONSTRAINT certificates_serial_format
	CHECK (serial ~ '^([0-9A-F]{2})+$');

CREATE TABLE crl_generation (
	id boolean PRIMARY KEY DEFAULT true CHECK (id),
	generation bigint NOT NULL
);
INSERT INTO crl_generation (id, generation) VALUES (true, 1);

-- The generation a cached CRL was built from; 0 never matches, so a CRL
-- cached before this migration is re-signed on the next request.
ALTER TABLE crl_cache ADD COLUMN generation bigint NOT NULL DEFAULT 0;
ALTER TABLE crl_cache DROP COLUMN stale;
