# SPDX-License-Identifier: Apache-2.0
# Installs the Debian 12 packages fleetd needs to build, test and run, when
# any is missing, and (as root) creates the system user fleetd's children
# run as (docs/internals/privsep.md). Sourced by tests/run.sh,
# deploy/local/up.sh and tests/lib/testpg.sh.
FLEET_USER=${FLEET_USER:-fleetd}
FLEET_PACKAGES="build-essential cmake pkg-config clang clang-format
libclang-rt-14-dev libssl-dev libwebsockets-dev libpq-dev libjansson-dev
libcmocka-dev postgresql postgresql-contrib curl openssl procps iproute2
python3 ca-certificates
prometheus nodejs
help2man lintian dpkg-dev fakeroot systemd zsh fish"
# Update installers (issue 11): Debian's Mender Update Modules (mender-client)
# and mender-artifact, RAUC and SWUpdate with what their tests use.
FLEET_PACKAGES="$FLEET_PACKAGES mender-client mender-artifact rauc swupdate
cpio dbus squashfs-tools"
# The reference server of tests/bench/artifact_bench.sh (issue 11): the same
# file over TLS from nginx, started on a loopback port with a temp config.
FLEET_PACKAGES="$FLEET_PACKAGES nginx"
# Many hosts (issue 15): tests/integration/test_haproxy.sh runs
# deploy/haproxy/haproxy.cfg in front of two fleetd instances.
FLEET_PACKAGES="$FLEET_PACKAGES haproxy"
# Highly available PostgreSQL (issue 15, docs/ha.md): pg_auto_failover's
# monitor and keeper, used by deploy/ha/ and tests/integration/test_pg_failover.sh.
FLEET_PACKAGES="$FLEET_PACKAGES pg-auto-failover-cli postgresql-15-auto-failover"
# conn_bench's side-by-side figure (issue 15): Mosquitto holding the same
# number of idle mTLS clients.
FLEET_PACKAGES="$FLEET_PACKAGES mosquitto"
# The net worker's event loop (docs/internals/event-loop.md): lws on libev
# (epoll); lws dlopens its libev plugin at run time.
FLEET_PACKAGES="$FLEET_PACKAGES libev-dev libwebsockets-evlib-ev"

# fleet_create_user: as root, makes the system user and group $FLEET_USER
# (no home, no login) when it is missing. A no-op for other users: fleetd
# started without root drops nothing and needs no such user.
fleet_create_user() {
	[ "$(id -u)" = 0 ] || return 0
	getent passwd "$FLEET_USER" >/dev/null && return 0
	echo "creating system user $FLEET_USER"
	useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin "$FLEET_USER"
}

fleet_install_packages() {
	fleet_create_user
	local missing=()
	for p in $FLEET_PACKAGES; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
			missing+=("$p")
		fi
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "installing: ${missing[*]}"
	if [ "$(id -u)" != 0 ]; then
		echo "missing Debian packages (run as root, or install them): ${missing[*]}" >&2
		return 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	# The Debian package starts a system cluster; ours are private.
	if command -v pg_lsclusters >/dev/null 2>&1 && pg_lsclusters -h 2>/dev/null | grep -q online; then
		pg_ctlcluster --force "$(pg_lsclusters -h | awk 'NR==1{print $1}')" main stop 2>/dev/null || true
	fi
}
