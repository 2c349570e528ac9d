"""UDP: `serve echo|discard -u` and `connect -u` / udp://HOST:PORT against
Python UDP peers, socat and nc: datagram boundaries kept, sizes up to
65,507 bytes, workers, ICMP port unreachable, and the usage errors."""
import json
import re
import socket
import subprocess
import threading
import time

import pytest

from tkhelpers import (TCPKIT, LineReader, check_sanitizer, need, run)

TIMEOUT = 10


def udp_serve(serve, *args):
    srv = serve(*args)
    assert srv.host == "udp://127.0.0.1", srv.err.lines
    return srv


def udp_client():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(TIMEOUT)
    return s


def free_udp_port():
    """A UDP port nobody has: bound, then closed (for unreachable tests)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class PyUdpEcho:
    """A Python UDP echo server on a free port; records what came.  With
    drop_every=N it answers no datagram whose number is a multiple of N."""

    def __init__(self, drop_every=0, dup=False, swap_pairs=False,
                 corrupt_every=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.got = []
        self.drop_every = drop_every
        self.dup = dup
        self.swap_pairs = swap_pairs
        self.corrupt_every = corrupt_every
        self.held = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            self.got.append(data)
            n = len(self.got)
            if self.drop_every and n % self.drop_every == 0:
                continue
            if self.corrupt_every and n % self.corrupt_every == 0:
                data = data[:-1] + bytes([data[-1] ^ 1])
            if self.swap_pairs:
                # The first of each pair goes back after the second.
                if self.held is None:
                    self.held = data
                    continue
                data, held, self.held = self.held, data, None
                self.sock.sendto(held, peer)
            self.sock.sendto(data, peer)
            if self.dup:
                self.sock.sendto(data, peer)

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def pyecho():
    servers = []

    def start(**kw):
        s = PyUdpEcho(**kw)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


def stopped_line(srv):
    srv.stop()
    return [l for l in srv.err.lines if l.startswith("stopped")][0]


# --- serve -u ----------------------------------------------------------------

def test_serve_echo_udp_keeps_boundaries(serve):
    """1, 1400 and 65,507 bytes (the largest IPv4 payload) come back as
    the same datagrams, whole, one for one."""
    srv = udp_serve(serve, "echo", "-u", "-w", "1")
    c = udp_client()
    sizes = [1, 1400, 65507, 0, 3]
    sent = [bytes((i * 7 + n) & 0xff for i in range(n)) for n in sizes]
    for d in sent:
        c.sendto(d, ("127.0.0.1", srv.port))
    got = [c.recvfrom(65536)[0] for _ in sizes]
    assert [len(g) for g in got] == sizes
    assert got == sent
    c.close()
    assert stopped_line(srv) == (
        "stopped (SIGTERM): 5 datagrams in, 5 out, %d bytes in, %d bytes out"
        % (sum(sizes), sum(sizes)))


def test_serve_echo_udp_ipv6(serve):
    srv = serve("echo", "-u", listeners=2)
    v6 = srv.err.wait_for(r"^listening on udp://\[::1\]:(\d+)$")
    assert int(v6.group(1)) == srv.port
    c = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    c.settimeout(TIMEOUT)
    c.sendto(b"six", ("::1", srv.port))
    assert c.recvfrom(100)[0] == b"six"
    c.close()


def test_serve_echo_udp_two_workers_many_clients(serve):
    """-w 2 (two SO_REUSEPORT sockets), 20 clients of 25 datagrams each:
    every datagram answered, to its own sender, and counted once.  Sent in
    rounds of 100 in flight, which any receive buffer holds: UDP may drop
    what overflows the kernel's, and that is not what is tested here."""
    srv = udp_serve(serve, "echo", "-u", "-w", "2")
    clients = [udp_client() for _ in range(20)]
    for r in range(5):
        for i, c in enumerate(clients):
            for j in range(r * 5, r * 5 + 5):
                c.sendto(b"%d:%d" % (i, j), ("127.0.0.1", srv.port))
        for i, c in enumerate(clients):
            got = sorted(c.recvfrom(100)[0] for _ in range(5))
            assert got == sorted(b"%d:%d" % (i, j)
                                 for j in range(r * 5, r * 5 + 5))
    for c in clients:
        c.close()
    assert stopped_line(srv).startswith(
        "stopped (SIGTERM): 500 datagrams in, 500 out,")


def test_serve_discard_udp_answers_nothing(serve):
    srv = udp_serve(serve, "discard", "-u")
    c = udp_client()
    for _ in range(5):
        c.sendto(b"x" * 100, ("127.0.0.1", srv.port))
    # The echo twin answers within this; discard must not.
    c.settimeout(0.5)
    with pytest.raises(socket.timeout):
        c.recvfrom(100)
    c.close()
    assert stopped_line(srv) == (
        "stopped (SIGTERM): 5 datagrams in, 0 out, 500 bytes in, "
        "0 bytes out")


def test_serve_udp_json_log_and_stats(serve):
    """--log-format json: the listening record names udp://, and the
    totals are UDP's (datagrams, not connections), at exit too."""
    srv = serve("echo", "-u", "-H", "127.0.0.1", "--log-format", "json",
                "--stats-interval", "100ms")
    first = json.loads(srv.err.lines[0])
    assert first["event"] == "listening"
    assert first["addr"] == "udp://127.0.0.1:%d" % srv.port
    c = udp_client()
    c.sendto(b"12345", ("127.0.0.1", srv.port))
    assert c.recvfrom(100)[0] == b"12345"
    c.close()
    srv.err.wait_for(r'"when":"interval","datagrams_in":1,')
    srv.stop()
    recs = [json.loads(l) for l in srv.err.lines]
    exit_rec = [r for r in recs if r.get("when") == "exit"][0]
    assert {k: exit_rec[k] for k in ("datagrams_in", "datagrams_out",
                                     "bytes_in", "bytes_out", "truncated",
                                     "errors")} == dict(
        datagrams_in=1, datagrams_out=1, bytes_in=5, bytes_out=5,
        truncated=0, errors=dict(send=0, receive=0))


def test_serve_udp_port_in_use():
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    p = run(["serve", "echo", "-u", "-H", "127.0.0.1", "-p", str(port)])
    holder.close()
    assert p.returncode == 1
    assert p.stderr.decode() == (
        "tcpkit: listen udp://127.0.0.1:%d: Address already in use: "
        "another program holds this UDP port; choose another with -p, or "
        "-p 0 for any free port\n" % port)


@pytest.mark.parametrize("args, msg", [
    (["line", "-u"], "-u/--udp serves echo or discard, not 'line'"),
    (["echo", "-u", "--tls"], "-u/--udp: no TLS over UDP (--tls)"),
    (["echo", "-u", "-H", "unix:/tmp/x.sock"],
     "-u/--udp: -H unix: is a stream socket; UDP takes IP addresses"),
    (["echo", "-u", "--allow", "127.0.0.1"],
     "-u/--udp: --allow/--deny are for TCP clients, checked at accept"),
    (["echo", "-u", "--keepalive"],
     "-u/--udp: --keepalive is for TCP connections"),
])
def test_serve_udp_usage(args, msg):
    p = run(["serve"] + args)
    assert p.returncode == 64
    assert p.stderr.decode() == (
        "tcpkit: serve: %s (see 'tcpkit help serve')\n" % msg)


# --- connect -u --------------------------------------------------------------

def test_connect_udp_lines_are_datagrams(pyecho):
    """Each line, newline included, is one datagram; the last line without
    one too; every reply printed as it came."""
    srv = pyecho()
    p = run(["connect", "-u", "127.0.0.1", str(srv.port)],
            input=b"one\ntwo two\n\nlast")
    assert p.returncode == 0, p.stderr
    assert srv.got == [b"one\n", b"two two\n", b"\n", b"last"]
    assert p.stdout == b"one\ntwo two\n\nlast"
    assert p.stderr == b""


def test_connect_udp_endpoint_and_datagram_size(pyecho):
    srv = pyecho()
    data = bytes(range(256)) * 2
    p = run(["connect", "--datagram-size", "100",
             "udp://127.0.0.1:%d" % srv.port], input=data)
    assert p.returncode == 0, p.stderr
    assert [len(d) for d in srv.got] == [100] * 5 + [12]
    assert b"".join(srv.got) == data
    assert p.stdout == data


def test_connect_udp_largest_datagrams(serve):
    """65,507-byte datagrams through tcpkit on both sides, byte-exact."""
    srv = udp_serve(serve, "echo", "-u")
    data = bytes((i * 31) & 0xff for i in range(65507 * 2))
    p = run(["connect", "-u", "--datagram-size", "65507", "127.0.0.1",
             str(srv.port), "-v"], input=data)
    assert p.returncode == 0, p.stderr
    assert p.stdout == data
    assert "received 65507 bytes from udp://127.0.0.1:%d" % srv.port in \
        p.stderr.decode()
    assert "2 datagrams sent, 2 received" in p.stderr.decode()


def test_connect_udp_waits_then_ends_without_replies(pyecho):
    """A server that answers only some: tcpkit waits -i for the rest, then
    exits 0 with what came."""
    srv = pyecho(drop_every=2)
    t0 = time.monotonic()
    p = run(["connect", "-u", "-i", "300ms", "127.0.0.1", str(srv.port),
             "-v"], input=b"a\nb\nc\nd\n")
    assert p.returncode == 0, p.stderr
    assert time.monotonic() - t0 < 5
    assert p.stdout == b"a\nc\n"
    assert "4 datagrams sent, 2 received" in p.stderr.decode()


def test_connect_udp_port_unreachable():
    port = free_udp_port()
    p = run(["connect", "-u", "127.0.0.1", str(port)], input=b"anyone?\n")
    assert p.returncode == 69
    assert p.stdout == b""
    assert p.stderr.decode() == (
        "tcpkit: connect udp://127.0.0.1:%d: Connection refused: nothing "
        "listens on this UDP port (ICMP port unreachable)\n" % port)


def test_connect_udp_against_socat():
    need("socat")
    s = subprocess.Popen(["socat", "-d", "-d", "-T5",
                          "UDP-LISTEN:0,bind=127.0.0.1,fork", "PIPE"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    try:
        err = LineReader(s.stderr)
        port = int(err.wait_for(r"listening on UDP AF=2 127\.0\.0\.1:(\d+)")
                   .group(1))
        p = run(["connect", "-u", "127.0.0.1", str(port)],
                input=b"hello socat\n")
        assert p.returncode == 0, p.stderr
        assert p.stdout == b"hello socat\n"
    finally:
        s.kill()
        s.wait()


def test_connect_udp_against_nc():
    """nc -u -l prints what it gets and sends its stdin back to the first
    sender: both directions, one datagram each."""
    need("nc")
    nc = subprocess.Popen(["nc", "-v", "-u", "-l", "127.0.0.1", "0"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    tk = None
    try:
        port = int(LineReader(nc.stderr).wait_for(r"Bound on \S+ (\d+)")
                   .group(1))
        tk = subprocess.Popen([TCPKIT, "connect", "-u", "127.0.0.1",
                               str(port)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        nc_out = LineReader(nc.stdout)
        tk.stdin.write(b"from tcpkit\n")
        tk.stdin.flush()
        nc_out.wait_for(r"^from tcpkit$", timeout=TIMEOUT)
        nc.stdin.write(b"from nc\n")
        nc.stdin.flush()
        tk_out = LineReader(tk.stdout)
        tk_out.wait_for(r"^from nc$", timeout=TIMEOUT)
        tk.stdin.close()
        assert tk.wait(TIMEOUT) == 0
        check_sanitizer(tk.stderr.read())
    finally:
        for p in (tk, nc):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()


@pytest.mark.parametrize("args, msg", [
    (["--datagram-size", "10", "127.0.0.1", "7"],
     "--datagram-size is for UDP: add -u"),
    (["-u", "--datagram-size", "0", "127.0.0.1", "7"], None),
    (["-u", "--datagram-size", "65508", "127.0.0.1", "7"], None),
    (["-u", "--tls", "127.0.0.1", "7"], "-u/--udp: no TLS over UDP"),
    (["-u", "--proxy", "socks5://127.0.0.1:1", "127.0.0.1", "7"],
     "-u/--udp: --proxy tunnels TCP only"),
    (["-u", "unix:/tmp/x.sock"],
     "-u/--udp takes HOST PORT, not a UNIX socket"),
    (["udp://127.0.0.1:0"], "port 0 cannot be connected to (1-65535)"),
    (["udp://:53"], "':53': missing host (HOST:PORT)"),
] + [(["-u", opt, arg, "127.0.0.1", "7"] if arg else
      ["-u", opt, "127.0.0.1", "7"],
      "-u/--udp takes none of -x/--hexdump, -t/--telnet, --keepalive, "
      "-p/--source-port")
     for opt, arg in [("-x", "-"), ("-t", None), ("--keepalive", None),
                      ("-p", "5555")]])
def test_connect_udp_usage(args, msg):
    p = run(["connect"] + args)
    assert p.returncode == 64, p.stderr
    if msg is not None:
        assert p.stderr.decode() == (
            "tcpkit: connect: %s (see 'tcpkit help connect')\n" % msg)
    else:
        assert re.match(r"tcpkit: connect: --datagram-size", p.stderr.decode())


def test_send_takes_no_udp():
    p = run(["send", "udp://127.0.0.1:7", "x"])
    assert p.returncode == 64
    assert "udp:// is not taken here" in p.stderr.decode()


# --- bench echo -u -----------------------------------------------------------

def bench_json(port, *args):
    p = run(["bench", "echo", "-u", "127.0.0.1", str(port), "--json"] +
            list(args), timeout=60)
    return p, (json.loads(p.stdout) if p.stdout else None)


COUNTS = ("sent", "received", "lost", "duplicated", "reordered", "late",
          "corrupt")


def counts(r):
    return {k: r[k] for k in COUNTS}


def test_bench_udp_clean_against_serve(serve):
    srv = udp_serve(serve, "echo", "-u", "-w", "2")
    p, r = bench_json(srv.port, "-c", "4", "-d", "4", "-n", "200",
                      "-s", "1400")
    assert p.returncode == 0, p.stderr
    assert counts(r) == dict(sent=800, received=800, lost=0, duplicated=0,
                             reordered=0, late=0, corrupt=0)
    assert r["transport"] == "udp" and r["size"] == 1400
    lat = r["latency_ns"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p99"] <= lat["max"]


def test_bench_udp_counts_loss(pyecho):
    """Every 10th datagram dropped by the server: exactly 10 of 100 lost,
    and no other kind of fault reported for them."""
    srv = pyecho(drop_every=10)
    p, r = bench_json(srv.port, "-c", "1", "-n", "100",
                      "--loss-timeout", "300ms")
    assert p.returncode == 0, p.stderr
    assert counts(r) == dict(sent=100, received=90, lost=10, duplicated=0,
                             reordered=0, late=0, corrupt=0)
    assert len(srv.got) == 100


def test_bench_udp_loss_in_text_report(pyecho):
    srv = pyecho(drop_every=10)
    p = run(["bench", "-u", "127.0.0.1", str(srv.port), "-c", "1", "-n",
             "50", "--loss-timeout", "300ms"], timeout=60)
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert "datagrams: 50 sent, 45 received" in out
    assert ("lost 5 (10.00%), duplicated 0, reordered 0, late 0, "
            "corrupt 0") in out


def test_bench_udp_counts_duplicates(pyecho):
    srv = pyecho(dup=True)
    p, r = bench_json(srv.port, "-c", "1", "-n", "50")
    assert p.returncode == 0, p.stderr
    assert counts(r) == dict(sent=50, received=50, lost=0, duplicated=50,
                             reordered=0, late=0, corrupt=0)


def test_bench_udp_counts_reordering(pyecho):
    """Replies come back in swapped pairs: one of each pair is reordered,
    none lost."""
    srv = pyecho(swap_pairs=True)
    p, r = bench_json(srv.port, "-c", "1", "-d", "2", "-n", "100")
    assert p.returncode == 0, p.stderr
    assert counts(r) == dict(sent=100, received=100, lost=0, duplicated=0,
                             reordered=50, late=0, corrupt=0)


def test_bench_udp_corrupt_fails(pyecho):
    srv = pyecho(corrupt_every=5)
    p, r = bench_json(srv.port, "-c", "1", "-n", "20", "-s", "100")
    assert p.returncode == 1
    assert r["corrupt"] == 4 and r["received"] == 16
    assert p.stderr.decode() == (
        "tcpkit: bench udp://127.0.0.1:%d: 4 corrupt datagrams: the echo "
        "differs from what was sent\n" % srv.port)


def test_bench_udp_refused():
    port = free_udp_port()
    p = run(["bench", "-u", "127.0.0.1", str(port), "-n", "5"])
    assert p.returncode == 69
    assert p.stderr.decode() == (
        "tcpkit: bench udp://127.0.0.1:%d: Connection refused: nothing "
        "listens on this UDP port (ICMP port unreachable)\n" % port)


@pytest.mark.parametrize("args, msg", [
    (["bulk", "-u", "127.0.0.1", "7"], "-u/--udp: echo only, not bulk"),
    (["-u", "-s", "8", "127.0.0.1", "7"],
     "-u/--udp: -s/--size is 16 to 65507 bytes (a sequence number and a "
     "check go in each datagram)"),
    (["-u", "--tls", "127.0.0.1", "7"], "-u/--udp: no TLS over UDP"),
    (["-u", "--proxy", "socks5://127.0.0.1:1", "127.0.0.1", "7"],
     "-u/--udp: --proxy tunnels TCP only"),
    (["--loss-timeout", "1s", "127.0.0.1", "7"],
     "--loss-timeout is for UDP: add -u"),
])
def test_bench_udp_usage(args, msg):
    p = run(["bench"] + args)
    assert p.returncode == 64
    assert p.stderr.decode() == (
        "tcpkit: bench: %s (see 'tcpkit help bench')\n" % msg)
