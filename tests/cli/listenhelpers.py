"""Helpers of the `tcpkit listen` tests (test_listen.py, test_exec.py): the
listener as a process whose port is read from its "listening on" line."""
import os
import pty
import re
import select
import signal
import socket
import subprocess
import time
import tty as ttymod

import pytest

from tkhelpers import LISTEN_RE, TCPKIT, LineReader, check_sanitizer


class Listen:
    """`tcpkit listen ARGS` on 127.0.0.1 port 0 (unless hostport is given).
    stdin and stdout are what subprocess takes; with tty=True stderr is a
    pseudo-terminal, read raw through its master (tty_wait_for())."""

    def __init__(self, *args, stdin=subprocess.DEVNULL,
                 stdout=subprocess.PIPE, tty=False, hostport=("127.0.0.1",
                                                               "0"),
                 cwd=None, env=None, pass_fds=()):
        argv = [TCPKIT, "listen"] + list(args) + list(hostport)
        self.master = None
        stderr = subprocess.PIPE
        if tty:
            self.master, stderr = pty.openpty()
            ttymod.setraw(stderr)  # no \r added to our \n
            self.raw = b""
        self.proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout,
                                     stderr=stderr, cwd=cwd, env=env,
                                     pass_fds=pass_fds)
        self.err = None
        if tty:
            os.close(stderr)
            m = self.tty_wait_for(r"listening on (\S+):(\d+)\n")
        else:
            self.err = LineReader(self.proc.stderr)
            m = self.err.wait_for(LISTEN_RE.pattern)
        self.out = (LineReader(self.proc.stdout)
                    if stdout == subprocess.PIPE else None)
        self.port = int(m.group(2))

    def tty_wait_for(self, pattern, timeout=10):
        """tty=True: read the terminal until pattern matches what came
        (bytes, \r and escapes included); returns the match."""
        rx = re.compile(pattern.encode() if isinstance(pattern, str)
                        else pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.raw)
            if m:
                return m
            left = deadline - time.monotonic()
            assert left > 0, "no %r on the terminal; got %r" % (
                pattern, self.raw[-300:])
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # EIO: the other side is closed
                    chunk = b""
                assert chunk, "the terminal closed; got %r" % self.raw
                self.raw += chunk

    @property
    def pid(self):
        return self.proc.pid

    def wait(self, timeout=30):
        """Wait for the exit; returns the exit code (sanitizer-checked)."""
        try:
            rc = self.proc.wait(timeout)
        except OSError:
            raise
        if self.err is not None:
            self.err.join()
            check_sanitizer(self.err.text())
        else:
            self.tty_drain()
            check_sanitizer(self.raw)
        if self.out is not None:
            self.out.join()
        return rc

    def tty_drain(self):
        while select.select([self.master], [], [], 0)[0]:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                break
            if not chunk:
                break
            self.raw += chunk

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait(timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.master is not None:
            os.close(self.master)
            self.master = None


def children(pid):
    """The pids of pid's children (zombies included) from /proc."""
    kids = []
    task = "/proc/%d/task" % pid
    for tid in os.listdir(task):
        with open(os.path.join(task, tid, "children")) as f:
            kids += [int(k) for k in f.read().split()]
    return kids


@pytest.fixture
def listen():
    """Factory: listen(*args, **kw) starts a Listen, killed at teardown."""
    started = []

    def start(*args, **kw):
        lp = Listen(*args, **kw)
        started.append(lp)
        return lp

    yield start
    for lp in started:
        lp.kill()


def connect(port, timeout=20):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def recv_all(s, timeout=20):
    s.settimeout(timeout)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk
