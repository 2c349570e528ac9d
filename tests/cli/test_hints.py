"""The `try:` line `tcpkit serve` prints is a command the user can paste back
into the shell they started it from: it names the program by the path it was
run by (quoted for the shell when need be), or plain `tcpkit` when the shell
found it in PATH.  Each test runs the printed line through /bin/sh and checks
it talks to the server."""
import os
import re
import shlex
import signal
import subprocess

import pytest

from tkhelpers import LISTEN_RE, TCPKIT, LineReader, check_sanitizer

TIMEOUT = 15
TRY_RE = r"^try: (.*)$"


class Serve:
    """`serve ARGS -p 0` started as argv0 from cwd, with env."""

    def __init__(self, argv0, args, cwd=None, env=None):
        self.proc = subprocess.Popen([argv0, "serve"] + args + ["-p", "0"],
                                     executable=os.path.realpath(TCPKIT),
                                     cwd=cwd, env=env,
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        self.err = LineReader(self.proc.stderr)
        self.port = int(self.err.wait_for(LISTEN_RE.pattern,
                                          timeout=TIMEOUT).group(2))
        self.hint = self.err.wait_for(TRY_RE, timeout=TIMEOUT).group(1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("server did not stop within %ss" % TIMEOUT)
        self.err.join()
        check_sanitizer(self.err.text())
        return rc


@pytest.fixture
def served():
    started = []

    def start(*args, **kw):
        s = Serve(*args, **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        if s.proc.poll() is None:
            s.stop()


def sh(line, cwd=None, env=None, input=b""):
    """Run a hint's command line as the user would: typed into a shell."""
    p = subprocess.run(["/bin/sh", "-c", line], cwd=cwd, env=env,
                       input=input, capture_output=True, timeout=TIMEOUT)
    check_sanitizer(p.stderr)
    return p


def test_run_by_relative_path_hint_names_that_path(served):
    d = os.path.dirname(os.path.realpath(TCPKIT))
    srv = served("./tcpkit", [], cwd=d)
    assert srv.hint == "./tcpkit connect 127.0.0.1 %d" % srv.port
    p = sh(srv.hint, cwd=d, input=b"pasted back\n")
    assert (p.returncode, p.stdout) == (0, b"pasted back\n"), p.stderr
    assert srv.stop() == 0


def test_run_by_absolute_path_basic_hint_works(served):
    srv = served(os.path.realpath(TCPKIT), ["basic"])
    assert srv.hint == "%s send 127.0.0.1 %d 'Hey!'" % (
        shlex.quote(os.path.realpath(TCPKIT)), srv.port)
    p = sh(srv.hint, cwd="/")
    assert p.returncode == 0, p.stderr
    assert re.fullmatch(rb"You connected at \[[-0-9 :.]+\]\n"
                        rb"You sent: \[Hey!\]\n", p.stdout), p.stdout
    assert srv.stop() == 0


def test_found_in_path_hint_says_tcpkit(served, tmp_path):
    # A directory of our own holding only `tcpkit`, so PATH finds this
    # build and nothing else of that name.
    os.symlink(os.path.realpath(TCPKIT), tmp_path / "tcpkit")
    env = dict(os.environ, PATH="%s:/usr/bin:/bin" % tmp_path)
    srv = served("tcpkit", ["welcome"], env=env)
    assert srv.hint == "tcpkit connect 127.0.0.1 %d" % srv.port
    p = sh(srv.hint, env=env, input=b"hi\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(b"Welcome to the server."), p.stdout
    assert b"OK...hi\n" in p.stdout, p.stdout
    assert srv.stop() == 0


def test_path_the_shell_would_split_is_quoted(served, tmp_path):
    d = tmp_path / "my tools $HOME 'n' *"
    d.mkdir()
    os.symlink(os.path.realpath(TCPKIT), d / "tcpkit")
    argv0 = str(d / "tcpkit")
    srv = served(argv0, [])
    assert srv.hint == "%s connect 127.0.0.1 %d" % (shlex.quote(argv0),
                                                   srv.port)
    p = sh(srv.hint, input=b"quoted\n")
    assert (p.returncode, p.stdout) == (0, b"quoted\n"), p.stderr
    assert srv.stop() == 0
