"""serve and relay --handoff PATH: a new process takes over the listening
sockets of the running one (SCM_RIGHTS over a UNIX socket) while the old
one drains; nothing a client sees is lost across the restart."""
import json
import os
import re
import signal
import socket
import subprocess
import time

from tkhelpers import TCPKIT, LineReader, check_sanitizer, recv_until

TIMEOUT = 15
HANDED = r"handoff: pid \d+ took over the listening sockets: handed over"
READY = r"handoff: answering at .* for the next restart"
CLOSED = r"^closed 127\.0\.0\.1:\d+ .*\(done\)$"


def nlines(reader):
    with reader.cond:
        return len(reader.lines)


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
