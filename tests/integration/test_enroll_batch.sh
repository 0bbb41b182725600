#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Enrollments that arrive together are recorded together (group commit,
# db/enroll.c; docs/internals/enroll-rate.md), and each still gets exactly
# its own answer. One net worker with 8 job threads, so that concurrent
# requests share batches:
#  1. 24 concurrent enrollments on a token with a profile and labels: 24
#     distinct devices, each with its certificate (the serial it was
#     answered with), its audit row with that serial, the token's labels
#     merged with its own, and the profile's version as desired config;
#     24 uses spent, in fewer transactions than devices (rows' xmin);
#  2. 8 concurrent enrollments with the SAME Idempotency-Key and body: one
#     device, one use; every 201 names that device; the others are 409
#     (a concurrent request held the key), nothing else;
#  3. the same key again afterwards replays the first answer (same device);
#  4. 8 distinct enrollments (each with its own key) and 6 with one shared
#     key, all at once: a key held by a concurrent request fails only its
#     own request (409), never the others of its batch: 8 + 1 devices,
#     8 + 1 uses;
#  5. 24 concurrent enrollments on a token with 10 uses (the batch takes
#     the uses, uses_left - n, and refuses the records past zero): exactly
#     10 answered 201 with 10 devices, the 14 others the refusal a lone
#     enrollment gets (401 token-exhausted), 0 uses left, no certificate or
#     audit row without its device; each certificate names the issuing CA
#     that signed it (the ca's answer, not the trigger's query);
#  6. an Idempotency-Key record that expires between the lookup and the
#     batch (simulated: a trigger keeps the lookup from deleting it) is
#     replaced by the batch, as db_idem_insert replaces one: 201, and the
#     key replays that answer afterwards;
#  7. devices reference their token without a foreign key (0022): a
#     referenced token cannot be deleted, an unused one can;
#  8. two net workers, two tokens of 12 uses, 40 requests at once (20 per
#     token, interleaved): batches of both workers lock both tokens (in id
#     order: no deadlock), and each token gives exactly 12 devices.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"

harness_init
pki_init
fleetd_write_config 1
echo "job_threads = 8" >>"$T/fleetd.conf"
fleetd_start 1
TOKEN=$(admin_token operator)
JSON=(-H 'Content-Type: application/json')

api POST /api/v1/profiles "${JSON[@]}" --data '{"name": "line-a"}'
assert_eq "$STATUS" 201 "profile created"
api POST /api/v1/profiles/line-a/versions "${JSON[@]}" -H 'If-Match: "0"' \
	--data '{"document": {"mode": "batch"}, "note": "v1"}'
assert_eq "$STATUS" 201 "profile version 1 published"
SHA1=$(jq -r .sha256 <<<"$BODY")

api POST /api/v1/tokens "${JSON[@]}" --data \
	'{"uses": 40, "expires_in": "1h", "labels": {"site": "s1"}, "profile": "line-a"}'
assert_eq "$STATUS" 201 "enrollment token with labels and a profile"
TID=$(jq -r .id <<<"$BODY")
ETOK=$(jq -r .token <<<"$BODY")

# --- 1. concurrent distinct enrollments ------------------------------------
N=24
pids=()
for i in $(seq 1 "$N"); do
	mkdir -p "$T/d$i"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$T/d$i/key.pem" 2>/dev/null
	openssl req -new -key "$T/d$i/key.pem" -subj "/CN=d$i" -out "$T/d$i/csr.pem"
	jq -n --arg t "$ETOK" --rawfile c "$T/d$i/csr.pem" --arg r "r$i" \
		'{token: $t, csr: $c, labels: {rack: $r}}' >"$T/d$i/req.json"
done
for i in $(seq 1 "$N"); do
	curl -sS --max-time 30 --cacert "$FLEET_CA" -o "$T/d$i/answer.json" \
		-w '%{http_code}\n' "${JSON[@]}" --data-binary @"$T/d$i/req.json" \
		"$FLEET_SERVER/enroll/v1" >"$T/d$i/code" &
	pids+=("$!")
done
wait "${pids[@]}"
assert_eq "$(cat "$T"/d*/code | grep -c '^201$')" "$N" "$N concurrent enrollments all answered 201"
assert_eq "$(jq -r .device_id "$T"/d*/answer.json | sort -u | wc -l)" "$N" "$N distinct devices answered"
assert_eq "$(psql_q "SELECT count(*) FROM devices WHERE enrolled_with = '$TID'")" "$N" "$N device rows"
assert_eq "$(psql_q "SELECT uses_left FROM enrollment_tokens WHERE id = '$TID'")" "$((40 - N))" "$N uses spent"
# Rows written by one transaction share its xmin: fewer transactions than
# devices means records were grouped (else this test tests nothing new).
txs=$(psql_q "SELECT count(DISTINCT xmin::text) FROM devices WHERE enrolled_with = '$TID'")
check "the $N records were grouped ($txs transactions)" [ "$txs" -lt "$N" ]
bad=0
for i in $(seq 1 "$N"); do
	dev=$(jq -r .device_id "$T/d$i/answer.json")
	serial=$(jq -r .certificate "$T/d$i/answer.json" |
		openssl x509 -noout -serial | cut -d= -f2)
	row=$(psql_q "SELECT d.labels ->> 'site', d.labels ->> 'rack',
		(SELECT count(*) FROM certificates c WHERE c.device_id = d.id
			AND c.serial = '$serial'),
		(SELECT count(*) FROM audit_log a WHERE a.target = d.id::text
			AND a.action = 'device.enroll'
			AND a.details ->> 'certificate_serial' = '$serial'
			AND a.details ->> 'enrollment_token' = '$TID'),
		(SELECT desired_sha256 FROM device_config g WHERE g.device_id = d.id)
		FROM devices d WHERE d.id = '$dev'")
	if [ "$row" != "s1|r$i|1|1|$SHA1" ]; then
		echo "device $i ($dev): got '$row', want 's1|r$i|1|1|$SHA1'" >&2
		bad=$((bad + 1))
	fi
done
assert_eq "$bad" 0 "each device has its labels, its answered certificate, its audit row and the profile's config"

# --- 2. one Idempotency-Key, 8 requests at once -----------------------------
used=$(psql_q "SELECT uses_left FROM enrollment_tokens WHERE id = '$TID'")
K=8
pids=()
for i in $(seq 1 "$K"); do
	curl -sS --max-time 30 --cacert "$FLEET_CA" -o "$T/k$i.json" \
		-w '%{http_code}\n' "${JSON[@]}" -H 'Idempotency-Key: batch-key-1' \
		--data-binary @"$T/d1/req.json" "$FLEET_SERVER/enroll/v1" >"$T/k$i.code" &
	pids+=("$!")
done
wait "${pids[@]}"
n201=$(cat "$T"/k*.code | grep -c '^201$' || true)
n409=$(cat "$T"/k*.code | grep -c '^409$' || true)
check "at least one of $K same-key enrollments answered 201 ($n201)" [ "$n201" -ge 1 ]
assert_eq "$((n201 + n409))" "$K" "the others answered 409 (a concurrent request held the key)"
# An if, not `[ ] &&`: a last request answered 409 would end the loop with
# status 1 and, under set -e, the script with it.
KDEV=$(for i in $(seq 1 "$K"); do
	if [ "$(cat "$T/k$i.code")" = 201 ]; then jq -r .device_id "$T/k$i.json"; fi
done | sort -u)
assert_eq "$(wc -l <<<"$KDEV")" 1 "every 201 names the same device"
assert_eq "$(psql_q "SELECT count(*) FROM devices WHERE enrolled_with = '$TID'")" "$((N + 1))" "one device for the key"
assert_eq "$(psql_q "SELECT uses_left FROM enrollment_tokens WHERE id = '$TID'")" "$((used - 1))" "one use for the key"

# --- 3. the key again: the first answer --------------------------------------
curl -sS --max-time 30 --cacert "$FLEET_CA" -o "$T/again.json" -w '%{http_code}\n' \
	"${JSON[@]}" -H 'Idempotency-Key: batch-key-1' --data-binary @"$T/d1/req.json" \
	"$FLEET_SERVER/enroll/v1" >"$T/again.code"
assert_eq "$(cat "$T/again.code")" 201 "the key again answers 201"
assert_eq "$(jq -r .device_id "$T/again.json")" "$KDEV" "with the same device"
assert_eq "$(psql_q "SELECT uses_left FROM enrollment_tokens WHERE id = '$TID'")" "$((used - 1))" "and spends no use"

# --- 4. a contested key among distinct enrollments --------------------------
used=$(psql_q "SELECT uses_left FROM enrollment_tokens WHERE id = '$TID'")
before=$(psql_q "SELECT count(*) FROM devices WHERE enrolled_with = '$TID'")
M=8
S=6
for d in $(seq -f "m%g" 1 "$M") shared; do
	mkdir -p "$T/$d"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$T/$d/key.pem" 2>/dev/null
	openssl req -new -key "$T/$d/key.pem" -subj "/CN=$d" -out "$T/$d/csr.pem"
	jq -n --arg t "$ETOK" --rawfile c "$T/$d/csr.pem" \
		'{token: $t, csr: $c}' >"$T/$d/req.json"
done
pids=()
for i in $(seq 1 "$M"); do
	curl -sS --max-time 30 --cacert "$FLEET_CA" -o "$T/m$i/answer.json" \
		-w '%{http_code}\n' "${JSON[@]}" -H "Idempotency-Key: mix-own-$i" \
		--data-binary @"$T/m$i/req.json" "$FLEET_SERVER/enroll/v1" >"$T/m$i/code" &
	pids+=("$!")
done
for i in $(seq 1 "$S"); do
	curl -sS --max-time 30 --cacert "$FLEET_CA" -o "$T/s$i.json" \
		-w '%{http_code}\n' "${JSON[@]}" -H 'Idempotency-Key: mix-shared' \
		--data-binary @"$T/shared/req.json" "$FLEET_SERVER/enroll/v1" >"$T/s$i.code" &
	pids+=("$!")
done
wait "${pids[@]}"
assert_eq "$(cat "$T"/m*/code | grep -c '^201$' || true)" "$M" "the $M enrollments with their own keys all answered 201"
assert_eq "$(jq -r .device_id "$T"/m*/answer.json | sort -u | wc -l)" "$M" "with $M distinct devices"
n201=$(cat "$T"/s*.code | grep -c '^201$' || true)
n409=$(cat "$T"/s*.code | grep -c '^409$' || true)
check "at least one of $S shared-key enrollments answered 201 ($n201)" [ "$n201" -ge 1 ]
assert_eq "$((n201 + n409))" "$S" "the other shared-key requests answered 409"
SDEV=$(for i in $(seq 1 "$S"); do
	if [ "$(cat "$T/s$i.code")" = 201 ]; then jq -r .device_id "$T/s$i.json"; fi
done | sort -u)
assert_eq "$(wc -l <<<"$SDEV")" 1 "every shared-key 201 names the same device"
assert_eq "$(psql_q "SELECT count(*) FROM devices WHERE enrolled_with = '$TID'")" "$((before + M + 1))" "$M + 1 new devices"
assert_eq "$(psql_q "SELECT uses_left FROM enrollment_tokens WHERE id = '$TID'")" "$((used - M - 1))" "$M + 1 uses spent"

# --- 5. more requests than uses, at once ------------------------------------
api POST /api/v1/tokens "${JSON[@]}" --data '{"uses": 10, "expires_in": "1h"}'
assert_eq "$STATUS" 201 "a token with 10 uses"
TID5=$(jq -r .id <<<"$BODY")
ETOK5=$(jq -r .token <<<"$BODY")
P=24
pids=()
for i in $(seq 1 "$P"); do
	jq --arg t "$ETOK5" '.token = $t | del(.labels)' "$T/d$i/req.json" >"$T/d$i/req5.json"
done
for i in $(seq 1 "$P"); do
	curl -sS --max-time 30 --cacert "$FLEET_CA" -o "$T/d$i/answer5.json" \
		-w '%{http_code}\n' "${JSON[@]}" --data-binary @"$T/d$i/req5.json" \
		"$FLEET_SERVER/enroll/v1" >"$T/d$i/code5" &
	pids+=("$!")
done
wait "${pids[@]}"
assert_eq "$(cat "$T"/d*/code5 | grep -c '^201$' || true)" 10 "10 of $P concurrent enrollments on 10 uses answered 201"
n401=0
for i in $(seq 1 "$P"); do
	if [ "$(cat "$T/d$i/code5")" = 401 ] &&
		jq -r .type "$T/d$i/answer5.json" | grep -q 'token-exhausted$'; then
		n401=$((n401 + 1))
	fi
done
assert_eq "$n401" $((P - 10)) "the $((P - 10)) others were refused token-exhausted (401)"
assert_eq "$(psql_q "SELECT uses_left FROM enrollment_tokens WHERE id = '$TID5'")" 0 "no use left"
assert_eq "$(psql_q "SELECT count(*) FROM devices WHERE enrolled_with = '$TID5'")" 10 "10 devices"
assert_eq "$(psql_q "SELECT count(*) FROM certificates c JOIN devices d ON d.id = c.device_id WHERE d.enrolled_with = '$TID5'")" 10 "10 certificates"
assert_eq "$(psql_q "SELECT count(*) FROM certificates c WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = c.device_id)")" 0 "no certificate without its device"
assert_eq "$(psql_q "SELECT count(*) FROM audit_log WHERE action = 'device.enroll' AND details ->> 'enrollment_token' = '$TID5'")" 10 "10 audit rows"
CA_ID=$(openssl x509 -in "$T/pki/issuing/issuing.pem" -noout -pubkey |
	openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)
assert_eq "$(psql_q "SELECT count(*) FROM certificates c JOIN devices d ON d.id = c.device_id WHERE d.enrolled_with = '$TID5' AND c.issuer = '$CA_ID'")" 10 "each certificate names the CA that signed it"

# --- 6. a key that expires between the lookup and the batch -------------------
api POST /api/v1/tokens "${JSON[@]}" --data '{"uses": 5, "expires_in": "1h"}'
TID6=$(jq -r .id <<<"$BODY")
ETOK6=$(jq -r .token <<<"$BODY")
SHA6=$(printf %s "$ETOK6" | sha256sum | cut -d' ' -f1)
jq --arg t "$ETOK6" '.token = $t' "$T/d1/req5.json" >"$T/req6.json"
psql_q "INSERT INTO idempotency_keys (actor, key, request_sha256, status, body, created_at)
	VALUES ('enroll:$SHA6', 'stale-key', 'x', 201, '{}', now() - interval '2 days')" >/dev/null
# The lookup deletes an expired record; keep it, as if it expired only
# after the lookup.
psql_q "CREATE FUNCTION keep_idem() RETURNS trigger LANGUAGE plpgsql AS
	\$\$ BEGIN RETURN NULL; END \$\$;
	CREATE TRIGGER keep_idem BEFORE DELETE ON idempotency_keys
	FOR EACH ROW EXECUTE FUNCTION keep_idem()" >/dev/null
curl -sS --max-time 30 --cacert "$FLEET_CA" -o "$T/stale.json" -w '%{http_code}\n' \
	"${JSON[@]}" -H 'Idempotency-Key: stale-key' --data-binary @"$T/req6.json" \
	"$FLEET_SERVER/enroll/v1" >"$T/stale.code"
psql_q "DROP TRIGGER keep_idem ON idempotency_keys; DROP FUNCTION keep_idem()" >/dev/null
assert_eq "$(cat "$T/stale.code")" 201 "an expired key record met by the batch is replaced (201, not 409)"
SDEV6=$(jq -r .device_id "$T/stale.json")
assert_eq "$(psql_q "SELECT request_sha256 <> 'x' AND created_at > now() - interval '1 minute' FROM idempotency_keys WHERE actor = 'enroll:$SHA6' AND key = 'stale-key'")" t "the key's record is the new request's"
curl -sS --max-time 30 --cacert "$FLEET_CA" -o "$T/stale2.json" -w '%{http_code}\n' \
	"${JSON[@]}" -H 'Idempotency-Key: stale-key' --data-binary @"$T/req6.json" \
	"$FLEET_SERVER/enroll/v1" >"$T/stale2.code"
assert_eq "$(cat "$T/stale2.code") $(jq -r .device_id "$T/stale2.json")" "201 $SDEV6" "the key then replays that answer"
assert_eq "$(psql_q "SELECT uses_left FROM enrollment_tokens WHERE id = '$TID6'")" 4 "one use for the key"

# --- 7. no foreign key, the same protection -----------------------------------
if psql_q "DELETE FROM enrollment_tokens WHERE id = '$TID6'" >"$T/del.out" 2>&1; then
	fail "a token referenced by a device was deleted"
else
	check "a referenced token cannot be deleted" grep -q 'referenced by devices' "$T/del.out"
fi
api POST /api/v1/tokens "${JSON[@]}" --data '{"uses": 1, "expires_in": "1h"}'
TID7=$(jq -r .id <<<"$BODY")
assert_eq "$(psql_q "DELETE FROM enrollment_tokens WHERE id = '$TID7' RETURNING 1")" 1 "an unused token can be deleted"

# --- 8. two workers, two tokens, more requests than uses ---------------------
fleetd_stop
fleetd_write_config 2
echo "job_threads = 8" >>"$T/fleetd.conf"
fleetd_start 2
TOKEN=$(admin_token operator)
for x in A B; do
	api POST /api/v1/tokens "${JSON[@]}" --data '{"uses": 12, "expires_in": "1h"}'
	assert_eq "$STATUS" 201 "token $x with 12 uses"
	jq -r .id <<<"$BODY" >"$T/tid$x"
	jq -r .token <<<"$BODY" >"$T/etok$x"
	for i in $(seq 1 20); do
		jq --arg t "$(cat "$T/etok$x")" '.token = $t | del(.labels)' \
			"$T/d$i/req.json" >"$T/d$i/req8$x.json"
	done
done
pids=()
for i in $(seq 1 20); do
	for x in A B; do
		curl -sS --max-time 30 --cacert "$FLEET_CA" -o "$T/d$i/answer8$x.json" \
			-w '%{http_code}\n' "${JSON[@]}" --data-binary @"$T/d$i/req8$x.json" \
			"$FLEET_SERVER/enroll/v1" >"$T/d$i/code8$x" &
		pids+=("$!")
	done
done
wait "${pids[@]}"
for x in A B; do
	tid=$(cat "$T/tid$x")
	assert_eq "$(cat "$T"/d*/code8$x | grep -c '^201$' || true)" 12 "token $x: 12 of 20 answered 201"
	assert_eq "$(cat "$T"/d*/code8$x | grep -c '^401$' || true)" 8 "token $x: 8 refused (401)"
	assert_eq "$(psql_q "SELECT uses_left FROM enrollment_tokens WHERE id = '$tid'")" 0 "token $x: no use left"
	assert_eq "$(psql_q "SELECT count(*) FROM devices WHERE enrolled_with = '$tid'")" 12 "token $x: 12 devices"
done
assert_eq "$(grep -c -i 'deadlock' "$T/fleetd.log" || true)" 0 "no deadlock between the workers' batches"
# Information, not a check (it depends on timing): batches that wrote
# devices of both tokens.
echo "# transactions with devices of both tokens: $(psql_q "SELECT count(*) FROM
	(SELECT 1 FROM devices WHERE enrolled_with IN ('$(cat "$T/tidA")', '$(cat "$T/tidB")')
	GROUP BY xmin::text HAVING count(DISTINCT enrolled_with) = 2) m")"

harness_done
