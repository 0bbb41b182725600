#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Idempotency-Key records expire (idempotency_retention): with a 5 s
# retention, a key replays its first answer (and refuses another body)
# while it lives, is a new request once it expired, and the campaign
# driver's sweep deletes the records nobody asks for again. Real
# PostgreSQL, real fleetd, curl.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"

harness_init
pki_init
fleetd_write_config 2

# A bad retention is refused by check-config, naming the key.
cp "$T/fleetd.conf" "$T/bad.conf"
echo "idempotency_retention = 0" >>"$T/bad.conf"
check "check-config refuses idempotency_retention = 0" \
	not fleetd -c "$T/bad.conf" check-config
fleetd -c "$T/bad.conf" check-config >"$T/bad.log" 2>&1 || true
check "the error names the key" grep -q idempotency_retention "$T/bad.log"

echo "idempotency_retention = 5s" >>"$T/fleetd.conf"
fleetd_start 2
OPERATOR=$(admin_token operator)

count() { psql_q "SELECT count(*) FROM $1"; }
# post_token KEY USES: POST /api/v1/tokens with an Idempotency-Key
post_token() {
	TOKEN=$OPERATOR api POST /api/v1/tokens -H 'Content-Type: application/json' \
		-H "Idempotency-Key: $1" --data "{\"uses\": $2}"
}
# key_older KEY SECONDS: the record of KEY exists and is older than SECONDS
key_older() {
	[ "$(psql_q "SELECT count(*) FROM idempotency_keys WHERE key = '$1' AND created_at < now() - interval '$2 seconds'")" = 1 ]
}
key_gone() {
	[ "$(psql_q "SELECT count(*) FROM idempotency_keys WHERE key = '$1'")" = 0 ]
}
both_gone() { key_gone "$1" && key_gone "$2"; }
new_id() { [ -n "$1" ] && [ "$1" != null ] && [ "$1" != "$2" ]; }
actor_gone() {
	[ "$(psql_q "SELECT count(*) FROM idempotency_keys WHERE actor = '$1'")" = 0 ]
}

# --- before expiry: replayed ------------------------------------------------
n0=$(count enrollment_tokens)
post_token r-1 2
assert_eq "$STATUS" 201 "first request with key r-1"
first_id=$(jq -r .id <<<"$BODY")
post_token r-1 2
assert_eq "$STATUS $(jq -r .id <<<"$BODY")" "201 $first_id" "before expiry the same request replays the first answer"
assert_eq "$(jq -r .token <<<"$BODY")" null "the replay shows no secret"
post_token r-1 3
assert_eq "$STATUS" 409 "before expiry the key with another body is a conflict"
assert_eq "$(count enrollment_tokens)" "$((n0 + 1))" "one token for three requests"

# --- the sweep deletes what is not asked for again -------------------------
post_token s-1 1
assert_eq "$STATUS" 201 "a request with key s-1"
post_token s-2 1
assert_eq "$STATUS" 201 "a request with key s-2"
check "the records are stored" [ "$(count idempotency_keys)" -ge 3 ]
check "the sweep deletes the expired records (5 s retention + a round)" \
	wait_for "s-1 and s-2 swept" 30 both_gone s-1 s-2

# --- after expiry: the same key is a new request --------------------------
# r-1 is past its retention now (it is older than s-1); whether the sweep
# or the lookup removed it, the key must act as unused.
post_token r-1 2
assert_eq "$STATUS" 201 "after expiry key r-1 answers 201"
second_id=$(jq -r .id <<<"$BODY")
check "after expiry it made a new token ($second_id, not $first_id)" \
	new_id "$second_id" "$first_id"
check "after expiry the answer shows the new secret" [ "$(jq -r .token <<<"$BODY")" != null ]
assert_eq "$(count enrollment_tokens)" "$((n0 + 4))" "r-1 after expiry created a token"
post_token r-1 2
assert_eq "$STATUS $(jq -r .id <<<"$BODY")" "201 $second_id" "the new record replays its own answer"

# --- an expired record not yet swept: the lookup and insert replace it ------
# Aged by hand to one hour past its retention (the sweep may or may not have
# run: either way the key is new, and exactly one record remains).
post_token a-1 1
assert_eq "$STATUS" 201 "a request with key a-1"
a_id=$(jq -r .id <<<"$BODY")
psql_q "UPDATE idempotency_keys SET created_at = now() - interval '1 hour' WHERE key = 'a-1'" >/dev/null
post_token a-1 2
check "an aged key with another body is new (201, not 409)" [ "$STATUS" = 201 ]
check "it made a new token" new_id "$(jq -r .id <<<"$BODY")" "$a_id"
assert_eq "$(psql_q "SELECT count(*) FROM idempotency_keys WHERE key = 'a-1' AND created_at > now() - interval '1 minute'")" 1 \
	"one fresh record of a-1"

# --- /enroll/v1 (its records are written by the enrollment batch) ---------
TOKEN=$OPERATOR api POST /api/v1/tokens -H 'Content-Type: application/json' --data '{"uses": 3}'
ETOK=$(jq -r .token <<<"$BODY")
enroll_key() { # enroll_key KEY DIR: a fresh key pair and CSR, enrolled
	mkdir -p "$2"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$2/key.pem" 2>/dev/null
	openssl req -new -key "$2/key.pem" -subj /CN=enrolling -out "$2/csr.pem"
	jq -n --arg t "$ETOK" --rawfile c "$2/csr.pem" '{token: $t, csr: $c}' >"$2/e.json"
	TOKEN= api POST /enroll/v1 -H 'Content-Type: application/json' \
		-H "Idempotency-Key: $1" --data-binary @"$2/e.json"
}
enroll_key e-1 "$T/e1"
assert_eq "$STATUS" 201 "an enrollment with key e-1"
dev1=$(jq -r .device_id <<<"$BODY")
psql_q "UPDATE idempotency_keys SET created_at = now() - interval '1 hour' WHERE key = 'e-1'" >/dev/null
enroll_key e-1 "$T/e2"
assert_eq "$STATUS" 201 "the expired key e-1 with another CSR enrolls (not 409)"
check "it is a second device" new_id "$(jq -r .device_id <<<"$BODY")" "$dev1"

# --- a sweep of many rows goes in batches and leaves live ones -------------
# 12,000 expired records (more than one round of 10 x 500: the backlog goes
# in the next rounds, one a pass) and one that lives for an
# hour more.
psql_q "INSERT INTO idempotency_keys (actor, key, request_sha256, status, body, created_at)
	SELECT 'token:bulk', 'bulk-' || g, repeat('0', 64), 201, '{}', now() - interval '2 hours'
	FROM generate_series(1, 12000) g" >/dev/null
psql_q "INSERT INTO idempotency_keys (actor, key, request_sha256, status, body, created_at)
	VALUES ('token:live', 'live-1', repeat('0', 64), 201, '{}', now() + interval '1 hour')" >/dev/null
check "12,000 expired records are swept in batches over several rounds" \
	wait_for "bulk swept" 60 actor_gone token:bulk
check "a live record is kept" not key_gone live-1
assert_eq "$(psql_q "SELECT count(*) FROM pg_indexes WHERE indexname = 'idempotency_keys_created_at_idx'")" 1 \
	"the sweep's index exists (migration 0018)"

fleetd_stop
harness_done
