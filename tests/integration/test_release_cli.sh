#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# fleetctl release: offline k-of-n signing and the agent's checks from the
# release engineer's side (docs/releases.md). Three release keys, a release
# signed by two of them; every refusal an agent makes (threshold,
# bad-signature, unknown-key, expired, not-newer, hardware, size-mismatch,
# hash-mismatch, bad-envelope) must be a non-zero exit with one line naming
# the stable reason code; a key rotation envelope checked the same way.
# sha256sum and python3's json module are the external oracles. Finally
# `release keys upload` against a real fleetd (POST /api/v1/release-keysets).
source "$FLEET_SOURCE_DIR/tests/lib/harness.sh"
source "$FLEET_SOURCE_DIR/tests/lib/cli.sh"

cd "$T"

# An envelope rewritten by python: mutate ENV OUT PYTHON-EXPR-ON-e
mutate() {
	python3 - "$1" "$2" "$3" <<'EOF'
import base64, json, sys
src, dst, expr = sys.argv[1:4]
e = json.load(open(src))
def payload():
    return json.loads(base64.b64decode(e["payload"]))
def set_payload(p):
    e["payload"] = base64.b64encode(
        json.dumps(p, separators=(",", ":"), sort_keys=True).encode()).decode()
exec(expr)
json.dump(e, open(dst, "w"))
EOF
}

# ---- keys ------------------------------------------------------------------
for k in a b c u n1 n2; do
	expect_ok "keys gen $k" keys gen --out "$k.key"
	echo "$OUT" >"$k.id"
done
KEYS="a.key.pub,b.key.pub,c.key.pub"
head -c 300000 /dev/urandom >fw.bin
SHA=$(sha256sum fw.bin | cut -d' ' -f1)

# ---- sign 2 of 3 -------------------------------------------------------------
# shellcheck disable=SC2054 # "rpi5,cm4" is one --hw with two models
SIGN=(release sign --name fw --version 1.2.0 --version-int 120
	--hw rpi4 --hw rpi5,cm4 --installer single-file --expires 90d)
expect_ok "sign with 2 of 3 keys" "${SIGN[@]}" --key a.key --key b.key fw.bin
check "sign wrote FILE.release.json" test -s fw.bin.release.json
check "sign prints the first signer's key id" grep -q "signed by *$(cat a.id)" out
check "sign prints the second signer's key id" grep -q "signed by *$(cat b.id)" out
check "sign prints the sha256 sha256sum computes" grep -q "sha256 *$SHA" out
check "the envelope is DSSE JSON with two signatures" python3 -c "
import json,sys,base64
e=json.load(open('fw.bin.release.json'))
assert e['payloadType']=='application/vnd.fleet.manifest+json'
assert [s['keyid'] for s in e['signatures']]==['$(cat a.id)','$(cat b.id)']
m=json.loads(base64.b64decode(e['payload']))
assert m['sha256']=='$SHA' and m['size']==300000 and m['hw']==['rpi4','rpi5','cm4']
assert m['version_int']==120 and m['installer']=='single-file'
"
expect_fail "sign refuses to overwrite the envelope" 1 "exists|File exists" \
	"${SIGN[@]}" --key a.key --key b.key fw.bin
expect_fail "sign refuses a key given twice" 1 "same key" \
	"${SIGN[@]}" --key a.key --key a.key --out twice.json fw.bin
check "a refused sign writes nothing" not test -e twice.json
expect_fail "sign without --expires is a usage error" 2 "expires" \
	release sign --key a.key --name fw --version 1 --version-int 1 \
	--hw x --installer single-file --out u.json fw.bin
expect_fail "sign with a bad duration is a usage error" 2 "duration" \
	"${SIGN[@]}" --expires soon --key a.key --out u.json fw.bin
expect_fail "sign with an uppercase installer" 1 "installer" \
	release sign --key a.key --name fw --version 1 --version-int 1 \
	--hw x --installer Single --expires 1d --out u.json fw.bin
expect_fail "sign of a missing file" 1 "nofile" \
	"${SIGN[@]}" --key a.key --out u.json nofile
check "no envelope for refused signs" not test -e u.json

# ---- verify ----------------------------------------------------------------------
expect_ok "verify 2 of 3 with threshold 2" \
	release verify --keys "$KEYS" --threshold 2 fw.bin.release.json
expect_ok "verify with the file" \
	release verify --keys "$KEYS" --threshold 2 --model cm4 \
	--installed-version 119 fw.bin.release.json fw.bin
check "verify prints the manifest" grep -q "version_int *120" out
run -o json release verify --keys "$KEYS" --threshold 2 fw.bin.release.json
check "verify -o json prints the manifest as JSON" python3 -c "
import json,sys; m=json.loads(sys.argv[1]); assert m['sha256']=='$SHA'" "$OUT"
expect_fail "threshold 3: refused (threshold)" 1 "refused \(threshold\)" \
	release verify --keys "$KEYS" --threshold 3 fw.bin.release.json

mutate fw.bin.release.json tampered.json \
	'p = payload(); p["version_int"] = 999; set_payload(p)'
expect_fail "tampered payload: refused (bad-signature)" 1 \
	"refused \(bad-signature\)" \
	release verify --keys "$KEYS" --threshold 2 tampered.json

expect_ok "sign with an outsider's key" "${SIGN[@]}" --key u.key \
	--out outsider.json fw.bin
expect_fail "unknown key: refused (unknown-key)" 1 "refused \(unknown-key\)" \
	release verify --keys "$KEYS" --threshold 2 outsider.json

mutate fw.bin.release.json dup.json \
	'e["signatures"].append(dict(e["signatures"][0]))'
expect_fail "duplicated signature: refused (bad-envelope)" 1 \
	"refused \(bad-envelope\)" \
	release verify --keys "$KEYS" --threshold 2 dup.json
mutate fw.bin.release.json extra.json 'e["note"] = "unsigned words"'
expect_fail "unknown envelope field: refused (bad-envelope)" 1 \
	"refused \(bad-envelope\)" \
	release verify --keys "$KEYS" --threshold 2 extra.json
echo '{"payload":' >broken.json
expect_fail "not JSON: refused (bad-envelope)" 1 "refused \(bad-envelope\)" \
	release verify --keys "$KEYS" --threshold 2 broken.json

head -c 300000 /dev/urandom >other.bin
expect_fail "another file of the same size: refused (hash-mismatch)" 1 \
	"refused \(hash-mismatch\)" \
	release verify --keys "$KEYS" --threshold 2 fw.bin.release.json other.bin
head -c 1000 fw.bin >short.bin
expect_fail "a truncated file: refused (size-mismatch)" 1 \
	"refused \(size-mismatch\)" \
	release verify --keys "$KEYS" --threshold 2 fw.bin.release.json short.bin
expect_fail "installed 120: refused (not-newer)" 1 "refused \(not-newer\)" \
	release verify --keys "$KEYS" --threshold 2 --installed-version 120 \
	fw.bin.release.json
expect_fail "another model: refused (hardware)" 1 "refused \(hardware\)" \
	release verify --keys "$KEYS" --threshold 2 --model rpi3 \
	fw.bin.release.json

expect_ok "sign a release that expires in 1 s" "${SIGN[@]}" --expires 1s \
	--key a.key --key c.key --out soon.json fw.bin
expired() {
	local said
	said=$(fleetctl release verify --keys "$KEYS" --threshold 2 soon.json 2>&1) &&
		return 1
	[[ $said == *"refused (expired)"* ]]
}
check "an expired release: refused (expired)" wait_for "release expired" 5 expired

expect_fail "verify without --keys is a usage error" 2 "keys" \
	release verify --threshold 2 fw.bin.release.json
expect_fail "verify with a threshold above the keys" 1 "threshold" \
	release verify --keys a.key.pub --threshold 2 fw.bin.release.json

# ---- key rotation ----------------------------------------------------------------
ROT=(release keys rotate --current-version 1 --new-key n1.key.pub
	--new-key n2.key.pub --new-key c.key.pub --threshold 2)
expect_ok "rotate: set 2 signed by 2 of set 1" "${ROT[@]}" --key a.key --key b.key
check "rotate wrote keyset-v2.json" test -s keyset-v2.json
check "rotate prints version 2" grep -q "version *2" out
check "rotate lists a new key" grep -q "key *$(cat n1.id)" out
expect_ok "keys verify: set 2 against set 1 (k=2)" \
	release keys verify --keys "$KEYS" --threshold 2 keyset-v2.json
check "keys verify prints version 2" grep -q "version *2" out
expect_fail "keys verify with threshold 3: refused (threshold)" 1 \
	"refused \(threshold\)" \
	release keys verify --keys "$KEYS" --threshold 3 keyset-v2.json
expect_fail "keys verify as if set 2 were pinned: refused (not-newer)" 1 \
	"refused \(not-newer\)" \
	release keys verify --keys "$KEYS" --threshold 2 --current-version 2 \
	keyset-v2.json
expect_ok "rotate signed by 1 of set 1" "${ROT[@]}" --key a.key --out weak.json
expect_fail "a rotation signed by fewer than k: refused (threshold)" 1 \
	"refused \(threshold\)" \
	release keys verify --keys "$KEYS" --threshold 2 weak.json
expect_ok "rotate signed by the new keys only" "${ROT[@]}" --key n1.key \
	--key n2.key --out self.json
expect_fail "a rotation signed by the new keys only: refused (unknown-key)" 1 \
	"refused \(unknown-key\)" \
	release keys verify --keys "$KEYS" --threshold 2 self.json
mutate keyset-v2.json ks-dup.json \
	'e["signatures"].append(dict(e["signatures"][1]))'
expect_fail "a rotation with a duplicated signature: refused (bad-envelope)" 1 \
	"refused \(bad-envelope\)" \
	release keys verify --keys "$KEYS" --threshold 2 ks-dup.json
expect_fail "a release is not a key set: refused (bad-envelope)" 1 \
	"refused \(bad-envelope\)" \
	release keys verify --keys "$KEYS" --threshold 2 fw.bin.release.json
expect_fail "rotate refuses a threshold above the new keys" 2 "threshold" \
	release keys rotate --current-version 1 --new-key n1.key.pub \
	--threshold 2 --key a.key --out x.json
expect_fail "rotate refuses a new key given twice" 1 "twice" \
	release keys rotate --current-version 1 --new-key n1.key.pub \
	--new-key n1.key.pub --threshold 1 --key a.key --out x.json

# After the rotation, set 2 is what agents pin (its payload, as an agent
# keeps it in keyset.json): the retired keys a, b sign nothing any more.
run -o json release keys verify --keys "$KEYS" --threshold 2 keyset-v2.json
printf '%s\n' "$OUT" >pinned-v2.json
expect_ok "sign with the new keys" "${SIGN[@]}" --key n1.key --key n2.key \
	--out new.json fw.bin
expect_ok "a release by set 2's keys verifies against set 2" \
	release verify --keyset pinned-v2.json new.json fw.bin
expect_fail "a release by the retired keys: refused (unknown-key)" 1 \
	"refused \(unknown-key\)" \
	release verify --keyset pinned-v2.json fw.bin.release.json
expect_ok "set 3 signed by set 2" release keys rotate --current-version 2 \
	--new-key n1.key.pub --new-key n2.key.pub --threshold 1 \
	--key n2.key --key c.key --out keyset-v3.json
expect_ok "keys verify: set 3 against set 2 (--keyset)" \
	release keys verify --keyset pinned-v2.json keyset-v3.json
expect_fail "set 3 against set 1: refused (not-newer)" 1 "refused \(not-newer\)" \
	release keys verify --keys "n1.key.pub,n2.key.pub,c.key.pub" \
	--threshold 2 keyset-v3.json

# ---- upload to fleetd ---------------------------------------------------------------
harness_init
pki_init
fleetd_start
TOKEN=$(admin_token admin)
export FLEET_TOKEN=$TOKEN
expect_fail "keys upload of set 3 before set 2 is refused (409)" 1 "409" \
	release keys upload keyset-v3.json
expect_ok "keys upload posts set 2" release keys upload keyset-v2.json
check "upload says version 2" grep -q "version 2" out
api GET /api/v1/release-keysets
check "fleetd lists key set version 2" python3 -c "
import json,sys; d=json.loads(sys.argv[1])
assert any(i.get('version')==2 for i in d['items']), d" "$BODY"
expect_fail "keys upload of set 2 again is refused (409)" 1 "409" \
	release keys upload keyset-v2.json
expect_ok "keys upload posts set 3 after it" release keys upload keyset-v3.json
expect_fail "keys upload of a file that is not JSON" 1 "not a JSON" \
	release keys upload broken.json

harness_done
