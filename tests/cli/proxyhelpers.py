"""Real proxies for the proxy tests, started on loopback with their
configuration in a temporary directory: Dante (danted, SOCKS4 and SOCKS5,
with or without username/password), tinyproxy (HTTP CONNECT, Basic auth),
and Python fakes for what they do not do (SOCKS4a, a proxy that speaks
garbage)."""
import os
import shutil
import socket
import subprocess
import threading

import pytest

from tkhelpers import LineReader, free_port, need

TIMEOUT = 15

# Dante checks a username against the system's users (no PAM here): the
# tests make one, without a home or a shell, if they may.
DANTE_USER = "tkproxy"
DANTE_PASS = "pr0xy-pw"


def dante_user():
    """Make the system user Dante's username method checks, or skip."""
    try:
        import pwd
        pwd.getpwnam(DANTE_USER)
        ok = True
    except KeyError:
        ok = False
    if not ok:
        if os.geteuid() != 0 or shutil.which("useradd") is None:
            pytest.skip("Dante's username method needs a system user "
                        "'%s': run as root (useradd) to make it" % DANTE_USER)
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin",
                        DANTE_USER], check=True, timeout=TIMEOUT)
    subprocess.run(["chpasswd"], input=("%s:%s\n" % (DANTE_USER, DANTE_PASS))
                   .encode(), check=True, timeout=TIMEOUT)


class Daemon:
    """A proxy process on a port the test found free; stopped by PID."""

    def __init__(self, argv, ready, port):
        self.port = port
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.log = LineReader(self.proc.stdout)
        self.log.wait_for(ready, timeout=TIMEOUT)
        # Ready in its log; bounded wait until the port takes connections.
        wait_listening(port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.join()


def wait_listening(port, tries=100):
    for _ in range(tries):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except ConnectionRefusedError:
            threading.Event().wait(0.05)
    raise AssertionError("nothing listens on port %d" % port)


def start_dante(tmp_path, auth=False):
    need("danted")
    if os.geteuid() != 0:
        pytest.skip("danted needs root here (user.privileged: root)")
    if auth:
        dante_user()
    port = free_port()
    conf = tmp_path / ("danted-%d.conf" % port)
    conf.write_text(
        "logoutput: stderr\n"
        "internal: 127.0.0.1 port = %d\n"
        # lo: the targets are loopback ones, IPv4 or IPv6.
        "external: lo\n"
        "clientmethod: none\n"
        "socksmethod: %s\n"
        "user.privileged: root\n"
        "user.unprivileged: nobody\n"
        "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }\n"
        "socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }\n"
        "socks pass { from: 127.0.0.0/8 to: ::/0 }\n"
        % (port, "username" if auth else "none"))
    return Daemon(["danted", "-f", str(conf), "-N", "1"], r"running", port)


TINY_USER = "alice"
TINY_PASS = "s3cret-pw"


def start_tinyproxy(tmp_path, auth=True):
    need("tinyproxy")
    port = free_port()
    conf = tmp_path / ("tinyproxy-%d.conf" % port)
    text = ("Port %d\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\n"
            "LogLevel Info\n" % port)
    if os.geteuid() == 0:
        text = "User nobody\nGroup nogroup\n" + text
    if auth:
        text += "BasicAuth %s %s\n" % (TINY_USER, TINY_PASS)
    conf.write_text(text)
    return Daemon(["tinyproxy", "-d", "-c", str(conf)], r"listening on fd",
                  port)


class FakeProxy:
    """A Python proxy on port 0: handler(conn) runs for each client in a
    thread; what it raised is kept in errors."""

    def __init__(self, handler):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.errors = []
        self.seen = []
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._run, args=(c,), daemon=True).start()

    def _run(self, c):
        try:
            with c:
                c.settimeout(TIMEOUT)
                self.handler(c, self)
        except Exception as e:  # asserted on by the test
            self.errors.append(e)

    def close(self):
        # shutdown() wakes the accept() a close() alone would not.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)


def recv_exact(c, n):
    buf = b""
    while len(buf) < n:
        chunk = c.recv(n - len(buf))
        if not chunk:
            raise EOFError("short read: %r" % buf)
        buf += chunk
    return buf


def recv_until_nul(c):
    buf = b""
    while not buf.endswith(b"\0"):
        chunk = c.recv(1)
        if not chunk:
            raise EOFError("short read: %r" % buf)
        buf += chunk
    return buf[:-1]


def pipe(a, b):
    """Relay both ways between a and b until both ends are done."""
    def one(src, dst):
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                dst.sendall(d)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    t = threading.Thread(target=one, args=(b, a), daemon=True)
    t.start()
    one(a, b)
    t.join(TIMEOUT)


def socks4a_handler(c, fp):
    """A SOCKS4a server: records (host, port, user), connects, relays."""
    head = recv_exact(c, 8)
    assert head[0] == 4 and head[1] == 1, head
    port = int.from_bytes(head[2:4], "big")
    user = recv_until_nul(c)
    if head[4:7] == b"\0\0\0" and head[7] != 0:
        host = recv_until_nul(c).decode()
    else:
        host = socket.inet_ntoa(head[4:8])
    fp.seen.append((host, port, user))
    try:
        t = socket.create_connection((host, port), timeout=TIMEOUT)
    except OSError:
        c.sendall(b"\0\x5b" + b"\0" * 6)
        return
    with t:
        c.sendall(b"\0\x5a" + b"\0" * 6)
        pipe(c, t)


def socks5_handler(c, fp):
    """A SOCKS5 server without authentication: records the request's
    address type and address, connects, relays."""
    head = recv_exact(c, 2)
    assert head[0] == 5, head
    recv_exact(c, head[1])
    c.sendall(b"\5\0")
    req = recv_exact(c, 4)
    atyp = req[3]
    if atyp == 1:
        host = socket.inet_ntop(socket.AF_INET, recv_exact(c, 4))
    elif atyp == 4:
        host = socket.inet_ntop(socket.AF_INET6, recv_exact(c, 16))
    else:
        host = recv_exact(c, recv_exact(c, 1)[0]).decode()
    port = int.from_bytes(recv_exact(c, 2), "big")
    fp.seen.append((atyp, host, port))
    t = socket.create_connection((host, port), timeout=TIMEOUT)
    with t:
        c.sendall(b"\5\0\0\1\0\0\0\0\0\0")
        pipe(c, t)
