#!/usr/bin/python3
"""relay.py: tcpkit relay against socat and HAProxy in TCP mode, in front
of the same echo origin (the reference, bench/ref/ref_echo.c).

Scenarios: R1 and R10, bulk through the relay with 1 and 10 connections
(`tcpkit bench bulk -s 64k`: MB/s echoed back, and the relay's own CPU per
MB, utime+stime of its process tree from /proc over the measured run); RL,
one connection, depth 1, 64 B (p50 latency), with "direct" (no relay) as
the baseline the added latency is measured against.  The relay runs pinned
to CPU 0, the origin and the generator to CPU 1.  Runs are interleaved
(tcpkit socat haproxy direct, tcpkit socat ...), each relay fresh; the
report gives medians with [min-max] and the ratios of the medians.
Loopback only; every run has a duration and a timeout, every process is
killed by PID (its own process group) on the way out.

usage: bench/relay.py --tcpkit PATH [--ref PATH] [--reps N] [-t SECONDS]
                      [--relays tcpkit,socat,haproxy] [--json FILE]
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

from runner import (CLIENT_CPU, build_ref, free_port, log, measured_bench,
                    raise_nofile, run_bench, served, start, stop_all,
                    wait_listening, warm_up)
from stats import med

RELAY_CPU = "0"

SCENARIOS = [
    ("R1", "bulk: 1 connection, 64 KiB writes", ["bulk", "-c", "1",
                                                  "-s", "64k"]),
    ("R10", "bulk: 10 connections, 64 KiB writes", ["bulk", "-c", "10",
                                                     "-s", "64k"]),
    ("RL", "latency: 1 connection, depth 1, 64 B", ["echo", "-c", "1",
                                                     "-d", "1", "-s", "64"]),
]

HAPROXY_CFG = """global
    maxconn 4000
    nbthread 1
defaults
    mode tcp
    option splice-auto
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend relay
    bind 127.0.0.1:{port}
    default_backend origin
backend origin
    server o 127.0.0.1:{origin}
"""


def relay_argv(name, cfg, origin, tmp):
    """(argv, fixed port or None), or None when the program is missing."""
    if name == "tcpkit":
        return [cfg.tcpkit, "relay", "-w", "1", "-q", "-i", "0",
                "127.0.0.1:0", "127.0.0.1:%d" % origin], None
    port = free_port()
    if name == "socat":
        exe = shutil.which("socat")
        return ([exe, "TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr,"
                 "backlog=4096" % port, "TCP:127.0.0.1:%d" % origin],
                port) if exe else None
    if name == "haproxy":
        exe = shutil.which("haproxy")
        if exe is None:
            return None
        path = os.path.join(tmp, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(HAPROXY_CFG.format(port=port, origin=origin))
        return [exe, "-f", path, "-db"], port
    raise ValueError(name)


def bench_argv(cfg, sc, port):
    return (["taskset", "-c", CLIENT_CPU, cfg.tcpkit, "bench"] + sc[2][:1]
            + ["127.0.0.1", str(port)] + sc[2][1:]
            + ["-t", "%gs" % cfg.t, "--threads", "1", "--json", "-q"])


def one_run(cfg, name, sc, origin, tmp):
    """One measured run of scenario sc through relay name (fresh)."""
    if name == "direct":
        doc, rc = run_bench(bench_argv(cfg, sc, origin), tmp, cfg.t + 60)
        return result(sc, doc, rc, None)
    spec = relay_argv(name, cfg, origin, tmp)
    if spec is None:
        return dict(error="not installed")
    argv, fixed = spec
    with served(argv, fixed, RELAY_CPU, os.path.join(tmp, "relay.out")) as (
            p, port):
        warm_up(cfg, port, tmp)
        doc, rc, cpu = measured_bench(p, bench_argv(cfg, sc, port), tmp,
                                      cfg.t + 60)
    return result(sc, doc, rc, cpu)


def result(sc, doc, rc, cpu):
    if doc is None:
        return dict(error="bench printed no result (exit %s)" % rc)
    r = dict(errors=doc["errors"]["total"])
    if sc[0] == "RL":
        r["value"] = doc["latency_ns"]["p50"] / 1000.0  # us
        return r
    mb = doc["bytes_received"] / 1e6
    r["value"] = doc["mb_per_s_received"]
    if cpu is not None and mb:
        r["cpu_op"] = cpu / mb * 1e6  # us per MB
    return r


def fmt(m, key, digits=0):
    v = m.get(key)
    if v is None:
        return "-"
    return "%.*f [%.*f-%.*f]" % (digits, v[0], digits, v[1], digits, v[2])


def ratio(a, b, key):
    if a.get(key) is None or b.get(key) is None or not b[key][0]:
        return "-"
    return "%.2f" % (a[key][0] / b[key][0])


def report(summary, relays):
    lines = []
    for sc in SCENARIOS:
        s = summary[sc[0]]
        lines.append("\n%s: %s\n" % (sc[0], sc[1]))
        if sc[0] == "RL":
            lines.append("| relay | p50 us | added over direct, us |")
            lines.append("|---|---|---|")
            d = s.get("direct", {}).get("value")
            for name in relays + ["direct"]:
                m = s.get(name, {})
                added = ("%.1f" % (m["value"][0] - d[0])
                         if m.get("value") and d and name != "direct"
                         else "-")
                lines.append("| %s | %s | %s |" % (name, fmt(m, "value", 1),
                                                  added))
            continue
        lines.append("| relay | MB/s | CPU us/MB | MB/s vs tcpkit | "
                     "CPU/MB vs tcpkit |")
        lines.append("|---|---|---|---|---|")
        base = s.get("tcpkit", {})
        for name in relays:
            m = s.get(name, {})
            lines.append("| %s | %s | %s | %s | %s |" % (
                name, fmt(m, "value"), fmt(m, "cpu_op"),
                ratio(m, base, "value"), ratio(m, base, "cpu_op")))
    return "\n".join(lines) + "\n"


def compare(cfg, names, what, column, one_run):
    """Every scenario through each of names (and "direct" for RL), rep by
    rep, interleaved, in front of one echo origin: the report on stdout,
    every run in --json.  one_run(cfg, name, sc, origin, tmp) -> dict."""
    raise_nofile()
    tmp = tempfile.mkdtemp(prefix="tk-%s-bench-" % what)
    results = {}
    try:
        build_ref(cfg, tmp)
        opath = os.path.join(tmp, "origin.out")
        with open(opath, "w") as out:
            origin_p = start([cfg.ref, "0"], out, CLIENT_CPU)
        origin = wait_listening(opath, None, origin_p)
        for rep in range(cfg.reps):
            for sc in SCENARIOS:
                for name in names + (["direct"] if sc[0] == "RL" else []):
                    r = one_run(cfg, name, sc, origin, tmp)
                    log("%s bench: rep %d %s %s: %s" % (what, rep + 1,
                                                       sc[0], name, r))
                    results.setdefault((sc[0], name), []).append(r)
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    summary = {}
    for (scn, name), runs in results.items():
        ok = [r for r in runs if "error" not in r]
        m = {k: med([r.get(k) for r in ok]) for k in ("value", "cpu_op")}
        m["errors"] = sum(r.get("errors", 0) for r in ok)
        summary.setdefault(scn, {})[name] = m
    sys.stdout.write(report(summary, names).replace("| relay |",
                                                    "| %s |" % column))
    if cfg.json:
        with open(cfg.json, "w") as f:
            json.dump({"%s/%s" % k: v for k, v in results.items()}, f,
                      indent=1)


def parse_args(doc, which, default):
    """The options of relay.py and socks5.py; which: --relays, --proxies."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--tcpkit", required=True)
    ap.add_argument("--ref")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("-t", type=float, default=2.0, dest="t")
    ap.add_argument(which, default=default)
    ap.add_argument("--json")
    return ap.parse_args()


def main():
    cfg = parse_args(__doc__, "--relays", "tcpkit,socat,haproxy")
    compare(cfg, cfg.relays.split(","), "relay", "relay", one_run)


if __name__ == "__main__":
    main()
