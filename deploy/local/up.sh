#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Brings up the whole system on this machine: installs missing Debian
# packages, builds, starts a private PostgreSQL under ./var, applies
# migrations, creates the PKI, starts fleetd and three demo agents, and
# writes var/env. Running it again while up is harmless; after down.sh it
# starts again with the data kept. Ports: FLEET_API_PORT and
# FLEET_DEVICE_PORT (default 8443, 8444) are remembered in var/ports, so a
# later run without them keeps the ports of the first; while fleetd runs,
# its ports win (down.sh first to change them).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
. deploy/packages.sh
. tests/lib/pgcluster.sh
. tests/lib/wait.sh
. deploy/local/ports.sh
fleet_install_packages

var=$top/var
mkdir -p "$var"
build=$top/build/local
mkdir -p "$top/build"

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

fleet_local_ports "$var" "$(running "$var/fleetd.pid" && echo running || echo stopped)"

echo "== building (log: $build.log)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLEET_TESTS=OFF >"$build.log" 2>&1 &&
	cmake --build "$build" -j"$(nproc)" >>"$build.log" 2>&1 || {
	tail -n 30 "$build.log"
	exit 1
}
export PATH="$build/fleetd:$build/fleetd/ctl:$build/agent:$PATH"

# PostgreSQL refuses root: as root it runs as `postgres`; fleetd started as
# root runs its children as `fleetd` (docs/internals/privsep.md). Both must
# reach their files: the cluster's socket and the PKI. If either cannot
# reach ./var (a parent directory closed to them), use a directory they can.
state=$var
# Search only (no listing): var/env and var/admin-token stay 0600.
[ "$(id -u)" != 0 ] || chmod go+x "$var"
if [ "$(id -u)" = 0 ] && ! { runuser -u postgres -- test -x "$var" &&
	runuser -u "$FLEET_USER" -- test -x "$var"; } 2>/dev/null; then
	state=/var/lib/fleetd-local/$(echo "$top" | sha256sum | cut -c1-12)
	mkdir -p "$state"
	chmod 0755 "$state"
	echo "note: user postgres or $FLEET_USER cannot reach $var; the cluster and the PKI live in $state"
fi
pgdir=$state/pg
pkidir=$state/pki
echo "== PostgreSQL in $pgdir"
pgcluster_init "$pgdir"
pgcluster_start "$pgdir"
export PGHOST=$pgdir PGUSER=postgres
psql -X -q -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'fleetd'" | grep -q 1 ||
	createdb fleetd
export FLEETD_DATABASE="host=$pgdir user=postgres dbname=fleetd"
fleetd migrate

if [ ! -f "$pkidir/ca-bundle.pem" ]; then
	echo "== creating the PKI in $pkidir"
	FLEETD_USER=$FLEET_USER fleetd pki init --dir "$pkidir" --server-name localhost --server-name 127.0.0.1
elif [ "$(id -u)" = 0 ]; then
	# A PKI made before fleetd dropped privileges: its net workers (user
	# $FLEET_USER) need the server key; the issuing key stays root's.
	chgrp "$FLEET_USER" "$pkidir/server" "$pkidir/server/server.key"
	chmod 0750 "$pkidir/server"
	chmod 0640 "$pkidir/server/server.key"
fi

# Downloads are served from verified cache files (docs/internals/downloads.md);
# the net workers (user $FLEET_USER when started as root) write them.
cachedir=$state/artifact-cache
mkdir -p "$cachedir"
chmod 0700 "$cachedir"
[ "$(id -u)" != 0 ] || chown "$FLEET_USER" "$cachedir"

cat >"$var/fleetd.conf" <<EOT
# written by deploy/local/up.sh
database = $FLEETD_DATABASE
pki_dir = $pkidir
user = $FLEET_USER
api_bind = 127.0.0.1
api_port = $api_port
device_bind = 127.0.0.1
device_port = $device_port
public_host = localhost
artifact_cache_dir = $cachedir
EOT

if running "$var/fleetd.pid"; then
	echo "== fleetd already running (pid $(cat "$var/fleetd.pid"))"
else
	echo "== starting fleetd (log: $var/fleetd.log)"
	nohup fleetd -c "$var/fleetd.conf" serve >>"$var/fleetd.log" 2>&1 &
	echo $! >"$var/fleetd.pid"
fi
export FLEET_SERVER=https://localhost:$api_port
export FLEET_CA=$pkidir/ca-bundle.pem
# Healthy, or fleetd is gone (waiting longer is pointless then).
up_or_gone() {
	! running "$var/fleetd.pid" || curl -sf --cacert "$FLEET_CA" "$FLEET_SERVER/healthz"
}
wait_for "fleetd healthy" 30 up_or_gone || true
curl -sf --cacert "$FLEET_CA" "$FLEET_SERVER/healthz" >/dev/null || {
	echo "fleetd did not come up; last lines of $var/fleetd.log:" >&2
	tail -n 20 "$var/fleetd.log" >&2
	exit 1
}

if [ ! -s "$var/admin-token" ]; then
	(umask 077 && fleetd token create --role admin --name local-admin >"$var/admin-token")
fi
export FLEET_TOKEN=$(cat "$var/admin-token")

(
	umask 077
	cat >"$var/env" <<EOT
# . var/env — written by deploy/local/up.sh
export FLEET_SERVER=$FLEET_SERVER
export FLEET_DEVICE_SERVER=wss://localhost:$device_port/agent/v1
export FLEET_TOKEN=$FLEET_TOKEN
export FLEET_CA=$FLEET_CA
export FLEETD_DATABASE="$FLEETD_DATABASE"
export PATH="$build/fleetd:$build/fleetd/ctl:$build/agent:\$PATH"
EOT
)

# Three release keys, as a release engineer would keep them offline; the
# demo agents pin all three and need two signatures (docs/releases.md).
keys=$var/release-keys
if [ ! -s "$keys/release-3.key.pub" ]; then
	(umask 077 && mkdir -p "$keys")
	for k in 1 2 3; do
		[ -s "$keys/release-$k.key" ] || fleetctl keys gen --out "$keys/release-$k.key" >/dev/null
	done
fi

agents=""
if command -v fleet-agent >/dev/null 2>&1; then
	for n in 1 2 3; do
		dir=$var/agents/$n
		mkdir -p "$dir"
		if running "$dir/agent.pid"; then
			continue
		fi
		if [ ! -f "$dir/identity.json" ] && [ ! -s "$dir/token" ]; then
			fleetctl -o json tokens create --uses 1 --expires 1h --label demo=true --label site=local \
				| python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' >"$dir/token"
		fi
		cat >"$dir/agent.conf" <<EOT
api_url = $FLEET_SERVER
device_url = wss://localhost:$device_port/agent/v1
ca_file = $FLEET_CA
state_dir = $dir
token_file = $dir/token
model = demo-plc-$n
fw_version = 1.0.$n
config_path = $dir/app.json
config_validate = python3 -m json.tool
update_keys = $keys/release-1.key.pub,$keys/release-2.key.pub,$keys/release-3.key.pub
update_threshold = 2
update_modules_dir = $top/agent/modules
update_reboot_command = reexec
fw_version_num = 1
EOT
		# dir-ab installs into two slot directories under var/agents/N/slots.
		FLEET_MODULE_DIR_AB_ROOT=$dir/slots \
			nohup fleet-agent -c "$dir/agent.conf" >>"$dir/agent.log" 2>&1 &
		echo $! >"$dir/agent.pid"
	done
	agents="three demo agents (state and logs in var/agents/N/)"
fi

cat <<EOT

fleetd is up.
  api listener     $FLEET_SERVER   (CA bundle: $FLEET_CA)
  device listener  wss://localhost:$device_port/agent/v1
  database         $FLEETD_DATABASE
  logs             $var/fleetd.log
  release keys     $keys (the demo agents need 2 of the 3)
  ${agents:-no demo agents (fleet-agent is not built yet)}

Use it:
  . var/env
  fleetctl devices list
  fleetctl tokens create --uses 10 --expires 24h --label site=b7
  fleetctl audit list

Stop it with ./deploy/local/down.sh (data in var/ is kept).
EOT
