"""serve and relay --handoff PATH: a new process takes over the listening
sockets of the running one (SCM_RIGHTS over a UNIX socket) while the old
one drains; nothing a client sees is lost across the restart."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from relayhelpers import relay  # noqa: F401 (a fixture)
from tkhelpers import (TCPKIT, LineReader, check_sanitizer, free_port,
                       need, recv_all, recv_until, run)

TIMEOUT = 15
HANDED = r"handoff: pid \d+ took over the listening sockets: handed over"
READY = r"handoff: answering at .* for the next restart"
CLOSED = r"^closed 127\.0\.0\.1:\d+ .*\(done\)$"


def nlines(reader):
    with reader.cond:
        return len(reader.lines)


def echoes(port, line):
    """line, sent to port on a connection of its own, comes back."""
    with socket.create_connection(("127.0.0.1", port),
                                  timeout=TIMEOUT) as c:
        c.sendall(line)
        assert recv_until(c, lambda d: d.endswith(b"\n")) == line


def start_bench(port, *args):
    """tcpkit bench against port, bounded in time; its JSON report."""
    return subprocess.Popen(
        [TCPKIT, "bench"] + list(args) + ["127.0.0.1", str(port), "--json"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)


def bench_report(p):
    out, err = p.communicate(timeout=60)
    check_sanitizer(err)
    return p.returncode, json.loads(out)


def echo_runs_until(port, done, after=3, limit=300, seconds=40):
    """Short verified-echo bench runs (8 connections, one 64-byte message
    each, every byte compared) one after another until done() and then
    `after` more; bounded in count and time.  The reports."""
    reports = []
    deadline = time.monotonic() + seconds
    extra = None
    while len(reports) < limit and time.monotonic() < deadline:
        rc, rep = bench_report(start_bench(port, "echo", "-c", "8", "-n",
                                           "1", "-t", "5"))
        assert rc == 0, rep
        reports.append(rep)
        if extra is None and done():
            extra = after
        if extra is not None:
            if extra == 0:
                return reports
            extra -= 1
    raise AssertionError("the hand-over did not happen within the runs")


def test_bench_runs_across_a_handoff(serve, tmp_path):
    ctl = str(tmp_path / "ctl")
    old = serve("echo", "-w", "2", "--handoff", ctl)
    old.err.wait_for(READY)
    assert oct(os.stat(ctl).st_mode & 0o777) == "0o600"
    # Many short connections, each answered line checked, all along...
    bench = start_bench(old.port, "rate", "-c", "8", "-t", "4")
    old.err.wait_for(CLOSED, timeout=TIMEOUT)
    new = subprocess.Popen(
        [TCPKIT, "serve", "echo", "-w", "2", "-p", str(old.port),
         "--handoff", ctl], stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    new_err = LineReader(new.stderr)
    try:
        # ...and short runs of verified echoes while the new one takes
        # over, until the old one has exited and after.
        runs = echo_runs_until(old.port, lambda: old.proc.poll() is not None)
        new_err.wait_for(r"handoff: took 4 listening sockets from pid %d"
                         % old.proc.pid)
        assert old.proc.wait(TIMEOUT) == 0
        old.err.join()
        check_sanitizer(old.err.text())
        assert re.search(HANDED, old.err.text())
        assert "stopped (handed over)" in old.err.text()
        for rep in runs:
            assert rep["errors"]["total"] == 0, rep["first_errors"]
            assert rep["messages"] == 8
        # After the old one is gone, the new one serves.
        mark = nlines(new_err)
        new_err.wait_for(CLOSED, timeout=TIMEOUT, start=mark)
        rc, rep = bench_report(bench)
        assert rc == 0, rep
        assert rep["errors"]["total"] == 0, rep["first_errors"]
        assert rep["established"] > 100
    finally:
        new.terminate()
        assert new.wait(TIMEOUT) == 0
        new_err.join()
        check_sanitizer(new_err.text())


def test_exchange_in_flight_finishes_on_the_old_process(serve, tmp_path):
    ctl = str(tmp_path / "ctl")
    old = serve("line", "-w", "1", "--handoff", ctl)
    old.err.wait_for(READY)
    s = socket.create_connection(("127.0.0.1", old.port), timeout=TIMEOUT)
    s.sendall(b"first\n")
    assert recv_until(s, lambda d: d.endswith(b"\n")) == b"first\n"
    s.sendall(b"half a li")  # a line in flight across the hand-over
    new = serve("line", "-w", "1", "-p", str(old.port), "--handoff", ctl)
    new.err.wait_for(READY)
    old.err.wait_for(HANDED, timeout=TIMEOUT)
    # New clients reach the new process...
    mark = nlines(new.err)
    echoes(old.port, b"to the new one\n")
    new.err.wait_for(r"127\.0\.0\.1", timeout=TIMEOUT, start=mark)
    # ...while the old one finishes the exchange it had, then closes it.
    assert old.proc.poll() is None
    s.sendall(b"ne\n")
    assert recv_all(s) == b"half a line\n"
    s.close()
    assert old.proc.wait(TIMEOUT) == 0
    assert "stopped (handed over): 1 connection served" in old.err.text()
    assert new.stop() == 0


def test_many_workers_on_two_addresses_are_handed_over(serve, tmp_path):
    # -w is the CPU count by default: 9 workers on the loopback pair are
    # 18 sockets (an SO_REUSEPORT group per address), within the 64 the
    # hand-over carries; the successor must take them all.
    ctl = str(tmp_path / "ctl")
    old = serve("echo", "-w", "9", "--handoff", ctl)
    old.err.wait_for(READY)
    new = serve("echo", "-w", "2", "-p", str(old.port), "--handoff", ctl)
    new.err.wait_for(READY)
    old.err.wait_for(HANDED, timeout=TIMEOUT)
    assert old.proc.wait(TIMEOUT) == 0
    # Every socket of both groups is the new one's now: many connections,
    # spread over all of them by the kernel, are each answered.
    for i in range(40):
        echoes(old.port, b"to the new one %d\n" % i)
    assert new.stop() == 0


def test_mismatched_addresses_are_refused_and_the_old_goes_on(serve,
                                                              tmp_path):
    ctl = str(tmp_path / "ctl")
    old = serve("echo", "-w", "2", "--handoff", ctl)
    old.err.wait_for(READY)
    # Another port; then 127.0.0.1 alone where the old one has ::1 too.
    for args, differs in ((["-p", str(free_port())], r"127\.0\.0\.1:%d"),
                          (["-H", "127.0.0.1", "-p", str(old.port)],
                           r"\[::1\]:%d")):
        mark = nlines(old.err)
        p = run(["serve", "echo", "--handoff", ctl] + args)
        assert p.returncode == 64, p.stderr
        lines = p.stderr.decode().splitlines()
        assert len(lines) == 1, lines
        assert re.match(r"tcpkit: handoff %s: pid %d listens on %s, which "
                        r"this command line does not; it goes on serving$"
                        % (re.escape(ctl), old.proc.pid,
                           differs % old.port), lines[0]), lines
        old.err.wait_for(r"went away before taking over; still serving",
                         timeout=TIMEOUT, start=mark)
    assert old.proc.poll() is None
    echoes(old.port, b"still here\n")
    assert old.stop() == 0
    assert "stopped (SIGTERM)" in old.err.text()
    # Its own socket file, removed at a stop that handed nothing over.
    assert not os.path.exists(ctl)


def test_a_successor_that_dies_before_go_leaves_the_old_serving(serve,
                                                                  tmp_path):
    """A successor speaking the protocol (Python) takes the sockets and
    dies without "go"; another sends what the protocol does not know."""
    ctl = str(tmp_path / "ctl")
    old = serve("echo", "-w", "1", "--handoff", ctl)
    old.err.wait_for(READY)
    c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    c.settimeout(TIMEOUT)
    c.connect(ctl)
    c.send(b"tcpkit-handoff 1 get\n")
    msg, fds, _, _ = socket.recv_fds(c, 4096, 64)
    try:
        assert msg.decode() == (
            "tcpkit-handoff 1 pid=%d fds=2\n127.0.0.1:%d\n[::1]:%d\n"
            % (old.proc.pid, old.port, old.port))
        assert len(fds) == 2
        for fd in fds:
            with socket.socket(fileno=os.dup(fd)) as ls:
                assert ls.getsockname()[1] == old.port
                assert ls.getsockopt(socket.SOL_SOCKET,
                                     socket.SO_ACCEPTCONN) == 1
    finally:
        for fd in fds:
            os.close(fd)
        c.close()
    old.err.wait_for(r"handoff: pid %d went away before taking over; still "
                     r"serving" % os.getpid(), timeout=TIMEOUT)
    c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    c.settimeout(TIMEOUT)
    c.connect(ctl)
    c.send(b"tcpkit-handoff 2 get\n")
    assert c.recv(4096) == b""  # closed on us
    c.close()
    old.err.wait_for(r"handoff: pid %d sent what handoff does not know; "
                     r"closed, still serving" % os.getpid(), timeout=TIMEOUT)
    echoes(old.port, b"served\n")
    assert old.stop() == 0
    assert "stopped (SIGTERM)" in old.err.text()


def test_a_stale_path_is_replaced(serve, tmp_path):
    ctl = str(tmp_path / "ctl")
    dead = serve("echo", "-w", "1", "--handoff", ctl)
    dead.err.wait_for(READY)
    dead.proc.send_signal(signal.SIGKILL)
    dead.proc.wait(TIMEOUT)
    assert os.path.exists(ctl)  # left behind: nobody answers there
    new = serve("echo", "-w", "1", "--handoff", ctl)
    new.err.wait_for(r"handoff: nobody answers at %s \(a stale socket\); "
                     r"listening anew" % re.escape(ctl))
    new.err.wait_for(READY)
    assert new.port != 0
    echoes(new.port, b"fresh\n")
    # The path answers again: a successor can take over.
    nxt = serve("echo", "-w", "1", "-p", str(new.port), "--handoff", ctl)
    nxt.err.wait_for(READY)
    assert new.proc.wait(TIMEOUT) == 0
    assert nxt.stop() == 0


def test_a_path_that_is_not_a_socket_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "not-a-socket"
    path.write_bytes(b"keep me\n")
    for cmd in (["serve", "echo", "-p", "0"],
                ["relay", "127.0.0.1:0", "127.0.0.1:9"]):  # port-ok: never used
        p = run(cmd + ["--handoff", str(path)])
        assert p.returncode == 73, p.stderr
        assert p.stderr.decode().splitlines() == [
            "tcpkit: handoff %s: not a socket: the file is left alone; "
            "choose another path" % path]
        assert path.read_bytes() == b"keep me\n"


def test_another_users_process_is_refused_both_ways(serve):
    """Root's server, and nobody (setpriv) trying to take it over: the
    file's mode opened up so that only the credentials check stands."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a process as another user")
    need("setpriv")
    d = tempfile.mkdtemp(prefix="tk-handoff-")
    ctl = os.path.join(d, "ctl")
    try:
        os.chmod(d, 0o755)
        old = serve("echo", "-w", "1", "--handoff", ctl)
        old.err.wait_for(READY)
        os.chmod(ctl, 0o666)
        p = subprocess.run(
            ["setpriv", "--reuid=nobody", "--regid=nogroup",
             "--clear-groups", TCPKIT, "serve", "echo", "-p", str(old.port),
             "--handoff", ctl], stdin=subprocess.DEVNULL,
            capture_output=True, timeout=TIMEOUT)
        check_sanitizer(p.stderr)
        assert p.returncode == 77, p.stderr
        assert re.fullmatch(
            r"tcpkit: handoff %s: the process answering \(pid %d\) is uid "
            r"0, not this user\n" % (re.escape(ctl), old.proc.pid),
            p.stderr.decode()), p.stderr
        old.err.wait_for(r"handoff: refused a control client \(pid \d+, "
                         r"uid 65534\): not this user", timeout=TIMEOUT)
        echoes(old.port, b"mine\n")
        assert old.stop() == 0
    finally:
        shutil.rmtree(d)


def test_relay_handed_over_under_load(serve, relay, tmp_path):
    ctl = str(tmp_path / "ctl")
    target = serve("echo", "-w", "1", "-q")
    old = relay("-w", "2", "--drain-timeout", "30s", "--handoff", ctl,
                "127.0.0.1:0", "127.0.0.1:%d" % target.port, workers=False)
    old.err.wait_for(READY, timeout=TIMEOUT)
    # A relay opened before the hand-over...
    s = socket.create_connection(("127.0.0.1", old.port),
                                 timeout=TIMEOUT)
    s.sendall(b"before\n")
    assert recv_until(s, lambda d: d.endswith(b"\n")) == b"before\n"
    bench = start_bench(old.port, "rate", "-c", "8", "-t", "3")
    new = relay("-w", "2", "--handoff", ctl, "127.0.0.1:%d" % old.port,
                "127.0.0.1:%d" % target.port, workers=False)
    new.err.wait_for(READY, timeout=TIMEOUT)
    old.err.wait_for(HANDED, timeout=TIMEOUT)
    runs = echo_runs_until(old.port, lambda: True, after=2)
    rc, rep = bench_report(bench)
    assert rc == 0, rep
    assert rep["errors"]["total"] == 0, rep["first_errors"]
    for r in runs:
        assert r["errors"]["total"] == 0, r["first_errors"]
    # ...goes on through the old process until its client closes it.
    assert old.proc.poll() is None
    s.sendall(b"after\n")
    assert recv_until(s, lambda d: d.endswith(b"\n")) == b"after\n"
    s.close()
    assert old.proc.wait(TIMEOUT) == 0
    assert old.stop() == 0  # gone already: its log, checked
    assert re.search(r"stopped \(handed over\): \d+ clients? relayed, "
                     r"\d+ open at the stop", old.err.text())
    assert re.search(r"handoff: took 2 listening sockets from pid %d"
                     % old.proc.pid, new.err.text())
    assert new.stop() == 0


def scrape_accepted(port):
    """tcpkit_connections_accepted_total summed over the workers, from the
    --metrics endpoint on port."""
    with socket.create_connection(("127.0.0.1", port),
                                  timeout=TIMEOUT) as c:
        c.sendall(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        text = recv_all(c).decode()
    assert text.startswith("HTTP/1.1 200"), text[:200]
    return sum(float(v) for v in re.findall(
        r"^tcpkit_connections_accepted_total\{[^}]*\} (\S+)$", text, re.M))


def test_metrics_endpoint_is_handed_over_too(serve, tmp_path):
    """--metrics on a fixed port across a hand-over: the successor takes
    the endpoint's socket with the others (binding it would find it in
    use), and from then on the scrapes are its own."""
    ctl = str(tmp_path / "ctl")
    old = serve("echo", "-w", "1", "--handoff", ctl, "--metrics",
                "127.0.0.1:0")
    old.err.wait_for(READY)
    mport = int(old.err.wait_for(r"metrics on 127\.0\.0\.1:(\d+)").group(1))
    for line in (b"one\n", b"two\n"):
        echoes(old.port, line)
    old.err.wait_for(CLOSED)
    assert scrape_accepted(mport) >= 2
    new = serve("echo", "-w", "1", "-p", str(old.port), "--handoff", ctl,
                "--metrics", "127.0.0.1:%d" % mport)
    new.err.wait_for(r"metrics on 127\.0\.0\.1:%d" % mport)
    new.err.wait_for(READY)
    assert old.proc.wait(TIMEOUT) == 0
    assert old.stop() == 0
    assert re.search(HANDED, old.err.text())
    echoes(old.port, b"three\n")
    new.err.wait_for(CLOSED)
    # The new process's count: the one connection it served.
    assert scrape_accepted(mport) == 1
    assert new.stop() == 0


@pytest.mark.parametrize("args,msg", [
    (["serve", "--handoff", "/tmp/" + "x" * 100],
     "serve: --handoff: PATH must be 1 to 87 bytes"),
    (["serve", "-H", "unix:@tk-handoff", "--handoff", "/tmp/h"],
     "serve: --handoff hands over TCP listeners only (not -u, not unix:)"),
    (["serve", "-u", "-p", "0", "--handoff", "/tmp/h"],
     "serve: --handoff hands over TCP listeners only (not -u, not unix:)"),
    (["relay", "--handoff", "/tmp/h", "unix:@tk-handoff",
      "127.0.0.1:9"],  # port-ok: a usage error, never connected
     "relay: --handoff hands over TCP listeners only (not udp://, not "
     "unix:)"),
])
def test_handoff_usage_errors(args, msg):
    p = run(args)
    assert p.returncode == 64, p.stderr
    assert p.stderr.decode() == "tcpkit: %s (see 'tcpkit help %s')\n" % (
        msg, args[0])
