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
import os
import shutil

import relay as R
from runner import free_port, measured_bench, run_bench, served, warm_up

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
    with served(argv, fixed, R.RELAY_CPU, os.path.join(tmp, "proxy.out")) \
            as (p, port):
        # Warm up through the proxy (its processes, pools, caches).
        warm_up(cfg, origin, tmp,
                ["--proxy", "socks5://127.0.0.1:%d" % port])
        doc, rc, cpu = measured_bench(p, bench_argv(cfg, sc, origin, port),
                                      tmp, cfg.t + 60)
    return R.result(sc, doc, rc, cpu)


def main():
    cfg = R.parse_args(__doc__, "--proxies", "tcpkit,dante")
    R.compare(cfg, cfg.proxies.split(","), "socks5", "proxy", one_run)


if __name__ == "__main__":
    main()
