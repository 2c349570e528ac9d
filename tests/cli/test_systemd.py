"""serve, listen and relay under systemd, without systemd as PID 1:
sockets passed by systemd-socket-activate (Debian's systemd package) or by
this test (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES from descriptor 3), and
the sd_notify datagrams (READY=1, WATCHDOG=1, STATUS=, STOPPING=1) received
on a NOTIFY_SOCKET this test owns."""
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time

import pytest

from tkhelpers import (LISTEN_RE, ROOT, TCPKIT, UNIX_LISTEN_RE, LineReader,
                       check_sanitizer, need, recv_all, recv_until)

TIMEOUT = 15
UNITS = os.path.join(ROOT, "contrib", "systemd")


class Tk:
    """A tcpkit process (argv ready-made), its stderr read by line."""

    def __init__(self, argv, env=None, pass_fds=(), stdin=None):
        self.proc = subprocess.Popen(
            argv, stdin=stdin or subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
            pass_fds=pass_fds)
        self.out = LineReader(self.proc.stdout)
        self.err = LineReader(self.proc.stderr)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("did not stop: %s" % self.err.text())
        self.out.join()
        self.err.join()
        check_sanitizer(self.err.text())
        return rc


@pytest.fixture
def tk():
    started = []

    def start(*a, **kw):
        t = Tk(*a, **kw)
        started.append(t)
        return t

    yield start
    # SIGTERM, not SIGKILL: a clean exit lets LeakSanitizer report.
    for t in started:
        if t.proc.poll() is None:
            t.stop()


class Manager:
    """The service manager's end of NOTIFY_SOCKET: a datagram socket in a
    temporary directory (or the abstract namespace), with the sender's
    credentials (SO_PASSCRED)."""

    def __init__(self, tmp_path, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        if abstract:
            self.addr = "@tk-test-notify-%d" % os.getpid()
            self.sock.bind("\0" + self.addr[1:])
        else:
            self.addr = str(tmp_path / "notify")
            self.sock.bind(self.addr)
        self.got = []  # (monotonic time, pid, text)

    def env(self, **extra):
        e = dict(os.environ, NOTIFY_SOCKET=self.addr)
        for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES",
                  "WATCHDOG_USEC", "WATCHDOG_PID"):
            e.pop(k, None)
        e.update(extra)
        return e

    def recv(self, timeout):
        """The next datagram, (time, pid, text), or None after timeout."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, anc, _, _ = self.sock.recvmsg(
                4096, socket.CMSG_SPACE(struct.calcsize("3i")))
        except socket.timeout:
            return None
        pid = None
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("3i", cdata[:struct.calcsize("3i")])[0]
        d = (time.monotonic(), pid, data.decode())
        self.got.append(d)
        return d

    def wait_for(self, pattern, timeout=TIMEOUT):
        """The first datagram (from now) with a line matching pattern."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            d = self.recv(deadline - time.monotonic())
            if d is None:
                raise AssertionError("no notification %r; got %r" %
                                     (pattern, [g[2] for g in self.got]))
            if rx.search(d[2]):
                return d

    def close(self):
        self.sock.close()


@pytest.fixture
def manager(tmp_path):
    m = Manager(tmp_path)
    yield m
    m.close()


def tcp_listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s


def with_fds(argv, fd, names=None, pid="$$", fds="1"):
    """argv run with fd as descriptor 3, LISTEN_PID (the shell's own PID:
    exec keeps it), LISTEN_FDS and LISTEN_FDNAMES set as a manager would."""
    env = "LISTEN_PID=%s LISTEN_FDS=%s" % (pid, fds)
    if names is not None:
        env += " LISTEN_FDNAMES=%s" % names
    # bash: dash takes descriptors 0 to 9 only in redirections.
    return ["/bin/bash", "-c",
            'export %s; exec "$0" "$@" 3<&%d %d<&-' % (env, fd, fd)] + argv


def echo_once(port, msg=b"hello systemd\n"):
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as c:
        c.sendall(msg)
        got = recv_until(c, lambda b: b.endswith(b"\n"), TIMEOUT)
    assert got == msg


def activate(tmp_path, names, argv):
    """systemd-socket-activate with one UNIX stream socket per name (it
    takes no port 0: paths need no port), argv started at the first
    connection.  Returns (the process, the socket paths)."""
    need("systemd-socket-activate")
    paths = [str(tmp_path / ("%s.sock" % n)) for n in names]
    cmd = ["systemd-socket-activate"]
    for p in paths:
        cmd += ["-l", p]
    cmd += ["--fdname=" + ":".join(names)]
    t = Tk(cmd + argv)
    for p in paths:
        t.err.wait_for(r"Listening on %s as \d+\." % re.escape(p), TIMEOUT)
    return t, paths


def uconnect(path):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(TIMEOUT)
    c.connect(path)
    return c


# systemd-socket-activate: the sockets passed, a client through each command.

def test_activate_serve_echo_through_the_passed_socket(tmp_path):
    t, (path,) = activate(tmp_path, ["echo"],
                          [TCPKIT, "serve", "echo", "-w", "2"])
    try:
        # Started by this connection, which waits in the socket's queue.
        with uconnect(path) as c:
            c.sendall(b"queued while starting\n")
            got = recv_until(c, lambda b: b.endswith(b"\n"), TIMEOUT)
        assert got == b"queued while starting\n"
        t.err.wait_for(r"socket activation: 1 socket from the service "
                       r"manager", TIMEOUT)
        t.err.wait_for(r"listening on unix:%s$" % re.escape(path), TIMEOUT)
    finally:
        rc = t.stop()
    assert rc == 0, t.err.text()
    # Not tcpkit's file: left where systemd made it.
    assert os.path.exists(path)


def test_activate_relay_picks_the_socket_by_fdname(tmp_path, serve):
    target = serve("echo")
    t, (admin, front) = activate(
        tmp_path, ["admin", "front"],
        [TCPKIT, "relay", "--fdname", "front", "127.0.0.1:0",
         "127.0.0.1:%d" % target.port])
    try:
        with uconnect(front) as c:
            c.sendall(b"via the relay\n")
            got = recv_until(c, lambda b: b.endswith(b"\n"), TIMEOUT)
        assert got == b"via the relay\n"
        t.err.wait_for(r"listening on unix:%s$" % re.escape(front), TIMEOUT)
        # The other socket is not the relay's: closed, nobody listens.
        with pytest.raises(ConnectionRefusedError):
            uconnect(admin).close()
        assert "127.0.0.1" not in "\n".join(
            l for l in t.err.text().splitlines() if "listening on" in l)
    finally:
        rc = t.stop()
    assert rc == 0, t.err.text()


def test_activate_relay_unknown_fdname_is_a_usage_error(tmp_path):
    t, (path,) = activate(tmp_path, ["front"],
                          [TCPKIT, "relay", "--fdname", "back",
                           "127.0.0.1:0", "127.0.0.1:9"])  # port-ok
    uconnect(path).close()
    assert t.proc.wait(TIMEOUT) == 64
    t.err.join()
    assert re.search(r"^tcpkit: socket activation back: no socket of this "
                     r"name among the 1 passed \(LISTEN_FDNAMES=front\)$",
                     t.err.text(), re.M), t.err.text()
    check_sanitizer(t.err.text())


def test_activate_listen_takes_one_client(tmp_path):
    t, (path,) = activate(tmp_path, ["in"],
                          [TCPKIT, "listen", "--recv-only", "0"])
    with uconnect(path) as c:
        c.sendall(b"to stdout\n")
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c, TIMEOUT) == b""
    assert t.proc.wait(TIMEOUT) == 0, t.err.text()
    t.out.join()
    t.err.join()
    assert t.out.text() == "to stdout"
    assert re.search(r"^listening on unix:%s$" % re.escape(path),
                     t.err.text(), re.M)
    check_sanitizer(t.err.text())


# A NOTIFY_SOCKET owned by the test.

def serve_notified(tk, manager, *args, **env):
    t = tk([TCPKIT, "serve", "echo", "-p", "0", "-H", "127.0.0.1"] +
           list(args), env=manager.env(**env))
    port = int(t.err.wait_for(LISTEN_RE.pattern, TIMEOUT).group(2))
    return t, port


def test_ready_then_status_then_stopping(tk, manager):
    t, port = serve_notified(tk, manager)
    _, pid, _ = manager.wait_for(r"^READY=1$")
    assert pid == t.proc.pid
    # Ready means ready: the socket takes a client at once.
    echo_once(port)
    c = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    try:
        manager.wait_for(r"^STATUS=1 open, 2 accepted$")
    finally:
        c.close()
    manager.wait_for(r"^STATUS=0 open, 2 accepted$")
    t.proc.send_signal(signal.SIGTERM)
    _, pid, _ = manager.wait_for(r"^STOPPING=1$")
    assert pid == t.proc.pid
    assert t.stop() == 0


def test_abstract_notify_socket(tk, tmp_path):
    m = Manager(tmp_path, abstract=True)
    try:
        t, _ = serve_notified(tk, m)
        _, pid, _ = m.wait_for(r"^READY=1$")
        assert pid == t.proc.pid
        assert t.stop() == 0
    finally:
        m.close()


def test_watchdog_pings_at_half_the_interval(tk, manager):
    t, _ = serve_notified(tk, manager, WATCHDOG_USEC="200000")
    times = []
    deadline = time.monotonic() + TIMEOUT
    while len(times) < 6 and time.monotonic() < deadline:
        d = manager.recv(deadline - time.monotonic())
        if d is not None and re.search(r"^WATCHDOG=1$", d[2], re.M):
            assert d[1] == t.proc.pid
            times.append(d[0])
    assert len(times) >= 3, [g[2] for g in manager.got]
    gaps = sorted(b - a for a, b in zip(times, times[1:]))
    median = gaps[len(gaps) // 2]
    assert 0.05 <= median <= 0.2, gaps
    assert t.stop() == 0


def test_watchdog_of_another_pid_is_not_pinged(tk, manager):
    t, _ = serve_notified(tk, manager, WATCHDOG_USEC="100000",
                          WATCHDOG_PID="1")
    manager.wait_for(r"^READY=1$")
    # Ten intervals without a ping: recv's timeout bounds the wait.
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        d = manager.recv(deadline - time.monotonic())
        assert d is None or "WATCHDOG=1" not in d[2], manager.got
    assert t.stop() == 0


@pytest.mark.parametrize("cmd", ["relay", "listen"])
def test_relay_and_listen_notify_ready_and_stopping(tk, manager, serve, cmd):
    if cmd == "relay":
        target = serve("echo")
        argv = [TCPKIT, "relay", "127.0.0.1:0",
                "127.0.0.1:%d" % target.port]
    else:
        argv = [TCPKIT, "listen", "-k", "--recv-only", "127.0.0.1", "0"]
    t = tk(argv, env=manager.env(WATCHDOG_USEC="400000"))
    t.err.wait_for(LISTEN_RE.pattern, TIMEOUT)
    _, pid, _ = manager.wait_for(r"^READY=1$")
    assert pid == t.proc.pid
    manager.wait_for(r"^WATCHDOG=1$")
    t.proc.send_signal(signal.SIGTERM)
    manager.wait_for(r"^STOPPING=1$")
    assert t.stop() == 0


def test_no_notify_socket_is_silent(tk, tmp_path):
    env = dict(os.environ, WATCHDOG_USEC="100000")
    env.pop("NOTIFY_SOCKET", None)
    t = tk([TCPKIT, "serve", "echo", "-p", "0", "-H", "127.0.0.1"], env=env)
    port = int(t.err.wait_for(LISTEN_RE.pattern, TIMEOUT).group(2))
    echo_once(port)
    assert t.stop() == 0
    assert "notify" not in t.err.text()


# Sockets passed by the test itself (pass_fds), and the errors.

def test_passed_tcp_socket_is_served(tk):
    s = tcp_listener()
    port = s.getsockname()[1]
    t = tk(with_fds([TCPKIT, "serve", "echo", "-p", "0"], s.fileno()),
           pass_fds=(s.fileno(),))
    s.close()
    got = int(t.err.wait_for(LISTEN_RE.pattern, TIMEOUT).group(2))
    assert got == port
    echo_once(port)
    assert t.stop() == 0


def test_listen_pid_of_another_process_is_ignored(tk):
    s = tcp_listener()
    port = s.getsockname()[1]
    t = tk(with_fds([TCPKIT, "serve", "echo", "-p", "0",
                     "-H", "127.0.0.1"], s.fileno(), pid="1"),
           pass_fds=(s.fileno(),))
    try:
        got = int(t.err.wait_for(LISTEN_RE.pattern, TIMEOUT).group(2))
        assert got != port  # bound its own, as asked
        echo_once(got)
    finally:
        s.close()
    assert t.stop() == 0
    assert "socket activation" not in t.err.text()


def test_exec_children_do_not_inherit_the_variables(tk):
    s = tcp_listener()
    port = s.getsockname()[1]
    t = tk(with_fds([TCPKIT, "listen", "0", "--sh-exec",
                     'echo "[$LISTEN_PID|$LISTEN_FDS|$LISTEN_FDNAMES]"'],
                    s.fileno(), names="web"),
           pass_fds=(s.fileno(),))
    s.close()
    t.err.wait_for(r"listening on 127\.0\.0\.1:%d$" % port, TIMEOUT)
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as c:
        assert recv_all(c, TIMEOUT) == b"[||]\n"
    assert t.proc.wait(TIMEOUT) == 0, t.err.text()
    t.stop()


@pytest.mark.parametrize("fds,names,why", [
    ("abc", None, r"socket activation LISTEN_FDS=abc: malformed LISTEN_PID "
                  r"or LISTEN_FDS \(LISTEN_PID=\d+\)"),
    ("-1", None, r"socket activation LISTEN_FDS=-1: malformed LISTEN_PID "
                 r"or LISTEN_FDS \(LISTEN_PID=\d+\)"),
    ("99", None, r"socket activation LISTEN_FDS=99: more sockets than "
                 r"serve takes \(16\)"),
    ("1", "a:b", r"socket activation LISTEN_FDNAMES=a:b: LISTEN_FDNAMES "
                 r"does not name each socket in LISTEN_FDS "
                 r"\(LISTEN_FDS=1\)"),
])
def test_bad_listen_variables_are_usage_errors(fds, names, why):
    s = tcp_listener()
    try:
        p = subprocess.run(
            with_fds([TCPKIT, "serve", "echo", "-p", "0"], s.fileno(),
                     names=names, fds=fds),
            pass_fds=(s.fileno(),), capture_output=True, timeout=TIMEOUT)
    finally:
        s.close()
    err = p.stderr.decode()
    check_sanitizer(err)
    assert p.returncode == 64, err
    assert re.search(r"^tcpkit: " + why + "$", err, re.M), err
    assert "listening on" not in err


def test_a_passed_udp_socket_is_refused():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    try:
        p = subprocess.run(
            with_fds([TCPKIT, "relay", "127.0.0.1:0", "127.0.0.1:9"],  # port-ok
                     u.fileno()),
            pass_fds=(u.fileno(),), capture_output=True, timeout=TIMEOUT)
    finally:
        u.close()
    err = p.stderr.decode()
    check_sanitizer(err)
    assert p.returncode == 64, err
    assert re.search(r"^tcpkit: socket activation fd 3 \(unknown\): not a "
                     r"listening stream socket", err, re.M), err


# The unit files shipped.

def test_units_pass_systemd_analyze_verify(tmp_path):
    need("systemd-analyze")
    units = sorted(f for f in os.listdir(UNITS)
                   if f.endswith((".service", ".socket")))
    assert units == ["tcpkit-echo.service", "tcpkit-relay.service",
                     "tcpkit-relay.socket"]
    # The units name /usr/bin/tcpkit: verify against the one built here.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for u in units:
        with open(os.path.join(UNITS, u)) as f:
            text = f.read().replace("/usr/bin/tcpkit", TCPKIT)
        (tmp_path / u).write_text(text)
    p = subprocess.run(["systemd-analyze", "verify", "--man=no"] +
                       [str(tmp_path / u) for u in units],
                       capture_output=True, timeout=60)
    out = (p.stdout + p.stderr).decode()
    assert p.returncode == 0, out
    assert "tcpkit" not in out, out
