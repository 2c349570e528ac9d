"""`tcpkit serve broker` and `tcpkit serve chat`: every client's bytes (or
named lines) to every other client, with real clients: Python sockets, nc
and ncat."""
import hashlib
import os
import re
import selectors
import socket
import threading
import time

from servehelpers import assert_usage
from tkhelpers import connect, need, recv_until

TIMEOUT = 20


def wait_count(srv, pattern, n, timeout=TIMEOUT):
    """Wait until n lines of the server's stderr match pattern."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    with srv.err.cond:
        while True:
            got = sum(1 for line in srv.err.lines if rx.search(line))
            if got >= n:
                return got
            left = deadline - time.monotonic()
            if srv.err.closed or left <= 0:
                raise AssertionError("want %d lines matching %r; got %r"
                                     % (n, pattern, srv.err.lines))
            srv.err.cond.wait(left)


def join_all(srv, n, before=0):
    """n clients connected, and each accepted (its "connection from" line),
    so all of them are in the broker's set before anyone speaks."""
    socks = [connect(srv.port) for _ in range(n)]
    wait_count(srv, r"^connection from ", before + n)
    return socks


def read_many(socks, want, timeout=TIMEOUT):
    """Read every socket until it has want bytes (bounded in time); what
    each got, in order."""
    got = {s: b"" for s in socks}
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    left = len(socks)
    while left > 0:
        now = time.monotonic()
        assert now < deadline, "timed out: %d clients short" % left
        for key, _ in sel.select(deadline - now):
            s = key.fileobj
            chunk = s.recv(65536)
            assert chunk, "a client was closed after %d bytes" % len(got[s])
            got[s] += chunk
            if len(got[s]) >= want:
                sel.unregister(s)
                left -= 1
    sel.close()
    return [got[s] for s in socks]


def test_broker_50_clients_each_gets_the_49_others(serve):
    n = 50
    srv = serve("broker")
    socks = join_all(srv, n)
    # Fixed size, unique: "client NN " and 21 bytes of its own.
    msgs = [b"client %02d %s\n" % (i, os.urandom(14).hex()[:21].encode())
            for i in range(n)]
    size = len(msgs[0])
    assert all(len(m) == size for m in msgs)
    for s, m in zip(socks, msgs):
        s.sendall(m)
    got = read_many(socks, (n - 1) * size)
    for i, data in enumerate(got):
        assert len(data) == (n - 1) * size, i
        # Each message whole: one chunk is never cut by another's.
        pieces = sorted(data[k:k + size] for k in range(0, len(data), size))
        assert pieces == sorted(msgs[:i] + msgs[i + 1:]), i
    for s in socks:
        s.close()
    wait_count(srv, r"^closed .* \(done\)$", n)
    assert srv.stop() == 0


def test_broker_client_that_never_reads_is_cut(serve):
    n = 16 << 20
    srv = serve("broker", "--max-pending", "65536")
    sender, reader = join_all(srv, 2)
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(("127.0.0.1", srv.port))
    wait_count(srv, r"^connection from ", 3)
    data = os.urandom(1 << 20) * 16
    t0 = time.monotonic()
    th = threading.Thread(target=sender.sendall, args=(data,), daemon=True)
    th.start()
    got = recv_until(reader, lambda d: len(d) >= n, timeout=TIMEOUT)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    # Held for the 2 s a client may stay behind, no more.
    assert time.monotonic() - t0 < 15
    th.join(TIMEOUT)
    m = srv.err.wait_for(r"^closed 127\.0\.0\.1:%d .*\((.*)\)$"
                         % stuck.getsockname()[1])
    assert m.group(1) == "slow reader: output over its limit"
    # It sees a reset after a prefix of the stream, never a clean end.
    stuck.settimeout(TIMEOUT)
    part = b""
    try:
        while True:
            chunk = stuck.recv(65536)
            assert chunk, "a clean end instead of a reset"
            part += chunk
    except ConnectionResetError:
        pass
    assert len(part) < n and data.startswith(part)
    for s in (sender, reader, stuck):
        s.close()
    assert srv.stop() == 0


def seconds(text):
    """A duration as the server logs it ("350ms", "2s", "2.15s")."""
    return float(text[:-2]) / 1000 if text.endswith("ms") else float(text[:-1])


def cut_after(srv):
    """Start a sender and a client that never reads; how long the
    latter lived before it was cut as a slow reader."""
    sender = connect(srv.port)
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(("127.0.0.1", srv.port))
    wait_count(srv, r"^connection from ", 2)
    th = threading.Thread(target=sender.sendall, args=(b"x" * (8 << 20),),
                          daemon=True)
    th.start()
    m = srv.err.wait_for(r"^closed 127\.0\.0\.1:%d .* after (\S+): .*\((.*)\)$"
                         % stuck.getsockname()[1])
    assert m.group(2) == "slow reader: output over its limit"
    th.join(TIMEOUT)
    sender.close()
    stuck.close()
    return seconds(m.group(1))


def test_broker_slow_timeout_sets_how_long_a_client_may_lag(serve):
    # The default holds the senders 2 s before the cut; 300 ms, less.
    assert cut_after(serve("broker")) >= 2.0
    assert cut_after(serve("broker", "--slow-timeout", "300ms")) < 2.0


def test_slow_timeout_only_for_broker_and_chat():
    assert_usage(["echo", "--slow-timeout", "1s"],
                 "--slow-timeout applies to the broker and chat services "
                 "only")
    assert_usage(["chat", "--slow-timeout", "0"],
                 "--slow-timeout must be more than zero")


def test_broker_fin_is_leaving(serve):
    srv = serve("broker")
    a, b = join_all(srv, 2)
    a.sendall(b"last words\n")
    a.shutdown(socket.SHUT_WR)
    assert recv_until(b, lambda d: d.endswith(b"\n")) == b"last words\n"
    assert recv_until(a, lambda d: False) == b""  # FIN back, nothing else
    srv.err.wait_for(r"^closed .* 11 bytes in, 0 bytes out \(done\)$")
    a.close()
    b.close()


def line_of(sock, buf):
    """The next line from sock (buf: a one-item list holding what was read
    past the last line)."""
    data = recv_until(sock, lambda d: b"\n" in d)
    buf[0] += data
    line, _, rest = buf[0].partition(b"\n")
    buf[0] = rest
    return line + b"\n"


def lines_of(sock, n):
    data = recv_until(sock, lambda d: d.count(b"\n") >= n)
    assert data.count(b"\n") == n, data
    return data


def test_chat_three_clients_names_join_and_leave(serve):
    srv = serve("chat")
    a = connect(srv.port)
    assert lines_of(a, 1) == b"* you are user1\n"
    b = connect(srv.port)
    assert lines_of(b, 1) == b"* you are user2\n"
    c = connect(srv.port)
    assert lines_of(c, 1) == b"* you are user3\n"
    assert lines_of(a, 2) == b"* user2 joined\n* user3 joined\n"
    assert lines_of(b, 1) == b"* user3 joined\n"
    a.sendall(b"hello\r\n")
    assert lines_of(b, 1) == b"<user1> hello\n"
    assert lines_of(c, 1) == b"<user1> hello\n"
    b.sendall(b"/nick bob\n")
    assert lines_of(b, 1) == b"* you are now bob\n"
    assert lines_of(a, 1) == b"* user2 is now bob\n"
    assert lines_of(c, 1) == b"* user2 is now bob\n"
    b.sendall(b"hi, I am bob\n")
    assert lines_of(a, 1) == b"<bob> hi, I am bob\n"
    assert lines_of(c, 1) == b"<bob> hi, I am bob\n"
    c.close()
    assert lines_of(a, 1) == b"* user3 left\n"
    assert lines_of(b, 1) == b"* user3 left\n"
    # The sender never gets its own line back.
    a.sendall(b"ping\n")
    assert lines_of(b, 1) == b"<user1> ping\n"
    a.setblocking(False)
    try:
        assert a.recv(100) == b"", "a got something"
    except BlockingIOError:
        pass
    a.close()
    assert lines_of(b, 1) == b"* user1 left\n"
    b.close()
    assert srv.stop() == 0


def test_chat_line_too_long_ends_that_client_only(serve):
    srv = serve("chat", "--max-line", "16")
    a = connect(srv.port)
    assert lines_of(a, 1) == b"* you are user1\n"
    b = connect(srv.port)
    assert lines_of(b, 1) == b"* you are user2\n"
    assert lines_of(a, 1) == b"* user2 joined\n"
    a.sendall(b"sixteen bytes ok\n")
    assert lines_of(b, 1) == b"<user1> sixteen bytes ok\n"
    a.sendall(b"seventeen bytes!!\n")
    assert recv_until(a, lambda d: False) == b"error: line too long\n"
    assert lines_of(b, 1) == b"* user1 left\n"
    srv.err.wait_for(r"^closed .*\(line too long\)$")
    b.sendall(b"still here\n")
    c = connect(srv.port)
    assert lines_of(c, 1) == b"* you are user3\n"
    a.close()
    b.close()
    c.close()
    assert srv.stop() == 0


def test_chat_bad_nick_refused_to_its_sender_only(serve):
    srv = serve("chat")
    a = connect(srv.port)
    assert lines_of(a, 1) == b"* you are user1\n"
    b = connect(srv.port)
    assert lines_of(b, 1) == b"* you are user2\n"
    assert lines_of(a, 1) == b"* user2 joined\n"
    b.sendall(b"/nick evil\x1b[2J\n/nick user1\n/nick " + b"x" * 33 +
              b"\n/nick\n")
    assert lines_of(b, 4) == (
        b"error: bad name: control characters are not allowed\n"
        b"error: bad name: in use\n"
        b"error: bad name: longer than 32 bytes\n"
        b"error: bad name: a name is 1 to 32 bytes\n")
    b.sendall(b"/nick " + b"y" * 32 + b"\n")
    assert lines_of(b, 1) == b"* you are now " + b"y" * 32 + b"\n"
    # a saw only the rename that was taken.
    assert lines_of(a, 1) == b"* user2 is now " + b"y" * 32 + b"\n"
    a.close()
    b.close()
    assert srv.stop() == 0


def test_broker_and_chat_refuse_several_workers():
    assert_usage(["broker", "-w", "2"],
                 "broker runs on one worker (every client reaches every "
                 "other): -w 1")
    assert_usage(["chat", "--workers", "4"],
                 "chat runs on one worker (every client reaches every "
                 "other): -w 1")


def test_unknown_service_names_broker_and_chat():
    assert_usage(["brokr"], "unknown service 'brokr' (echo, discard, "
                 "welcome, basic, line, broker, chat, socks5)")


def test_broker_with_nc_and_ncat_clients(serve, proc):
    need("nc")
    need("ncat")
    srv = serve("broker")
    py = connect(srv.port)
    wait_count(srv, r"^connection from ", 1)
    nc = proc(["nc", "127.0.0.1", str(srv.port)])
    wait_count(srv, r"^connection from ", 2)
    ncat = proc(["ncat", "127.0.0.1", str(srv.port)])
    wait_count(srv, r"^connection from ", 3)
    py.sendall(b"from python\n")
    nc.out.wait_for(r"^from python$")
    ncat.out.wait_for(r"^from python$")
    nc.send(b"from nc\n")
    ncat.out.wait_for(r"^from nc$")
    assert recv_until(py, lambda d: d.endswith(b"nc\n")) == b"from nc\n"
    ncat.send(b"from ncat\n")
    nc.out.wait_for(r"^from ncat$")
    assert recv_until(py, lambda d: d.endswith(b"\n")) == b"from ncat\n"
    assert nc.out.lines == ["from python", "from ncat"]
    assert ncat.out.lines == ["from python", "from nc"]
    nc.kill()
    ncat.kill()
    py.close()
    assert srv.stop() == 0


def test_chat_with_nc_and_ncat_clients(serve, proc):
    need("nc")
    need("ncat")
    srv = serve("chat")
    nc = proc(["nc", "127.0.0.1", str(srv.port)])
    nc.out.wait_for(r"^\* you are user1$")
    ncat = proc(["ncat", "127.0.0.1", str(srv.port)])
    ncat.out.wait_for(r"^\* you are user2$")
    nc.out.wait_for(r"^\* user2 joined$")
    ncat.send(b"/nick cat\nmeow\n")
    nc.out.wait_for(r"^<cat> meow$")
    nc.send(b"hello cat\n")
    ncat.out.wait_for(r"^<user1> hello cat$")
    ncat.close_stdin()  # ncat's FIN on end of input: it leaves
    nc.out.wait_for(r"^\* cat left$")
    assert nc.out.lines == ["* you are user1", "* user2 joined",
                            "* user2 is now cat", "<cat> meow",
                            "* cat left"]
    nc.kill()
    ncat.kill()
    assert srv.stop() == 0
