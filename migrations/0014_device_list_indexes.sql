-- SPDX-License-Identifier: Apache-2.0
-- Device list with a selector over 1,000,000 devices (issue 15,
-- docs/internals/perf.md "Device list"): the built-in keys model and
-- fw_version had no index, so a selector on them read the whole table for
-- its total and, when few devices match, for its page. With status (every
-- list has a status term) in the index, the total of "model=X" is an
-- index-only scan. Label terms are served by devices_labels_idx (0001).
-- Plain CREATE INDEX: a migration runs in a transaction; on a large fleet
-- it blocks device writes for the seconds the build takes.
CREATE INDEX devices_model_idx ON devices (model, status);
CREATE INDEX devices_fw_version_idx ON devices (fw_version, status);
-- The selector key id compares the text form (selector values are text,
-- and a value that is not a UUID must match nothing rather than fail):
-- "id in (a,b)" read every device without this.
CREATE INDEX devices_id_text_idx ON devices ((id::text));
