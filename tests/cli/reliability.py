"""The reliability suite's machinery: the server under test and its
/proc figures, the abusive clients, and the scenarios (the functions named
scenario_*) that test_reliability.py and test_reliability_load.py run at CI
size and tests/stress/run.py at full size (docs/reliability.md).  Every
wait has a deadline; the only pauses are the ones that are the test itself
(marked sleep-ok)."""
import hashlib
import json
import os
import random
import re
import resource
import selectors
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from tkhelpers import Server, TCPKIT, connect, need, recv_until, shim_env

BUSY = b"busy: too many connections, try again later\n"
TOO_LONG = b"error: line too long\n"
PAGE = os.sysconf("SC_PAGE_SIZE")
HZ = os.sysconf("SC_CLK_TCK")


def _sanitized():
    """True if the binary under test carries AddressSanitizer: its memory
    figures then include the sanitizer's shadow and quarantine."""
    try:
        with open(TCPKIT, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


SANITIZED = _sanitized()


# Under a sanitizer every step is several times slower: bounds that are
# about time scale by this.
SLOW = 4 if SANITIZED else 1


# --- the process under test, from /proc ------------------------------------

def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def cpu_seconds(pid):
    """utime + stime of the whole process (every thread)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def wait_until(predicate, timeout, what):
    """Poll a condition of another process (its /proc figures) until it
    holds; bounded.  Returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.02)  # sleep-ok: polling /proc with a deadline


def memory_env():
    """Environment for a server whose memory is measured: a sanitizer's
    quarantine keeps freed blocks resident and would be counted as ours."""
    env = dict(os.environ)
    if SANITIZED:
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                               ":quarantine_size_mb=0"
                               ":thread_local_quarantine_size_kb=0").lstrip(":")
    return env


_started = []


def start(*args, env=None):
    """A server on 127.0.0.1 only (one listener), port 0; stopped after the
    test whatever happens."""
    srv = Server(*args, "-H", "127.0.0.1", env=env)
    _started.append(srv)
    return srv


@pytest.fixture(autouse=True)
def _stop_servers():
    yield
    while _started:
        srv = _started.pop()
        if srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait()


def log_count(srv, pattern):
    rx = re.compile(pattern)
    with srv.err.cond:
        return sum(1 for line in srv.err.lines if rx.search(line))


def log_records(srv, fmt="json"):
    """The machine-readable records logged so far."""
    with srv.err.cond:
        lines = list(srv.err.lines)
    out = []
    for line in lines:
        if fmt == "json" and line.startswith("{"):
            out.append(json.loads(line))
        elif fmt == "logfmt" and line.startswith("ts="):
            out.append(parse_logfmt(line))
    return out


def parse_logfmt(line):
    """key=value pairs, values bare or double-quoted (with \\ escapes)."""
    rec = {}
    for m in re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)(?:\s|$)', line):
        v = m.group(2)
        if v.startswith('"'):
            v = re.sub(r"\\(.)", r"\1", v[1:-1])
        rec[m.group(1)] = v
    # Everything must have been consumed: no stray text.
    assert re.fullmatch(r'(\w+=("(?:[^"\\]|\\.)*"|\S*)\s*)+', line), line
    return rec


def wait_record(srv, pred, timeout=10, fmt="json"):
    """The first JSON/logfmt record for which pred holds; bounded."""
    deadline = time.monotonic() + timeout
    with srv.err.cond:
        while True:
            for line in srv.err.lines:
                if fmt == "json" and line.startswith("{"):
                    rec = json.loads(line)
                elif fmt == "logfmt" and line.startswith("ts="):
                    rec = parse_logfmt(line)
                else:
                    continue
                if pred(rec):
                    return rec
            left = deadline - time.monotonic()
            if srv.err.closed or left <= 0:
                raise AssertionError("no matching record; got %r"
                                     % srv.err.lines[-20:])
            srv.err.cond.wait(left)


def echo_once(port, payload=b"ping\n", timeout=5):
    """One round trip on a fresh connection; returns its duration."""
    t0 = time.monotonic()
    with connect(port, timeout=timeout) as s:
        s.sendall(payload)
        got = recv_until(s, lambda d: len(d) >= len(payload), timeout)
    assert got == payload
    return time.monotonic() - t0


def round_trips(sock, count, payload=b"0123456789abcdef\n", timeout=5):
    """count request/response exchanges on sock; their durations."""
    times = []
    for _ in range(count):
        t0 = time.monotonic()
        sock.sendall(payload)
        got = recv_until(sock, lambda d: len(d) >= len(payload), timeout)
        assert got == payload
        times.append(time.monotonic() - t0)
    return times


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


def closed_by_peer(sock, timeout):
    """Wait for EOF or a reset on sock; returns (what, bytes read)."""
    sock.settimeout(timeout)
    data = bytearray()
    try:
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                return "eof", bytes(data)
            data += chunk
    except ConnectionResetError:
        return "reset", bytes(data)
    except socket.timeout:
        raise AssertionError("still open after %ss; got %r" % (
            timeout, bytes(data[:200])))


def set_linger_rst(sock):
    """close() sends RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))


# --- slowloris ---------------------------------------------------------------

def trickle(port, n, deadline_s, step=0.1, payload=None):
    """n clients that each send one byte every step seconds (never a
    newline), all in one thread; returns each one's time from connect to
    the server's close."""
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(n):
        s = connect(port)
        s.setblocking(False)
        if payload:
            s.sendall(payload)
        socks.append([s, time.monotonic(), None])
        sel.register(s, selectors.EVENT_READ, socks[-1])
    limit = time.monotonic() + deadline_s * 3 + 5
    next_send = time.monotonic()
    open_ = n
    while open_ and time.monotonic() < limit:
        now = time.monotonic()
        if now >= next_send:
            for entry in socks:
                if entry[2] is None:
                    try:
                        entry[0].send(b"x")
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # closed: the read side will tell when
            next_send = now + step
        for key, _ in sel.select(max(0.0, next_send - time.monotonic())):
            entry = key.data
            try:
                chunk = entry[0].recv(65536)
            except ConnectionResetError:
                chunk = b""
            if chunk:
                continue  # a greeting, or the server's answer
            entry[2] = time.monotonic() - entry[1]
            sel.unregister(entry[0])
            entry[0].close()
            open_ -= 1
    for entry in socks:
        if entry[2] is None:
            entry[0].close()
    sel.close()
    return [e[2] for e in socks]


def scenario_slowloris(n=20, timeout_s=1.0, service="line"):
    """Returns (close times of the tricklers, latencies of a normal client
    served meanwhile, the server's log text)."""
    srv = start(service, "--line-timeout", "%gs" % timeout_s, "-w", "1")
    try:
        normal = []
        stop = threading.Event()
        errors = []

        def normal_client():
            try:
                with connect(srv.port) as s:
                    if service != "line":
                        recv_until(s, lambda d: b"\n" in d)
                    while not stop.is_set():
                        normal.extend(round_trips(s, 1, b"hello\n"))
                        stop.wait(0.05)  # sleep-ok: the client's pace
            except Exception as e:  # reported below
                errors.append(e)

        t = threading.Thread(target=normal_client)
        if service == "line":
            t.start()
        closes = trickle(srv.port, n, timeout_s)
        stop.set()
        if service == "line":
            t.join(10)
        assert not errors, errors
        srv.err.wait_for(r"\(line timeout\)")
        return closes, normal, srv
    finally:
        srv.stop()


# --- slow readers ---------------------------------------------------------------

def park_slow_readers(port, n, per_client=256 * 1024, quiet=1.0):
    """n clients that send up to per_client bytes each and never read;
    returns (sockets, how many of them are stuck with bytes unsent).
    Sending stops once no client can send more for `quiet` seconds: the
    server has stopped reading them all (backpressure)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        # Small client buffers: the figures are about the server's memory.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        s.setblocking(False)
        socks.append(s)
    sent = [0] * n
    chunk = b"s" * 65536
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        sel.register(s, selectors.EVENT_WRITE, i)
    deadline = time.monotonic() + 60
    while sel.get_map() and time.monotonic() < deadline:
        ready = sel.select(quiet)
        if not ready:
            break  # nobody can send: every client is parked
        for key, _ in ready:
            i = key.data
            try:
                k = socks[i].send(chunk[:per_client - sent[i]])
            except BlockingIOError:
                continue
            sent[i] += k
            if sent[i] >= per_client:
                sel.unregister(socks[i])
    sel.close()
    return socks, sum(1 for k in sent if k < per_client)


def kernel_send_queues(port):
    """Send-Q (bytes not yet acknowledged, unsent ones included) of every
    established socket on local port `port`: the server's side, as `ss`
    shows it."""
    need("ss")
    out = subprocess.run(["ss", "-tnH", "state", "established",
                          "( sport = :%d )" % port], capture_output=True,
                         text=True, check=True, timeout=30).stdout
    return [int(line.split()[1]) for line in out.splitlines() if line]


def scenario_slow_readers(n=300, max_pending=16384, probes=200):
    """Returns a dict of figures: baseline and loaded RSS (KiB), the bound,
    the largest kernel send queue of a slow reader, the normal client's
    echo latencies."""
    srv = start("echo", "--max-pending", str(max_pending), "-w", "1", "-q",
                env=memory_env())
    socks = []
    try:
        pid = srv.proc.pid
        echo_once(srv.port)  # the worker's read buffer, allocated once
        base = rss_kib(pid)
        socks, stuck = park_slow_readers(srv.port, n)
        loaded = rss_kib(pid)
        queues = kernel_send_queues(srv.port)
        with connect(srv.port) as s:
            lat = round_trips(s, probes)
        loaded = max(loaded, rss_kib(pid))
        max_line = 8192
        return {
            "clients": n, "max_pending": max_pending, "base_kib": base,
            "loaded_kib": loaded,
            "bound_kib": base + n * (max_pending + max_line) // 1024,
            "stuck": stuck, "lat": lat, "sockets": len(queues),
            "sendq_max": max(queues, default=0),
            "server": srv,
        }
    finally:
        for s in socks:
            s.close()
        srv.stop()


# --- EMFILE ----------------------------------------------------------------------

def scenario_emfile(extra_fds=8, queued=20):
    """Returns (CPU share used over one starved second, seconds until a
    queued client is served once descriptors free up, the server)."""
    srv = start("echo", "-w", "1", "--max-conns", "100000")
    held = []
    try:
        pid = srv.proc.pid
        base = fd_count(pid)
        # A few descriptors to spare, then none.
        lim = base + extra_fds
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (lim, lim))
        sel = selectors.DefaultSelector()
        for _ in range(extra_fds + queued):
            s = connect(srv.port)
            s.sendall(b"?")
            held.append(s)
            sel.register(s, selectors.EVENT_READ)
        srv.err.wait_for(r"accept.*Too many open files", timeout=5)
        # The server is starved: it must not spin.  Meanwhile, those it
        # could accept get their echo.
        served = []
        c0, t0 = cpu_seconds(pid), time.monotonic()
        end = t0 + 1.0  # the starved second being measured
        while time.monotonic() < end:
            for key, _ in sel.select(max(0, end - time.monotonic())):
                assert key.fileobj.recv(10) == b"?"
                sel.unregister(key.fileobj)
                served.append(key.fileobj)
        cpu = (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
        assert fd_count(pid) == lim
        assert served and len(served) < len(held), len(served)
        for s in served:
            s.close()
        t0 = time.monotonic()
        assert sel.select(5), "no waiting client was served"
        resumed = time.monotonic() - t0
        sel.close()
        return cpu, resumed, srv
    finally:
        for s in held:
            s.close()
        srv.stop()


# --- oversize lines ---------------------------------------------------------------

def scenario_huge_line(size=100 << 20):
    """Sends a line of size bytes without a newline while sampling the
    server's RSS; returns a dict: bytes sent before the server closed, the
    peak RSS growth (KiB), what the client received, seconds to the close.
    The server answers at byte max-line + 1, then discards input until the
    peer's FIN or its linger deadline: it never buffers the line."""
    srv = start("line", "--max-line", "100", "-w", "1", env=memory_env())
    try:
        pid = srv.proc.pid
        echo_once(srv.port, b"warm\n")
        base = peak = rss_kib(pid)
        sent = [0]
        with connect(srv.port) as s:
            def writer():
                chunk = b"h" * (1 << 20)
                try:
                    while sent[0] < size:
                        sent[0] += s.send(chunk)
                except OSError:
                    pass  # the server closed: that is the point

            t0 = time.monotonic()
            t = threading.Thread(target=writer)
            t.start()
            got, done = b"", False
            s.settimeout(0.05)
            while not done and time.monotonic() - t0 < 30:
                peak = max(peak, rss_kib(pid))
                try:
                    chunk = s.recv(4096)
                    got += chunk
                    done = not chunk
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    done = True
            took = time.monotonic() - t0
            t.join(30)
        peak = max(peak, rss_kib(pid))
        assert srv.proc.poll() is None
        return {"size": size, "sent": sent[0], "growth_kib": peak - base,
                "answer": got, "seconds": took, "server": srv}
    finally:
        srv.stop()


# --- partial writes --------------------------------------------------------------

def stream_through(port, data, timeout=120):
    """Send data and read the answer concurrently; returns the answer."""
    with connect(port) as s:
        err = []

        def writer():
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
            except OSError as e:
                err.append(e)

        t = threading.Thread(target=writer)
        t.start()
        how, got = closed_by_peer(s, timeout)
        t.join(timeout)
        assert not err, err
        assert how == "eof"
    return got


def scenario_partial_writes(so, service, size, max_bytes, workers=1):
    srv = start(service, "-w", str(workers), env=shim_env(so, max_bytes))
    try:
        rnd = random.Random(size)
        if service == "line":
            parts, total = [], 0
            while total < size:
                n = rnd.randrange(0, 4000)
                parts.append(rnd.randbytes(n).replace(b"\n", b".") + b"\n")
                total += n + 1
            data = b"".join(parts)
        else:
            data = rnd.randbytes(size)
        t0 = time.monotonic()
        got = stream_through(srv.port, data)
        took = time.monotonic() - t0
        same = hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        return same, len(got), len(data), took, srv
    finally:
        assert srv.stop() == 0


# --- SIGTERM under load ------------------------------------------------------------

def load_client(port, results, seed):
    """Request/response on `serve line` until the server goes: each answer
    must be the whole line sent, never a piece of it."""
    rnd = random.Random(seed)
    answers = truncated = 0
    try:
        s = connect(port)
    except OSError:
        results.append((0, 0, "connect"))
        return
    with s:
        while True:
            line = b"%d:" % seed + b"q" * rnd.randrange(0, 3000) + b"\n"
            try:
                s.sendall(line)
            except OSError:
                break
            try:
                buf = recv_until(s, lambda d: b"\n" in d, 10)
            except (ConnectionResetError, AssertionError):
                buf = b"?"  # reset or stall mid-answer: truncated too
            if buf == b"":
                break  # closed between exchanges: fine
            if buf != line:
                truncated += 1
                break
            answers += 1
    results.append((answers, truncated, None))


def scenario_sigterm_under_load(clients=20, run_s=1.0, workers=2):
    srv = start("line", "-w", str(workers), "--drain-timeout", "5s")
    results = []
    threads = [threading.Thread(target=load_client,
                                args=(srv.port, results, i))
               for i in range(clients)]
    for t in threads:
        t.start()
    try:
        time.sleep(run_s)  # sleep-ok: the load runs this long before
        srv.proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        rc = srv.proc.wait(15)
        took = time.monotonic() - t0
        for t in threads:
            t.join(15)
        srv.out.join()
        srv.err.join()
        return rc, took, results, srv
    finally:
        if srv.proc.poll() is None:
            srv.stop()


def wait_refused(port, timeout=5):
    """Wait until nobody listens on port (the drain closed the listener)."""
    def refused():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return False
        except (ConnectionRefusedError, ConnectionResetError):
            return True
    wait_until(refused, timeout, "the listener to close")


# --- connect-close cycles ------------------------------------------------------------

def cycles(port, n):
    """n connect-close cycles of three kinds: silent, one exchange, reset."""
    for i in range(n):
        s = socket.socket()
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        k = i % 3
        if k == 1:
            s.sendall(b"c")
            assert s.recv(1) == b"c"
        elif k == 2:
            set_linger_rst(s)
        s.close()


def scenario_cycles(n=10000, warm=1000):
    """Returns the fd counts and RSS (KiB) before and after n cycles."""
    srv = start("echo", "-q", "-w", "2", "--log-format", "json",
                "--stats-interval", "100ms", env=memory_env())
    try:
        pid = srv.proc.pid
        cycles(srv.port, warm)

        def settled(total):
            return lambda r: (r.get("event") == "stats" and
                              r["accepted"] == total and r["active"] == 0)

        wait_record(srv, settled(warm), 30)
        fd0, rss0 = fd_count(pid), rss_kib(pid)
        t0 = time.monotonic()
        cycles(srv.port, n)
        rate = n / (time.monotonic() - t0)
        rec = wait_record(srv, settled(warm + n), 60)
        fd1, rss1 = fd_count(pid), rss_kib(pid)
        return {"cycles": n, "fd_before": fd0, "fd_after": fd1,
                "rss_before": rss0, "rss_after": rss1, "rate": rate,
                "stats": rec, "server": srv}
    finally:
        srv.stop()


# --- several workers --------------------------------------------------------------

def scenario_workers(workers, clients=200):
    srv = start("echo", "-w", str(workers), "--log-format", "json",
                "--stats-interval", "100ms")
    sent = 0
    try:
        socks = [connect(srv.port) for _ in range(clients)]
        for i, s in enumerate(socks):
            msg = b"w" * (1 + i % 50)
            s.sendall(msg)
            assert recv_until(s, lambda d: len(d) >= len(msg)) == msg
            sent += len(msg)
        for s in socks:
            s.close()
        rec = wait_record(srv, lambda r: r.get("event") == "stats" and
                          r["when"] == "interval" and
                          r["closed"] == clients, 20)
    finally:
        rc = srv.stop()
    assert rc == 0
    recs = log_records(srv)
    closes = [r for r in recs if r.get("event") == "close"]
    exit_rec = [r for r in recs if r.get("when") == "exit"]
    return {"interval": rec, "exit": exit_rec, "closes": closes,
            "sent": sent, "server": srv}


# --- machine-readable logs ------------------------------------------------------------

CLOSE_KEYS = {"ts", "event", "peer", "worker", "duration_ms", "bytes_in",
              "bytes_out", "reason"}


STATS_KEYS = {"accepted", "rejected", "active", "closed", "bytes_in",
              "bytes_out"}
