# SPDX-License-Identifier: Apache-2.0
# Loopback helpers shared by the integration harness and the benchmarks.

# A TCP port on 127.0.0.1 that can be bound now: the kernel picks it, with
# SO_REUSEADDR as fleetd binds, so ports in TIME-WAIT are no obstacle.
free_port() {
	python3 -c 'import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}
