#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A small websocket client for the device channel tests (standard library
only). Connects over TLS (SNI as agents do) with an optional client
certificate, upgrades to subprotocol fleet.v1 and runs actions given as
arguments (or one per line on stdin when there are none):

  send TEXT         a masked text frame with TEXT
  binary TEXT       a masked binary frame
  big N             a text frame of N bytes (a JSON string, so it is valid)
  garbage N         N frames of invalid JSON
  read [SECS]       reads one data frame (answers pings) and prints it
  drain SECS        reads and prints frames for SECS seconds
  wait-close [SECS] reads until the server closes; prints the close
  sleep SECS        sleeps without reading (pings pile up unanswered)
  close             sends a close frame (1000) and waits for the answer
  unmasked TEXT     an UNMASKED text frame (RFC 6455 forbids it)
  flood N TEXT      N masked text frames as fast as possible, reading
                    nothing; stops when the server hangs up

Output, one line per event: `UPGRADE <status line>`, `TEXT <payload>`,
`BINARY <n>`, `CLOSE <code> <reason> t=<epoch>`, `EOF t=<epoch>`,
`TIMEOUT`, `REFUSED <what>`, `SENT <n>` (after flood). Exit status 0, or
3 when the upgrade was refused (no 101) or the TLS handshake failed.
--protocol '' sends no Sec-WebSocket-Protocol header.
"""
import argparse
import base64
import os
import socket
import ssl
import struct
import sys
import time


def out(line):
    print(line, flush=True)


class Closed(Exception):
    pass


class Client:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def frame(self, opcode, payload, masked=True):
        head = bytes([0x80 | opcode])
        n = len(payload)
        bit = 0x80 if masked else 0
        if n < 126:
            head += bytes([bit | n])
        elif n < 65536:
            head += bytes([bit | 126]) + struct.pack("!H", n)
        else:
            head += bytes([bit | 127]) + struct.pack("!Q", n)
        if not masked:
            return head + payload
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return head + mask + body

    def send_frame(self, opcode, payload, masked=True):
        self.sock.sendall(self.frame(opcode, payload, masked))

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.time()
            if left <= 0:
                raise socket.timeout()
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
                chunk = b""
            if not chunk:
                raise Closed()
            self.buf += chunk

    def _take(self, n, deadline):
        self._fill(n, deadline)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_frame(self, deadline):
        b0, b1 = self._take(2, deadline)
        opcode, n = b0 & 0x0F, b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._take(2, deadline))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._take(8, deadline))[0]
        if b1 & 0x80:
            mask = self._take(4, deadline)
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self._take(n, deadline)))
        else:
            data = self._take(n, deadline)
        return opcode, data

    # Reads one data or close frame; answers pings on the way.
    def read_event(self, secs):
        deadline = time.time() + secs
        try:
            while True:
                opcode, data = self.read_frame(deadline)
                if opcode == 0x9:
                    self.send_frame(0xA, data)
                    continue
                if opcode == 0xA:
                    continue
                if opcode == 0x8:
                    code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                    reason = data[2:].decode("utf-8", "replace")
                    out("CLOSE %d %s t=%.3f" % (code, reason, time.time()))
                    return "close"
                if opcode == 0x2:
                    out("BINARY %d" % len(data))
                else:
                    out("TEXT " + data.decode("utf-8", "replace"))
                return "data"
        except socket.timeout:
            out("TIMEOUT")
            return "timeout"
        except Closed:
            out("EOF t=%.3f" % time.time())
            return "eof"


def connect(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(args.ca)
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    raw = socket.create_connection((args.host, args.port), timeout=10)
    try:
        sock = ctx.wrap_socket(raw, server_hostname=args.sni)
    except (ssl.SSLError, OSError) as e:
        out("REFUSED tls: %s" % e)
        return None
    key = base64.b64encode(os.urandom(16)).decode()
    proto = ("Sec-WebSocket-Protocol: %s\r\n" % args.protocol
             if args.protocol else "")
    req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
           "Sec-WebSocket-Version: 13\r\n%s\r\n"
           % (args.path, args.sni, args.port, key, proto))
    head = b""
    try:
        sock.sendall(req.encode())
        sock.settimeout(10)
        while b"\r\n\r\n" not in head and len(head) < 16384:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    except (ssl.SSLError, OSError) as e:
        out("REFUSED upgrade: %s" % e)
        return None
    status = head.split(b"\r\n", 1)[0].decode("latin-1")
    if not status.startswith("HTTP/1.1 101"):
        out("REFUSED status: %s" % (status or "(none)"))
        return None
    out("UPGRADE " + status)
    c = Client(sock)
    c.buf = head.split(b"\r\n\r\n", 1)[1]
    return c


def run(c, action):
    verb, _, arg = action.strip().partition(" ")
    if verb == "send":
        c.send_frame(0x1, arg.encode())
    elif verb == "binary":
        c.send_frame(0x2, arg.encode())
    elif verb == "big":
        n = int(arg)
        c.send_frame(0x1, b'"' + b"x" * (n - 2) + b'"')
    elif verb == "garbage":
        for _ in range(int(arg)):
            c.send_frame(0x1, b"{not json")
    elif verb == "read":
        return c.read_event(float(arg or 5))
    elif verb == "drain":
        end = time.time() + float(arg)
        while time.time() < end:
            r = c.read_event(max(0.05, end - time.time()))
            if r in ("close", "eof"):
                return r
    elif verb == "wait-close":
        end = time.time() + float(arg or 10)
        while time.time() < end:
            r = c.read_event(max(0.05, end - time.time()))
            if r in ("close", "eof"):
                return r
        out("TIMEOUT")
        return "timeout"
    elif verb == "sleep":
        time.sleep(float(arg))
    elif verb == "unmasked":
        c.send_frame(0x1, arg.encode(), masked=False)
    elif verb == "flood":
        n, _, text = arg.partition(" ")
        frame = c.frame(0x1, text.encode())
        sent = 0
        try:
            for sent in range(1, int(n) + 1):
                c.sock.sendall(frame)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError,
                OSError) as e:
            out("EOF t=%.3f sent=%d (%s)" % (time.time(), sent - 1, e))
            return "eof"
        out("SENT %d" % sent)
    elif verb == "close":
        c.send_frame(0x8, struct.pack("!H", 1000))
        return run(c, "wait-close 5")
    elif verb:
        out("unknown action " + verb)
    return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sni", default="localhost")
    p.add_argument("--ca", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--path", default="/agent/v1")
    p.add_argument("--protocol", default="fleet.v1")
    p.add_argument("actions", nargs="*")
    args = p.parse_args()
    c = connect(args)
    if c is None:
        return 3
    actions = args.actions if args.actions else sys.stdin
    try:
        for a in actions:
            if run(c, a) in ("close", "eof"):
                break
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError) as e:
        out("EOF t=%.3f (%s)" % (time.time(), e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
