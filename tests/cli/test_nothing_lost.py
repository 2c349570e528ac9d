"""Nothing accepted is lost: a service's output always fits its caps, or
the connection ends with a reset and a logged error, never a clean FIN
after a gap; every line before an over-long one is answered; a graceful
stop stays graceful when stop requests race.  Every wait has a deadline;
the only pauses are a slow reader's own (marked sleep-ok)."""
import hashlib
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from tkhelpers import Server, check_sanitizer, connect, shim_env

GREETING = b"Welcome to the server. Type something and hit enter\n"
TOO_LONG = b"error: line too long\n"
MIB = 1 << 20


def lines_payload(total):
    """total bytes of 100-byte lines: 99 digits and letters and a newline,
    numbered so that a lost or repeated line shows.  No 'O' or '.', so an
    "OK..." prefix can be told from the data."""
    out, i = [], 0
    while 100 * len(out) < total:
        out.append(b"%010d" % i + b"abcdefghij" * 8 + b"123456789\n")
        i += 1
    return b"".join(out)


def late_reader_exchange(port, data, wait_s, timeout=120):
    """Send data from a thread while reading nothing for wait_s (or until
    the sender is done, if sooner), then read to the end.  Returns (how the
    stream ended: "eof" or "reset", what was read, what the sender hit)."""
    s = connect(port, timeout=timeout)
    sent = threading.Event()
    err = []

    def writer():
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(e)
        sent.set()

    t = threading.Thread(target=writer)
    t.start()
    sent.wait(wait_s)  # sleep-ok: the slow reader is the test
    got = bytearray()
    how = "eof"
    s.settimeout(timeout)
    try:
        while True:
            chunk = s.recv(4 * MIB)
            if not chunk:
                break
            got += chunk
    except ConnectionResetError:
        how = "reset"
    t.join(timeout)
    s.close()
    return how, bytes(got), err


def start(*args, env=None):
    return Server(*args, "-H", "127.0.0.1", "-w", "1", env=env)


def digest(b):
    return hashlib.sha256(b).hexdigest()


def check_exact(service, pending, size, env=None):
    """size bytes of lines through service with --max-pending pending, the
    client reading only after 3 s: every byte comes back, then a clean
    end (welcome's greeting and "OK..." prefixes aside)."""
    data = lines_payload(size)
    srv = start(service, "--max-pending", pending, env=env)
    try:
        how, got, err = late_reader_exchange(srv.port, data, 3)
    finally:
        rc = srv.stop()
    assert rc == 0
    assert not err, err
    assert how == "eof"
    if service == "welcome":
        assert got.startswith(GREETING)
        got = got[len(GREETING):]
        assert got.startswith(b"OK...")
        got = got.replace(b"OK...", b"")
    assert len(got) == len(data)
    assert digest(got) == digest(data)
    assert "line too long" not in srv.err.text()


@pytest.mark.parametrize("pending", ["16777216", "1073741824"])
@pytest.mark.parametrize("service", ["line", "welcome"])
def test_large_max_pending_late_reader_is_exact(service, pending):
    """60 MB of 100-byte lines, the client reading only after 3 s: with a
    large --max-pending the service's output (a kept partial line, the
    "OK..." prefix) once overran its cap and was dropped, then a clean
    FIN.  Now every byte comes back."""
    check_exact(service, pending, 60 * 1000 * 1000)


@pytest.mark.parametrize("service", ["line", "welcome"])
def test_large_max_pending_under_short_writes(shim, service):
    """The same exchange while every write the server makes is cut short
    (at most 1,000 bytes): output waits in the server, and still fits."""
    check_exact(service, "16777216", 20 * 1000 * 1000,
                env=shim_env(shim, 1000))


def line_exchange(port, parts, timeout=10):
    """Send parts (one send each, the next after the server has had time
    to read the previous: a bounded wait for its answer or 50 ms) and read
    until the server closes.  Returns everything received."""
    with connect(port, timeout=timeout) as s:
        got = bytearray()
        for i, p in enumerate(parts):
            s.sendall(p)
            if i + 1 < len(parts):
                s.settimeout(0.05)
                try:
                    got += s.recv(65536)  # sleep-ok: let the server read
                except (socket.timeout, BlockingIOError):
                    pass
        s.settimeout(timeout)
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        except ConnectionResetError:
            pass
    return bytes(got)


def test_lines_before_an_overlong_line_are_answered():
    """`printf 'ab\\nlongline\\n'` against --max-line 4 in one read: "ab" is
    answered, then the error line, then the close."""
    srv = start("line", "--max-line", "4")
    try:
        with connect(srv.port) as s:
            s.sendall(b"ab\nlongline\n")
            s.settimeout(10)
            got = bytearray()
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        assert bytes(got) == b"ab\n" + TOO_LONG
    finally:
        assert srv.stop() == 0


def test_lines_before_an_overlong_line_at_every_split_point():
    msg = b"ab\ncd\nlongline\nxy\n"
    srv = start("line", "--max-line", "4")
    try:
        for cut in range(1, len(msg)):
            got = line_exchange(srv.port, [msg[:cut], msg[cut:]])
            assert got == b"ab\ncd\n" + TOO_LONG, (cut, got)
    finally:
        assert srv.stop() == 0


# --- racing stop requests ---------------------------------------------------

def idle_sessions(port, n):
    """n connected basic clients that read their greeting and say nothing."""
    socks = []
    for _ in range(n):
        s = connect(port)
        socks.append(s)
    for s in socks:
        s.settimeout(10)
        got = b""
        while not got.endswith(b"\n"):
            chunk = s.recv(4096)
            assert chunk, "closed before the greeting"
            got += chunk
    return socks


def send_shutdowns(port, n):
    """n clients send `shutdown` at the same moment."""
    ready = threading.Barrier(n)
    socks = [connect(port) for _ in range(n)]

    def go(s):
        ready.wait(10)
        try:
            s.sendall(b"shutdown")
        except OSError:
            pass

    ts = [threading.Thread(target=go, args=(s,)) for s in socks]
    for t in ts:
        t.start()
    for t in ts:
        t.join(10)
    return socks


def ended_cleanly(socks, timeout=20):
    """Each idle session ends with the server's FIN (the drain), not a
    cut; returns how many did."""
    clean = 0
    for s in socks:
        s.settimeout(timeout)
        try:
            while s.recv(65536):
                pass
            clean += 1
        except (ConnectionResetError, socket.timeout):
            pass
        s.close()
    return clean


def stop_race(idle_n, shutdowns, sigterm):
    """basic -w 4 with idle_n idle sessions; `shutdowns` clients send the
    remote shutdown at once (and SIGTERM with them if sigterm).  Returns
    (exit code, stderr, idle sessions that ended with the server's FIN)."""
    srv = Server("basic", "-H", "127.0.0.1", "-w", "4",
                 "--drain-timeout", "30s")
    idle = idle_sessions(srv.port, idle_n)
    shut = send_shutdowns(srv.port, shutdowns)
    if sigterm:
        srv.proc.send_signal(signal.SIGTERM)
    try:
        rc = srv.proc.wait(60)
    except subprocess.TimeoutExpired:
        srv.proc.kill()
        raise
    srv.err.join()
    err = srv.err.text()
    check_sanitizer(err)
    clean = ended_cleanly(idle)
    for s in shut:
        s.close()
    return rc, err, clean


@pytest.mark.parametrize("run", range(7))
def test_racing_remote_shutdowns_still_drain(run):
    """Eight clients send the remote shutdown at once to basic -w 4 with
    200 idle sessions: the first request starts the drain, the others
    change nothing, and the drain runs to its end (every idle session gets
    its FIN; no "drain deadline")."""
    rc, err, clean = stop_race(200, 8, sigterm=False)
    assert rc == 0, err
    assert "drain deadline" not in err, err
    assert "Remote user initiated shutdown" in err
    assert re.search(r"stopped \(remote shutdown\): \d+ connections served",
                     err), err
    assert clean == 200, err


def test_sigterm_racing_a_remote_shutdown_still_drains():
    """SIGTERM and a remote shutdown at once: one drain, to its end."""
    for _ in range(5):
        rc, err, clean = stop_race(50, 4, sigterm=True)
        assert rc == 0, err
        assert "drain deadline" not in err, err
        assert clean == 50, err


def test_interval_stats_never_underflow():
    """Interval statistics come from one consistent snapshot per worker:
    "other" errors (connection errors less resets, timeouts and line
    errors) are never a wrapped-around huge number, while two workers
    close connections with resets as fast as they can."""
    srv = Server("echo", "-H", "127.0.0.1", "-w", "2",
                 "--stats-interval", "1ms", "--log-format", "logfmt")
    try:
        deadline = time.monotonic() + 3
        n = 0
        while time.monotonic() < deadline and n < 3000:
            s = socket.create_connection(("127.0.0.1", srv.port), 5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.sendall(b"x")
            s.close()  # RST: a reset on the server's side
            n += 1
    finally:
        rc = srv.stop()
    assert rc == 0
    others = [int(m) for m in re.findall(r"errors_other=(\d+)",
                                         srv.err.text())]
    assert others, srv.err.text()[-500:]
    assert max(others) <= n, max(others)
