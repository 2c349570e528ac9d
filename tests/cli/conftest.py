"""Fixtures for the black-box tests; the helpers they use are in
tkhelpers.py, which tests import directly."""
import os
import subprocess
import tempfile

import pytest

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
