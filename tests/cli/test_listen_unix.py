"""tcpkit listen unix:/PATH and unix:@NAME (nc -lU): stdio both ways, -k,
-o, --exec and its environment, --broker, the socket file (--mode, a stale
file replaced, a live one refused, removal on exit) and the usage errors."""
import os
import select
import signal
import socket
import stat
import subprocess
import threading
import time

import pytest

from tkhelpers import (TCPKIT, UNIX_LISTEN_RE, LineReader, check_sanitizer,
                       need, recv_all, run)

TIMEOUT = 15


class UListen:
    """`tcpkit listen ARGS`, waited for until its 'listening on unix:'."""

    def __init__(self, *args, stdin=subprocess.DEVNULL, input=None):
        self.proc = subprocess.Popen(
            [TCPKIT, "listen"] + list(args),
            stdin=subprocess.PIPE if input is not None else stdin,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if input is not None:
            # A thread: a pipe that fills must not block the test.
            def feed():
                try:
                    self.proc.stdin.write(input)
                    self.proc.stdin.close()
                except BrokenPipeError:
                    pass
            threading.Thread(target=feed, daemon=True).start()
        self.err = LineReader(self.proc.stderr)
        self.out = LineReader(self.proc.stdout)
        self.addr = self.err.wait_for(UNIX_LISTEN_RE.pattern).group(1)

    def wait(self, timeout=30):
        rc = self.proc.wait(timeout)
        self.err.join()
        self.out.join()
        check_sanitizer(self.err.text())
        return rc

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def ulisten():
    started = []

    def start(*args, **kw):
        lp = UListen(*args, **kw)
        started.append(lp)
        return lp

    yield start
    for lp in started:
        lp.kill()


@pytest.fixture
def sock(tmp_path):
    return str(tmp_path / "l.sock")


def uconnect(path, abstract=False):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect("\0" + path if abstract else path)
    return s


def wait_gone(path, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while os.path.lexists(path) and time.monotonic() < deadline:
        select.select([], [], [], 0.05)
    return not os.path.lexists(path)


def usage(msg):
    return "tcpkit: listen: %s (see 'tcpkit help listen')\n" % msg


# --- stdio, -k, -o ------------------------------------------------------------

def test_stdio_both_ways_python(ulisten, sock):
    lp = ulisten("unix:" + sock, input=b"from the listener\n")
    assert lp.addr == "unix:" + sock
    assert stat.S_ISSOCK(os.stat(sock).st_mode)
    with uconnect(sock) as s:
        s.sendall(b"from the client\n")
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == b"from the listener\n"
    assert lp.wait() == 0
    assert lp.out.text() == "from the client"
    # The normal end: the socket file is gone with the process.
    assert not os.path.lexists(sock)


def test_stdio_both_ways_nc(ulisten, sock):
    need("nc")
    lp = ulisten("unix:" + sock, input=b"to nc\n")
    p = subprocess.run(["nc", "-N", "-U", sock], input=b"to tcpkit\n",
                       capture_output=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"to nc\n"
    assert lp.wait() == 0
    assert lp.out.text() == "to tcpkit"
    assert not os.path.lexists(sock)


def test_nc_client_same_as_with_nc_listener(tmp_path):
    """The peer to match: what `nc -lU` prints of a client, tcpkit too."""
    need("nc")
    outs = []
    for cmd in (["nc", "-lU"], [TCPKIT, "listen"]):
        path = str(tmp_path / ("%d.sock" % len(outs)))
        target = path if cmd[0] == "nc" else "unix:" + path
        srv = subprocess.Popen(cmd + [target], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
        # The file appears at bind(), before listen(): until then a
        # connect is refused.  nc says nothing when it listens, so both
        # are tried until one connect gets through (bounded).
        deadline = time.monotonic() + TIMEOUT
        while True:
            assert time.monotonic() < deadline and srv.poll() is None
            try:
                s = uconnect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                select.select([], [], [], 0.02)
        with s:
            s.sendall(b"line one\nline two\n")
            s.shutdown(socket.SHUT_WR)
            recv_all(s)
        out, err = srv.communicate(timeout=TIMEOUT)
        check_sanitizer(err)
        outs.append(out)
    assert outs[0] == outs[1] == b"line one\nline two\n"


def test_keep_open_two_clients(ulisten, sock):
    lp = ulisten("-k", "unix:" + sock)
    for word in (b"one\n", b"two\n"):
        with uconnect(sock) as s:
            s.sendall(word)
            s.shutdown(socket.SHUT_WR)
            assert recv_all(s) == b""
    lp.out.wait_for("^two$")
    assert os.path.exists(sock)
    assert lp.stop() == 0
    assert lp.out.text() == "one\ntwo"
    assert not os.path.lexists(sock)


def test_output_file(ulisten, sock, tmp_path):
    out = tmp_path / "got"
    lp = ulisten("-o", str(out), "unix:" + sock)
    with uconnect(sock) as s:
        s.sendall(b"x" * 100000)
        s.shutdown(socket.SHUT_WR)
        recv_all(s)
    assert lp.wait() == 0
    assert out.read_bytes() == b"x" * 100000


# --- --exec, --broker ---------------------------------------------------------

def test_exec_env_over_unix(ulisten, sock):
    lp = ulisten("--sh-exec",
                 'echo "[$TCPKIT_PEER_ADDR][$TCPKIT_PEER_PORT]'
                 '[$TCPKIT_LOCAL_ADDR][$TCPKIT_LOCAL_PORT]"; exec cat',
                 "unix:" + sock)
    with uconnect(sock) as s:
        s.sendall(b"echoed\n")
        s.shutdown(socket.SHUT_WR)
        got = recv_all(s)
    assert got == b"[unix:][0][unix:%s][0]\nechoed\n" % sock.encode()
    assert lp.wait() == 0
    lp.err.wait_for(r"^unix:: pid \d+ exit 0 after ")
    assert not os.path.lexists(sock)


def test_exec_keep_concurrent(ulisten, sock):
    lp = ulisten("-k", "--exec", "cat", "unix:" + sock)
    a, b = uconnect(sock), uconnect(sock)
    try:
        # Both at once: b is answered while a is still open.
        b.sendall(b"bee\n")
        b.shutdown(socket.SHUT_WR)
        assert recv_all(b) == b"bee\n"
        a.sendall(b"ay\n")
        a.shutdown(socket.SHUT_WR)
        assert recv_all(a) == b"ay\n"
    finally:
        a.close()
        b.close()
    assert lp.stop() == 0
    assert not os.path.lexists(sock)


def test_broker_over_unix(ulisten, sock):
    lp = ulisten("--broker", "unix:" + sock)
    a = uconnect(sock)
    b = uconnect(sock)
    try:
        lp_deadline = time.monotonic() + TIMEOUT
        got = b""
        # b's join may come after a's first bytes: send until b hears.
        while b"hello" not in got and time.monotonic() < lp_deadline:
            a.sendall(b"hello\n")
            r, _, _ = select.select([b], [], [], 0.2)
            if r:
                got += b.recv(4096)
        assert b"hello\n" in got
    finally:
        a.close()
        b.close()
    assert lp.stop() == 0


def test_chat_over_unix(ulisten, sock):
    lp = ulisten("--chat", "unix:" + sock)
    a = uconnect(sock)
    b = uconnect(sock)
    try:
        deadline = time.monotonic() + TIMEOUT
        got = b""
        while b"hi there" not in got and time.monotonic() < deadline:
            a.sendall(b"hi there\n")
            r, _, _ = select.select([b], [], [], 0.2)
            if r:
                got += b.recv(4096)
        assert b"hi there\n" in got
        # Named, as over TCP: the line says who wrote it.
        assert b"user" in got
    finally:
        a.close()
        b.close()
    assert lp.stop() == 0


def test_tls_over_unix(ulisten, sock):
    need("openssl")
    lp = ulisten("--tls", "unix:" + sock, stdin=subprocess.PIPE)
    cl = subprocess.Popen(["openssl", "s_client", "-quiet", "-unix", sock],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    try:
        cl.stdin.write(b"to tcpkit\n")
        cl.stdin.close()
        cl.stdin = None  # closed: communicate() has nothing to send
        lp.out.wait_for("^to tcpkit$")
        # Only now our end: s_client leaves at the first close_notify.
        lp.proc.stdin.write(b"over tls\n")
        lp.proc.stdin.close()
        out, err = cl.communicate(timeout=TIMEOUT)
    finally:
        if cl.poll() is None:
            cl.kill()
            cl.wait()
    assert out == b"over tls\n", err
    assert lp.wait() == 0
    assert lp.out.text() == "to tcpkit"
    assert not os.path.lexists(sock)


# --- the socket file -----------------------------------------------------------

@pytest.mark.parametrize("mode", ["0600", "0660", "666"])
def test_mode(ulisten, sock, mode):
    lp = ulisten("--mode", mode, "unix:" + sock)
    st = os.stat(sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == int(mode, 8)
    assert lp.stop() == 0


def test_stale_file_replaced(ulisten, sock):
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(sock)
    dead.listen(1)
    dead.close()  # a server gone without removing its file
    lp = ulisten("unix:" + sock, input=b"")
    with uconnect(sock) as s:
        s.sendall(b"replaced\n")
        s.shutdown(socket.SHUT_WR)
        recv_all(s)
    assert lp.wait() == 0
    assert lp.out.text() == "replaced"


def test_live_socket_refused(sock):
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(sock)
    live.listen(1)
    try:
        p = run(["listen", "unix:" + sock])
        assert p.returncode == 1
        assert p.stderr.decode() == (
            "tcpkit: listen unix:%s: in use: a server is listening on this "
            "socket\n" % sock)
        # The live server's file is left alone, and still works.
        assert stat.S_ISSOCK(os.stat(sock).st_mode)
        with uconnect(sock):
            pass
    finally:
        live.close()


def test_not_a_socket_left_alone(sock):
    with open(sock, "w") as f:
        f.write("precious\n")
    p = run(["listen", "unix:" + sock])
    assert p.returncode == 1
    assert p.stderr.decode() == (
        "tcpkit: listen unix:%s: not a socket: the file is left alone; "
        "choose another path\n" % sock)
    with open(sock) as f:
        assert f.read() == "precious\n"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_file_removed_on_signal(ulisten, sock, sig):
    lp = ulisten("-k", "unix:" + sock)
    assert stat.S_ISSOCK(os.stat(sock).st_mode)
    assert lp.stop(sig) == 0
    assert not os.path.lexists(sock)


def test_abstract_name(ulisten, tmp_path):
    name = "tcpkit-test-%d-%s" % (os.getpid(), tmp_path.name)
    lp = ulisten("unix:@" + name, input=b"abstract back\n")
    assert lp.addr == "unix:@" + name
    with uconnect(name, abstract=True) as s:
        s.sendall(b"abstract\n")
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == b"abstract back\n"
    assert lp.wait() == 0
    assert lp.out.text() == "abstract"


# --- negative twins -------------------------------------------------------------

@pytest.mark.parametrize("args,msg", [
    (["--mode", "0600", "0"],
     "--mode is for a UNIX socket's file: listen on unix:/PATH"),
    (["--group", "0", "127.0.0.1", "0"],
     "--group is for a UNIX socket's file: listen on unix:/PATH"),
    (["--mode", "0600", "unix:@name"],
     "--mode: an abstract unix:@NAME has no file, no mode and no owner"),
    (["--mode", "rw", "unix:/tmp/a.sock"],
     "--mode is octal permission bits (0660, 600), not 'rw'"),
    (["--owner", "no-such-user-tk", "unix:/tmp/a.sock"],
     "--owner 'no-such-user-tk': no such user"),
    (["--allow", "127.0.0.1", "unix:/tmp/a.sock"],
     "--allow/--deny need a TCP address: UNIX peers have no address to "
     "check"),
    (["--deny", "10.0.0.0/8", "unix:@name"],  # addr-ok: refused at parsing
     "--allow/--deny need a TCP address: UNIX peers have no address to "
     "check"),
    (["-4", "unix:/tmp/a.sock"],
     "-4 is for TCP: a UNIX socket has no IP version"),
    (["-6", "unix:/tmp/a.sock"],
     "-6 is for TCP: a UNIX socket has no IP version"),
    (["unix:/tmp/a.sock", "9000"],
     "unix:/tmp/a.sock: a UNIX socket has no PORT ('9000')"),
])
def test_usage_errors(args, msg):
    p = run(["listen"] + args)
    assert p.returncode == 64, p.stderr
    assert p.stderr.decode() == usage(msg)


def test_path_too_long():
    p = run(["listen", "unix:/" + "x" * 200])
    assert p.returncode == 64
    assert "longer than" in p.stderr.decode()
