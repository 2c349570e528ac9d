"""UDP listening: `listen -u` / udp://[HOST]:PORT against Python UDP
senders and `nc -u`: datagrams to stdout byte for byte, stdin back to the
last sender, and the usage errors."""
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from tkhelpers import TCPKIT, LineReader, check_sanitizer, need, run

TIMEOUT = 10


class UdpListen:
    """A `tcpkit listen -u ...`: stdout kept raw (binary), stderr by line;
    .port from its 'listening on udp://ADDR:PORT' line."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([TCPKIT, "listen"] + list(args),
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.err = LineReader(self.proc.stderr)
        self.buf = b""
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()
        m = self.err.wait_for(r"listening on udp://(\S+):(\d+)$")
        self.host, self.port = m.group(1).strip("[]"), int(m.group(2))

    def _pump(self):
        for chunk in iter(lambda: self.proc.stdout.read1(65536), b""):
            with self.cond:
                self.buf += chunk
                self.cond.notify_all()

    def wait_out(self, data, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.buf != data:
                left = deadline - time.monotonic()
                assert left > 0 and len(self.buf) <= len(data), \
                    "stdout %r, wanted %r" % (self.buf, data)
                self.cond.wait(left)

    def send(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(TIMEOUT)
        self.thread.join(TIMEOUT)
        self.err.join()
        check_sanitizer(self.err.text())
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def ulisten():
    started = []

    def start(*args):
        p = UdpListen(*args)
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill()


def udp_client(family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.settimeout(TIMEOUT)
    return s


def test_listen_udp_prints_datagrams_and_answers_the_last_sender(ulisten):
    """Datagrams are written as they came (binary, boundaries not
    merged into lines), the sender under -v; stdin lines go, one datagram
    each, to whoever sent last."""
    lst = ulisten("-u", "-v", "0")
    assert lst.host == "127.0.0.1"
    a, b = udp_client(), udp_client()
    payload = bytes(range(256)) + b"\0\r\n\xff"
    a.sendto(payload, ("127.0.0.1", lst.port))
    lst.wait_out(payload)
    lst.err.wait_for(r"received %d bytes from udp://127\.0\.0\.1:%d$" %
                     (len(payload), a.getsockname()[1]))
    lst.send(b"one\ntwo\n")
    assert a.recvfrom(100) == (b"one\n", ("127.0.0.1", lst.port))
    assert a.recvfrom(100) == (b"two\n", ("127.0.0.1", lst.port))
    # A second sender: the next lines go to it, not to the first.
    b.sendto(b"from b", ("127.0.0.1", lst.port))
    lst.wait_out(payload + b"from b")
    lst.send(b"three\n")
    assert b.recvfrom(100)[0] == b"three\n"
    a.settimeout(0.3)
    with pytest.raises(socket.timeout):
        a.recvfrom(100)
    assert lst.stop() == 0
    assert "2 datagrams received, 3 sent" in lst.err.text()


def test_listen_udp_stdin_waits_for_a_sender(ulisten):
    """Lines typed before any datagram came wait unread, and go whole to
    the first sender; the end of stdin ends nothing."""
    lst = ulisten("-u", "udp://127.0.0.1:0")
    lst.send(b"early\n")
    lst.proc.stdin.close()
    c = udp_client()
    c.sendto(b"hi", ("127.0.0.1", lst.port))
    assert c.recvfrom(100)[0] == b"early\n"
    lst.wait_out(b"hi")
    c.sendto(b" again", ("127.0.0.1", lst.port))
    lst.wait_out(b"hi again")
    assert lst.proc.poll() is None
    assert lst.stop() == 0


def test_listen_udp_datagram_size(ulisten):
    lst = ulisten("-u", "--datagram-size", "3", "127.0.0.1", "0")
    c = udp_client()
    c.sendto(b"x", ("127.0.0.1", lst.port))
    lst.send(b"abcdefg")
    lst.proc.stdin.close()
    got = [c.recvfrom(100)[0] for _ in range(3)]
    assert got == [b"abc", b"def", b"g"]
    assert lst.stop() == 0


def test_listen_udp_big_datagram(ulisten):
    lst = ulisten("-u", "0")
    c = udp_client()
    big = bytes(i % 251 for i in range(65507))
    c.sendto(big, ("127.0.0.1", lst.port))
    lst.wait_out(big)
    assert lst.stop() == 0


def test_listen_udp_ipv6_default_loopback(ulisten):
    """The default address is loopback, both families, one port."""
    lst = ulisten("-u", "0")
    if "udp://[::1]:%d" % lst.port not in lst.err.text():
        lst.err.wait_for(r"listening on udp://\[::1\]:%d$" % lst.port)
    c = udp_client(socket.AF_INET6)
    c.sendto(b"six", ("::1", lst.port))
    lst.wait_out(b"six")
    lst.send(b"back\n")
    assert c.recvfrom(100)[0] == b"back\n"
    assert lst.stop() == 0


def test_listen_udp_with_nc(ulisten):
    """nc -u sends to it and gets the answer."""
    need("nc")
    lst = ulisten("-u", "0")
    nc = subprocess.Popen(["nc", "-u", "127.0.0.1", str(lst.port)],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL)
    try:
        out = LineReader(nc.stdout)
        nc.stdin.write(b"hello from nc\n")
        nc.stdin.flush()
        lst.wait_out(b"hello from nc\n")
        lst.send(b"hello nc\n")
        out.wait_for(r"^hello nc$")
    finally:
        nc.kill()
        nc.wait()
    assert lst.stop() == 0


@pytest.mark.parametrize("args,msg", [
    (["-u", "-k", "0"], "-k/--keep-open has no meaning for UDP"),
    (["-k", "udp://:0"], "-k/--keep-open has no meaning for UDP"),
    (["-u", "--exec", "cat", "0"], "-u/--udp: --exec is for TCP"),
    (["-u", "-o", "f", "0"], "-u/--udp: -o/--output is for TCP"),
    (["-u", "--tls", "0"], "-u/--udp: --tls is for TCP"),
    (["-u", "--broker", "0"], "-u/--udp: --broker is for TCP"),
    (["-u", "-i", "5", "0"], "-u/--udp: -i/--idle-timeout is for TCP"),
    (["-u", "--keepalive", "0"], "-u/--udp: --keepalive is for TCP"),
    (["-u", "--allow", "127.0.0.1/32", "0"], "--allow/--deny is for TCP"),
    (["-u", "unix:/tmp/x.sock"], "-u/--udp takes [HOST] PORT"),
    (["-u", "tls://:0"], "-u/--udp takes [HOST] PORT"),
    (["--datagram-size", "5", "0"], "--datagram-size is for UDP: add -u"),
    (["-u", "--datagram-size", "70000", "0"], "--datagram-size"),
])
def test_listen_udp_usage_errors(args, msg):
    p = run(["listen"] + args, timeout=TIMEOUT)
    assert p.returncode == 64, p.stderr
    err = p.stderr.decode()
    assert err.startswith("tcpkit: ") and msg in err, err


# --- relay udp:// udp:// -----------------------------------------------------

class UdpRelay:
    """A `tcpkit relay ... udp://... udp://...`; .port from its line."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([TCPKIT, "relay"] + list(args),
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        self.err = LineReader(self.proc.stderr)
        m = self.err.wait_for(r"listening on udp://127\.0\.0\.1:(\d+)$")
        self.port = int(m.group(1))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(TIMEOUT)
        self.err.join()
        check_sanitizer(self.err.text())
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def urelay(serve):
    started = []

    def start(*args):
        echo = serve("echo", "-u")
        assert echo.host == "udp://127.0.0.1", echo.err.lines
        r = UdpRelay(*args, "udp://127.0.0.1:0",
                     "udp://127.0.0.1:%d" % echo.port)
        started.append(r)
        return r

    yield start
    for r in started:
        r.kill()


FLOW_RE = (r"flow udp://127\.0\.0\.1:%d ended \((\w+)\): (\d+) datagrams? "
           r"\((\d+) bytes\) in, (\d+) datagrams? \((\d+) bytes\) out, "
           r"[\d.]+s$")


def test_relay_udp_two_clients_get_their_own_answers(urelay):
    r = urelay("-i", "30")
    a, b = udp_client(), udp_client()
    for i in range(5):
        a.sendto(b"a%d" % i, ("127.0.0.1", r.port))
        b.sendto(b"b" * (100 + i), ("127.0.0.1", r.port))
    # Boundaries kept, each client its own answers, from the front port.
    got_a = [a.recvfrom(1000) for _ in range(5)]
    got_b = [b.recvfrom(1000) for _ in range(5)]
    assert sorted(d for d, _ in got_a) == [b"a%d" % i for i in range(5)]
    assert sorted(d for d, _ in got_b) == [b"b" * (100 + i)
                                           for i in range(5)]
    assert {p for _, p in got_a + got_b} == {("127.0.0.1", r.port)}
    assert r.stop() == 0
    m = r.err.wait_for(FLOW_RE % a.getsockname()[1])
    assert m.groups() == ("stopped", "5", "10", "5", "10")
    m = r.err.wait_for(FLOW_RE % b.getsockname()[1])
    assert m.groups() == ("stopped", "5", "510", "5", "510")


def test_relay_udp_flow_expires_then_a_new_one(urelay):
    r = urelay("-i", "300ms")
    a = udp_client()
    a.sendto(b"first", ("127.0.0.1", r.port))
    assert a.recvfrom(100)[0] == b"first"
    m = r.err.wait_for(FLOW_RE % a.getsockname()[1])
    assert m.groups() == ("idle", "1", "5", "1", "5")
    n = len(r.err.lines)
    a.sendto(b"second", ("127.0.0.1", r.port))
    assert a.recvfrom(100)[0] == b"second"
    m = r.err.wait_for(FLOW_RE % a.getsockname()[1], start=n)
    assert m.groups() == ("idle", "1", "6", "1", "6")
    assert r.stop() == 0


def test_relay_udp_flow_bound(urelay):
    """--max-conns 1: a second client's datagrams are dropped, and said,
    while the first's flow lives; once it expired the second is served."""
    r = urelay("--max-conns", "1", "-i", "1s")
    a, b = udp_client(), udp_client()
    a.sendto(b"a", ("127.0.0.1", r.port))
    assert a.recvfrom(100)[0] == b"a"
    b.sendto(b"b", ("127.0.0.1", r.port))
    r.err.wait_for(r"relay 127\.0\.0\.1:%d: datagram dropped: --max-conns 1 "
                   r"flows reached" % b.getsockname()[1])
    r.err.wait_for(FLOW_RE % a.getsockname()[1])
    b.sendto(b"b2", ("127.0.0.1", r.port))
    assert b.recvfrom(100)[0] == b"b2"
    assert r.stop() == 0


@pytest.mark.parametrize("args,msg", [
    (["udp://127.0.0.1:0", "127.0.0.1:9"], "UDP relays to UDP only"),
    (["127.0.0.1:0", "udp://127.0.0.1:9"], "UDP relays to UDP only"),
    (["udp://127.0.0.1:0", "unix:/tmp/x.sock"], "UDP relays to UDP only"),
    (["-x", "-", "udp://127.0.0.1:0", "udp://127.0.0.1:9"],
     "udp://: -x/--hexdump is for TCP"),
    (["--balance", "udp://127.0.0.1:0", "udp://127.0.0.1:9",
      "udp://127.0.0.1:10"], "is for TCP"),
    (["-w", "2", "udp://127.0.0.1:0", "udp://127.0.0.1:9"],
     "udp://: -w/--workers above 1 is for TCP"),
])
def test_relay_udp_usage_errors(args, msg):
    p = run(["relay"] + args, timeout=TIMEOUT)
    assert p.returncode == 64, p.stderr
    err = p.stderr.decode()
    assert err.startswith("tcpkit: ") and msg in err, err
