"""Fixtures for the black-box tests; the helpers they use are in
tkhelpers.py, which tests import directly."""
import errno
import os
import select
import socket
import subprocess
import tempfile
import threading

import pytest

import tlscerts
from clienthelpers import Proc as ClientProc
# Older tests imported helpers from here: they still resolve.
from tkhelpers import *  # noqa: F401,F403
from tkhelpers import SHIM_SRC, Proc, PyServer, Server


@pytest.fixture
def serve():
    """Factory: serve(*args) starts a tcpkit server, stopped at teardown."""
    servers = []

    def start(*args, **kw):
        s = Server(*args, **kw)
        servers.append(s)
        return s

    yield start
    for s in servers:
        if s.proc.poll() is None:
            s.stop()


@pytest.fixture
def pyserver():
    servers = []

    def start(handler, **kw):
        s = PyServer(handler, **kw)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


@pytest.fixture
def proc():
    """Factory: proc(argv) starts a client with piped stdio."""
    started = []

    def start(argv, env=None, tty=False):
        p = Proc(argv, env, tty)
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill()


@pytest.fixture(scope="session")
def shim():
    """The short-write LD_PRELOAD shim, built for this run."""
    d = tempfile.mkdtemp(prefix="tk-shim-")
    so = os.path.join(d, "short_writes.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", so, SHIM_SRC,
                    "-ldl"], check=True, timeout=60)
    yield so
    os.unlink(so)
    os.rmdir(d)


# --- the client commands (connect, send, bench) ------------------------------

@pytest.fixture
def spawn():
    """Factory: spawn(args, ...) starts tcpkit with its output drained by
    threads (clienthelpers.Proc); killed at teardown."""
    procs = []

    def start(args, **kw):
        p = ClientProc(args, **kw)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.kill()


@pytest.fixture
def release():
    """An event the test sets at teardown to let silent peers go."""
    ev = threading.Event()
    yield ev
    ev.set()


@pytest.fixture
def blackhole():
    """A listener that never accepts and whose queue is full, so a new
    connect neither completes nor is refused: it can only time out."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    port = lst.getsockname()[1]
    fillers = []
    pending = False
    try:
        for _ in range(256):
            s = socket.socket()
            s.setblocking(False)
            fillers.append(s)
            rc = s.connect_ex(("127.0.0.1", port))
            if rc == 0 or rc not in (errno.EINPROGRESS, errno.EAGAIN):
                continue
            _, w, _ = select.select([], [s], [], 0.3)
            if not w:
                pending = True
                break
        assert pending, "could not fill the listen queue of a listen(0) socket"
        yield port
    finally:
        for s in fillers:
            s.close()
        lst.close()


# --- TLS ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """The test certificates (tlscerts.py), made once per test module."""
    return tlscerts.make(str(tmp_path_factory.mktemp("certs")))
