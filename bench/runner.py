"""runner.py: one run of the comparison suite: a server started fresh,
pinned, `tcpkit bench` against it, and what the server cost (its CPU time,
memory and descriptors, from /proc).  Every process it starts is in its
own process group and killed by PID on the way out."""
import contextlib
import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time

from catalogue import HERE, PEERS, SERVERS, TLS_SERVERS, is_tls

CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVER_CPU = "0"
CLIENT_CPU = "1"


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
    s = SERVERS[name]
    port = free_port() if s.get("fixed_port") else None
    argv = s["argv"](cfg, port)
    if argv is None:
        return None
    return argv, port, SERVER_CPU if s.get("pinned", True) else None


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


def build_ref(cfg, tmp):
    """cfg.ref: the reference echo server, built with cc -O2 unless given."""
    if cfg.ref is None:
        cfg.ref = os.path.join(tmp, "bench_ref")
        subprocess.run(["cc", "-O2", "-o", cfg.ref,
                        os.path.join(HERE, "ref", "ref_echo.c")],
                       check=True, timeout=120)


def build_helpers(cfg, tmp):
    cfg.cert = cfg.key = cfg.pin = None
    if TLS_SERVERS & set(cfg.servers):
        if shutil.which("openssl") is None:
            log("bench: openssl: not installed, the TLS servers skipped")
            cfg.servers = [s for s in cfg.servers if s not in TLS_SERVERS]
        else:
            make_cert(cfg, tmp)
    build_ref(cfg, tmp)
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


@contextlib.contextmanager
def served(argv, fixed, cpu, outpath):
    """A server (relay, proxy) started fresh in its own process group,
    pinned to cpu, its output to outpath: yields (its Popen, its port: the
    fixed one, or read from its "listening on" line); stopped on the way
    out, errors included."""
    with open(outpath, "w") as out:
        p = start(argv, out, cpu)
    try:
        yield p, wait_listening(outpath, fixed, p)
    finally:
        stop(p)


def warm_up(cfg, port, tmp, extra=()):
    """An unmeasured run first (JIT, first allocations, pools)."""
    run_bench(["taskset", "-c", CLIENT_CPU, cfg.tcpkit, "bench",
               "127.0.0.1", str(port), "-c", "10", "-t", "200ms", "--json",
               "-q"] + list(extra), tmp, 15)


def measured_bench(p, argv, tmp, timeout, during=None):
    """run_bench(), and the CPU seconds p's process tree spent meanwhile:
    (doc, rc, cpu_s)."""
    cpu0 = tree_cpu(p.pid)
    doc, rc = run_bench(argv, tmp, timeout, during)
    return doc, rc, tree_cpu(p.pid) - cpu0


def one_run(cfg, name, sc, tmp):
    argv, fixed, cpu = server_argv(name, cfg)
    with served(argv, fixed, cpu, os.path.join(tmp, "server.out")) as (
            srv, port):
        if sc[0] != "S7":
            warm_up(cfg, port, tmp, tls_args(cfg, sc[0]))
        rss0, fds0 = rss_kib(srv.pid), nfds(srv.pid)
        samples = []
        want = fds0 + int(cfg.n7 * 0.99)

        def during():
            if nfds(srv.pid) >= want:
                samples.append(rss_kib(srv.pid))

        # A TLS handshake costs milliseconds (more under sanitizers): give
        # the TLS runs at least a second, or a tiny run may count none.
        t = max(cfg.t, 1.0) if sc[0].startswith("S8") else cfg.t
        doc, rc, cpu_s = measured_bench(srv, bench_argv(cfg, sc, port, t),
                                        tmp, t + 60,
                                        during if sc[0] == "S7" else None)
        alive = srv.poll() is None
    if doc is None:
        return dict(error="bench printed no result (exit %s)" % rc)
    r = dict(errors=doc["errors"]["total"], cpu_s=cpu_s, rc=rc, alive=alive)
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
        r["cpu_op"] = cpu_s / mb if mb else None  # s per MB
    else:
        r["value"] = doc["messages_per_s"]
        r["cpu_op"] = cpu_s / ops if ops else None  # s per op
    if sc[0] == "S1":
        r["p50"] = doc["latency_ns"]["p50"]
        r["p99"] = doc["latency_ns"]["p99"]
    if not ops:
        r["error"] = "no operation completed"
    return r
