"""HAProxy started by a test (test_proxy_protocol.py, test_haproxy_lb.py):
its frontend listens on a socket the test made on port 0 and hands over
(`bind fd@N`), so no port is guessed and clients can connect at once."""
import os
import socket
import subprocess
import tempfile
import time

import pytest

from tkhelpers import need

TIMEOUT = 15

GLOBAL = """global
    stats socket {dir}/admin.sock level admin
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
"""


class HAProxy:
    """`haproxy -db` with GLOBAL and body ({fd}: the frontend's socket,
    {dir}: a private directory); .port is the frontend's."""

    def __init__(self, body, **fmt):
        need("haproxy")
        self.dir = tempfile.mkdtemp(prefix="tk-haproxy-")
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(128)
        self.port = self.lsock.getsockname()[1]
        fd = self.lsock.fileno()
        self.config = (GLOBAL + body).format(dir=self.dir, fd=fd, **fmt)
        path = os.path.join(self.dir, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(self.config)
        self.log = open(os.path.join(self.dir, "haproxy.log"), "w+")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", path],
                                     stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log,
                                     pass_fds=[fd])
        # The frontend queues clients already (our socket listens); the
        # admin socket tells when HAProxy itself is up.
        self.admin = os.path.join(self.dir, "admin.sock")
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                self.command("show info")
                break
            except OSError:
                assert self.proc.poll() is None, self.output()
                assert time.monotonic() < deadline, self.output()
                time.sleep(0.05)  # sleep-ok: polls HAProxy's start, bounded

    def command(self, line):
        """One command on the admin socket; its answer."""
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(TIMEOUT)
        try:
            s.connect(self.admin)
            s.sendall(line.encode() + b"\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return data.decode()
                data += chunk
        finally:
            s.close()

    def server_state(self, backend, name):
        """The operational state of backend/name: 2 up, 0 down (the
        srv_op_state column of `show servers state`)."""
        out = self.command("show servers state %s" % backend)
        for line in out.splitlines():
            f = line.split()
            if len(f) > 5 and not line.startswith("#") and f[3] == name:
                return int(f[5])
        return None

    def wait_state(self, backend, name, want, timeout=TIMEOUT):
        """Wait until backend/name's state is want (2 up, 0 down)."""
        deadline = time.monotonic() + timeout
        while self.server_state(backend, name) != want:
            assert time.monotonic() < deadline, (
                "%s/%s never reached state %d:\n%s" % (
                    backend, name, want,
                    self.command("show servers state %s" % backend)))
            time.sleep(0.05)  # sleep-ok: polls HAProxy's state, bounded

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def connect(self, source="127.0.0.1"):
        s = socket.socket()
        s.settimeout(TIMEOUT)
        s.bind((source, 0))
        s.connect(("127.0.0.1", self.port))
        return s

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.lsock.close()
        self.log.close()


@pytest.fixture
def haproxy():
    """Factory: haproxy(body, **fmt) starts an HAProxy, stopped at
    teardown."""
    started = []

    def start(body, **fmt):
        h = HAProxy(body, **fmt)
        started.append(h)
        return h

    yield start
    for h in started:
        h.stop()
