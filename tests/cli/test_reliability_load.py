"""Reliability of `tcpkit serve` under load and at its end: partial
writes, SIGTERM under load and the drain, connect-close cycles, several
workers, and the machine-readable logs.  The scenarios are in
reliability.py (tests/stress/run.py runs them at full size)."""
import re
import signal
import time

import pytest

from reliability import (CLOSE_KEYS, SLOW, STATS_KEYS, TOO_LONG,
                         closed_by_peer, echo_once, log_records, round_trips,
                         scenario_cycles, scenario_partial_writes,
                         scenario_sigterm_under_load, scenario_workers, start,
                         wait_record, wait_refused)
# Autouse: every server a test started is stopped after it.
from reliability import _stop_servers  # noqa: F401
from tkhelpers import connect, recv_all, recv_until, shim_env


# --- partial writes --------------------------------------------------------------

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

def test_connect_close_cycles_no_fd_or_memory_growth():
    r = scenario_cycles(n=10000)
    assert r["fd_after"] == r["fd_before"], r
    assert r["rss_after"] - r["rss_before"] < 1024, r
    assert r["stats"]["closed"] == 11000


# --- several workers --------------------------------------------------------------

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
