# SPDX-License-Identifier: Apache-2.0
# Campaign helpers for the integration tests (issue 12,
# docs/internals/campaigns.md), sourced after tests/lib/harness.sh. They
# drive the API with curl and jq only (api from harness.sh), so the tests
# do not depend on fleetctl, and read the rows with psql where a user
# would check the database.
#
#   release_keys                 three release keys in $T/rel; $KEYS, the
#                                public ones comma-separated (threshold 2,
#                                fleet-agent's update_keys), and
#                                SIM_KEY_ARGS, the same as fleet-sim options
#                                (--update-keys FILE, once per key)
#   release_make NAME VER VINT HW INSTALLER [SIZE]
#                                a dir-ab tar (VERSION file + SIZE bytes
#                                of random image, default 64 KiB) signed
#                                with two of the keys and uploaded through
#                                the API (POST, then PUT of the file);
#                                sets $ART (its id)
#   camp_create JSON             POST /api/v1/campaigns; sets $CAMP; fails
#                                the test unless 201
#   camp_doc ID                  GET /api/v1/campaigns/ID into $BODY
#   camp_field ID JQ             prints JQ of the campaign's document
#   camp_status_is ID STATUS     (for wait_for)
#   camp_phase_released ID N     the highest released phase (1-based) >= N
#   camp_count ID STATE [PHASE]  admitted devices of the campaign in STATE
#                                (campaign_devices, PHASE 1-based), by SQL
#   camp_events ID KIND          events of KIND (campaign_events), by SQL
#   camp_rank CID DID            the device's rank (16 hex digits), computed
#                                here from the contract, not by fleetd
#   camp_expected_phases CID TOTAL PHASES DEVICE...
#                                prints "device phase" (1-based) for each
#                                device, by its position among DEVICE...
#                                ordered by rank and the cumulative
#                                percentages PHASES ("10,25,50,100"),
#                                rounded up as the contract says

release_keys() {
	mkdir -p "$T/rel"
	local k
	for k in k1 k2 k3; do
		fleetctl keys gen --out "$T/rel/$k.key" >/dev/null </dev/null
	done
	KEYS="$T/rel/k1.key.pub,$T/rel/k2.key.pub,$T/rel/k3.key.pub"
	SIM_KEY_ARGS=(--update-keys "$T/rel/k1.key.pub" --update-keys
		"$T/rel/k2.key.pub" --update-keys "$T/rel/k3.key.pub")
}

release_make() {
	local name=$1 ver=$2 vint=$3 hw=$4 inst=$5 size=${6:-65536}
	local dir="$T/rel/$name-$ver" file="$T/rel/$name-$ver.tar" man
	mkdir -p "$dir/bin"
	echo "$ver" >"$dir/VERSION"
	head -c "$size" /dev/urandom >"$dir/bin/image"
	tar -cf "$file" -C "$dir" .
	fleetctl release sign --key "$T/rel/k1.key" --key "$T/rel/k3.key" \
		--name "$name" --version "$ver" --version-int "$vint" --hw "$hw" \
		--installer "$inst" --expires 1d --out "$file.json" "$file" \
		>/dev/null </dev/null
	api POST /api/v1/artifacts -H 'Content-Type: application/json' \
		--data "{\"envelope\": $(cat "$file.json")}"
	if [ "$STATUS" != 201 ]; then
		fail "artifact $name $ver registered (HTTP $STATUS: $BODY)"
		return 1
	fi
	ART=$(jq -r .id <<<"$BODY")
	api PUT "/api/v1/artifacts/$ART/file" \
		-H 'Content-Type: application/octet-stream' --data-binary "@$file"
	man=$(jq -r .status <<<"$BODY")
	if [ "$STATUS" = 200 ] && [ "$man" = ready ]; then
		ok "artifact $name $ver uploaded and ready"
	else
		fail "artifact $name $ver upload (HTTP $STATUS: $BODY)"
		return 1
	fi
}

camp_create() {
	api POST /api/v1/campaigns -H 'Content-Type: application/json' --data "$1"
	if [ "$STATUS" = 201 ]; then
		CAMP=$(jq -r .id <<<"$BODY")
		ok "campaign $(jq -r .name <<<"$BODY") created ($CAMP)"
	else
		CAMP=
		fail "campaign created (HTTP $STATUS: $BODY)"
		return 1
	fi
}

camp_doc() {
	api GET "/api/v1/campaigns/$1"
	[ "$STATUS" = 200 ]
}

camp_field() {
	camp_doc "$1" || return 1
	jq -r "$2" <<<"$BODY"
}

camp_status_is() {
	[ "$(camp_field "$1" .status)" = "$2" ]
}

camp_phase_released() {
	local p
	p=$(camp_field "$1" .phase) || return 1
	[ "$p" != null ] && [ "$p" -ge "$2" ]
}

camp_count() {
	if [ -n "${3:-}" ]; then
		psql_q "SELECT count(*) FROM campaign_devices WHERE campaign_id = '$1'
			AND state = '$2' AND phase = $3 - 1"
	else
		psql_q "SELECT count(*) FROM campaign_devices WHERE campaign_id = '$1'
			AND state = '$2'"
	fi
}

camp_events() {
	psql_q "SELECT count(*) FROM campaign_events WHERE campaign_id = '$1'
		AND kind = '$2'"
}

camp_rank() {
	printf '%s:%s' "$1" "$2" | sha256sum | cut -c1-16
}

camp_expected_phases() {
	local cid=$1 total=$2 phases=$3 d
	shift 3
	for d in "$@"; do
		printf '%s %s\n' "$(camp_rank "$cid" "$d")" "$d"
	done | LC_ALL=C sort | awk -v total="$total" -v phases="$phases" '
		BEGIN {
			n = split(phases, p, ",")
			for (i = 1; i <= n; i++) {
				c = int((total * p[i] + 99) / 100)
				cut[i] = c < total ? c : total
			}
		}
		{
			for (i = 1; i <= n; i++)
				if (NR - 1 < cut[i])
					break
			print $2, i
		}'
}
