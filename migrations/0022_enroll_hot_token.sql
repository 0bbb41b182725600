-- SPDX-License-Identifier: Apache-2.0
-- The enrollment batch and the hot token row (issue 15;
-- docs/internals/enroll-rate.md, "One reservation per batch").
--
-- 1. devices.enrolled_with loses its foreign key. Every device insert
--    checked it with a KEY SHARE lock on the token row, and every
--    enrollment of a factory line uses the same token, whose row is also
--    locked for update by the use count: PostgreSQL made a MultiXact per
--    enrollment (GetMultiXactIdMembers in every profile) and ran one
--    referential-integrity query per device. What the key gave, kept
--    otherwise:
--    - a device names a token that exists: the enrollment batch
--      (fleetd/db/enroll.c) writes only records whose token row it has
--      locked and updated in the same transaction; nothing else writes
--      enrolled_with;
--    - a token referenced by a device is never deleted: fleetd deletes no
--      token (a token is revoked, its row stays for the audit trail and
--      for enrolled_with); the triggers below refuse a DELETE, a TRUNCATE
--      or an id change of a referenced token by hand, as the key did.
--    There is no ON DELETE action to keep: the key had none.
ALTER TABLE devices DROP CONSTRAINT IF EXISTS devices_enrolled_with_fkey;

CREATE FUNCTION fleet_enrollment_token_referenced() RETURNS trigger
	LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'TRUNCATE' THEN
		IF EXISTS (SELECT 1 FROM devices WHERE enrolled_with IS NOT NULL)
		THEN
			RAISE EXCEPTION 'enrollment tokens are referenced by devices'
				USING ERRCODE = 'foreign_key_violation';
		END IF;
		RETURN NULL;
	END IF;
	IF EXISTS (SELECT 1 FROM devices WHERE enrolled_with = OLD.id) THEN
		RAISE EXCEPTION 'enrollment token % is referenced by devices',
			OLD.id USING ERRCODE = 'foreign_key_violation';
	END IF;
	RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER enrollment_tokens_referenced_delete
	BEFORE DELETE ON enrollment_tokens
	FOR EACH ROW EXECUTE FUNCTION fleet_enrollment_token_referenced();
CREATE TRIGGER enrollment_tokens_referenced_id
	BEFORE UPDATE OF id ON enrollment_tokens
	FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
	EXECUTE FUNCTION fleet_enrollment_token_referenced();
CREATE TRIGGER enrollment_tokens_referenced_truncate
	BEFORE TRUNCATE ON enrollment_tokens
	FOR EACH STATEMENT EXECUTE FUNCTION fleet_enrollment_token_referenced();

-- 2. The certificates_issuer trigger (0009) ran a query per inserted
--    certificate for the current issuing CA. The enrollment batch now
--    writes the issuer the ca answered with (the key that really signed
--    it, also during a rollover); the trigger fires only for rows that
--    come without one (renewals, older paths), with the same rule.
DROP TRIGGER certificates_issuer ON certificates;
CREATE TRIGGER certificates_issuer BEFORE INSERT ON certificates
	FOR EACH ROW WHEN (NEW.issuer IS NULL)
	EXECUTE FUNCTION fleet_certificate_issuer();
