#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A hostile HTTPS artifact mirror for tests/integration/test_update_attacks.sh
(Python standard library only). fleetd's artifact_url_base points agents at
it, which is the position of a compromised mirror, CDN or network.

  hostile_dl.py --port P --cert PEM --key PEM --mode-file FILE [--log FILE]

Serves GET /artifacts/<sha256> on 127.0.0.1:P over TLS (the client
certificate is not asked for). What it does is read from --mode-file at
every request, so one server plays every attack in turn:

  endless        200 without a length, then data until the client hangs
                 up (a server that sends more than the manifest's size)
  long:N         200 with Content-Length N and N bytes (more than the size)
  stall          200 with the right length (--size), 100 bytes, then
                 nothing until the client hangs up (a withheld download)
  file:PATH      PATH with Range (206) like a correct server

Each request is appended to --log as one line: "GET <path> range=<Range>".
Runs until SIGTERM; every connection it opens it closes.
"""
import argparse
import http.server
import os
import socketserver
import ssl
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: our own log below
        pass

    def note(self):
        if self.server.log:
            with open(self.server.log, "a") as f:
                f.write("GET %s range=%s\n" % (self.path, self.headers.get("Range", "")))

    def mode(self):
        try:
            with open(self.server.mode_file) as f:
                return f.read().strip()
        except OSError:
            return "stall"

    def do_GET(self):
        self.note()
        mode = self.mode()
        try:
            if mode == "endless":
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                block = b"\xa5" * 65536
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    self.wfile.write(block)
            elif mode.startswith("long:"):
                n = int(mode[5:])
                self.send_response(200)
                self.send_header("Content-Length", str(n))
                self.end_headers()
                self.wfile.write(b"\x5a" * n)
            elif mode == "stall":
                self.send_response(200)
                self.send_header("Content-Length", str(self.server.size))
                self.end_headers()
                self.wfile.write(b"\x00" * 100)
                self.wfile.flush()
                # Hold the connection until the client gives up.
                self.connection.settimeout(1.0)
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline:
                    try:
                        if self.connection.recv(1) == b"":
                            break
                    except (socket_timeout_errors()):
                        continue
            elif mode.startswith("file:"):
                self.serve_file(mode[5:])
            else:
                self.send_error(500, "unknown mode")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass
        self.close_connection = True

    def serve_file(self, path):
        size = os.path.getsize(path)
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
        if start > 0:
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(size - start))
        self.end_headers()
        with open(path, "rb") as f:
            f.seek(start)
            self.wfile.write(f.read())


def socket_timeout_errors():
    import socket
    return (socket.timeout, TimeoutError)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--mode-file", required=True)
    ap.add_argument("--size", type=int, default=1 << 20)
    ap.add_argument("--log")
    args = ap.parse_args()
    srv = Server(("127.0.0.1", args.port), Handler)
    srv.mode_file = args.mode_file
    srv.size = args.size
    srv.log = args.log
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("listening on %d" % args.port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
