#!/usr/bin/env python3
"""udp.py: `tcpkit serve echo -u` against a minimal recvfrom/sendto loop in
C (ref/ref_udp_echo.c) and socat, under `tcpkit bench echo -u`: datagrams
per second and server CPU per datagram, interleaved rounds, median
[min-max] and ratios.  Server pinned to CPU 0, generator to CPU 1; every
process started here is killed by PID (its group) on the way out.

usage: bench/udp.py --tcpkit BUILD/tcpkit [--ref BUILD/bench_ref_udp]
                    [-t SECONDS] [--reps N] [--out FILE.md]
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runner import (CLIENT_CPU, SERVER_CPU, free_port, log, run_bench,  # noqa
                    start, stop, stop_all, tree_cpu)
from stats import med  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# (name, title, bench arguments)
SCENARIOS = [
    ("U1", "latency: 1 socket, depth 1, 64 B", ["-c", "1", "-d", "1",
                                                 "-s", "64"]),
    ("U2", "8 sockets, depth 1, 64 B", ["-c", "8", "-d", "1", "-s", "64"]),
    ("U3", "8 sockets, depth 16, 64 B", ["-c", "8", "-d", "16", "-s",
                                          "64"]),
    ("U4", "8 sockets, depth 4, 1400 B", ["-c", "8", "-d", "4", "-s",
                                           "1400"]),
]


def servers(cfg):
    """name -> (label, argv(port), fixed port?)"""
    out = {
        "ref": ("recvfrom/sendto loop (C)",
                lambda port: [cfg.ref, "0"], False),
        "tcpkit": ("tcpkit serve echo -u -w 1",
                   lambda port: [cfg.tcpkit, "serve", "echo", "-u", "-w",
                                 "1", "-q", "-H", "127.0.0.1", "-p", "0"],
                   False),
    }
    if cfg.socat:
        # socat's best UDP echo: a child per peer (fork) copying through
        # PIPE; UDP-RECVFROM would fork per datagram.  -T1 ends idle ones.
        out["socat"] = ("socat -T1 UDP-LISTEN,fork PIPE",
                        lambda port: [cfg.socat, "-T1",
                                      "UDP-LISTEN:%d,bind=127.0.0.1,fork"
                                      % port, "PIPE"], True)
    return out


def wait_ready(outpath, p, port):
    """The port: a "listening on" line's, or for a fixed port the first
    datagram echoed back."""
    deadline = time.monotonic() + 10
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.settimeout(0.05)
    try:
        while time.monotonic() < deadline and p.poll() is None:
            if port is None:
                with open(outpath) as f:
                    for line in f:
                        if line.startswith("listening on "):
                            return int(line.rsplit(":", 1)[1])
                time.sleep(0.02)
                continue
            try:
                probe.sendto(b"probe", ("127.0.0.1", port))
                probe.recvfrom(100)
                return port
            except OSError:
                pass
    finally:
        probe.close()
    raise RuntimeError("server did not start: %r" % open(outpath).read())


def one_run(cfg, name, spec, sc, tmp):
    label, argv_of, fixed = spec
    port = free_port() if fixed else None
    outpath = os.path.join(tmp, "server.out")
    with open(outpath, "w") as out:
        srv = start(argv_of(port), out, SERVER_CPU)
    try:
        port = wait_ready(outpath, srv, port)
        # Unmeasured warm-up, its own run.
        run_bench(["taskset", "-c", CLIENT_CPU, cfg.tcpkit, "bench", "-u",
                   "127.0.0.1", str(port), "-c", "8", "-t", "200ms",
                   "--json", "-q"], tmp, 15)
        cpu0 = tree_cpu(srv.pid)
        doc, rc = run_bench(["taskset", "-c", CLIENT_CPU, cfg.tcpkit,
                             "bench", "echo", "-u", "127.0.0.1", str(port),
                             "-t", "%gs" % cfg.t, "--json", "-q"] + sc[2],
                            tmp, cfg.t + 30)
        cpu = tree_cpu(srv.pid) - cpu0
    finally:
        stop(srv)
    if doc is None or "received" not in doc:
        return dict(error="bench exit %s: %r" % (rc, doc))
    secs = doc["duration_ns"] / 1e9
    n = doc["received"]
    return dict(value=n / secs if secs else 0,
                cpu_op=cpu / n * 1e9 if n else None,
                p50=doc["latency_ns"]["p50"], p99=doc["latency_ns"]["p99"],
                lost=doc["lost"], corrupt=doc["corrupt"],
                reordered=doc["reordered"], sent=doc["sent"])


def fmt(m, unit, scale=1.0, digits=0):
    if m is None:
        return "-"
    v, lo, hi = (x * scale for x in m)
    f = "%%.%df" % digits
    return (f + " [" + f + "-" + f + "]%s") % (v, lo, hi, unit)


def ratio(runs, refs, key):
    """Each round's value over the reference's in the same round (runs
    are interleaved): median [min-max] of those ratios."""
    rs = [a[key] / b[key] for a, b in zip(runs, refs)
          if "error" not in a and "error" not in b and a.get(key)
          and b.get(key)]
    m = med(rs)
    return "-" if m is None else "%.2f [%.2f-%.2f]" % m


def report(cfg, srvs, results):
    lines = ["# UDP echo: tcpkit serve -u, a recvfrom/sendto loop, socat",
             "",
             "`bench/udp.py -t %g --reps %d`: `tcpkit bench echo -u` (CPU 1) "
             "against each server (CPU 0), rounds interleaved; median "
             "[min-max] over the rounds.  CPU/dgram is the server's "
             "user+system time over the run divided by the datagrams "
             "echoed." % (cfg.t, cfg.reps), ""]
    for sc in SCENARIOS:
        lines += ["## %s: %s" % (sc[0], sc[1]), "",
                  "| server | datagrams/s | CPU/dgram | p50 | p99 | lost | "
                  "corrupt | x ref (dgram/s) | x ref (CPU) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        ms = {}
        for name in srvs:
            runs = [r for r in results.get((sc[0], name), [])
                    if "error" not in r]
            if not runs:
                errs = [r["error"] for r in results.get((sc[0], name), [])]
                lines.append("| %s | failed: %s |||||||" %
                             (srvs[name][0], errs[:1]))
                continue
            ms[name] = {k: med([r[k] for r in runs])
                        for k in ("value", "cpu_op", "p50", "p99")}
            ms[name]["lost"] = sum(r["lost"] for r in runs)
            ms[name]["corrupt"] = sum(r["corrupt"] for r in runs)
        refs = results.get((sc[0], "ref"), [])
        for name, m in ms.items():
            runs = results.get((sc[0], name), [])
            lines.append("| %s | %s | %s | %s | %s | %d | %d | %s | %s |" % (
                srvs[name][0], fmt(m["value"], ""),
                fmt(m["cpu_op"], "ns"), fmt(m["p50"], "us", 1e-3, 1),
                fmt(m["p99"], "us", 1e-3, 1), m["lost"], m["corrupt"],
                ratio(runs, refs, "value"), ratio(runs, refs, "cpu_op")))
        lines.append("")
    return "\n".join(lines)


def load(path):
    """The runs a --json file kept, to report them again."""
    with open(path) as f:
        return {tuple(k.split(" ")): v for k, v in json.load(f).items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tcpkit", required=True)
    ap.add_argument("--ref", help="bench_ref_udp (default: built with cc)")
    ap.add_argument("-t", type=float, default=2.0, help="seconds per run")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", help="write the Markdown report here too")
    ap.add_argument("--json", help="write every run here")
    cfg = ap.parse_args()
    cfg.tcpkit = os.path.abspath(cfg.tcpkit)
    cfg.socat = __import__("shutil").which("socat")
    if cfg.socat is None:
        log("socat is not installed (Debian package socat): skipped")
    tmp = tempfile.mkdtemp(prefix="tk-udp-bench-")
    if cfg.ref is None:
        cfg.ref = os.path.join(tmp, "bench_ref_udp")
        subprocess.run(["cc", "-O2", "-o", cfg.ref,
                        os.path.join(HERE, "ref", "ref_udp_echo.c")],
                       check=True, timeout=120)
    srvs = servers(cfg)
    results = {}
    try:
        for rep in range(cfg.reps):
            for sc in SCENARIOS:
                for name, spec in srvs.items():
                    r = one_run(cfg, name, spec, sc, tmp)
                    log("round %d %s %-7s %s" % (rep + 1, sc[0], name,
                                                 json.dumps(r)))
                    results.setdefault((sc[0], name), []).append(r)
    finally:
        stop_all()
    text = report(cfg, srvs, results)
    print(text)
    if cfg.out:
        with open(cfg.out, "w") as f:
            f.write(text + "\n")
    if cfg.json:
        with open(cfg.json, "w") as f:
            json.dump({"%s %s" % k: v for k, v in results.items()}, f,
                      indent=1)


if __name__ == "__main__":
    main()
