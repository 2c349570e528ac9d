"""Reliability of `tcpkit serve` under abusive clients: slowloris, idle
and slow clients, floods past --max-conns, EMFILE, resets, half-closes and
oversize lines.  The scenarios are in reliability.py (tests/stress/run.py
runs them at full size)."""
import hashlib
import random
import re
import selectors
import socket
import threading
import time

import pytest

from reliability import (BUSY, SANITIZED, SLOW, TOO_LONG,
                         closed_by_peer, echo_once, log_count, log_records,
                         percentile, round_trips, scenario_emfile,
                         scenario_huge_line, scenario_slow_readers,
                         scenario_slowloris, set_linger_rst, start,
                         wait_record, wait_until)
# Autouse: every server a test started is stopped after it.
from reliability import _stop_servers  # noqa: F401
from tkhelpers import connect, recv_all, recv_until


# --- slowloris ---------------------------------------------------------------

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


def test_huge_line_without_newline_never_buffered():
    r = scenario_huge_line(100 << 20)
    assert r["answer"] == TOO_LONG, r
    assert r["growth_kib"] < 4096, "RSS grew by %d KiB" % r["growth_kib"]
    # Closed within the linger deadline (2 s) even though the client never
    # stops sending.
    assert r["seconds"] < 2.0 + 1.0 * SLOW, r
    r["server"].err.wait_for(r"\(line too long\)$")
