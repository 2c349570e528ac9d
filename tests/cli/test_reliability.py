"""Reliability of `tcpkit serve` under abuse: slowloris, idle and slow
clients, floods past --max-conns, EMFILE, resets, half-closes, oversize
lines, partial writes, SIGTERM under load, connect-close cycles, several
workers, and the machine-readable logs.

These are the CI-sized, bounded versions; tests/stress/run.py runs the same
scenarios (the functions named scenario_*) at full size and writes
docs/reliability.md.  Every wait has a deadline; the only pauses are the
ones that are the test itself (marked sleep-ok)."""
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

from tkhelpers import (TCPKIT, Server, connect, recv_all, recv_until, shim_env,
                      need)

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


def test_slowloris_line_closed_on_time_normal_client_served():
    closes, normal, srv = scenario_slowloris(n=20, timeout_s=1.0)
    assert all(c is not None for c in closes), closes
    # Closed at the deadline: not before it, and not much after.
    assert min(closes) >= 0.9, closes
    assert max(closes) < 1.0 + 0.5 * SLOW, closes
    assert log_count(srv, r"\(line timeout\)$") == 20
    # The normal client got every answer, promptly, the whole time.
    assert len(normal) >= 10
    assert max(normal) < 0.1 * SLOW, normal


def test_slowloris_second_line_has_its_own_deadline():
    srv = start("line", "--line-timeout", "1s", "-w", "1")
    with connect(srv.port) as s:
        assert round_trips(s, 1, b"first\n")
        t0 = time.monotonic()
        s.setblocking(False)
        sel = selectors.DefaultSelector()
        sel.register(s, selectors.EVENT_READ)
        closed = None
        while closed is None and time.monotonic() - t0 < 5:
            try:
                s.send(b"y")
            except (BrokenPipeError, ConnectionResetError):
                pass
            if sel.select(0.1):  # the pace of the trickle: sleep-ok
                try:
                    if s.recv(100) == b"":
                        closed = time.monotonic() - t0
                except ConnectionResetError:
                    closed = time.monotonic() - t0
        sel.close()
    assert closed is not None and 0.9 <= closed < 1.0 + 0.5 * SLOW, closed
    srv.err.wait_for(r"\(line timeout\)$")
    assert srv.stop() == 0


def test_slowloris_first_line_deadline_runs_from_the_connection():
    """Silence first, then a trickle: the first line's deadline counts from
    the connection, not from its first byte."""
    srv = start("line", "--line-timeout", "1s", "-w", "1")
    with connect(srv.port) as s:
        t0 = time.monotonic()
        time.sleep(0.5)  # sleep-ok: the silence is the test
        closed = None
        while closed is None and time.monotonic() - t0 < 5:
            try:
                s.send(b"z")
            except (BrokenPipeError, ConnectionResetError):
                pass
            s.settimeout(0.1)  # the pace of the trickle
            try:
                if s.recv(100) == b"":
                    closed = time.monotonic() - t0
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed = time.monotonic() - t0
    assert closed is not None and 0.9 <= closed < 1.0 + 0.5 * SLOW, closed
    srv.err.wait_for(r"\(line timeout\)$")
    assert srv.stop() == 0


@pytest.mark.parametrize("service", ["welcome", "basic"])
def test_slowloris_first_message_deadline(service):
    """welcome and basic answer any first chunk, so their slowloris is a
    client that says nothing: it is closed at --line-timeout."""
    srv = start(service, "--line-timeout", "1s", "-w", "1")
    try:
        with connect(srv.port) as s:
            t0 = time.monotonic()
            how, data = closed_by_peer(s, 5)
            took = time.monotonic() - t0
        assert data.endswith(b"\n") and data.count(b"\n") == 1, data
        assert 0.9 <= took < 1.0 + 0.5 * SLOW, took
        srv.err.wait_for(r"\(line timeout\)$")
        # A client that talks in time is answered.
        with connect(srv.port) as s:
            recv_until(s, lambda d: b"\n" in d)
            s.sendall(b"hi")
            got = recv_until(s, lambda d: b"hi" in d)
            assert b"hi" in got
    finally:
        assert srv.stop() == 0


# --- idle timeout --------------------------------------------------------------

@pytest.mark.parametrize("service,hello", [("echo", b"x"), ("line", b"a\n")])
def test_idle_timeout_closes_after_it(service, hello):
    srv = start(service, "-i", "1s", "--line-timeout", "30s", "-w", "1")
    try:
        with connect(srv.port) as s:
            s.sendall(hello)
            assert recv_until(s, lambda d: len(d) >= len(hello)) == hello
            t0 = time.monotonic()
            how, data = closed_by_peer(s, 5)
            took = time.monotonic() - t0
        assert (how, data) == ("eof", b"")
        assert 0.9 <= took < 1.0 + 0.5 * SLOW, took
        srv.err.wait_for(r"closed 127\.0\.0\.1:\d+ .*\(idle timeout\)$")
    finally:
        assert srv.stop() == 0


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


def test_slow_readers_backpressure_normal_client_served():
    r = scenario_slow_readers(n=300)
    # The server stopped reading every one of them.
    assert r["stuck"] == r["clients"], r
    # And the kernel holds no more than --max-pending of unsent output for
    # any of them (TCP_NOTSENT_LOWAT; the peer's window is full, so none is
    # in flight), where its autotuned send buffer would take megabytes.
    assert r["sockets"] == r["clients"], r
    assert r["sendq_max"] <= r["max_pending"], r
    assert percentile(r["lat"], 99) < 0.05 * SLOW, sorted(r["lat"])[-5:]


@pytest.mark.skipif(SANITIZED, reason="the RSS of an AddressSanitizer build "
                    "is mostly its redzones and shadow memory")
def test_slow_readers_memory_bounded():
    r = scenario_slow_readers(n=300, probes=20)
    assert r["stuck"] == r["clients"], r
    assert r["loaded_kib"] < r["bound_kib"], \
        "RSS %d KiB with %d slow readers, bound %d KiB (base %d KiB)" % (
            r["loaded_kib"], r["clients"], r["bound_kib"], r["base_kib"])


# --- connection flood past --max-conns --------------------------------------------

def test_flood_line_busy_line_then_eof_sessions_unharmed():
    srv = start("line", "--max-conns", "50", "--log-format", "json",
                "--stats-interval", "100ms")
    held = []
    try:
        for i in range(50):
            s = connect(srv.port)
            # Answered: accepted and counted, not just queued.
            assert round_trips(s, 1, b"hold %d\n" % i)
            held.append(s)
        for _ in range(25):
            with connect(srv.port) as s:
                assert recv_all(s, 5) == BUSY
        # Every established session still works.
        for i, s in enumerate(held):
            assert round_trips(s, 1, b"still %d\n" % i)
        rec = wait_record(srv, lambda r: r.get("event") == "stats" and
                          r["when"] == "interval" and r["rejected"] == 25)
        assert rec["accepted"] == 50 and rec["active"] == 50, rec
        # A freed slot is usable again.
        held.pop().close()
        wait_record(srv, lambda r: r.get("event") == "close")
        with connect(srv.port) as s:
            assert round_trips(s, 1, b"again\n")
    finally:
        for s in held:
            s.close()
        assert srv.stop() == 0
    recs = log_records(srv)
    assert sum(1 for r in recs if r.get("event") == "reject") == 25
    exit_rec = [r for r in recs if r.get("when") == "exit"]
    assert len(exit_rec) == 1, recs[-5:]
    assert exit_rec[0]["rejected"] == 25
    assert exit_rec[0]["accepted"] == 51


def test_flood_text_log_counts_rejections():
    srv = start("line", "--max-conns", "2", "-w", "1", "--stats-interval",
                "1h")
    held = [connect(srv.port), connect(srv.port)]
    try:
        for s in held:
            assert round_trips(s, 1, b"x\n")
        for _ in range(3):
            with connect(srv.port) as s:
                assert recv_all(s, 5) == BUSY
        srv.err.wait_for(r"rejected 127\.0\.0\.1:\d+ at \[.*\]: too many "
                         r"connections$")
    finally:
        for s in held:
            s.close()
        assert srv.stop() == 0
    assert log_count(srv, r"^rejected 127\.0\.0\.1:\d+ ") == 3
    # The totals at exit count them too.
    srv.err.wait_for(r"^stats exit \(.*\): accepted 2, rejected 3, active 0, "
                     r"closed 2, ")


def test_flood_echo_rejected_closed_at_once_with_nothing_sent():
    srv = start("echo", "--max-conns", "5", "--log-format", "json")
    held = []
    try:
        for _ in range(5):
            s = connect(srv.port)
            assert round_trips(s, 1, b"e")
            held.append(s)
        for _ in range(5):
            with connect(srv.port) as s:
                t0 = time.monotonic()
                how, data = closed_by_peer(s, 5)
                assert data == b"", data
                assert time.monotonic() - t0 < 0.5 * SLOW
        for s in held:
            assert round_trips(s, 1, b"e")
    finally:
        for s in held:
            s.close()
        assert srv.stop() == 0
    recs = log_records(srv)
    rejects = [r for r in recs if r.get("event") == "reject"]
    assert len(rejects) == 5
    # Each rejection names the client it turned away.
    assert all(re.fullmatch(r"127\.0\.0\.1:\d+", r.get("peer", ""))
               for r in rejects), rejects
    assert [r["rejected"] for r in recs if r.get("when") == "exit"] == [5]


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


def test_emfile_no_busy_loop_and_service_resumes():
    cpu, resumed, srv = scenario_emfile()
    assert cpu < 0.05, "server used %.0f%% CPU while starved" % (cpu * 100)
    assert resumed < 1.0, "a waiting client was served after %.2fs" % resumed


# --- resets mid-stream -------------------------------------------------------------

@pytest.mark.parametrize("service", ["echo", "line"])
def test_reset_mid_stream_only_hits_its_connection(service):
    srv = start(service, "-w", "1", "--max-pending", "65536")
    try:
        with connect(srv.port) as bystander:
            blob = (b"r" * 1023 + b"\n") * 2048  # 2 MiB of lines
            for i in range(10):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.connect(("127.0.0.1", srv.port))
                s.settimeout(10)
                # Send without reading until the server must be stuck
                # sending to us (our window is full).
                s.setblocking(False)
                try:
                    off = 0
                    while off < len(blob):
                        off += s.send(blob[off:off + 65536])
                except BlockingIOError:
                    pass
                assert off > 65536, off  # the server was echoing
                set_linger_rst(s)
                s.close()
                assert round_trips(bystander, 1, b"still here %d\n" % i)
            wait_until(lambda: log_count(
                srv, r"\(Connection reset by peer\)$") >= 10, 5, "10 resets")
            assert srv.proc.poll() is None  # no SIGPIPE
            assert round_trips(bystander, 5)
        echo_once(srv.port)
    finally:
        assert srv.stop() == 0
    assert log_count(srv, r"\(Connection reset by peer\)$") == 10
    assert log_count(srv, r"\(Broken pipe\)$") == 0


def test_reset_before_server_writes_and_write_after_peer_gone():
    """A client that resets with unread output queued, and one that is gone
    before its answer is written: the server writes into dead sockets."""
    srv = start("echo", "-w", "1")
    try:
        for _ in range(50):
            s = connect(srv.port)
            s.sendall(b"z" * 200000)
            set_linger_rst(s)
            s.close()
        assert srv.proc.poll() is None
        assert echo_once(srv.port) < 1
    finally:
        assert srv.stop() == 0


# --- half-close ---------------------------------------------------------------------

@pytest.mark.parametrize("service,size", [("echo", 4 << 20),
                                          ("line", 1 << 20)])
def test_half_close_all_bytes_back_then_fin(service, size):
    srv = start(service, "-w", "1")
    try:
        rnd = random.Random(7)
        if service == "line":
            lines = []
            total = 0
            while total < size:
                ln = bytes(rnd.randrange(32, 127) for _ in
                           range(rnd.randrange(0, 200))) + b"\n"
                lines.append(ln)
                total += len(ln)
            data = b"".join(lines) + b"no newline at the end"
        else:
            data = rnd.randbytes(size)
        with connect(srv.port) as s:
            t = threading.Thread(target=lambda: (s.sendall(data),
                                                 s.shutdown(socket.SHUT_WR)))
            t.start()
            how, got = closed_by_peer(s, 30)
            t.join(10)
        assert how == "eof"  # FIN, not RST
        assert hashlib.sha256(got).hexdigest() == \
            hashlib.sha256(data).hexdigest(), (len(got), len(data))
        srv.err.wait_for(r"closed .*: %d bytes in, %d bytes out \(done\)$"
                         % (len(data), len(data)))
    finally:
        assert srv.stop() == 0


# --- oversize lines ---------------------------------------------------------------

def test_max_line_exact_fits_one_more_is_refused():
    srv = start("line", "--max-line", "100", "-w", "1")
    try:
        with connect(srv.port) as s:
            for line in (b"a" * 100 + b"\n", b"b" * 100 + b"\r\n", b"\n"):
                s.sendall(line)
                assert recv_until(s, lambda d: d.endswith(b"\n")) == line
        # In one write, and in pieces that each fit.
        for pieces in ([b"c" * 101 + b"\n"], [b"d" * 60, b"d" * 41 + b"\n"]):
            with connect(srv.port) as s:
                for p in pieces:
                    s.sendall(p)
                    if p is not pieces[-1]:
                        # Make sure the piece was read on its own.
                        with connect(srv.port) as probe:
                            assert round_trips(probe, 1, b"p\n")
                how, data = closed_by_peer(s, 5)
                assert data == TOO_LONG, data
        srv.err.wait_for(r"\(line too long\)$")
    finally:
        assert srv.stop() == 0
    assert log_count(srv, r"\(line too long\)$") == 2


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


def test_huge_line_without_newline_never_buffered():
    r = scenario_huge_line(100 << 20)
    assert r["answer"] == TOO_LONG, r
    assert r["growth_kib"] < 4096, "RSS grew by %d KiB" % r["growth_kib"]
    # Closed within the linger deadline (2 s) even though the client never
    # stops sending.
    assert r["seconds"] < 2.0 + 1.0 * SLOW, r
    r["server"].err.wait_for(r"\(line too long\)$")


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


def test_shim_really_shortens_writes(shim):
    """The shim is at work: it says so when it first cuts a write, and the
    greeting still arrives whole."""
    env = shim_env(shim, 3)
    env["SHORT_WRITES_REPORT"] = "1"
    srv = start("welcome", "-w", "1", env=env)
    try:
        with connect(srv.port) as s:
            got = recv_until(s, lambda d: d.endswith(b"\n"))
            assert got.startswith(b"Welcome") and len(got) > 3
        srv.err.wait_for(r"^short_writes: cut a write of %d bytes to [123]$"
                         % len(got))
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize("service,size,max_bytes", [
    ("echo", 256 << 10, 7),
    ("line", 256 << 10, 7),
    ("echo", 3 << 20, 200),
    ("line", 3 << 20, 200),
])
def test_partial_writes_streams_stay_byte_exact(shim, service, size,
                                                max_bytes):
    same, got, want, took, srv = scenario_partial_writes(shim, service, size,
                                                         max_bytes)
    assert got == want and same, (got, want)


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


def test_sigterm_under_load_no_truncated_answer_exit_0():
    rc, took, results, srv = scenario_sigterm_under_load(clients=20)
    assert rc == 0
    assert len(results) == 20
    assert sum(r[1] for r in results) == 0, results
    assert sum(r[0] for r in results) > 100, results
    assert took < 5, took
    srv.err.wait_for(r"^stopped \(SIGTERM\): \d+ connections served")
    assert "drain deadline" not in srv.err.text()


def test_sigterm_lets_a_half_received_line_finish_closes_idle_with_fin():
    srv = start("line", "-w", "1", "--drain-timeout", "10s")
    try:
        busy = connect(srv.port)
        idle = connect(srv.port)
        busy.sendall(b"abc")
        # busy's bytes were read before idle's exchange was (one worker,
        # both readable when its loop looked).
        assert round_trips(idle, 1, b"i\n")
        srv.proc.send_signal(signal.SIGTERM)
        how, data = closed_by_peer(idle, 5)
        assert (how, data) == ("eof", b"")  # FIN, not RST
        busy.sendall(b"def\n")
        how, data = closed_by_peer(busy, 5)
        assert (how, data) == ("eof", b"abcdef\n")
        assert srv.proc.wait(5) == 0
        busy.close()
        idle.close()
    finally:
        rc = srv.stop()
    assert rc == 0
    srv.err.wait_for(r"^stopped \(SIGTERM\): 2 connections served, 2 closed "
                     r"by the stop")


def wait_refused(port, timeout=5):
    """Wait until nobody listens on port (the drain closed the listener)."""
    def refused():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return False
        except (ConnectionRefusedError, ConnectionResetError):
            return True
    wait_until(refused, timeout, "the listener to close")


def test_second_signal_stops_at_once():
    srv = start("line", "-w", "1", "--drain-timeout", "60s")
    try:
        s = connect(srv.port)
        s.sendall(b"never finished")
        with connect(srv.port) as probe:
            assert round_trips(probe, 1, b"x\n")
        srv.proc.send_signal(signal.SIGTERM)
        wait_refused(srv.port)
        assert srv.proc.poll() is None  # still draining
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGINT)
        assert srv.proc.wait(5) == 0
        assert time.monotonic() - t0 < 1
        s.close()
    finally:
        srv.stop()
    srv.err.wait_for(r"second signal: closing 1 connection still open$")


def test_drain_deadline_closes_the_rest_and_says_how_many():
    srv = start("line", "-w", "1", "--drain-timeout", "1s")
    held = []
    try:
        for i in range(3):
            s = connect(srv.port)
            s.sendall(b"partial %d" % i)
            held.append(s)
        # One worker: the partial lines were read before this exchange.
        probe = connect(srv.port)
        assert round_trips(probe, 1, b"x\n")
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        # The idle one is ended at once; it closes too, as clients do.
        assert closed_by_peer(probe, 5) == ("eof", b"")
        probe.close()
        assert srv.proc.wait(5) == 0
        took = time.monotonic() - t0
        assert 0.9 <= took < 1.0 + 0.5 * SLOW, took
        for s in held[:3]:
            how, data = closed_by_peer(s, 5)
            assert data == b""
    finally:
        for s in held:
            s.close()
        srv.stop()
    srv.err.wait_for(r"drain deadline: closing 3 connections still open$")
    srv.err.wait_for(r"^stopped \(SIGTERM\): 4 connections served, 4 closed "
                     r"by the stop")


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


def test_connect_close_cycles_no_fd_or_memory_growth():
    r = scenario_cycles(n=10000)
    assert r["fd_after"] == r["fd_before"], r
    assert r["rss_after"] - r["rss_before"] < 1024, r
    assert r["stats"]["closed"] == 11000


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


@pytest.mark.parametrize("workers", [2, 4])
def test_workers_spread_and_stats_exact(workers):
    r = scenario_workers(workers, clients=200)
    per = {}
    for c in r["closes"]:
        per[c["worker"]] = per.get(c["worker"], 0) + 1
    assert sorted(per) == list(range(workers)), per
    assert len(r["closes"]) == 200
    assert sum(c["bytes_in"] for c in r["closes"]) == r["sent"]
    for rec in [r["interval"]] + r["exit"]:
        assert (rec["accepted"], rec["closed"], rec["active"]) == \
            (200, 200, 0), rec
        assert rec["bytes_in"] == r["sent"] and rec["bytes_out"] == r["sent"]
        assert rec["rejected"] == 0
    assert len(r["exit"]) == 1
    # A JSON record's msg: every stderr line is a record.
    r["server"].err.wait_for(r"\"msg\":\"stopped \(SIGTERM\): 200 connections "
                             r"served, 0 closed by the stop, %d bytes in, %d "
                             r"bytes out\"}$" % (r["sent"], r["sent"]))


# --- machine-readable logs ------------------------------------------------------------

CLOSE_KEYS = {"ts", "event", "peer", "worker", "duration_ms", "bytes_in",
              "bytes_out", "reason"}
STATS_KEYS = {"accepted", "rejected", "active", "closed", "bytes_in",
              "bytes_out"}


@pytest.mark.parametrize("fmt", ["json", "logfmt"])
def test_log_formats_parse_and_carry_every_field(fmt):
    srv = start("line", "-w", "2", "--log-format", fmt, "--stats-interval",
                "200ms", "--max-line", "10", "-i", "500ms")
    try:
        with connect(srv.port) as s:
            assert round_trips(s, 1, b"hello\n")
        with connect(srv.port) as s:
            s.sendall(b"x" * 20 + b"\n")
            assert recv_all(s) == TOO_LONG
        with connect(srv.port) as s:
            closed_by_peer(s, 5)  # idle timeout
        first = wait_record(srv, lambda r: r.get("event") == "stats", 5,
                            fmt)
        # Periodic: a later one comes too.
        wait_record(srv, lambda r: r.get("event") == "stats" and
                    r["ts"] != first["ts"], 5, fmt)
        wait_record(srv, lambda r: r.get("event") == "close" and
                    int(r["bytes_in"]) == 0, 5, fmt)
    finally:
        assert srv.stop() == 0
    recs = log_records(srv, fmt)
    closes = [r for r in recs if r["event"] == "close"]
    assert len(closes) == 3, recs
    for r in closes:
        assert set(r) == CLOSE_KEYS, r
        assert re.fullmatch(r"127\.0\.0\.1:\d+", r["peer"])
        assert int(r["worker"]) in (0, 1)
        assert int(r["duration_ms"]) >= 0
    by_reason = {r["reason"]: r for r in closes}
    assert set(by_reason) == {"done", "line too long", "idle timeout"}
    assert int(by_reason["done"]["bytes_in"]) == 6
    assert int(by_reason["done"]["bytes_out"]) == 6
    assert int(by_reason["line too long"]["bytes_out"]) == len(TOO_LONG)
    assert int(by_reason["idle timeout"]["duration_ms"]) >= 450
    stats = [r for r in recs if r["event"] == "stats"]
    assert len(stats) >= 3  # two periodic, one at exit
    assert [r["when"] for r in stats].count("exit") == 1
    assert stats[-1]["when"] == "exit"
    last = stats[-1]
    assert STATS_KEYS <= set(last)
    assert int(last["accepted"]) == 3 and int(last["closed"]) == 3
    if fmt == "json":
        assert last["errors"]["line"] == 1 and last["errors"]["timeout"] == 1
    else:
        assert last["errors_line"] == "1" and last["errors_timeout"] == "1"


def test_stats_interval_text_periodic_and_at_exit():
    srv = start("echo", "-w", "1", "--stats-interval", "100ms")
    try:
        echo_once(srv.port)
        m1 = srv.err.wait_for(r"^stats interval \(.*\): accepted 1, "
                              r"rejected 0, active 0, closed 1, 5 bytes in, "
                              r"5 bytes out; errors: ")
        srv.err.wait_for(r"^stats interval", start=srv.err.lines.index(
            m1.string) + 1)
    finally:
        assert srv.stop() == 0
    srv.err.wait_for(r"^stats exit \(.*\): accepted 1, rejected 0, active 0, "
                     r"closed 1, 5 bytes in, 5 bytes out")
