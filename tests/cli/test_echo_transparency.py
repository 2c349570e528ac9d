"""`tcpkit serve echo` is byte-transparent: every byte value, a large random
stream read while it is written, half-close in both orders, a reader that
falls behind (backpressure, nothing lost), and netcat piping a file."""
import hashlib
import os
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

from tkhelpers import LISTEN_RE, connect, recv_all, recv_until

TIMEOUT = 60
CLOSED = (r"^closed %s at \[[^]]+\] after \S+: (\d+) bytes in, (\d+) bytes "
          r"out \((.*)\)$")


def start(serve, *args, listeners=1):
    """A server whose n "listening on" lines have all been read."""
    srv = serve(*args, listeners=listeners)
    deadline = time.monotonic() + 15
    with srv.err.cond:
        while sum(1 for l in srv.err.lines if LISTEN_RE.search(l)) < listeners:
            left = deadline - time.monotonic()
            assert left > 0 and not srv.err.closed, srv.err.lines
            srv.err.cond.wait(left)
    found = [LISTEN_RE.search(l) for l in srv.err.lines]
    srv.addrs = [(f.group(1).strip("[]"), int(f.group(2))) for f in found if f]
    srv.host, srv.port = srv.addrs[0]
    return srv


def who(sock):
    host, port = sock.getsockname()[:2]
    return re.escape("[%s]:%d" % (host, port) if ":" in host
                     else "%s:%d" % (host, port))


class Reader(threading.Thread):
    """Reads a socket to EOF in a thread, hashing as it goes."""

    def __init__(self, sock):
        super().__init__(daemon=True)
        self.sock = sock
        self.sha = hashlib.sha256()
        self.count = 0
        self.error = None

    def run(self):
        try:
            while True:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    return
                self.sha.update(chunk)
                self.count += len(chunk)
        except Exception as e:  # reported by the test
            self.error = e


def stream(port, host, data):
    """Send data while a thread reads the echo; (count, sha256 hex)."""
    with connect(port, host, timeout=TIMEOUT) as s:
        r = Reader(s)
        r.start()
        view = memoryview(data)
        for off in range(0, len(data), 1 << 16):
            s.sendall(view[off:off + (1 << 16)])
        s.shutdown(socket.SHUT_WR)
        r.join(TIMEOUT)
        assert not r.is_alive(), "echo did not finish"
        assert r.error is None, r.error
        return r.count, r.sha.hexdigest()


def test_every_byte_value(serve):
    srv = start(serve, "echo", "-H", "127.0.0.1")
    data = bytes(range(256))
    with connect(srv.port) as s:
        s.sendall(data)
        assert recv_until(s, lambda d: len(d) >= 256) == data
        # Each value on its own, as a one-byte chunk.
        for b in range(256):
            s.sendall(bytes([b]))
            assert recv_until(s, lambda d: len(d) >= 1) == bytes([b])
        # Every ordered pair of byte values, in one stream.
        pairs = b"".join(bytes([a, b]) for a in range(256) for b in range(256))
        s.sendall(pairs)
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == pairs
    assert srv.stop() == 0


def test_crlf_nul_and_telnet_bytes_untouched(serve):
    srv = start(serve, "echo", "-H", "127.0.0.1")
    data = b"\r\n\n\r\x00\x00\xff\xff\xfb\x01\xfd\x03\x04\x1a\x7f\x80\r"
    with connect(srv.port) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == data
    assert srv.stop() == 0


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_16mib_random_stream(serve, host):
    srv = start(serve, "echo", listeners=2)
    data = os.urandom(16 << 20)
    count, digest = stream(srv.port, host, data)
    assert count == len(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert srv.stop() == 0
    m = [re.match(r"^stopped \(SIGTERM\): 1 connection served, 0 closed by "
                  r"the stop, (\d+) bytes in, (\d+) bytes out$", l)
         for l in srv.err.lines]
    m = [x for x in m if x]
    assert len(m) == 1, srv.err.lines
    assert m[0].groups() == (str(len(data)), str(len(data)))


def test_several_large_streams_at_once(serve):
    srv = start(serve, "echo", "-H", "127.0.0.1")
    datas = [os.urandom(4 << 20) for _ in range(4)]
    results = [None] * len(datas)

    def one(i):
        results[i] = stream(srv.port, "127.0.0.1", datas[i])

    threads = [threading.Thread(target=one, args=(i,), daemon=True)
               for i in range(len(datas))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    for i, d in enumerate(datas):
        assert results[i] == (len(d), hashlib.sha256(d).hexdigest()), i
    assert srv.stop() == 0


def test_half_close_then_read_everything(serve):
    srv = start(serve, "echo", "-H", "127.0.0.1")
    data = os.urandom(1 << 20)
    with connect(srv.port) as s:
        peer = who(s)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        # Nothing read until now: all of it still comes back, then EOF.
        got = recv_all(s, timeout=TIMEOUT)
        assert len(got) == len(data)
        assert got == data
        s.settimeout(5)
        assert s.recv(1) == b""
    m = srv.err.wait_for(CLOSED % peer)
    assert m.groups() == (str(len(data)), str(len(data)), "done")
    assert srv.stop() == 0


def test_half_close_without_data(serve):
    srv = start(serve, "echo", "-H", "127.0.0.1")
    with connect(srv.port) as s:
        peer = who(s)
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == b""
    m = srv.err.wait_for(CLOSED % peer)
    assert m.groups() == ("0", "0", "done")
    assert srv.stop() == 0


def test_reading_continues_after_half_close(serve):
    """After our FIN the server keeps its side open until it has sent all."""
    srv = start(serve, "echo", "-H", "127.0.0.1")
    with connect(srv.port) as s:
        s.sendall(b"first ")
        assert recv_until(s, lambda d: len(d) >= 6) == b"first "
        s.sendall(b"second")
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == b"second"
    assert srv.stop() == 0


def test_slow_reader_loses_nothing(serve):
    """A client that writes much and reads nothing for a while: the server
    stops reading (bounded buffers, so the writer stalls), then once the
    client reads, every byte arrives in order."""
    srv = start(serve, "echo", "-H", "127.0.0.1")
    total = 64 << 20
    data = os.urandom(1 << 20) * (total >> 20)
    sent = [0]
    errors = []

    with connect(srv.port, timeout=TIMEOUT) as s:
        def writer():
            try:
                view = memoryview(data)
                for off in range(0, total, 1 << 16):
                    s.sendall(view[off:off + (1 << 16)])
                    sent[0] = off + (1 << 16)
                s.shutdown(socket.SHUT_WR)
            except Exception as e:  # reported below
                errors.append(e)

        w = threading.Thread(target=writer, daemon=True)
        w.start()
        # Wait until the writer makes no progress for half a second.
        deadline = time.monotonic() + TIMEOUT
        last, since = -1, time.monotonic()
        while time.monotonic() - since < 0.5:
            assert time.monotonic() < deadline, "writer never stalled"
            if sent[0] != last:
                last, since = sent[0], time.monotonic()
            w.join(0.05)
            assert w.is_alive(), "all %d bytes went in without reading: " \
                "no backpressure" % total
        stalled = sent[0]
        assert stalled < total
        r = Reader(s)
        r.start()
        w.join(TIMEOUT)
        r.join(TIMEOUT)
        assert not errors, errors
        assert r.error is None, r.error
        assert r.count == total
        assert r.sha.hexdigest() == hashlib.sha256(data).hexdigest()
    assert srv.stop() == 0


def test_nc_pipes_a_file(serve, tmp_path):
    if shutil.which("nc") is None:
        pytest.skip("nc (OpenBSD netcat) is not installed")
    srv = start(serve, "echo", "-H", "127.0.0.1")
    src = tmp_path / "in.bin"
    dst = tmp_path / "out.bin"
    src.write_bytes(os.urandom(4 << 20) + bytes(range(256)))
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        p = subprocess.run(["nc", "-N", "127.0.0.1", str(srv.port)],
                           stdin=fin, stdout=fout, stderr=subprocess.PIPE,
                           timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert dst.stat().st_size == src.stat().st_size
    assert hashlib.sha256(dst.read_bytes()).hexdigest() == \
        hashlib.sha256(src.read_bytes()).hexdigest()
    assert srv.stop() == 0
