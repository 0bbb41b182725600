# SPDX-License-Identifier: Apache-2.0
# Installs the Debian 12 packages fleetd needs to build, test and run, when
# any is missing. Sourced by tests/run.sh and deploy/local/up.sh.
FLEET_PACKAGES="build-essential cmake pkg-config clang clang-format
libclang-rt-14-dev libssl-dev libwebsockets-dev libpq-dev libjansson-dev
libcmocka-dev postgresql postgresql-contrib curl openssl procps iproute2
python3 ca-certificates"

fleet_install_packages() {
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
