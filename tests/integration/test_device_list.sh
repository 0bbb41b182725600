#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The device list's total and selector shapes (issue 15,
# docs/internals/device-list.md): the total is exact up to 1,000 and
# "total_exact": false past it unless ?total=exact; a bad total is a 400
# naming the field; the pages of the SQL shapes that changed (label
# equalities merged into one containment, an "in" taking them into each
# value, "online" as an inner condition) list exactly the devices psql
# finds with plain ->> comparisons (the oracle); cursors continue with the
# same total; fleetctl shows "1,000+" when the total was not counted to
# the end. 3,000 devices inserted with SQL; real fleetd, real PostgreSQL.
source "$FLEET_SOURCE_DIR/tests/lib/harness.sh"

harness_init
pki_init
fleetd_start

export TOKEN=$(admin_token viewer lister)
export FLEET_TOKEN=$TOKEN

# 3,000 devices: site s0..s9, rack r0..r99 on 9 in 10 (rack r13 is always
# at site s3: correlated labels), role on 2 in 3, model m0..m4 (none on 1
# in 20); 3 in 10 with a fresh session, 1 in 10 with a stale one.
psql_q "INSERT INTO devices (id, labels, model, created_at)
	SELECT gen_random_uuid(),
	       jsonb_strip_nulls(jsonb_build_object(
	         'site', 's' || (i % 10),
	         'rack', CASE WHEN i % 10 <> 7 THEN 'r' || (i % 100) END,
	         'role', CASE WHEN i % 3 <> 0 THEN 'role' || (i % 4) END)),
	       CASE WHEN i % 20 <> 19 THEN 'm' || (i % 5) END,
	       now() - (i || ' seconds')::interval
	FROM generate_series(1, 3000) i" >/dev/null
psql_q "INSERT INTO workers (id, host, pid, slot, heartbeat_at)
	VALUES ('list-test', 'test', 1, 0, now() + interval '1 day')" >/dev/null
psql_q "INSERT INTO device_sessions (device_id, worker_id, cert_serial, peer, last_seen)
	SELECT id, 'list-test', 'X', '127.0.0.1:1',
	       CASE WHEN n % 10 < 3 THEN now() + interval '1 hour'
	            ELSE now() - interval '1 day' END
	FROM (SELECT id, row_number() OVER (ORDER BY id) n FROM devices) d
	WHERE n % 10 < 4" >/dev/null
psql_q "ANALYZE devices" >/dev/null

enc() { jq -rn --arg s "$1" '$s | @uri'; }
jq_is() { assert_eq "$(jq -r "$1" <<<"$2" 2>&1)" "$3" "$4"; }

# ---- the total: exact up to 1,000, capped past it ---------------------------
api GET "/api/v1/devices?selector=$(enc site=s3)&limit=5"
jq_is '"\(.items | length) \(.total) \(.total_exact)"' "$BODY" "5 300 true" \
	"300 matches: the total is exact"
api GET "/api/v1/devices?limit=5"
jq_is '"\(.items | length) \(.total) \(.total_exact)"' "$BODY" "5 1000 false" \
	"3,000 matches: total 1000, not exact"
CURSOR=$(jq -r .next_cursor <<<"$BODY")
api GET "/api/v1/devices?limit=5&total=capped"
jq_is '"\(.total) \(.total_exact)"' "$BODY" "1000 false" "total=capped is the default"
api GET "/api/v1/devices?limit=5&total=exact"
jq_is '"\(.items | length) \(.total) \(.total_exact)"' "$BODY" "5 3000 true" \
	"total=exact counts every match"
api GET "/api/v1/devices?limit=5&cursor=$(enc "$CURSOR")"
jq_is '"\(.items | length) \(.total) \(.total_exact)"' "$BODY" "5 1000 false" \
	"the next page (cursor) has the same capped total"
api GET "/api/v1/devices?limit=5&total=exact&cursor=$(enc "$CURSOR")"
jq_is '"\(.total) \(.total_exact)"' "$BODY" "3000 true" \
	"a cursor of the capped list continues with total=exact"
api GET "/api/v1/devices?selector=$(enc 'site in (s1,s2,s3)')&limit=1"
jq_is '"\(.total) \(.total_exact)"' "$BODY" "900 true" "900 matches: exact"
api GET "/api/v1/devices?selector=$(enc site=nowhere)"
jq_is '"\(.items | length) \(.total) \(.total_exact)"' "$BODY" "0 0 true" \
	"an empty list: total 0, exact"
api GET "/api/v1/devices?total=all"
assert_eq "$STATUS" 400 "total=all is refused"
jq_is '.type + " " + .field' "$BODY" \
	"urn:fleet:problem:invalid-field total" "... naming the field"
api GET "/api/v1/devices?total=exact&total=capped"
assert_eq "$STATUS" 400 "a repeated total is refused"
api GET "/api/v1/devices?selector=site%3D%FF%FE"
jq_is '"\(.status) \(.field) \(.detail)"' "$BODY" \
	"400 selector selector is not valid UTF-8" "a selector that is not UTF-8 is a 400"
api GET "/api/v1/devices?selector=site%3D%C3%A9"
jq_is '"\(.total) \(.total_exact)"' "$BODY" "0 true" "a UTF-8 value is a value (none match)"

# ---- the selector shapes against psql ---------------------------------------
# ids SELECTOR: every page (limit 200, exact total) sorted; checks that
# every page says the same exact total and that it is the number listed.
ids() {
	local path="/api/v1/devices?selector=$(enc "$1")&limit=200&total=exact"
	local cursor="" out="$T/ids" totals="$T/totals" pages=0
	: >"$out"
	: >"$totals"
	while [ "$pages" -lt 100 ]; do
		api GET "$path${cursor:+&cursor=$(enc "$cursor")}"
		[ "$STATUS" = 200 ] || { echo "status $STATUS: $BODY" >&2; return 1; }
		jq -r '.items[].id' <<<"$BODY" >>"$out"
		jq -r '.total' <<<"$BODY" >>"$totals"
		cursor=$(jq -r '.next_cursor // empty' <<<"$BODY")
		[ -n "$cursor" ] || break
		pages=$((pages + 1))
	done
	[ "$(sort -u "$totals" | wc -l)" = 1 ] &&
		[ "$(sort -u "$totals")" = "$(wc -l <"$out")" ] ||
		echo "totals $(sort -u "$totals" | tr '\n' ' ')for $(wc -l <"$out") listed" >&2
	sort "$out"
}
oracle() {
	psql_q "SELECT d.id FROM devices d LEFT JOIN device_sessions s ON s.device_id = d.id
		WHERE d.status = 'active' AND ($1) ORDER BY 1"
}
ONLINE="coalesce(s.last_seen > now() - interval '6 seconds', false)"
# shape SELECTOR ORACLE-WHERE
shape() {
	local got want
	got=$(ids "$1" 2>"$T/ids.err")
	want=$(oracle "$2")
	if [ "$got" = "$want" ] && [ ! -s "$T/ids.err" ]; then
		ok "'$1' lists the $(wc -l <<<"$want" | tr -d ' ') devices psql finds"
	else
		fail "'$1': $(wc -l <<<"$got") listed, $(wc -l <<<"$want") expected; $(cat "$T/ids.err")"
	fi
}
shape 'site=s3,rack in (r13,r23),model=m3' \
	"d.labels->>'site' = 's3' AND d.labels->>'rack' IN ('r13','r23') AND d.model = 'm3'"
shape 'site=s3,rack=r13,role' \
	"d.labels->>'site' = 's3' AND d.labels->>'rack' = 'r13' AND d.labels ? 'role'"
shape 'site in (s1,s2),rack=r11' \
	"d.labels->>'site' IN ('s1','s2') AND d.labels->>'rack' = 'r11'"
shape 'rack=r11,site in (s1,s2),role in (role1,role3)' \
	"d.labels->>'site' IN ('s1','s2') AND d.labels->>'rack' = 'r11' AND d.labels->>'role' IN ('role1','role3')"
shape 'site=s3,site in (s3,s4)' "d.labels->>'site' = 's3'"
shape 'site=s3,role=role1,site!=s4,rack notin (r3)' \
	"d.labels->>'site' = 's3' AND d.labels->>'role' = 'role1' AND coalesce(d.labels->>'rack', '') <> 'r3'"
shape 'online' "$ONLINE"
shape '!online' "NOT $ONLINE"
shape 'online=false,site=s1' "NOT $ONLINE AND d.labels->>'site' = 's1'"
shape 'online,site!=s1,!role' \
	"$ONLINE AND coalesce(d.labels->>'site', '') <> 's1' AND NOT d.labels ? 'role'"
shape 'online in (true,false),model=m2' "d.model = 'm2'"
api GET "/api/v1/devices?selector=$(enc 'site=s3,site=s4')"
jq_is '"\(.items | length) \(.total) \(.total_exact)"' "$BODY" "0 0 true" \
	"site=s3,site=s4 matches nothing (one key, two values)"

# ---- fleetctl -----------------------------------------------------------------
fleetctl devices list --limit 5 >"$T/out" 2>"$T/err"
assert_eq "$(cat "$T/err")" "5 of 1,000+ devices" "fleetctl: a capped total reads 1,000+"
fleetctl devices list --selector site=s3 --limit 5 >"$T/out" 2>"$T/err"
assert_eq "$(cat "$T/err")" "5 of 300 devices" "fleetctl: an exact total as it is"
FLEETCTL_PAGE_SIZE=700 fleetctl devices list --selector 'site in (s1,s2,s3,s4)' \
	>"$T/out" 2>"$T/err"
assert_eq "$(cat "$T/err"):$(wc -l <"$T/out")" "1,200 of 1,200 devices:1201" \
	"fleetctl: every page read, the count is what was listed (two pages)"
fleetctl devices list --selector 'site in (s1,s2,s3,s4)' -o json >"$T/out" 2>"$T/err"
assert_eq "$(jq length "$T/out"):$(cat "$T/err")" "1200:" "-o json: the items, no count line"

harness_done
