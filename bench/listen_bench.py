#!/usr/bin/env python3
"""bench/listen_bench.py: `tcpkit listen` against the tools it replaces.

  A. receive 1 GiB to a file: `tcpkit listen -o FILE` against
     `nc -l > FILE` (MB/s from the first connect to the receiver's exit,
     the receiver's CPU seconds per GiB).  listen -o fsyncs before its
     rename and nc does not, so nc is also timed with an fsync of its file
     after it exits ("nc -l + fsync"): the same durability; and
     `tcpkit listen -o FILE --no-sync` (the rename, no fsync) is the
     like-for-like race against raw nc;
  B. a program per connection: `tcpkit listen -k --sh-exec CMD` against
     `ncat -l -k --sh-exec CMD` and `socat TCP-LISTEN:P,fork SYSTEM:CMD`
     with the same CMD (sh -c 'echo hi'): connections per second, each
     client reading the answer to EOF.

Rounds are interleaved (A: tcpkit, tcpkit --no-sync, nc, tcpkit...), and every figure is
the median with the min-max spread; ratios are of medians.  Loopback only,
ports chosen by the kernel (port 0, found with ss by pid), every loop
bounded.  Usage: bench/listen_bench.py [--tcpkit build/tcpkit] [--rounds 5]
[--no-exec] (A only)
"""
import argparse
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

GIB = 1 << 30
CHUNK = bytes(range(256)) * 4096  # 1 MiB, not all alike


def port_of(pid, timeout=10):
    """The TCP port pid listens on (127.0.0.1), from ss."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["ss", "-ltnpH"], capture_output=True,
                             text=True, timeout=10).stdout
        m = re.search(r"127\.0\.0\.1:(\d+) .*pid=%d," % pid, out)
        if m:
            return int(m.group(1))
        time.sleep(0.02)
    raise RuntimeError("pid %d never listened" % pid)


def send_gib(port):
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        for _ in range(GIB // len(CHUNK)):
            s.sendall(CHUNK)
        s.shutdown(socket.SHUT_WR)
        s.settimeout(60)
        while s.recv(65536):
            pass


def receive_round(name, argv, out):
    """Run one receiver; returns (MB/s, CPU s per GiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out if name == "nc -l" else os.devnull, "wb") as f:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f,
                             stderr=subprocess.DEVNULL)
    port = port_of(p.pid)
    t0 = time.monotonic()
    send_gib(port)
    p.wait(120)
    dt = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime -
                                                  before.ru_stime)
    assert os.path.getsize(out) == GIB, "%s: short file" % name
    synced = dt
    if name == "nc -l":
        fd = os.open(out, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        synced = time.monotonic() - t0
    os.unlink(out)
    return GIB / dt / 1e6, cpu, GIB / synced / 1e6


def conns_round(argv, n, clients=4):
    """Start a server, make n connections from `clients` threads, each
    reading the answer to EOF; returns connections per second."""
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port = port_of(p.pid)
        errors = []

        def worker(k):
            for _ in range(k):
                try:
                    with socket.create_connection(("127.0.0.1", port),
                                                  timeout=20) as s:
                        data = b""
                        while True:
                            b = s.recv(100)
                            if not b:
                                break
                            data += b
                        if data != b"hi\n":
                            errors.append(data)
                except OSError as e:
                    errors.append(e)

        threads = [threading.Thread(target=worker, args=(n // clients,))
                   for _ in range(clients)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        dt = time.monotonic() - t0
        if errors:
            raise RuntimeError("%s: %d errors, e.g. %r" % (argv[0],
                                                          len(errors),
                                                          errors[0]))
        return n / dt
    finally:
        p.terminate()
        p.wait(30)


def spread(v):
    return "%.0f (%.0f-%.0f)" % (statistics.median(v), min(v), max(v))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tcpkit", default="build/tcpkit")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--conns", type=int, default=400)
    ap.add_argument("--no-exec", action="store_true",
                    help="part A only (the file), not B")
    ap.add_argument("--dir", default=None,
                    help="where the 1 GiB files go (default: a temp dir)")
    a = ap.parse_args()
    for prog in ("nc", "ncat", "socat", "ss"):
        if shutil.which(prog) is None:
            sys.exit("listen_bench: %s is not installed" % prog)
    d = a.dir or tempfile.mkdtemp(prefix="tk-listen-bench-")
    out = os.path.join(d, "got")
    tk = os.path.abspath(a.tcpkit)

    recv = {"tcpkit listen -o": ([], []),
            "tcpkit listen -o --no-sync": ([], []), "nc -l": ([], [])}
    nc_synced = []
    for _ in range(a.rounds):
        for name in recv:
            argv = ([tk, "listen", "-o", out, "127.0.0.1", "0"]
                    if name.startswith("tcpkit")
                    else ["nc", "-l", "127.0.0.1", "0"])
            if name.endswith("--no-sync"):
                argv.insert(2, "--no-sync")
            mbs, cpu, synced = receive_round(name, argv, out)
            recv[name][0].append(mbs)
            recv[name][1].append(cpu)
            if name == "nc -l":
                nc_synced.append(synced)

    cmd = "echo hi"
    servers = {} if a.no_exec else {
        "tcpkit listen --sh-exec": [tk, "listen", "-k", "--sh-exec", cmd,
                                    "127.0.0.1", "0"],
        "ncat --sh-exec": ["ncat", "-l", "-k", "127.0.0.1", "0",
                           "--sh-exec", cmd],
        "socat SYSTEM": ["socat", "TCP-LISTEN:0,bind=127.0.0.1,fork,reuseaddr",
                       "SYSTEM:echo hi"],
    }
    cps = {k: [] for k in servers}
    for _ in range(a.rounds):
        for name, argv in servers.items():
            cps[name].append(conns_round(argv, a.conns))

    print("## Receiving 1 GiB to a file (%d rounds, median (min-max))\n"
          % a.rounds)
    print("| receiver | MB/s | CPU s per GiB |")
    print("|---|---|---|")
    for name, (mbs, cpu) in recv.items():
        print("| `%s` | %s | %.2f (%.2f-%.2f) |" % (
            name, spread(mbs), statistics.median(cpu), min(cpu), max(cpu)))
    print("| `nc -l` + fsync | %s | |" % spread(nc_synced))
    tk_mbs = statistics.median(recv["tcpkit listen -o"][0])
    ns_mbs = statistics.median(recv["tcpkit listen -o --no-sync"][0])
    print("\ntcpkit / (nc + fsync): %.2fx; tcpkit --no-sync / nc: %.2fx; "
          "tcpkit / nc: %.2fx\n" % (
              tk_mbs / statistics.median(nc_synced),
              ns_mbs / statistics.median(recv["nc -l"][0]),
              tk_mbs / statistics.median(recv["nc -l"][0])))
    if a.no_exec:
        if a.dir is None:
            os.rmdir(d)
        return
    print("## A program per connection (%d connections from 4 clients, "
          "%d rounds)\n" % (a.conns, a.rounds))
    print("| server | connections/s |")
    print("|---|---|")
    for name, v in cps.items():
        print("| `%s` | %s |" % (name, spread(v)))
    base = statistics.median(cps["tcpkit listen --sh-exec"])
    for name in ("ncat --sh-exec", "socat SYSTEM"):
        print("\ntcpkit / %s: %.2fx" % (name.split()[0],
                                        base / statistics.median(cps[name])))
    if a.dir is None:
        os.rmdir(d)


if __name__ == "__main__":
    main()
