# SPDX-License-Identifier: Apache-2.0
# The ports of the local environment (sourced by deploy/local/up.sh; also
# by tests/integration/test_cli_ux.sh, which checks the rules below).
#
#   fleet_local_ports VAR_DIR running|stopped
#
# sets api_port and device_port and records them in VAR_DIR/ports:
# FLEET_API_PORT / FLEET_DEVICE_PORT when given, else the ports recorded by
# an earlier run, else 8443 / 8444. While fleetd runs (running), the
# recorded ports win over new ones: the listeners are bound already, and
# var/env and the agents point at them (down.sh first to change ports).
# Returns 2 with a message on stderr for a value that is not a port, or the
# same port twice.

_fleet_port_recorded() {
	[ -f "$1/ports" ] || return 0
	sed -n "s/^$2=\([0-9]\{1,5\}\)\$/\1/p" "$1/ports" | tail -n 1
}

_fleet_port_valid() {
	[[ $1 =~ ^[0-9]{1,5}$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 65535 ]
}

fleet_local_ports() {
	local var=$1 state=$2 old_api old_device p
	old_api=$(_fleet_port_recorded "$var" api_port)
	old_device=$(_fleet_port_recorded "$var" device_port)
	api_port=${FLEET_API_PORT:-${old_api:-8443}}
	device_port=${FLEET_DEVICE_PORT:-${old_device:-8444}}
	for p in "$api_port" "$device_port"; do
		_fleet_port_valid "$p" || {
			echo "up.sh: '$p' is not a port (1..65535); check FLEET_API_PORT and FLEET_DEVICE_PORT" >&2
			return 2
		}
	done
	if [ "$api_port" = "$device_port" ]; then
		echo "up.sh: the api and device listeners need two ports, not $api_port twice" >&2
		return 2
	fi
	if [ "$state" = running ] && [ -n "$old_api" ] && [ -n "$old_device" ] &&
		{ [ "$api_port" != "$old_api" ] || [ "$device_port" != "$old_device" ]; }; then
		echo "note: fleetd runs on ports $old_api and $old_device; keeping them (./deploy/local/down.sh first to change ports)" >&2
		api_port=$old_api
		device_port=$old_device
	fi
	printf 'api_port=%s\ndevice_port=%s\n' "$api_port" "$device_port" >"$var/ports"
}
