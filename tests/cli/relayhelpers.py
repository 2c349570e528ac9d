"""Helpers of the relay tests (test_relay.py, test_relay_more.py): a
`tcpkit relay` process, Python targets, and the relay's log lines."""
import socket
import struct
import subprocess

import pytest

from tkhelpers import ANY_LISTEN_RE, TCPKIT, LineReader, check_sanitizer

TIMEOUT = 15
# "relay PEER -> TARGET after DUR: N bytes up, M bytes down, WHO closed
# first (REASON)"
RELAY_RE = (r"^relay (\S+) -> (\S+) after \S+: (\d+) bytes up, (\d+) bytes "
            r"down, (client|target|none) closed first \((.*)\)$")
FAILED_RE = r"^relay (\S+): no target reached \((.*)\); client closed$"


class Relay:
    """`tcpkit relay ARGS...` (one worker unless told); .port is read from
    its "listening on" line."""

    def __init__(self, *args, workers=True):
        argv = [TCPKIT, "relay"] + (["-w", "1"] if workers else []) + \
            [str(a) for a in args]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.out = LineReader(self.proc.stdout)
        self.err = LineReader(self.proc.stderr)
        m = self.err.wait_for(ANY_LISTEN_RE.pattern, timeout=TIMEOUT)
        self.unix = None
        if m.group(1).startswith("unix:"):
            self.unix, self.host, self.port = m.group(1)[5:], None, None
        else:
            host, port = m.group(1).rsplit(":", 1)
            self.host, self.port = host.strip("[]"), int(port)

    def log(self, pattern=RELAY_RE, start=0):
        """The match of the next log line matching pattern."""
        return self.err.wait_for(pattern, timeout=TIMEOUT, start=start)

    def nlines(self):
        with self.err.cond:
            return len(self.err.lines)

    def connect(self):
        if self.unix is None:
            return socket.create_connection(("127.0.0.1", self.port),
                                            timeout=TIMEOUT)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        s.connect("\0" + self.unix[1:] if self.unix.startswith("@")
                  else self.unix)
        return s

    def stop(self, timeout=TIMEOUT):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("relay did not stop within %ss" % timeout)
        self.out.join()
        self.err.join()
        check_sanitizer(self.err.text())
        return rc


@pytest.fixture
def relay():
    """Factory: relay(*args) starts `tcpkit relay`, stopped at teardown."""
    started = []

    def start(*args, **kw):
        r = Relay(*args, **kw)
        started.append(r)
        return r

    yield start
    for r in started:
        if r.proc.poll() is None:
            r.stop()


def target(port):
    return "127.0.0.1:%d" % port


def echo_handler(conn, srv):
    while True:
        data = conn.recv(65536)
        if not data:
            return
        conn.sendall(data)


def reset(sock):
    """Close with a RST (SO_LINGER 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))
    sock.close()


def refusing_port():
    """A socket bound to a port but not listening: connects are refused
    (RST) and no other process can take the port meanwhile."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s


def closed_or_reset(sock):
    """Read until the relay ends the client: what came, and how it ended
    ("eof" or "reset")."""
    sock.settimeout(TIMEOUT)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data, "eof"
            data += chunk
    except ConnectionResetError:
        return data, "reset"
