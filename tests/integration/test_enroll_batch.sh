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
#     8 + 1 uses.
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

harness_done
