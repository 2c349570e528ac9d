#!/usr/bin/python3
"""socks5.py: tcpkit serve socks5 against Dante (danted) as SOCKS5 servers
in front of the same echo origin (bench/ref/ref_echo.c), every connection
of `tcpkit bench` going through the proxy (--proxy socks5://).

Scenarios as relay.py's: R1 and R10, bulk through the proxy with 1 and 10
connections (MB/s echoed back, and the proxy's CPU per MB, utime+stime of
its process tree over the measured run); RL, one connection, depth 1,
64 B (p50 latency), with "direct" (no proxy) as the baseline.  The proxy
runs pinned to CPU 0, the origin and the generator to CPU 1; runs are
interleaved, each proxy fresh.  Loopback only; every run bounded; every
process killed by PID (its own process group).  Dante needs root (its
user.privileged), as in the tests.

usage: bench/socks5.py --tcpkit PATH [--ref PATH] [--reps N] [-t SECONDS]
                       [--proxies tcpkit,dante] [--json FILE]
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import relay as R
from runner import (CLIENT_CPU, free_port, log, raise_nofile, run_bench,
                    start, stop, stop_all, tree_cpu, wait_listening)
from stats import med

DANTE_CFG = """logoutput: {log}
internal: 127.0.0.1 port = {port}
external: lo
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}
socks pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}
"""


def proxy_argv(name, cfg, tmp):
    """(argv, fixed port or None), or None when the program is missing."""
    if name == "tcpkit":
        return [cfg.tcpkit, "serve", "socks5", "-w", "1", "-q", "-i", "0",
                "-p", "0"], None
    if name == "dante":
        exe = shutil.which("danted")
        if exe is None or os.geteuid() != 0:
            return None
        port = free_port()
        path = os.path.join(tmp, "danted.conf")
        with open(path, "w") as f:
            f.write(DANTE_CFG.format(port=port,
                                     log=os.path.join(tmp, "danted.log")))
        return [exe, "-f", path, "-N", "1"], port
    raise ValueError(name)


def bench_argv(cfg, sc, origin, proxy_port):
    argv = R.bench_argv(cfg, sc, origin)
    if proxy_port is not None:
        argv += ["--proxy", "socks5://127.0.0.1:%d" % proxy_port]
    return argv


def one_run(cfg, name, sc, origin, tmp):
    if name == "direct":
        doc, rc = run_bench(bench_argv(cfg, sc, origin, None), tmp,
                            cfg.t + 60)
        return R.result(sc, doc, rc, None)
    spec = proxy_argv(name, cfg, tmp)
    if spec is None:
        return dict(error="not installed (or not root)")
    argv, fixed = spec
    outpath = os.path.join(tmp, "proxy.out")
    with open(outpath, "w") as out:
        p = start(argv, out, R.RELAY_CPU)
    try:
        port = wait_listening(outpath, fixed, p)
        # Warm up through the proxy (its processes, pools, caches).
        run_bench(["taskset", "-c", CLIENT_CPU, cfg.tcpkit, "bench",
                   "127.0.0.1", str(origin), "-c", "10", "-t", "200ms",
                   "--proxy", "socks5://127.0.0.1:%d" % port, "--json",
                   "-q"], tmp, 15)
        cpu0 = tree_cpu(p.pid)
        doc, rc = run_bench(bench_argv(cfg, sc, origin, port), tmp,
                            cfg.t + 60)
        cpu = tree_cpu(p.pid) - cpu0
    finally:
        stop(p)
    return R.result(sc, doc, rc, cpu)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tcpkit", required=True)
    ap.add_argument("--ref")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("-t", type=float, default=2.0, dest="t")
    ap.add_argument("--proxies", default="tcpkit,dante")
    ap.add_argument("--json")
    cfg = ap.parse_args()
    proxies = cfg.proxies.split(",")
    raise_nofile()
    tmp = tempfile.mkdtemp(prefix="tk-socks5-bench-")
    results = {}
    try:
        R.build_ref(cfg, tmp)
        opath = os.path.join(tmp, "origin.out")
        with open(opath, "w") as out:
            origin_p = start([cfg.ref, "0"], out, CLIENT_CPU)
        origin = wait_listening(opath, None, origin_p)
        for rep in range(cfg.reps):
            for sc in R.SCENARIOS:
                for name in proxies + (["direct"] if sc[0] == "RL" else []):
                    r = one_run(cfg, name, sc, origin, tmp)
                    log("socks5 bench: rep %d %s %s: %s" % (rep + 1, sc[0],
                                                           name, r))
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
    sys.stdout.write(R.report(summary, proxies).replace("| relay |",
                                                        "| proxy |"))
    if cfg.json:
        with open(cfg.json, "w") as f:
            json.dump({"%s/%s" % k: v for k, v in results.items()}, f,
                      indent=1)


if __name__ == "__main__":
    main()
