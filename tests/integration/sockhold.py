#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What a systemd .socket unit does for fleetd, for tests and benchmarks
on machines without systemd as PID 1: holds listen sockets and runs the
service with them (sd_listen_fds(3): descriptors from 3, LISTEN_FDS,
LISTEN_PID, LISTEN_FDNAMES), and keeps them across restarts.

  sockhold.py --listen api=127.0.0.1:8443 --listen device=127.0.0.1:8444 \
      --pidfile FILE -- fleetd -c fleetd.conf serve

SIGHUP: restart the service (SIGTERM, wait for it, start it again) while
the sockets stay open, as `systemctl restart fleetd` does with
fleetd.socket active. SIGTERM or SIGINT: stop it and exit. FILE holds the
running service's pid. The service exiting by itself is logged; the next
SIGHUP starts it again.
"""
import argparse
import os
import signal
import socket
import sys
import time


def parse_listen(text):
    name, sep, addr = text.partition("=")
    host, colon, port = addr.rpartition(":")
    if not sep or not colon or not name or not port.isdigit():
        raise argparse.ArgumentTypeError("NAME=HOST:PORT, not " + text)
    return name, host, int(port)


def bind(host, port):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                      socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(4096)
    return s


def start(socks, names, cmd, pidfile):
    pid = os.fork()
    if pid == 0:
        try:
            # Move the sockets out of the way of 3.. first, then in place.
            fds = [os.dup(s.fileno()) for s in socks]
            for i, fd in enumerate(fds):
                os.dup2(fd, 3 + i, inheritable=True)
            env = dict(os.environ, LISTEN_PID=str(os.getpid()),
                       LISTEN_FDS=str(len(socks)),
                       LISTEN_FDNAMES=":".join(names))
            os.closerange(3 + len(socks), 1024)
            os.execvpe(cmd[0], cmd, env)
        finally:
            os._exit(127)
    with open(pidfile + ".tmp", "w") as f:
        f.write("%d\n" % pid)
    os.replace(pidfile + ".tmp", pidfile)
    return pid


def stop(pid, grace):
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", action="append", type=parse_listen,
                    required=True)
    ap.add_argument("--pidfile", required=True)
    ap.add_argument("--grace", type=float, default=30.0)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        ap.error("no command")
    socks = [bind(h, p) for _, h, p in args.listen]
    names = [n for n, _, _ in args.listen]
    wanted = []
    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, _f: wanted.append(s))
    pid = start(socks, names, cmd, args.pidfile)
    while True:
        time.sleep(0.05)
        if pid:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                print("sockhold: %s exited (status %d)" % (cmd[0], status),
                      file=sys.stderr, flush=True)
                pid = 0
        while wanted:
            sig = wanted.pop(0)
            if pid:
                stop(pid, args.grace)
                pid = 0
            if sig != signal.SIGHUP:
                return 0
            pid = start(socks, names, cmd, args.pidfile)


if __name__ == "__main__":
    sys.exit(main())
