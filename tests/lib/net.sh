# SPDX-License-Identifier: Apache-2.0
# Loopback helpers shared by the integration harness and the benchmarks.

# A TCP port on 127.0.0.1 that can be bound now: the kernel picks it, with
# SO_REUSEADDR as fleetd binds, so ports in TIME-WAIT are no obstacle. The
# kernel may pick a port it picked a moment ago (the socket is closed at
# once), so the ports handed out in a run ($T/.ports-taken) are never
# handed out again: a test that binds seven ports gets seven (test_haproxy
# once got six, and HAProxy could not bind its listeners).
free_port() {
	local taken=${T:+$T/.ports-taken} port
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		port=$(python3 -c 'import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
		if [ -z "$taken" ] || ! grep -qx "$port" "$taken" 2>/dev/null; then
			break
		fi
	done
	if [ -n "$taken" ]; then
		echo "$port" >>"$taken"
	fi
	echo "$port"
}

# fleetd_conf_write FILE PKI_DIR [LINES]: a fleetd config listening on two
# fresh free ports of 127.0.0.1 (sets API_PORT and DEVICE_PORT); LINES (more
# `key = value` lines) are appended.
fleetd_conf_write() {
	API_PORT=$(free_port)
	DEVICE_PORT=$(free_port)
	while [ "$DEVICE_PORT" = "$API_PORT" ]; do DEVICE_PORT=$(free_port); done
	cat >"$1" <<EOT
pki_dir = $2
api_bind = 127.0.0.1
api_port = $API_PORT
device_bind = 127.0.0.1
device_port = $DEVICE_PORT
public_host = localhost
${3:-}
EOT
}
