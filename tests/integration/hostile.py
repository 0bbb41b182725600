#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A hostile HTTP/1.1 client for tests/integration/test_hostile.sh (Python
standard library only: socket + ssl). It writes bytes exactly as given, so
it can send what well-behaved clients (curl) refuse to: ambiguous framing,
odd methods, raw NUL bytes, huge header lines, pipelined requests.

  hostile.py [options] send FILE
      connects over TLS, writes FILE's bytes in one go (or in pieces of
      --split bytes), then reads answers until the server closes, or until
      nothing arrived for --idle seconds, or --timeout passed. Prints one
      JSON document:
        {"responses": [{"status": 400, "reason": "...", "ctype": "...",
                        "headers": {...}, "body": "..."}],
         "closed": true, "error": null}
      "closed" is true when the server closed the connection (EOF/reset).
      --head: the first answer is to a HEAD request (no body to read).

  hostile.py [options] hold [--count N] [--seconds S]
      opens N connections, writes the start of a request head on each and
      holds them for S seconds (prints "held N" once they are up).

  hostile.py [options] tls
      only a TLS handshake, limited by --max-tls/--min-tls and --ciphers
      (OpenSSL syntax); prints {"ok": bool, "version": ..., "cipher": ...,
      "error": ...}.

Options: --host (127.0.0.1), --port, --ca FILE, --sni NAME (localhost),
--cert FILE --key FILE (client certificate, for the device listener).
Loopback only by intent; everything it opens it closes.
"""
import argparse
import json
import socket
import ssl
import sys
import time


def tls_context(args, ciphers=None, min_tls=None, max_tls=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(args.ca)
    ctx.check_hostname = True
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    versions = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
    if min_tls:
        ctx.minimum_version = versions[min_tls]
    if max_tls:
        ctx.maximum_version = versions[max_tls]
    if ciphers:
        # SECLEVEL=0 so that the client offers what we ask for even when
        # its own policy would not: the server is the one being tested.
        ctx.set_ciphers(ciphers + ":@SECLEVEL=0")
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def connect(args, ctx):
    raw = socket.create_connection((args.host, args.port), timeout=args.timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=args.sni)
    except BaseException:
        raw.close()
        raise


def parse_responses(data, first_is_head):
    """Splits data into HTTP/1.1 responses (Content-Length framed). Returns
    (responses, complete) where complete says the last one is whole."""
    out = []
    pos = 0
    head_pending = first_is_head
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            return out, False
        lines = data[pos:end].decode("latin-1").split("\r\n")
        status_line = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers.setdefault(k.strip().lower(), v.strip())
        try:
            status = int(status_line[1])
        except (IndexError, ValueError):
            status = 0
        body_start = end + 4
        if head_pending:
            n = 0
            head_pending = False
        elif "content-length" in headers:
            try:
                n = int(headers["content-length"])
            except ValueError:
                n = len(data) - body_start
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            # we never expect this; take the rest as the body
            n = len(data) - body_start
        else:
            n = len(data) - body_start
        if len(data) - body_start < n:
            return out, False
        body = data[body_start:body_start + n]
        out.append({
            "status": status,
            "reason": status_line[2] if len(status_line) > 2 else "",
            "ctype": headers.get("content-type", ""),
            "headers": headers,
            "body": body.decode("utf-8", "replace"),
        })
        pos = body_start + n
    return out, True


def cmd_send(args):
    with open(args.file, "rb") as f:
        payload = f.read()
    result = {"responses": [], "closed": False, "error": None}
    data = b""
    try:
        sock = connect(args, tls_context(args))
    except (OSError, ssl.SSLError) as e:
        result["error"] = "connect: %s" % e
        print(json.dumps(result))
        return 0
    try:
        try:
            if args.split > 0:
                for i in range(0, len(payload), args.split):
                    sock.sendall(payload[i:i + args.split])
            else:
                sock.sendall(payload)
        except (OSError, ssl.SSLError) as e:
            # The server may refuse and close before reading it all.
            result["error"] = "send: %s" % e
        deadline = time.monotonic() + args.timeout
        last = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            _, complete = parse_responses(data, args.head)
            if data and complete and now - last >= args.idle:
                break
            if not data and now - last >= args.timeout:
                break
            sock.settimeout(min(0.2, max(0.01, deadline - now)))
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError,
                    ConnectionResetError, BrokenPipeError):
                result["closed"] = True
                break
            except (OSError, ssl.SSLError) as e:
                result["closed"] = True
                result["error"] = "recv: %s" % e
                break
            if not chunk:
                result["closed"] = True
                break
            data += chunk
            last = time.monotonic()
    finally:
        try:
            sock.close()
        except OSError:
            pass
    result["responses"], _ = parse_responses(data, args.head)
    print(json.dumps(result))
    return 0


def cmd_tls(args):
    result = {"ok": False, "version": None, "cipher": None, "error": None}
    try:
        ctx = tls_context(args, args.ciphers, args.min_tls, args.max_tls)
        sock = connect(args, ctx)
        result["ok"] = True
        result["version"] = sock.version()
        result["cipher"] = sock.cipher()[0]
        sock.close()
    except (OSError, ssl.SSLError) as e:
        result["error"] = str(e)
    print(json.dumps(result))
    return 0


def cmd_hold(args):
    """Opens --count connections, writes the start of a head on each and
    holds them (prints "held N" once all are up) for --seconds."""
    socks = []
    try:
        ctx = tls_context(args)
        for _ in range(args.count):
            try:
                s = connect(args, ctx)
                s.sendall(b"GET /api/v1/devices HTTP/1.1\r\nHost: local")
                socks.append(s)
            except (OSError, ssl.SSLError):
                break
        print("held %d" % len(socks), flush=True)
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        for s in socks:
            try:
                s.close()
            except OSError:
                pass
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--sni", default="localhost")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--timeout", type=float, default=8.0)
    p.add_argument("--idle", type=float, default=1.0)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("file")
    s.add_argument("--split", type=int, default=0)
    s.add_argument("--head", action="store_true")
    t = sub.add_parser("tls")
    t.add_argument("--ciphers")
    t.add_argument("--min-tls", choices=["1.2", "1.3"])
    t.add_argument("--max-tls", choices=["1.2", "1.3"])
    h = sub.add_parser("hold")
    h.add_argument("--count", type=int, default=100)
    h.add_argument("--seconds", type=float, default=20)
    args = p.parse_args()
    if args.cmd == "send":
        return cmd_send(args)
    if args.cmd == "hold":
        return cmd_hold(args)
    return cmd_tls(args)


if __name__ == "__main__":
    sys.exit(main())
