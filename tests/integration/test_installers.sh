#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The rauc and swupdate update modules (agent/modules) against the real
# tools, as far as they run without hardware:
#
#   rauc      a RAUC 1.8 service on a private D-Bus with two file-backed
#             raw slots and the custom bootloader backend (a script keeping
#             primary and good/bad in files); "reboots" restart the service
#             with --override-boot-slot. Bundles are made with `rauc bundle`
#             (plain format: verity needs device-mapper) and signed with a
#             key made here. Install, verify, commit; a second release
#             installed into the other slot, then rolled back; a bundle
#             signed by a key outside the keyring is refused and nothing
#             changes.
#   swupdate  `swupdate -i` with a CMS-signed .swu whose files handler
#             writes into $T; Download checks it (-c) without installing;
#             an image signed by another key and one whose file does not
#             match its sha256 are refused and nothing is written; commit
#             and rollback run the configured bootloader commands.
#
# The modules are run as fleet-agent runs them (agent/installer.c): a
# clean environment, `<module> <State> <file tree>`, with the file tree of
# the Mender v3 protocol. The file tree and installer.c themselves are
# tested by test_agent_installer; this needs no fleetd or database.
. "$FLEET_SOURCE_DIR/tests/lib/harness.sh"

MODS=$FLEET_SOURCE_DIR/agent/modules
CLEAN_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# tree DIR FILE NAME TYPE: the file tree installer_open makes.
tree() {
	local d=$1
	rm -rf "$d"
	mkdir -p "$d/header" "$d/tmp" "$d/files" "$d/streams"
	printf '3\n' >"$d/version"
	printf 'old' >"$d/current_artifact_name"
	printf '' >"$d/current_artifact_group"
	printf 'test-model' >"$d/current_device_type"
	printf '%s' "$3" >"$d/header/artifact_name"
	printf '%s' "$4" >"$d/header/payload_type"
	printf '{"type": "%s"}' "$4" >"$d/header/type-info"
	ln "$2" "$d/files/$3"
}

# run MODULE STATE TREE [VAR=VALUE...]: as installer_run runs a state;
# stdout in $OUT, stderr in $ERR, exit status returned.
run() {
	local mod=$1 state=$2 tr=$3 rc=0
	shift 3
	env -i PATH=$CLEAN_PATH LC_ALL=C FLEET_UPDATE_DIR="$T/update" \
		FLEET_DEVICE_TYPE=test-model "$@" "$MODS/$mod" "$state" "$tr" \
		>"$T/out" 2>"$T/err" || rc=$?
	OUT=$(head -n 1 "$T/out")
	ERR=$(cat "$T/err")
	return $rc
}

# ---- rauc ---------------------------------------------------------------

rauc_tests() {
	local R=$T/rauc
	mkdir -p "$R/slots" "$R/bl" "$R/data" "$R/c2" "$R/c3"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$R/key.pem" -out "$R/cert.pem" -days 2 \
		-subj /CN=fleet-rauc-test 2>/dev/null
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$R/evil.pem" -out "$R/evil-cert.pem" -days 2 \
		-subj /CN=not-in-keyring 2>/dev/null
	truncate -s 1M "$R/slots/rootfs.0" "$R/slots/rootfs.1"
	cat >"$R/bl.sh" <<EOF
#!/bin/sh
# RAUC custom bootloader backend: primary and slot states in files.
d=$R/bl
echo "\$*" >>\$d/log
case "\$1" in
get-primary) cat \$d/primary 2>/dev/null || echo A ;;
set-primary) echo "\$2" >\$d/primary ;;
get-state) cat \$d/state.\$2 2>/dev/null || echo good ;;
set-state) echo "\$3" >\$d/state.\$2 ;;
get-current) cat \$d/primary 2>/dev/null || echo A ;;
*) exit 1 ;;
esac
EOF
	chmod +x "$R/bl.sh"
	cat >"$R/system.conf" <<EOF
[system]
compatible=fleet-test
bootloader=custom
data-directory=$R/data

[handlers]
bootloader-custom-backend=$R/bl.sh

[keyring]
path=$R/cert.pem

[slot.rootfs.0]
device=$R/slots/rootfs.0
type=raw
bootname=A

[slot.rootfs.1]
device=$R/slots/rootfs.1
type=raw
bootname=B
EOF
	cat >"$R/dbus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$R/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
	for v in 2 3; do
		head -c 65536 /dev/urandom >"$R/c$v/rootfs.img"
		cat >"$R/c$v/manifest.raucm" <<EOF
[update]
compatible=fleet-test
version=$v.0

[bundle]
format=plain

[image.rootfs]
filename=rootfs.img
EOF
		rauc bundle --cert="$R/cert.pem" --key="$R/key.pem" "$R/c$v" \
			"$R/v$v.raucb" >"$T/rauc-bundle.log" 2>&1
	done
	rauc bundle --cert="$R/evil-cert.pem" --key="$R/evil.pem" "$R/c3" \
		"$R/evil.raucb" >>"$T/rauc-bundle.log" 2>&1
	check "rauc bundle made three signed bundles" \
		test -s "$R/v2.raucb" -a -s "$R/v3.raucb" -a -s "$R/evil.raucb"

	spawn dbus dbus-daemon --nofork --config-file="$R/dbus.conf"
	wait_for "private D-Bus socket" 10 test -S "$R/bus"
	export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$R/bus
	local svc=
	# boot SLOTNAME: (re)start the RAUC service as if booted from it.
	boot() {
		if [ -n "$svc" ]; then
			kill -TERM "$svc"
			wait_for "rauc service exits" 10 not kill -0 "$svc"
		fi
		spawn rauc-service rauc service --conf="$R/system.conf" \
			--override-boot-slot="$1"
		svc=$LAST_PID
		wait_for "rauc service answers" 15 \
			rauc --conf="$R/system.conf" status
	}
	boot A
	local env=(FLEET_MODULE_RAUC_CONF="$R/system.conf"
		FLEET_MODULE_RAUC_DBUS="$DBUS_SYSTEM_BUS_ADDRESS")

	# Release 2: into rootfs.1 (B), reboot, verify, commit.
	tree "$T/tr2" "$R/v2.raucb" fw-rauc rauc
	check "rauc: Download" run rauc Download "$T/tr2" "${env[@]}"
	if ! run rauc ArtifactInstall "$T/tr2" "${env[@]}"; then
		fail "rauc: ArtifactInstall: $ERR"
		echo "rauc stops here in this container; see $T/rauc-service.log"
		tail -n 5 "$T/rauc-service.log"
		return
	fi
	ok "rauc: ArtifactInstall"
	check "rauc wrote the image into the inactive slot rootfs.1" \
		cmp "$R/c2/rootfs.img" <(head -c 65536 "$R/slots/rootfs.1")
	assert_eq "$(cat "$R/bl/primary")" B "the bootloader boots B next"
	local n_primary
	n_primary=$(grep -c set-primary "$R/bl/log")
	check "rauc: ArtifactInstall again (a restarted agent) does nothing" \
		run rauc ArtifactInstall "$T/tr2" "${env[@]}"
	assert_eq "$(grep -c set-primary "$R/bl/log")" "$n_primary" \
		"no second install"
	run rauc NeedsArtifactReboot "$T/tr2" "${env[@]}"
	assert_eq "$OUT" Yes "rauc: NeedsArtifactReboot"
	run rauc SupportsRollback "$T/tr2" "${env[@]}"
	assert_eq "$OUT" Yes "rauc: SupportsRollback"
	check "rauc: VerifyReboot fails before the reboot" \
		not run rauc ArtifactVerifyReboot "$T/tr2" "${env[@]}"
	boot B
	check "rauc: ArtifactVerifyReboot after booting B" \
		run rauc ArtifactVerifyReboot "$T/tr2" "${env[@]}"
	check "rauc: ArtifactCommit" run rauc ArtifactCommit "$T/tr2" "${env[@]}"
	assert_eq "$(cat "$R/bl/state.B")" good "rauc marked B good"

	# Release 3: into rootfs.0 (A), boots, the health check fails: back
	# to B, A marked bad.
	tree "$T/tr3" "$R/v3.raucb" fw-rauc rauc
	check "rauc: install release 3" run rauc ArtifactInstall "$T/tr3" "${env[@]}"
	check "rauc wrote release 3 into rootfs.0" \
		cmp "$R/c3/rootfs.img" <(head -c 65536 "$R/slots/rootfs.0")
	assert_eq "$(cat "$R/bl/primary")" A "the bootloader boots A next"
	boot A
	check "rauc: VerifyReboot of release 3" \
		run rauc ArtifactVerifyReboot "$T/tr3" "${env[@]}"
	check "rauc: ArtifactRollback" run rauc ArtifactRollback "$T/tr3" "${env[@]}"
	check "rauc: ArtifactRollback again" run rauc ArtifactRollback "$T/tr3" "${env[@]}"
	assert_eq "$(cat "$R/bl/primary")" B "rollback: B is primary again"
	assert_eq "$(cat "$R/bl/state.A")" bad "rollback: A is marked bad"
	boot B
	check "rauc: ArtifactVerifyRollbackReboot" \
		run rauc ArtifactVerifyRollbackReboot "$T/tr3" "${env[@]}"

	# A bundle signed outside RAUC's keyring: refused, nothing written.
	local before
	before=$(sha256sum <"$R/slots/rootfs.0")
	tree "$T/tr4" "$R/evil.raucb" fw-rauc rauc
	if run rauc ArtifactInstall "$T/tr4" "${env[@]}"; then
		fail "rauc installed a bundle signed outside its keyring"
	else
		ok "rauc refused a bundle outside its keyring: $(echo "$ERR" | tail -n 1)"
	fi
	assert_eq "$(sha256sum <"$R/slots/rootfs.0")" "$before" \
		"the inactive slot is untouched"
	assert_eq "$(cat "$R/bl/primary")" B "B stays primary"
}

# ---- swupdate -----------------------------------------------------------

# swu OUT CERT KEY CONTENT [SHA]: a CMS-signed .swu writing app.conf.
swu() {
	local out=$1 cert=$2 key=$3 content=$4 sha=${5:-} d
	d=$(mktemp -d "$T/swu.XXXXXX")
	printf '%s' "$content" >"$d/app.conf"
	[ -n "$sha" ] || sha=$(sha256sum "$d/app.conf" | cut -d' ' -f1)
	cat >"$d/sw-description" <<EOF
software =
{
	version = "1.0.0";
	description = "fleet test";
	hardware-compatibility: [ "1.0" ];
	files: (
		{
			filename = "app.conf";
			path = "$T/swu-dest/app.conf";
			sha256 = "$sha";
		}
	);
}
EOF
	openssl cms -sign -in "$d/sw-description" -out "$d/sw-description.sig" \
		-signer "$cert" -inkey "$key" -outform DER -nosmimecap -binary
	(cd "$d" && printf 'sw-description\nsw-description.sig\napp.conf\n' |
		cpio -o -H crc 2>/dev/null) >"$out"
}

swupdate_tests() {
	local S=$T/swu-keys
	mkdir -p "$S" "$T/swu-dest"
	for k in good evil; do
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
			-nodes -keyout "$S/$k.key" -out "$S/$k.pem" -days 2 \
			-subj "/CN=fleet-swu-$k" \
			-addext extendedKeyUsage=emailProtection \
			-addext keyUsage=digitalSignature 2>/dev/null
	done
	swu "$T/v2.swu" "$S/good.pem" "$S/good.key" "setting=2"
	swu "$T/evil.swu" "$S/evil.pem" "$S/evil.key" "setting=evil"
	swu "$T/badsha.swu" "$S/good.pem" "$S/good.key" "setting=3" \
		0000000000000000000000000000000000000000000000000000000000000000
	local env=(FLEET_MODULE_SWUPDATE_KEY="$S/good.pem"
		FLEET_MODULE_SWUPDATE_HWREV=test-model:1.0
		FLEET_MODULE_SWUPDATE_REBOOT=No)

	tree "$T/ts2" "$T/v2.swu" app-swu swupdate
	check "swupdate: Download checks the image" \
		run swupdate Download "$T/ts2" "${env[@]}"
	check "Download installed nothing" test ! -e "$T/swu-dest/app.conf"
	if run swupdate ArtifactInstall "$T/ts2" "${env[@]}"; then
		ok "swupdate: ArtifactInstall"
	else
		fail "swupdate: ArtifactInstall: $ERR"
		cat "$T/ts2/tmp/swupdate.log"
	fi
	assert_eq "$(cat "$T/swu-dest/app.conf" 2>/dev/null)" "setting=2" \
		"swupdate's files handler wrote the file"
	run swupdate NeedsArtifactReboot "$T/ts2" "${env[@]}"
	assert_eq "$OUT" No "swupdate: NeedsArtifactReboot (configured No)"
	run swupdate SupportsRollback "$T/ts2" "${env[@]}"
	assert_eq "$OUT" No "swupdate: no rollback without a rollback command"
	check "swupdate: ArtifactCommit without a command" \
		run swupdate ArtifactCommit "$T/ts2" "${env[@]}"

	# Bootloader commands (on hardware: fw_setenv ...).
	local hooks=("${env[@]}"
		FLEET_MODULE_SWUPDATE_COMMIT="echo committed > $T/swu-hook"
		FLEET_MODULE_SWUPDATE_ROLLBACK="echo rolled-back > $T/swu-hook")
	run swupdate SupportsRollback "$T/ts2" "${hooks[@]}"
	assert_eq "$OUT" Yes "swupdate: rollback with a rollback command"
	run swupdate ArtifactCommit "$T/ts2" "${hooks[@]}"
	assert_eq "$(cat "$T/swu-hook")" committed "commit ran its command"
	run swupdate ArtifactRollback "$T/ts2" "${hooks[@]}"
	assert_eq "$(cat "$T/swu-hook")" rolled-back "rollback ran its command"

	tree "$T/ts3" "$T/evil.swu" app-swu swupdate
	if run swupdate Download "$T/ts3" "${env[@]}"; then
		fail "swupdate accepted an image signed by another key"
	else
		ok "swupdate refused an image signed by another key: $(echo "$ERR" | tail -n 1)"
	fi
	check "swupdate: its ArtifactInstall fails too" \
		not run swupdate ArtifactInstall "$T/ts3" "${env[@]}"
	assert_eq "$(cat "$T/swu-dest/app.conf")" "setting=2" \
		"nothing written by the refused image"

	tree "$T/ts4" "$T/badsha.swu" app-swu swupdate
	check "swupdate refuses a file whose sha256 differs" \
		not run swupdate ArtifactInstall "$T/ts4" "${env[@]}"
	assert_eq "$(cat "$T/swu-dest/app.conf")" "setting=2" \
		"nothing written by the image with the wrong hash"
}

require_tools --hint "apt-get install rauc swupdate dbus cpio squashfs-tools" \
	rauc swupdate dbus-daemon cpio mksquashfs
if [ "$(id -u)" = 0 ] && [ -e /dev/loop-control ]; then
	rauc_tests
else
	echo "SKIP rauc: it mounts bundles on a loop device (root and /dev/loop-control)"
fi
swupdate_tests
harness_done
