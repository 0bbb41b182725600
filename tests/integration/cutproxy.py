#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A TCP proxy on 127.0.0.1 that loses the answer to the first requests.

    cutproxy.py --target PORT --port-file FILE [--cut N]

Listens on a free port of 127.0.0.1 (written to FILE once it listens) and
relays each connection to 127.0.0.1:PORT. For the first N connections
(default 1) it relays the TLS handshake and the client's request, then
drops what the server answers and closes both sides once it has seen the
answer (at least ANSWER_MIN bytes of TLS application data, or the server
closing): the server has done the work and committed, the client never
learns it. This is the "connection cut after the server committed" of a
lost enrollment answer. Later connections are relayed untouched.

TLS stays end to end: the proxy reads only TLS record headers (content
type 23 = application data) to tell the request from the handshake. Each
connection is logged on stdout: "conn K: relayed" or "conn K: answer cut
(B bytes dropped)". Loopback only; stdlib only.
"""
import argparse
import os
import select
import socket
import sys
import threading

REQUEST_MIN = 400  # client application data: the request has been sent
ANSWER_MIN = 2000  # server application data: the answer is complete
APP_DATA = 23


class Records:
    """Counts the bytes of TLS application-data records in a byte stream."""

    def __init__(self):
        self.hdr = b""
        self.left = 0  # bytes of the current record's payload still due
        self.kind = 0
        self.app_bytes = 0

    def feed(self, data):
        i = 0
        while i < len(data):
            if self.left > 0:
                n = min(self.left, len(data) - i)
                if self.kind == APP_DATA:
                    self.app_bytes += n
                self.left -= n
                i += n
                continue
            need = 5 - len(self.hdr)
            self.hdr += data[i:i + need]
            i += need
            if len(self.hdr) == 5:
                self.kind = self.hdr[0]
                self.left = int.from_bytes(self.hdr[3:5], "big")
                self.hdr = b""


def log(msg):
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def debug(msg):
    if os.environ.get("CUTPROXY_DEBUG"):
        log(msg)


def serve(conn_no, client, target, cut):
    try:
        upstream = socket.create_connection(("127.0.0.1", target), timeout=10)
    except OSError as e:
        log(f"conn {conn_no}: upstream refused: {e}")
        client.close()
        return
    upstream.settimeout(None)
    sent, answer = Records(), Records()
    dropped = 0
    request_seen = False
    outcome = "relayed"
    watch = [client, upstream]
    try:
        while True:
            r, _, _ = select.select(watch, [], [], 60)
            if not r:
                outcome = "idle timeout"
                break
            if client in r:
                data = client.recv(65536)
                if data:
                    debug(f"conn {conn_no}: c->s {len(data)} type {data[0]}")
                    upstream.sendall(data)
                    sent.feed(data)
                    if cut and sent.app_bytes >= REQUEST_MIN:
                        request_seen = True
                else:
                    # The client is done sending; the answer may follow.
                    upstream.shutdown(socket.SHUT_WR)
                    watch = [upstream]
            if upstream in r:
                data = upstream.recv(65536)
                debug(f"conn {conn_no}: s->c {len(data)} cut {request_seen}")
                if not data:
                    if request_seen:
                        outcome = f"answer cut ({dropped} bytes dropped)"
                    break
                if request_seen:
                    # The server has the request: what it sends now is
                    # the answer (and TLS session tickets); drop it.
                    dropped += len(data)
                    answer.feed(data)
                    if answer.app_bytes >= ANSWER_MIN:
                        outcome = f"answer cut ({dropped} bytes dropped)"
                        break
                else:
                    client.sendall(data)
    except OSError as e:
        outcome = f"{outcome}, then {e}"
    finally:
        for s in (client, upstream):
            try:
                s.close()
            except OSError:
                pass
    log(f"conn {conn_no}: {outcome}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", type=int, required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--cut", type=int, default=1)
    args = ap.parse_args()

    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{ls.getsockname()[1]}\n")
    os.replace(tmp, args.port_file)
    log(f"listening on 127.0.0.1:{ls.getsockname()[1]} -> {args.target}, "
        f"cutting the first {args.cut} answers")
    n = 0
    while True:
        client, _ = ls.accept()
        n += 1
        threading.Thread(target=serve, args=(n, client, args.target,
                                             n <= args.cut),
                         daemon=True).start()


if __name__ == "__main__":
    main()
