-- SPDX-License-Identifier: Apache-2.0
-- Issue 13 (operability): admin tokens that expire, and indexes for what
-- an operator filters the audit log and the device list by.

-- NULL: the token never expires (tokens made before this migration).
ALTER TABLE admin_tokens ADD COLUMN expires_at timestamptz;

-- GET /api/v1/audit?actor=&action=&target=&since=&until= pages by id
-- (newest first); each filter alone is served by an index.
CREATE INDEX audit_log_actor_idx ON audit_log (actor, id);
CREATE INDEX audit_log_action_idx ON audit_log (action, id);
CREATE INDEX audit_log_target_idx ON audit_log (target, id);
CREATE INDEX audit_log_at_idx ON audit_log (at);
