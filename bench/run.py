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
import hashlib
import argparse
import json
import os
import platform
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.join(HERE, "peers")
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVER_CPU = "0"
CLIENT_CPU = "1"

# Scenarios: (name, title, bench arguments, what one operation is).
# {n4} and {n7} are the mode's connection counts for S4 and S7.
SCENARIOS = [
    ("S1", "latency: 1 connection, depth 1, 64 B",
     ["echo", "-c", "1", "-d", "1", "-s", "64"], "msg"),
    ("S2", "100 connections, depth 1, 64 B",
     ["echo", "-c", "100", "-d", "1", "-s", "64"], "msg"),
    ("S3", "100 connections, depth 16, 64 B",
     ["echo", "-c", "100", "-d", "16", "-s", "64"], "msg"),
    ("S4", "{n4} connections, depth 1, 64 B",
     ["echo", "-c", "{n4}", "-d", "1", "-s", "64"], "msg"),
    ("S5", "bulk: 10 connections, 64 KiB writes",
     ["bulk", "-c", "10", "-s", "64k"], "MB"),
    ("S6", "connection rate: 50 parallel, connect-line-close",
     ["rate", "-c", "50"], "conn"),
    ("S7", "memory: {n7} idle connections",
     ["idle", "-c", "{n7}"], "conn"),
    # S8: over TLS, against the TLS servers only (TLS_SERVERS).
    ("S8a", "TLS handshakes: 50 parallel, full handshake-line-close",
     ["rate", "-c", "50"], "conn"),
    ("S8b", "TLS echo: 100 connections, depth 1, 64 B",
     ["echo", "-c", "100", "-d", "1", "-s", "64"], "msg"),
]

MODES = {
    # duration of a measured run (s), repetitions, S4 and S7 sizes, servers
    "tiny": dict(t=0.3, reps=1, n4=100, n7=200, deadline=50,
                 servers=["ref", "tcpkit", "tcpkit-tls"]),
    "quick": dict(t=0.8, reps=3, n4=1000, n7=10000, deadline=170,
                  servers=["ref", "tcpkit", "go", "node", "asyncio",
                           "tcpkit-tls", "socat-tls"]),
    "full": dict(t=3.0, reps=3, n4=1000, n7=10000, deadline=1140,
                 servers=["ref", "ref-splice", "tcpkit", "tcpkit-w2",
                          "py-threads", "asyncio", "node", "go", "socat",
                          "ncat", "tcpkit-tls", "socat-tls"]),
}

# The TLS servers run S8 only, and the plain ones S1-S7 only.
# openssl s_server is not one of them: it serves one client at a time and
# does not echo (it copies the client's data to its stdout).
TLS_SERVERS = {"tcpkit-tls", "socat-tls"}

# Servers that fork a process per connection: S7 would mean 10,000
# processes, so it is not run for them.
FORKING = {"socat", "ncat", "socat-tls"}

# The reference with splice(2) instead of a copy through user space: the
# bulk question only (S5).
BULK_ONLY = {"ref-splice"}

LABELS = {
    "ref": "reference (epoll, C)",
    "ref-splice": "reference, splice (epoll, C)",
    "tcpkit": "tcpkit serve -w 1",
    "tcpkit-w2": "tcpkit serve -w 2 (unpinned)",
    "py-threads": "Python threads",
    "asyncio": "Python asyncio",
    "node": "Node.js net",
    "go": "Go io.Copy",
    "socat": "socat fork PIPE",
    "ncat": "ncat -k -e cat",
    "tcpkit-tls": "tcpkit serve --tls -w 1",
    "socat-tls": "socat OPENSSL-LISTEN fork PIPE",
}


def is_tls(scn):
    return scn.startswith("S8")


def runs_on(scn, name):
    """Whether scenario scn is run against server name."""
    if name in BULK_ONLY:
        return scn == "S5"
    return is_tls(scn) == (name in TLS_SERVERS)


def base_of(scn):
    """The server ratios are taken against, besides the reference."""
    return "tcpkit-tls" if is_tls(scn) else "tcpkit"


class Deadline(Exception):
    pass


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- process bookkeeping --------------------------------------------------

STARTED = []  # Popen objects still to be reaped


def start(argv, out, cpu):
    """Start argv in its own process group, stdout and stderr to file out,
    pinned to cpu (None: unpinned)."""
    if cpu is not None:
        argv = ["taskset", "-c", cpu] + argv
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True,
                         preexec_fn=raise_nofile)
    STARTED.append(p)
    return p


def stop(p):
    """Kill p's process group (p's PID: it leads it) and reap p."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    else:
        # forked children (socat, ncat) were in the group too
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if p in STARTED:
        STARTED.remove(p)


def stop_all():
    for p in list(STARTED):
        stop(p)


def proc_tree(root):
    """root and its descendants, from /proc."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def tree_cpu(root):
    """CPU seconds of root's tree: utime+stime of the live processes, and
    cutime+cstime for the children they have reaped."""
    ticks = 0
    for pid in proc_tree(root):
        try:
            with open("/proc/%d/stat" % pid) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        # fields[0] is field 3 (state): utime is field 14
        ticks += sum(int(x) for x in fields[11:15])
    return ticks / CLK_TCK


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def nfds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return 0


# --- the servers ------------------------------------------------------------

def wait_listening(outpath, port, p, timeout=10):
    """The port: from a "listening on HOST:PORT" line in outpath, or, when
    port is given, the first connect that succeeds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            break
        if port is None:
            with open(outpath) as f:
                for line in f:
                    if line.startswith("listening on "):
                        return int(line.rsplit(":", 1)[1])
        else:
            try:
                socket.create_connection(("127.0.0.1", port),
                                         timeout=1).close()
                return port
            except OSError:
                pass
        time.sleep(0.02)
    with open(outpath) as f:
        raise RuntimeError("server did not start: %r" % f.read()[-500:])


def server_argv(name, cfg):
    """(argv, fixed port or None, pinned cpu), or None when it is missing."""
    py = sys.executable
    if name == "ref":
        return [cfg.ref, "0"], None, SERVER_CPU
    if name == "ref-splice":
        return [cfg.ref_splice, "0"], None, SERVER_CPU
    if name in ("tcpkit", "tcpkit-w2"):
        w = "1" if name == "tcpkit" else "2"
        return ([cfg.tcpkit, "serve", "echo", "-H", "127.0.0.1", "-p", "0",
                 "-w", w, "-q"], None,
                SERVER_CPU if name == "tcpkit" else None)
    if name == "py-threads":
        return [py, os.path.join(PEERS, "py_threads.py"), "0"], None, \
            SERVER_CPU
    if name == "asyncio":
        return [py, os.path.join(PEERS, "py_asyncio.py"), "0"], None, \
            SERVER_CPU
    if name == "node":
        node = shutil.which("node")
        if node is None:
            return None
        return [node, os.path.join(PEERS, "node_net.js"), "0"], None, \
            SERVER_CPU
    if name == "go":
        if cfg.go_bin is None:
            return None
        return [cfg.go_bin, "0"], None, SERVER_CPU
    if name == "socat":
        socat = shutil.which("socat")
        if socat is None:
            return None
        port = free_port()
        return ([socat, "TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr,"
                 "backlog=4096" % port, "PIPE"], port, SERVER_CPU)
    if name == "tcpkit-tls":
        return ([cfg.tcpkit, "serve", "echo", "-H", "127.0.0.1", "-p", "0",
                 "-w", "1", "-q", "--tls", "--cert", cfg.cert, "--key",
                 cfg.key], None, SERVER_CPU)
    if name == "socat-tls":
        socat = shutil.which("socat")
        if socat is None:
            return None
        port = free_port()
        return ([socat, "OPENSSL-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr,"
                 "backlog=4096,cert=%s,key=%s,verify=0" % (
                     port, cfg.cert, cfg.key), "PIPE"], port, SERVER_CPU)
    if name == "ncat":
        ncat = shutil.which("ncat")
        if ncat is None:
            return None
        port = free_port()
        return ([ncat, "-k", "-l", "-m", "20000", "127.0.0.1", str(port),
                 "-e", "/bin/cat"], port, SERVER_CPU)
    raise ValueError(name)


def make_cert(cfg, tmp):
    """One self-signed ECDSA P-256 certificate for every TLS server, made
    by the openssl CLI; cfg.pin is its SHA-256 for the generator."""
    cfg.cert = os.path.join(tmp, "cert.pem")
    cfg.key = os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", cfg.key,
                    "-out", cfg.cert, "-days", "2", "-subj",
                    "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, timeout=60, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    with open(cfg.cert) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    cfg.pin = "sha256:" + hashlib.sha256(der).hexdigest()


def build_helpers(cfg, tmp):
    cfg.cert = cfg.key = cfg.pin = None
    if TLS_SERVERS & set(cfg.servers):
        if shutil.which("openssl") is None:
            log("bench: openssl: not installed, the TLS servers skipped")
            cfg.servers = [s for s in cfg.servers if s not in TLS_SERVERS]
        else:
            make_cert(cfg, tmp)
    if cfg.ref is None:
        cfg.ref = os.path.join(tmp, "bench_ref")
        subprocess.run(["cc", "-O2", "-o", cfg.ref,
                        os.path.join(HERE, "ref", "ref_echo.c")],
                       check=True, timeout=120)
    # bench_ref_splice: next to --ref (CMake builds both), else from source.
    cfg.ref_splice = os.path.join(os.path.dirname(cfg.ref),
                                  "bench_ref_splice")
    if "ref-splice" in cfg.servers and not os.access(cfg.ref_splice,
                                                     os.X_OK):
        cfg.ref_splice = os.path.join(tmp, "bench_ref_splice")
        subprocess.run(["cc", "-O2", "-o", cfg.ref_splice,
                        os.path.join(HERE, "ref", "ref_splice.c")],
                       check=True, timeout=120)
    cfg.go_bin = None
    if "go" in cfg.servers:
        go = shutil.which("go")
        if go is None:
            log("bench: go: not installed (apt-get install golang-go), "
                "skipped")
        else:
            cfg.go_bin = os.path.join(tmp, "go_echo")
            env = dict(os.environ, GOCACHE=os.path.join(tmp, "gocache"),
                       GOPATH=os.path.join(tmp, "gopath"), GO111MODULE="off",
                       GOFLAGS="")
            subprocess.run([go, "build", "-o", cfg.go_bin,
                            os.path.join(PEERS, "go_echo.go")],
                           check=True, timeout=300, env=env)


# --- one run ----------------------------------------------------------------

def tls_args(cfg, scn):
    return ["--tls", "--pin", cfg.pin] if is_tls(scn) else []


def bench_argv(cfg, sc, port, t, extra=()):
    args = [a.format(n4=cfg.n4, n7=cfg.n7) for a in sc[2]]
    extra = tls_args(cfg, sc[0]) + list(extra)
    return (["taskset", "-c", CLIENT_CPU, cfg.tcpkit, "bench"] + args[:1]
            + ["127.0.0.1", str(port)] + args[1:]
            + ["-t", "%gs" % t, "--threads", "1", "--json", "-q"]
            + list(extra))


def run_bench(argv, tmp, timeout, during=None):
    """Run one bench, calling during() every 50ms while it runs; returns
    its JSON document (None if it printed none) and its exit code."""
    out = os.path.join(tmp, "bench.json")
    with open(out, "w") as f:
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL,
                             start_new_session=True)
    STARTED.append(p)
    try:
        deadline = time.monotonic() + timeout
        while p.poll() is None:
            if time.monotonic() > deadline:
                break
            if during is not None:
                during()
            time.sleep(0.05)
    finally:
        stop(p)
    try:
        with open(out) as f:
            return json.load(f), p.returncode
    except ValueError:
        return None, p.returncode


def one_run(cfg, name, sc, tmp):
    spec = server_argv(name, cfg)
    outpath = os.path.join(tmp, "server.out")
    argv, fixed, cpu = spec
    with open(outpath, "w") as out:
        srv = start(argv, out, cpu)
    try:
        port = wait_listening(outpath, fixed, srv)
        if sc[0] != "S7":
            # Unmeasured warm-up (JIT, first allocations), its own run.
            run_bench(["taskset", "-c", CLIENT_CPU, cfg.tcpkit, "bench",
                       "127.0.0.1", str(port), "-c", "10", "-t", "200ms",
                       "--json", "-q"] + tls_args(cfg, sc[0]), tmp, 15)
        rss0, fds0 = rss_kib(srv.pid), nfds(srv.pid)
        samples = []
        want = fds0 + int(cfg.n7 * 0.99)

        def during():
            if nfds(srv.pid) >= want:
                samples.append(rss_kib(srv.pid))

        # A TLS handshake costs milliseconds (more under sanitizers): give
        # the TLS runs at least a second, or a tiny run may count none.
        t = max(cfg.t, 1.0) if sc[0].startswith("S8") else cfg.t
        cpu0 = tree_cpu(srv.pid)
        doc, rc = run_bench(bench_argv(cfg, sc, port, t), tmp, t + 60,
                            during if sc[0] == "S7" else None)
        cpu1 = tree_cpu(srv.pid)
        alive = srv.poll() is None
    finally:
        stop(srv)
    if doc is None:
        return dict(error="bench printed no result (exit %s)" % rc)
    r = dict(errors=doc["errors"]["total"], cpu_s=cpu1 - cpu0, rc=rc,
             alive=alive)
    if sc[0] == "S7":
        if samples and rss0 is not None and doc["established"]:
            r["value"] = (statistics.median(samples) - rss0) * 1024.0 \
                / doc["established"]
            r["established"] = doc["established"]
        else:
            r["error"] = "connections never all open (%d of %d)" % (
                doc["established"], cfg.n7)
        return r
    ops = doc["messages"] + doc.get("drained", 0)
    if sc[0] == "S5":
        mb = doc["bytes_received"] / 1e6
        r["value"] = doc["mb_per_s_received"]
        r["cpu_op"] = (cpu1 - cpu0) / mb if mb else None  # s per MB
    else:
        r["value"] = doc["messages_per_s"]
        r["cpu_op"] = (cpu1 - cpu0) / ops if ops else None  # s per op
    if sc[0] == "S1":
        r["p50"] = doc["latency_ns"]["p50"]
        r["p99"] = doc["latency_ns"]["p99"]
    if not ops:
        r["error"] = "no operation completed"
    return r


# --- reporting ----------------------------------------------------------------

def med(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return statistics.median(xs), min(xs), max(xs)


def summarize(results, servers):
    """{scenario: {server: {metric: (median, min, max)}}}"""
    out = {}
    for sc in SCENARIOS:
        s = out.setdefault(sc[0], {})
        for name in servers:
            runs = [r for r in results.get((sc[0], name), [])
                    if "error" not in r]
            errs = [r["error"] for r in results.get((sc[0], name), [])
                    if "error" in r]
            if not runs:
                s[name] = dict(failed=errs[0] if errs else "not run",
                               runs=0)
                continue
            m = dict(runs=len(runs), failed_runs=len(errs),
                     errors=sum(r.get("errors", 0) for r in runs))
            for k in ("value", "cpu_op", "p50", "p99"):
                v = med([r.get(k) for r in runs])
                if v is not None:
                    m[k] = v
            s[name] = m
    return out


def fmt_value(scn, v):
    if v is None:
        return "-"
    if scn == "S5":
        return "%.0f MB/s" % v
    if scn == "S7":
        return "%.0f B" % v
    if scn == "S6":
        return "%.0f conn/s" % v
    if scn == "S8a":
        return "%.0f hs/s" % v
    return "%.0f msg/s" % v


def fmt_cpu(scn, v):
    if v is None:
        return "-"
    if scn == "S5":
        return "%.2f ms/MB" % (v * 1e3)
    return "%.2f us" % (v * 1e6)


def fmt_us(ns):
    return "%.0f us" % (ns / 1e3)


def fmt_range(m, key, f):
    """'median [min-max] unit' from f's 'number unit'."""
    v = m.get(key)
    if v is None:
        return "-"
    parts = [f(x).split(" ", 1) for x in v]
    unit = (" " + parts[0][1]) if len(parts[0]) > 1 else ""
    return "%s [%s-%s]%s" % (parts[0][0], parts[1][0], parts[2][0], unit)


def ratio(a, b):
    if a is None or b is None or not b[0]:
        return "-"
    return "%.2fx" % (a[0] / b[0])


def markdown(summary, servers, cfg, machine, command):
    L = []
    L.append("# tcpkit bench suite: results (%s mode)" % cfg.mode)
    L.append("")
    L.append("Machine: %s." % machine)
    L.append("")
    L.append("Command: `%s`" % command)
    L.append("")
    L.append("Each server pinned to CPU %s, `tcpkit bench --threads 1` "
             "pinned to CPU %s (tcpkit -w 2 is not pinned); a fresh server "
             "for every run, %d interleaved repetition(s) of %gs each "
             "(after a 200 ms unmeasured warm-up run); median [min-max]. "
             "CPU is the server's own (utime+stime of its process tree, "
             "/proc/PID/stat) over the measured run divided by the "
             "operations completed; x ref and x tcpkit are ratios of "
             "medians." % (SERVER_CPU, CLIENT_CPU, cfg.reps, cfg.t))
    L.append("")
    plain = [n for n in servers if n not in TLS_SERVERS]
    # the summary: one row per server
    L.append("## Summary (medians)" if plain else "")
    L.append("")
    hdr = ["server", "S1 p50", "S1 p99", "S2 msg/s", "S2 CPU/msg",
           "S3 msg/s", "S3 CPU/msg", "S4 msg/s", "S4 CPU/msg", "S5 MB/s",
           "S5 CPU/MB", "S6 conn/s", "S6 CPU/conn", "S7 RSS/conn"]
    if plain:
        L.append("| " + " | ".join(hdr) + " |")
        L.append("|" + "---|" * len(hdr))
    for name in plain:
        row = [LABELS[name]]

        def get(scn, key):
            return summary[scn][name].get(key)
        for key in ("p50", "p99"):
            v = get("S1", key)
            row.append(fmt_us(v[0]) if v else
                       summary["S1"][name].get("failed", "-"))
        for scn in ("S2", "S3", "S4", "S5", "S6"):
            v = get(scn, "value")
            c = get(scn, "cpu_op")
            row.append(("%.0f" % v[0]) if v else
                       summary[scn][name].get("failed", "-"))
            row.append(fmt_cpu(scn, c[0]) if c else "-")
        v = get("S7", "value")
        row.append(("%.0f B" % v[0]) if v else
                   ("n/a (process per connection)" if name in FORKING
                    else summary["S7"][name].get("failed", "-")))
        L.append("| " + " | ".join(row) + " |")
    L.append("")
    tls = [n for n in servers if n in TLS_SERVERS]
    if tls:
        L.append("## S8 summary: TLS (medians)")
        L.append("")
        L.append("Same certificate for every TLS server (ECDSA P-256, "
                 "self-signed, made by the openssl CLI); the generator "
                 "pins it (`--tls --pin sha256:...`).  In the S8 tables "
                 "x tcpkit is relative to tcpkit serve --tls; there is no "
                 "TLS reference server, so x ref is -.")
        L.append("")
        L.append("| server | S8a handshakes/s | S8a CPU/handshake "
                 "| S8b msg/s | S8b CPU/msg |")
        L.append("|---|---|---|---|---|")
        for name in tls:
            row = [LABELS[name]]
            for scn in ("S8a", "S8b"):
                v = summary[scn][name].get("value")
                c = summary[scn][name].get("cpu_op")
                row.append(("%.0f" % v[0]) if v else
                           summary[scn][name].get("failed", "-"))
                row.append(fmt_cpu(scn, c[0]) if c else "-")
            L.append("| " + " | ".join(row) + " |")
        L.append("")
    for sc in SCENARIOS:
        scn = sc[0]
        names = [n for n in servers if runs_on(scn, n)]
        if not names:
            continue
        title = sc[1].format(n4=cfg.n4, n7=cfg.n7)
        L.append("## %s: %s" % (scn, title))
        L.append("")
        ref = summary[scn].get("ref", {})
        tk = summary[scn].get(base_of(scn), {})
        if scn == "S7":
            L.append("| server | RSS growth per connection | x ref "
                     "| x tcpkit | runs |")
            L.append("|---|---|---|---|---|")
        elif scn == "S1":
            L.append("| server | p50 | p99 | p50 x ref | p99 x ref "
                     "| p50 x tcpkit | msg/s | CPU/msg | CPU x ref "
                     "| CPU x tcpkit | runs |")
            L.append("|---|---|---|---|---|---|---|---|---|---|---|")
        else:
            L.append("| server | throughput | x ref | x tcpkit | CPU/op "
                     "| CPU x ref | CPU x tcpkit | runs |")
            L.append("|---|---|---|---|---|---|---|---|")
        for name in names:
            m = summary[scn][name]
            if m.get("runs", 0) == 0:
                why = m.get("failed", "not run")
                if scn == "S7" and name in FORKING:
                    why = "n/a: a process per connection"
                L.append("| %s | %s |" % (LABELS[name], why))
                continue
            runs = "%d" % m["runs"]
            if m.get("failed_runs"):
                runs += " (%d failed)" % m["failed_runs"]
            if m.get("errors"):
                runs += ", %d errors" % m["errors"]
            if scn == "S7":
                L.append("| %s | %s | %s | %s | %s |" % (
                    LABELS[name],
                    fmt_range(m, "value", lambda v: "%.0f B" % v),
                    ratio(m.get("value"), ref.get("value")),
                    ratio(m.get("value"), tk.get("value")), runs))
            elif scn == "S1":
                L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s "
                         "| %s | %s |" % (
                             LABELS[name], fmt_range(m, "p50", fmt_us),
                             fmt_range(m, "p99", fmt_us),
                             ratio(m.get("p50"), ref.get("p50")),
                             ratio(m.get("p99"), ref.get("p99")),
                             ratio(m.get("p50"), tk.get("p50")),
                             fmt_range(m, "value", lambda v: "%.0f" % v),
                             fmt_range(m, "cpu_op",
                                       lambda v: fmt_cpu(scn, v)),
                             ratio(m.get("cpu_op"), ref.get("cpu_op")),
                             ratio(m.get("cpu_op"), tk.get("cpu_op")),
                             runs))
            else:
                L.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    LABELS[name],
                    fmt_range(m, "value", lambda v: fmt_value(scn, v)),
                    ratio(m.get("value"), ref.get("value")),
                    ratio(m.get("value"), tk.get("value")),
                    fmt_range(m, "cpu_op", lambda v: fmt_cpu(scn, v)),
                    ratio(m.get("cpu_op"), ref.get("cpu_op")),
                    ratio(m.get("cpu_op"), tk.get("cpu_op")), runs))
        L.append("")
    if plain:
        L.extend(targets(summary, servers))
    return "\n".join(L) + "\n"


def targets(summary, servers):
    """Issue 4's targets, measured: lines of a Markdown table."""
    L = ["## Issue 4 targets", "",
         "| target | measured | met |", "|---|---|---|"]

    def get(scn, name, key):
        m = summary.get(scn, {}).get(name, {})
        v = m.get(key)
        return v[0] if v else None

    def row(what, val, ok):
        L.append("| %s | %s | %s |" % (
            what, val, "-" if ok is None else ("yes" if ok else "**no**")))

    for scn in ("S2", "S3", "S4"):
        t, r, g = (get(scn, n, "cpu_op") for n in ("tcpkit", "ref", "go"))
        q = t / r if t and r else None
        row("%s CPU/msg <= 1.05x ref" % scn,
            "%.2fx (%s vs %s)" % (q, fmt_cpu(scn, t), fmt_cpu(scn, r))
            if q else "-", q <= 1.05 if q else None)
        q = t / g if t and g else None
        row("%s CPU/msg <= 0.75x Go" % scn,
            "%.2fx (Go %s)" % (q, fmt_cpu(scn, g)) if q else "-",
            q <= 0.75 if q else None)
    for key in ("p50", "p99"):
        t, r = get("S1", "tcpkit", key), get("S1", "ref", key)
        q = t / r if t and r else None
        row("S1 %s within 5%% of ref" % key,
            "%.2fx (%s vs %s)" % (q, fmt_us(t), fmt_us(r)) if q else "-",
            q <= 1.05 if q else None)
    t, r = get("S5", "tcpkit", "value"), get("S5", "ref", "value")
    q = t / r if t and r else None
    row("S5 bulk >= 1.5x ref", "%.2fx (%.0f vs %.0f MB/s)" % (q, t, r)
        if q else "-", q >= 1.5 if q else None)
    others = [(n, get("S5", n, "value")) for n in servers
              if n not in ("tcpkit", "tcpkit-w2", "ref", "ref-splice")]
    others = [(n, v) for n, v in others if v]
    if t and others:
        best = max(others, key=lambda x: x[1])
        row("S5 bulk ahead of every peer", "best peer %s %.0f MB/s" % (
            LABELS[best[0]], best[1]), t > best[1])
    t, r = get("S6", "tcpkit", "value"), get("S6", "ref", "value")
    q = t / r if t and r else None
    row("S6 rate >= ref", "%.2fx (%.0f vs %.0f conn/s)" % (q, t, r)
        if q else "-", q >= 1.0 if q else None)
    t, r = get("S6", "tcpkit", "cpu_op"), get("S6", "ref", "cpu_op")
    q = t / r if t and r else None
    row("S6 CPU/conn <= 1.1x ref", "%.2fx (%s vs %s)" % (
        q, fmt_cpu("S6", t), fmt_cpu("S6", r)) if q else "-",
        q <= 1.1 if q else None)
    t = get("S7", "tcpkit", "value")
    row("S7 RSS/idle conn <= 1 KiB", "%.0f B" % t if t is not None else "-",
        t <= 1024 if t is not None else None)
    L.append("")
    return L


def svg(summary, servers, cfg):
    """Bars per scenario: throughput (or latency, memory) and CPU per
    operation, each relative to the reference server."""
    colors = {"value": "#3b7dd8", "cpu_op": "#e07b39"}
    panels = []
    for sc in SCENARIOS:
        scn = sc[0]
        if scn == "S1":
            metrics = [("p50", "p50 latency"), ("cpu_op", "CPU/msg")]
        elif scn == "S7":
            metrics = [("value", "RSS/conn (bytes, absolute)")]
        else:
            metrics = [("value", "throughput"), ("cpu_op", "CPU/op")]
        panels.append((scn, sc[1].format(n4=cfg.n4, n7=cfg.n7), metrics))
    bar_h, gap, label_w, plot_w = 9, 6, 190, 420
    rows_h = len(servers) * (2 * bar_h + gap)
    panel_h = rows_h + 40
    W, H = label_w + plot_w + 120, 50 + panel_h * len(panels)
    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
         'font-family="sans-serif" font-size="11">' % (W, H),
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="10" y="20" font-size="14" font-weight="bold">tcpkit '
         'bench suite (%s): relative to the reference server (1.0 = '
         'reference; blue: throughput or latency, orange: CPU per '
         'operation; S8, over TLS: 1.0 = tcpkit serve --tls)</text>'
         % cfg.mode]
    y0 = 40
    for scn, title, metrics in panels:
        names = [n for n in servers if runs_on(scn, n)]
        if not names:
            continue
        o.append('<text x="10" y="%d" font-weight="bold">%s: %s</text>'
                 % (y0 + 14, scn, esc(title)))
        vals = {}
        for key, _ in metrics:
            # S8 has no TLS reference: relative to tcpkit serve --tls
            ref = summary[scn].get(base_of(scn) if is_tls(scn) else "ref",
                                   {}).get(key)
            for name in names:
                v = summary[scn][name].get(key)
                if v is None:
                    continue
                if scn == "S7":
                    vals[(name, key)] = (v[0], "%.0f B" % v[0])
                elif ref and ref[0]:
                    vals[(name, key)] = (v[0] / ref[0], "%.2fx" %
                                         (v[0] / ref[0]))
        top = max([v[0] for v in vals.values()] + [1.0])
        scale = plot_w / top
        y = y0 + 24
        x1 = label_w + (scale if scn != "S7" else 0)
        for name in names:
            o.append('<text x="%d" y="%d" text-anchor="end">%s</text>' % (
                label_w - 6, y + bar_h + 3, esc(LABELS[name])))
            for i, (key, _) in enumerate(metrics):
                v = vals.get((name, key))
                yy = y + i * bar_h
                if v is None:
                    o.append('<text x="%d" y="%d" fill="#888">n/a</text>' %
                             (label_w + 2, yy + bar_h - 1))
                    continue
                w = max(1.0, v[0] * scale)
                o.append('<rect x="%d" y="%d" width="%.1f" height="%d" '
                         'fill="%s"/>' % (label_w, yy, w, bar_h - 1,
                                          colors.get(key, "#3b7dd8")))
                o.append('<text x="%.1f" y="%d">%s</text>' % (
                    label_w + w + 4, yy + bar_h - 1, v[1]))
            y += 2 * bar_h + gap
        if scn != "S7":
            o.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" '
                     'stroke="#444" stroke-dasharray="3,3"/>' % (
                         x1, y0 + 20, x1, y))
        y0 += panel_h
    o.append("</svg>")
    return "\n".join(o) + "\n"


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def machine_line():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    return ("%d CPUs (nproc), %s, Linux %s, load average %s at the start" %
            (os.cpu_count(), model, platform.release(), load))


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
