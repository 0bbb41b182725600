-- SPDX-License-Identifier: Apache-2.0
-- TLS session ticket keys of the device listener, shared by every net
-- worker of every fleetd host (docs/internals/tls-resumption.md). A key
-- encrypts the tickets issued while it is the newest, and is accepted to
-- decrypt until expires_at (its rotation period plus the ticket
-- lifetime); fleetd adds and removes rows itself (core/tls_tickets.c).
--
-- A secret decrypts every ticket its key encrypted, and a ticket holds
-- the device's session (its certificate) and a resumption secret: whoever
-- reads this table and records a device's ticket can resume as that device
-- until the key expires (past traffic stays safe: resumption is psk_dhe_ke
-- only, every session also needs a fresh ECDHE share). Treat the table
-- like the TLS private keys: only the role fleetd connects as reads it.
CREATE TABLE tls_ticket_keys (
	name bytea PRIMARY KEY CHECK (octet_length(name) = 16),
	secret bytea NOT NULL CHECK (octet_length(secret) = 64),
	created_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL,
	CHECK (expires_at > created_at)
);

REVOKE ALL ON tls_ticket_keys FROM PUBLIC;
