"""Helpers shared by the `tcpkit serve` tests (test_serve.py,
test_serve_listen.py): its messages, its log lines, starting it and
reading what it said."""
import shlex
import socket
import time

from tkhelpers import LISTEN_RE, TCPKIT, connect, recv_all, run

TIMEOUT = 15
# The program as the `try:` hint names it: the path the test ran it by.
PROG = shlex.quote(TCPKIT) if "/" in TCPKIT else "tcpkit"
HINT = ("hint: loopback only, other machines cannot connect; use -H 0.0.0.0 "
        "or -H :: to serve every interface")


def usage(msg):
    return "tcpkit: serve: %s (see 'tcpkit help serve')\n" % msg


def wait_listening(srv, n, timeout=TIMEOUT):
    """Wait until the server printed n "listening on" lines; return them as
    (host, port) pairs and store them in srv.addrs."""
    deadline = time.monotonic() + timeout
    with srv.err.cond:
        while True:
            found = [LISTEN_RE.search(l) for l in srv.err.lines]
            found = [f for f in found if f]
            if len(found) >= n:
                break
            left = deadline - time.monotonic()
            if srv.err.closed or left <= 0:
                raise AssertionError("want %d listening lines; got %r"
                                     % (n, srv.err.lines))
            srv.err.cond.wait(left)
    srv.addrs = [(f.group(1).strip("[]"), int(f.group(2))) for f in found]
    srv.host, srv.port = srv.addrs[0]
    return srv.addrs


def start(serve, *args, listeners=1):
    srv = serve(*args, listeners=listeners)
    wait_listening(srv, listeners)
    return srv


def err_lines(srv):
    return list(srv.err.lines)


def echo_roundtrip(port, host="127.0.0.1", data=b"ping\n"):
    with connect(port, host) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        return recv_all(s)


def assert_usage(args, msg):
    p = run(["serve"] + list(args))
    assert p.returncode == 64, p.stderr
    assert p.stdout == b""
    assert p.stderr.decode() == usage(msg)
