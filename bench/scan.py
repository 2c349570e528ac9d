#!/usr/bin/python3
"""bench/scan.py: a full 1-65535 TCP connect scan of 127.0.0.1 by tcpkit scan,
nmap -sT -T5 and nc -z, in a network namespace of its own (only its loopback,
so no other program's listeners), with a few dozen listeners made here.

Checks that all three find exactly the listeners' ports, and prints a
Markdown table of wall time and CPU (user + system, the child's) per tool:
the median of --runs runs, the tools interleaved.

    /usr/bin/python3 bench/scan.py --tcpkit build/tcpkit [--runs 5]

Needs unshare (util-linux) and ip (iproute2), nmap and netcat-openbsd."""
import argparse
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time


def timed(argv):
    """(wall seconds, CPU seconds, stdout, stderr) of one run of argv."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True, timeout=600)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime -
                                                 before.ru_stime)
    if p.returncode != 0:
        sys.exit("scan.py: %s failed (%d): %s" % (argv[0], p.returncode,
                                                   p.stderr.decode()[-500:]))
    return wall, cpu, p.stdout.decode(), p.stderr.decode()


def tk_open(out, err):
    return sorted(r["port"] for r in json.loads(out)["results"])


def nmap_open(out, err):
    m = re.search(r"Ports: ([^\t\n]*)", out)
    if m is None:
        return []
    return sorted(int(x.split("/")[0]) for x in m.group(1).split(", ")
                  if "/open/" in x)


def nc_open(out, err):
    return sorted(int(m) for m in
                  re.findall(r"Connection to \S+ (\d+) port", err))


def inside(args):
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    held = []
    for _ in range(args.listeners):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        held.append(s)
    ours = sorted(s.getsockname()[1] for s in held)
    tools = [
        ("tcpkit scan -c %d" % args.c,
         [args.tcpkit, "scan", "--open", "--json", "-c", str(args.c),
          "127.0.0.1", "-"], tk_open),
        ("tcpkit scan (defaults, -c 100)",
         [args.tcpkit, "scan", "--open", "--json", "127.0.0.1", "-"],
         tk_open),
        ("nmap -sT -p- -T5",
         ["nmap", "-sT", "-p-", "-T5", "-Pn", "-n", "-oG", "-",
          "127.0.0.1"], nmap_open),
        ("nc -z -w1",
         ["nc", "-z", "-v", "-w1", "127.0.0.1", "1-65535"], nc_open),
    ]
    walls = {name: [] for name, _, _ in tools}
    cpus = {name: [] for name, _, _ in tools}
    extra = {name: [] for name, _, _ in tools}
    for _ in range(args.runs):
        for name, argv, parse in tools:
            wall, cpu, out, err = timed(argv)
            found = parse(out, err)
            missed = sorted(set(ours) - set(found))
            if missed:
                sys.exit("scan.py: %s missed the listeners %s" %
                         (name, missed))
            # A port reported open with nothing listening: a connect
            # that met itself (source port = destination port).
            extra[name] += sorted(set(found) - set(ours))
            walls[name].append(wall)
            cpus[name].append(cpu)
    print(json.dumps({"listeners": len(ours), "runs": args.runs,
                      "wall": walls, "cpu": cpus, "extra": extra}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tcpkit", default="build/tcpkit")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--listeners", type=int, default=40)
    ap.add_argument("-c", type=int, default=1000)
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inside:
        inside(args)
        return
    for prog in ("unshare", "ip", "nmap", "nc"):
        if shutil.which(prog) is None:
            sys.exit("scan.py: %s is not installed" % prog)
    args.tcpkit = os.path.abspath(args.tcpkit)
    p = subprocess.run(["unshare", "-rn", sys.executable,
                        os.path.abspath(__file__), "--inside",
                        "--tcpkit", args.tcpkit, "--runs", str(args.runs),
                        "--listeners", str(args.listeners), "-c",
                        str(args.c)], capture_output=True, timeout=3600)
    if p.returncode != 0:
        sys.exit(p.stderr.decode())
    res = json.loads(p.stdout)
    nmap = statistics.median(res["wall"]["nmap -sT -p- -T5"])
    print("%d listeners on 127.0.0.1, ports 1-65535; the median of %d "
          "runs; every run of every tool found every listener's port.\n"
          % (res["listeners"], res["runs"]))
    print("| tool | wall (s) | CPU (s) | wall vs nmap | false opens |")
    print("|---|---:|---:|---:|---|")
    for name in res["wall"]:
        w = statistics.median(res["wall"][name])
        c = statistics.median(res["cpu"][name])
        x = res["extra"][name]
        print("| `%s` | %.2f | %.2f | %.2fx | %s |" % (
            name, w, c, nmap / w,
            "none" if not x else "%d in %d runs (ports %s)" % (
                len(x), res["runs"], ", ".join(map(str, x)))))


if __name__ == "__main__":
    main()
