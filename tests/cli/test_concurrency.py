"""1,000 clients at once against `tcpkit serve welcome` and `serve echo`:
all connections are opened first, every one is then served while all the
others are still open (none waits on another), each gets its own greeting
and its own payload back, and the stop summary counts them all.  One Python
thread drives every socket through a selector."""
import errno
import os
import re
import resource
import selectors
import signal
import socket
import time

import pytest

from tkhelpers import LISTEN_RE, recv_until

CLIENTS = 1000
BOUND = 60  # seconds for all of one test's network work
WELCOME = b"Welcome to the server. Type something and hit enter\n"
SUMMARY = re.compile(r"^stopped \(SIGTERM\): (\d+) connections served, "
                     r"(\d+) closed by the stop, (\d+) bytes in, "
                     r"(\d+) bytes out$")


@pytest.fixture(autouse=True)
def enough_files():
    """Each side needs CLIENTS descriptors and then some; the server
    inherits our limit."""
    need = 2 * CLIENTS + 200
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip("open-file limit %d is below the %d this test needs"
                        % (hard, need))
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def start(serve, *args):
    srv = serve(*args)
    srv.err.wait_for(LISTEN_RE.pattern)
    return srv


class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self, what):
        left = self.end - time.monotonic()
        if left <= 0:
            raise AssertionError("not done within %ds: %s" % (BOUND, what))
        return left


def open_all(port, n, deadline):
    """Start n non-blocking connects at once and wait for all of them."""
    sel = selectors.DefaultSelector()
    socks = []
    try:
        for i in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.setblocking(False)
            rc = s.connect_ex(("127.0.0.1", port))
            assert rc in (0, errno.EINPROGRESS), os.strerror(rc)
            sel.register(s, selectors.EVENT_WRITE, i)
        pending = n
        while pending:
            for key, _ in sel.select(deadline.left("%d connects pending"
                                                   % pending)):
                s = key.fileobj
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                assert err == 0, "client %d: %s" % (key.data, os.strerror(err))
                sel.unregister(s)
                pending -= 1
    except BaseException:
        for s in socks:
            s.close()
        raise
    finally:
        sel.close()
    return socks


def exchange(socks, outgoing, done, deadline, what):
    """Send outgoing[i] on socks[i] (all at once) and read on each until
    done(i, data) is true; returns the data read per socket."""
    sel = selectors.DefaultSelector()
    got = [b""] * len(socks)
    left_out = [memoryview(o) if o else None for o in outgoing]
    pending = set()
    for i, s in enumerate(socks):
        ev = selectors.EVENT_READ
        if left_out[i] is not None:
            ev |= selectors.EVENT_WRITE
        sel.register(s, ev, i)
        pending.add(i)
    try:
        while pending:
            for key, mask in sel.select(deadline.left(
                    "%s: %d clients pending, e.g. %d"
                    % (what, len(pending), min(pending)))):
                i, s = key.data, key.fileobj
                if mask & selectors.EVENT_WRITE and left_out[i] is not None:
                    n = s.send(left_out[i])
                    left_out[i] = left_out[i][n:] if n < len(left_out[i]) \
                        else None
                    if left_out[i] is None:
                        sel.modify(s, selectors.EVENT_READ, i)
                if mask & selectors.EVENT_READ:
                    try:
                        chunk = s.recv(65536)
                    except BlockingIOError:
                        continue
                    assert chunk, "client %d: EOF early after %r" % (i, got[i])
                    got[i] += chunk
                    if done(i, got[i]):
                        sel.unregister(s)
                        pending.discard(i)
    finally:
        sel.close()
    return got


def close_all(socks, deadline):
    """Half-close every client and wait for each server-side EOF."""
    for s in socks:
        s.shutdown(socket.SHUT_WR)
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        sel.register(s, selectors.EVENT_READ, i)
    pending = len(socks)
    try:
        while pending:
            for key, _ in sel.select(deadline.left("%d EOFs pending"
                                                   % pending)):
                chunk = key.fileobj.recv(65536)
                assert chunk == b"", "client %d: extra %r" % (key.data, chunk)
                sel.unregister(key.fileobj)
                pending -= 1
    finally:
        sel.close()
        for s in socks:
            s.close()


def wait_count(srv, pattern, n, deadline):
    rx = re.compile(pattern)
    with srv.err.cond:
        while sum(1 for l in srv.err.lines if rx.search(l)) < n:
            srv.err.cond.wait(deadline.left(
                "%d lines matching %r" % (n, pattern)))


def final_summary(srv):
    assert srv.stop(signal.SIGTERM) == 0
    found = [SUMMARY.match(l) for l in srv.err.lines]
    found = [m for m in found if m]
    assert len(found) == 1, srv.err.lines[-5:]
    return tuple(int(x) for x in found[0].groups())


def test_thousand_welcome_clients(serve):
    srv = start(serve, "welcome", "-H", "127.0.0.1")
    deadline = Deadline(BOUND)
    t0 = time.monotonic()
    socks = open_all(srv.port, CLIENTS, deadline)
    try:
        # Every client is greeted while all 1,000 are open and silent.
        greets = exchange(socks, [None] * CLIENTS,
                          lambda i, d: len(d) >= len(WELCOME), deadline,
                          "greetings")
        for i, g in enumerate(greets):
            assert g == WELCOME, "client %d got %r" % (i, g)
        wait_count(srv, r"^Connected with 127\.0\.0\.1:\d+ at ", CLIENTS,
                   deadline)
        tokens = [b"client %04d %s\n" % (i, os.urandom(12).hex().encode())
                  for i in range(CLIENTS)]

        def echoed(i, d):
            return len(d.replace(b"OK...", b"")) >= len(tokens[i])

        replies = exchange(socks, tokens, echoed, deadline, "OK replies")
        for i, r in enumerate(replies):
            # Each piece the server read comes back as "OK..." + piece.
            assert r.startswith(b"OK..."), "client %d got %r" % (i, r)
            assert r.replace(b"OK...", b"") == tokens[i], \
                "client %d got %r" % (i, r)
        close_all(socks, deadline)
    except BaseException:
        for s in socks:
            s.close()
        raise
    took = time.monotonic() - t0
    assert took < BOUND
    wait_count(srv, r"^closed 127\.0\.0\.1:\d+ .*\(done\)$", CLIENTS,
               Deadline(BOUND))
    served, by_stop, nin, nout = final_summary(srv)
    assert served == CLIENTS
    assert by_stop == 0
    assert nin == sum(len(t) for t in tokens)
    assert nout == CLIENTS * len(WELCOME) + nin + 5 * sum(
        r.count(b"OK...") for r in replies)


def test_thousand_echo_clients(serve):
    srv = start(serve, "echo", "-H", "127.0.0.1")
    deadline = Deadline(BOUND)
    socks = open_all(srv.port, CLIENTS, deadline)
    try:
        # The server has accepted all of them: none is queued behind another.
        wait_count(srv, r"^connection from 127\.0\.0\.1:\d+ at ", CLIENTS,
                   deadline)
        # The last one and the first one are answered at once, alone, while
        # the 998 others sit open and silent.
        for s, msg in ((socks[-1], b"last"), (socks[0], b"first")):
            s.setblocking(True)
            assert recv_until_sent(s, msg) == msg
            s.setblocking(False)
        payloads = [(b"%04d:" % i) + os.urandom(2048 + (i * 37) % 2048)
                    for i in range(CLIENTS)]
        replies = exchange(socks, payloads,
                           lambda i, d: len(d) >= len(payloads[i]), deadline,
                           "echo replies")
        for i, r in enumerate(replies):
            assert r == payloads[i], "client %d: %d bytes, first %r" % (
                i, len(r), r[:16])
        close_all(socks, deadline)
    except BaseException:
        for s in socks:
            s.close()
        raise
    wait_count(srv, r"^closed 127\.0\.0\.1:\d+ .*\(done\)$", CLIENTS,
               Deadline(BOUND))
    served, by_stop, nin, nout = final_summary(srv)
    total = sum(len(p) for p in payloads) + len(b"last") + len(b"first")
    assert (served, by_stop, nin, nout) == (CLIENTS, 0, total, total)


def recv_until_sent(s, msg):
    s.sendall(msg)
    return recv_until(s, lambda d: len(d) >= len(msg), timeout=BOUND)


def test_thousand_quiet_clients_stopped_by_sigterm(serve):
    """1,000 open connections when SIGTERM comes: one summary, every one
    counted as closed by the stop, every client sees EOF."""
    srv = start(serve, "echo", "-H", "127.0.0.1", "-q")
    deadline = Deadline(BOUND)
    socks = open_all(srv.port, CLIENTS, deadline)
    try:
        # Make sure the server has accepted every one: each echoes a byte.
        exchange(socks, [b"x"] * CLIENTS, lambda i, d: d == b"x", deadline,
                 "one byte each")
        served, by_stop, nin, nout = final_summary(srv)
        assert (served, by_stop, nin, nout) == (CLIENTS, CLIENTS, CLIENTS,
                                                CLIENTS)
        assert not any(l.startswith(("connection from", "closed "))
                       for l in srv.err.lines)
        sel = selectors.DefaultSelector()
        for i, s in enumerate(socks):
            sel.register(s, selectors.EVENT_READ, i)
        pending = CLIENTS
        while pending:
            for key, _ in sel.select(deadline.left("%d EOFs" % pending)):
                assert key.fileobj.recv(16) == b"", key.data
                sel.unregister(key.fileobj)
                pending -= 1
        sel.close()
    finally:
        for s in socks:
            s.close()
