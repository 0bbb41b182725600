-- SPDX-License-Identifier: Apache-2.0
-- Idempotency-Key records expire after idempotency_retention (default
-- 24 h): the campaign driver deletes them oldest first in small batches
-- (store_idempotency_sweep in fleetd/db/idempotency.c), which needs the
-- age order without reading the whole table.
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
