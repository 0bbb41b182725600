-- SPDX-License-Identifier: Apache-2.0
-- Exact refused-serial deltas (docs/internals/renew-rate.md, "What is
-- left", point 2). Every transaction that refuses a certificate (revokes
-- it, supersedes it at a renewal's install, decommissions its device)
-- bumps crl_generation and stamps the certificates it refused with the
-- new generation, in the same transaction (fleetd/db/certificates.c,
-- refused_stamp). The crl_generation row lock orders those transactions:
-- one that gets generation G+1 waited for the commit of the one that
-- wrote G. A net worker that loaded the set at generation G therefore
-- asks only for refused_generation > G (fleetd/db/presence.c,
-- store_refused_serials): no time margin, no row read twice, none
-- missed.
--
-- NULL while the certificate is active. A certificate revoked after it
-- was superseded keeps its first stamp: it has been refused since then.
ALTER TABLE certificates ADD COLUMN refused_generation bigint;

-- Certificates refused before this migration: the current generation.
-- A worker's first load after the upgrade is a full one anyway.
UPDATE certificates SET refused_generation =
	(SELECT generation FROM crl_generation)
	WHERE status IN ('revoked', 'superseded');

CREATE INDEX certificates_refused_generation_idx
	ON certificates (refused_generation)
	WHERE refused_generation IS NOT NULL;
