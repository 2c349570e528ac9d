#!/usr/bin/python3
"""run.py: the comparison suite: tcpkit serve against the reference epoll
echo server and the servers users would otherwise pick, side by side.

Every server runs alone, pinned to CPU 0 (taskset), fresh for every run;
`tcpkit bench` drives it from CPU 1.  Runs are interleaved (A B C ... A B C
...) and repeated; the report gives medians with min-max, each server's own
CPU time per operation (utime+stime of its process tree from /proc, over the
measured bench run), and ratios to the reference and to tcpkit.  Loopback
only; every run has a duration, the suite a global deadline, and every
process it starts is killed by PID (its own process group) on the way out,
Ctrl-C and errors included.

S8 runs the same way over TLS against the TLS servers (tcpkit serve --tls,
socat OPENSSL-LISTEN), all with one ECDSA P-256 certificate made by the
openssl CLI at suite start; the generator pins it (--pin sha256:HEX).

usage: bench/run.py --tcpkit PATH [--ref PATH] [--mode quick|full|tiny]
                    [--servers a,b,...] [--scenarios S1,...,S8] [--out DIR]
                    [--reps N]
"""
import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time

from catalogue import (FORKING, HERE, LABELS, MODES, SCENARIOS, is_tls,
                       runs_on)
from report import fmt_value, machine_line, markdown, svg
from runner import (Deadline, build_helpers, log, one_run, raise_nofile,
                    server_argv, stop_all)
from stats import summarize


# --- main ---------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tcpkit", required=True)
    ap.add_argument("--ref", help="the reference server's binary "
                    "(default: built from bench/ref with cc -O2)")
    ap.add_argument("--mode", choices=sorted(MODES), default="quick")
    ap.add_argument("--servers", help="comma-separated subset of: " +
                    ",".join(MODES["full"]["servers"]))
    ap.add_argument("--scenarios", help="comma-separated subset of: "
                    "S1,S2,S3,S4,S5,S6,S7,S8 (S8: both TLS runs, S8a "
                    "and S8b)")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    cfg = ap.parse_args()
    m = MODES[cfg.mode]
    cfg.t, cfg.n4, cfg.n7 = m["t"], m["n4"], m["n7"]
    cfg.reps = cfg.reps or m["reps"]
    cfg.servers = cfg.servers.split(",") if cfg.servers else m["servers"]
    for s in cfg.servers:
        if s not in LABELS:
            ap.error("unknown server %r" % s)
    known = [sc[0] for sc in SCENARIOS]
    if cfg.scenarios:
        want = set()
        for x in cfg.scenarios.split(","):
            got = [k for k in known if k == x or (x == "S8" and is_tls(k))]
            if not got:
                ap.error("unknown scenario %r" % x)
            want.update(got)
        cfg.scenarios = want
    else:
        cfg.scenarios = set(known)
    # Only the servers some selected scenario runs against.
    cfg.servers = [n for n in cfg.servers
                   if any(runs_on(k, n) for k in cfg.scenarios)]
    if os.cpu_count() < 2:
        log("bench: fewer than 2 CPUs: pinning is meaningless, running "
            "anyway")
    command = " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:])
    raise_nofile()
    t_start = time.monotonic()
    deadline = t_start + m["deadline"]
    machine = machine_line()

    def on_term(signo, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    results = {}
    incomplete = False
    tmp = tempfile.mkdtemp(prefix="tcpkit-bench-")
    try:
        build_helpers(cfg, tmp)
        servers = []
        for name in cfg.servers:
            if server_argv(name, cfg) is None:
                log("bench: %s: not installed, skipped" % name)
            else:
                servers.append(name)
        cfg.servers = servers
        try:
            for sc in SCENARIOS:
                if sc[0] not in cfg.scenarios:
                    continue
                for rep in range(cfg.reps):
                    for name in servers:
                        if not runs_on(sc[0], name):
                            continue
                        if sc[0] == "S7" and name in FORKING:
                            continue
                        if time.monotonic() + cfg.t + 3 > deadline:
                            raise Deadline()
                        try:
                            r = one_run(cfg, name, sc, tmp)
                        except RuntimeError as e:
                            r = dict(error=str(e).splitlines()[0][:120])
                        results.setdefault((sc[0], name), []).append(r)
                        log("bench: %4.0fs %s rep %d %-11s %s" % (
                            time.monotonic() - t_start, sc[0], rep + 1, name,
                            r.get("error") or fmt_value(sc[0],
                                                        r.get("value"))))
        except Deadline:
            incomplete = True
            log("bench: global deadline reached, reporting what ran")
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    summary = summarize(results, cfg.servers)
    os.makedirs(cfg.out, exist_ok=True)
    md = markdown(summary, cfg.servers, cfg, machine, command)
    if incomplete:
        md += "\n**Incomplete**: the suite's deadline cut it short.\n"
    md += "\nSuite time: %.0f s.\n" % (time.monotonic() - t_start)
    with open(os.path.join(cfg.out, "results.md"), "w") as f:
        f.write(md)
    with open(os.path.join(cfg.out, "results.svg"), "w") as f:
        f.write(svg(summary, cfg.servers, cfg))
    with open(os.path.join(cfg.out, "results.json"), "w") as f:
        json.dump({"%s/%s" % k: v for k, v in results.items()}, f, indent=1)
    print(md)
    log("bench: wrote %s/results.md, results.svg, results.json" % cfg.out)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        stop_all()
        log("bench: interrupted; every process it started is stopped")
        sys.exit(130)
