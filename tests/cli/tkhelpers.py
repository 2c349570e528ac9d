"""Helpers shared by the black-box tests (tests import them from here;
conftest.py holds the fixtures): run the real tcpkit binary against real
peers.  Servers listen on port 0; tests wait on lines and events with
bounded timeouts, never on sleeps."""
import os
import pty
import select
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TCPKIT = os.environ.get("TCPKIT") or os.path.join(ROOT, "build", "tcpkit")
EXAMPLES = os.environ.get("TCPKIT_EXAMPLES") or os.path.join(ROOT, "build", "examples")
PEERS = os.path.join(ROOT, "tests", "peers")

SANITIZER = re.compile(rb"(ERROR: (Address|Leak)Sanitizer|runtime error:|UndefinedBehaviorSanitizer)")

# The end of a --log-format json or logfmt record ("...PORT"} or "...PORT") too.
LISTEN_RE = re.compile(r"listening on (\S+):(\d+)(?:\"\}?)?$")
# A UNIX socket's: "listening on unix:/path" or "unix:@name", no port.
UNIX_LISTEN_RE = re.compile(r"listening on (unix:[^\s\"]+)(?:\"\}?)?$")
# Either; group 1 is "unix:..." or "HOST:PORT".
ANY_LISTEN_RE = re.compile(
    r"listening on (unix:[^\s\"]+|\S+:\d+)(?:\"\}?)?$")


def listen_addr(text):
    """(host, port) of a "listening on" address; ("unix:...", None) for
    a UNIX socket."""
    if text.startswith("unix:"):
        return (text, None)
    host, port = text.rsplit(":", 1)
    return (host.strip("[]"), int(port))
SHIM_SRC = os.path.join(ROOT, "tests", "shim", "short_writes.c")


# The Debian package of each optional peer, for the skip reason.
PEER_PACKAGES = {"nc": "netcat-openbsd", "telnet": "telnet",
                 "sslscan": "sslscan", "ncat": "ncat", "socat": "socat",
                 "ss": "iproute2", "ip": "iproute2", "openssl": "openssl",
                 "curl": "curl", "go": "golang-go", "node": "nodejs",
                 "nginx": "nginx", "haproxy": "haproxy",
                 "setpriv": "util-linux", "danted": "dante-server",
                 "tinyproxy": "tinyproxy", "nmap": "nmap",
                 "strace": "strace",
                 "systemd-socket-activate": "systemd",
                 "systemd-analyze": "systemd",
                 "promtool": "prometheus", "chromium": "chromium"}


def need(prog):
    """Skip the calling test, with the reason, if the peer prog is not
    installed (`make deps` installs the Debian ones)."""
    if shutil.which(prog) is None:
        pkg = PEER_PACKAGES.get(prog)
        pytest.skip("%s is not installed%s" % (
            prog, " (Debian package %s; `make deps` installs it)" % pkg
            if pkg else ""))


def check_sanitizer(stderr):
    """Fail the test if a sanitizer wrote a report."""
    if isinstance(stderr, str):
        stderr = stderr.encode()
    assert not SANITIZER.search(stderr or b""), stderr.decode(errors="replace")


def run(args, input=None, timeout=20, env=None, check_san=True):
    """Run tcpkit with args; return CompletedProcess with bytes output."""
    p = subprocess.run([TCPKIT] + list(args), input=input, capture_output=True,
                       timeout=timeout, env=env)
    if check_san:
        check_sanitizer(p.stderr)
    return p


def free_port():
    """A port with nothing listening on it: bind port 0, then close.  Used
    only for "connection refused" tests, where nobody must listen."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class LineReader:
    """Reads a process's pipe line by line with a deadline, in a thread, so
    tests can wait for a line without blocking forever."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.lines = []
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        for raw in iter(self.pipe.readline, b""):
            with self.cond:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait_for(self, pattern, timeout=10, start=0):
        """Return the first match of regex pattern in lines[start:]."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines[start:]:
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if self.closed or left <= 0:
                    raise AssertionError(
                        "no line matching %r; got %r" % (pattern, self.lines))
                self.cond.wait(left)

    def text(self):
        with self.cond:
            return "\n".join(self.lines)

    def join(self, timeout=10):
        self.thread.join(timeout)


class Server:
    """A `tcpkit serve` process on port 0; .port is read from its
    "listening on" line."""

    def __init__(self, *args, listeners=1, env=None):
        argv = [TCPKIT, "serve"] + list(args)
        # A UNIX socket has no port: -p 0 only for TCP (or give it).
        if not any(a in ("-p", "--port") or a.startswith("--port=") or
                   a.startswith("unix:") for a in args):
            argv += ["-p", "0"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        self.out = LineReader(self.proc.stdout)
        self.err = LineReader(self.proc.stderr)
        # Wait for as many "listening on" lines as there are listeners.
        found = []
        for _ in range(listeners):
            m = self.err.wait_for(ANY_LISTEN_RE.pattern,
                                  start=self._line_after(found))
            found.append(m)
        self.addrs = [listen_addr(m.group(1)) for m in found]
        self.host, self.port = self.addrs[0]

    def _line_after(self, found):
        """Index of the line after the last "listening on" line seen."""
        if not found:
            return 0
        with self.err.cond:
            for i, line in enumerate(self.err.lines):
                if found[-1].string == line:
                    return i + 1
        return 0

    def wait_connections(self, n, timeout=10):
        """Wait until a server not run with -q has logged n "connection
        from" lines; bounded."""
        with self.err.cond:
            ok = self.err.cond.wait_for(
                lambda: sum(1 for l in self.err.lines
                            if l.startswith("connection from")) >= n,
                timeout)
        assert ok, self.err.lines

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Signal the server and wait; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("server did not stop within %ss" % timeout)
        self.out.join()
        self.err.join()
        check_sanitizer(self.err.text())
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.stop()


def connect(port, host="127.0.0.1", timeout=10):
    s = socket.create_connection((host, port), timeout=timeout)
    return s


def recv_until(sock, predicate, timeout=10):
    """Read from sock until predicate(data) is true or EOF; bounded."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while not predicate(data):
        if time.monotonic() > deadline:
            raise AssertionError("timed out; got %r" % data[:200])
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def recv_all(sock, timeout=10):
    """Read until EOF."""
    return recv_until(sock, lambda d: False, timeout)


class PyServer:
    """A Python TCP server on port 0 running handler(conn) per client in a
    thread; a real peer for tcpkit's clients."""

    def __init__(self, handler, host="127.0.0.1", family=socket.AF_INET):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.received = []
        self.errors = []
        self.finished = threading.Semaphore(0)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn):
        try:
            with conn:
                conn.settimeout(20)
                self.handler(conn, self)
        except Exception as e:  # recorded for the test to assert on
            self.errors.append(e)
        finally:
            self.finished.release()

    def wait_handlers(self, n=1, timeout=20):
        """Wait until n handlers have returned (the client may finish
        before the server's handler has recorded what it saw)."""
        for _ in range(n):
            assert self.finished.acquire(timeout=timeout), \
                "a server handler did not finish within %ss" % timeout

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Proc:
    """A long-running client (nc, telnet, tcpkit connect) driven through
    its stdin, a pipe or (tty=True) a pseudo-terminal as when a person
    types; killed at teardown if it is still running."""

    def __init__(self, argv, env=None, tty=False):
        self.master = None
        stdin = subprocess.PIPE
        if tty:
            self.master, stdin = pty.openpty()
        self.proc = subprocess.Popen(argv, stdin=stdin,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        if tty:
            os.close(stdin)
        self.out = LineReader(self.proc.stdout)
        self.err = LineReader(self.proc.stderr)

    def send(self, data):
        if self.master is not None:
            os.write(self.master, data)
            return
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def close_stdin(self):
        if self.master is not None:
            os.close(self.master)
            self.master = None
        elif self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()

    def wait(self, timeout=20):
        rc = self.proc.wait(timeout)
        self.out.join()
        self.err.join()
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.close_stdin()
        self.out.join()
        self.err.join()


def shim_env(so, max_bytes):
    env = dict(os.environ)
    env["LD_PRELOAD"] = so
    env["SHORT_WRITES_MAX"] = str(max_bytes)
    # A sanitizer wants to come first; the shim forwards to it.
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                           ":verify_asan_link_order=0").lstrip(":")
    return env


def nc_listening():
    """`nc -l` on a free port of 127.0.0.1 chosen by the kernel (port 0),
    found with ss by its pid."""
    need("nc")
    need("ss")
    nc = subprocess.Popen(["nc", "-N", "-l", "127.0.0.1", "0"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        ss = subprocess.run(["ss", "-ltnpH"], capture_output=True,
                            text=True, timeout=10).stdout
        m = re.search(r"127\.0\.0\.1:(\d+) .*pid=%d," % nc.pid, ss)
        if m:
            return nc, int(m.group(1))
        assert time.monotonic() < deadline, "nc -l did not listen"
        select.select([], [], [], 0.05)
