"""ab.py: two builds of `tcpkit serve` against each other, run after run in
alternating order on this noisy machine: the messages per second each
serves and the server's CPU per message, as ratios B/A with their spread.
For a change on the data path (a counter, a clock read): is B's cost seen?

    python3 bench/ab.py --a OLD/tcpkit --b NEW/tcpkit --rounds 7

The bench client is B's program for both, pinned to its own CPU; the
server to another (runner.py).  Every run is bounded in time."""
import argparse
import os
import statistics
import sys
import tempfile

import runner
from runner import CLIENT_CPU, SERVER_CPU, log, measured_bench, served

SCENARIOS = {
    # name: bench arguments (the mode first)
    "depth16": ["echo", "-c", "100", "-d", "16", "-s", "64"],
    "depth1": ["echo", "-c", "100", "-d", "1", "-s", "64"],
    "latency": ["echo", "-c", "1", "-d", "1", "-s", "64"],
}


def one(binary, client, scenario, seconds, tmp):
    """(messages per second, server CPU seconds per million messages)."""
    argv = [binary, "serve", "echo", "-p", "0", "-w", "1", "-q"]
    with served(argv, None, SERVER_CPU, os.path.join(tmp, "srv.out")) as (
            p, port):
        args = SCENARIOS[scenario]
        bench = (["taskset", "-c", CLIENT_CPU, client, "bench", args[0],
                  "127.0.0.1", str(port)] + args[1:]
                 + ["-t", "%gs" % seconds, "--threads", "1", "--json",
                    "-q"])
        doc, rc, cpu = measured_bench(p, bench, tmp, seconds + 30)
    if rc != 0 or doc is None or doc["errors"]["total"] != 0:
        raise RuntimeError("bench failed (exit %s): %r" % (rc, doc))
    msgs = doc["messages"]
    return doc["messages_per_s"], cpu / msgs * 1e6


def spread(xs):
    return "%.3f [%.3f-%.3f]" % (statistics.median(xs), min(xs), max(xs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", required=True, help="the baseline tcpkit")
    ap.add_argument("--b", required=True, help="the changed tcpkit")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--scenarios", default="depth16,depth1")
    o = ap.parse_args()
    if not 1 <= o.rounds <= 50 or not 0.2 <= o.seconds <= 30:
        ap.error("--rounds 1..50, --seconds 0.2..30")
    names = o.scenarios.split(",")
    for n in names:
        if n not in SCENARIOS:
            ap.error("unknown scenario %r (%s)" % (n, ", ".join(SCENARIOS)))
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for sc in names:
                rate, cpu = [], []
                for r in range(o.rounds):
                    # Alternate who goes first: drift hits both alike.
                    order = ("a", "b") if r % 2 == 0 else ("b", "a")
                    got = {}
                    for who in order:
                        got[who] = one(getattr(o, who), o.b, sc, o.seconds,
                                       tmp)
                    rate.append(got["b"][0] / got["a"][0])
                    cpu.append(got["b"][1] / got["a"][1])
                    log("%s round %d: A %.0f msg/s %.3f cpu-s/M, "
                        "B %.0f msg/s %.3f cpu-s/M" % (
                            sc, r + 1, got["a"][0], got["a"][1],
                            got["b"][0], got["b"][1]))
                print("%s: B/A messages per second %s; B/A server CPU per "
                      "message %s (median [min-max] of %d rounds)" % (
                          sc, spread(rate), spread(cpu), o.rounds))
        finally:
            runner.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
