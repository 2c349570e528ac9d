"""tcpkit relay: bytes both ways, half-close carried each way, several
targets in order and --balance, a target that refuses, times out or resets,
and the options' negative twins.  TLS, interop and bulk: test_relay_more.py.
"""
import json
import socket
import threading

from relayhelpers import (FAILED_RE, TIMEOUT, closed_or_reset,
                          echo_handler, refusing_port, relay, reset,  # noqa: F401
                          target)
from tkhelpers import recv_all, recv_until, run


def test_relay_to_python_echo(relay, pyserver):
    srv = pyserver(echo_handler)
    r = relay("127.0.0.1:0", target(srv.port))
    with r.connect() as c:
        c.sendall(b"hello through the relay\n")
        assert recv_until(c, lambda d: d.endswith(b"\n")) == \
            b"hello through the relay\n"
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b""
    m = r.log()
    assert m.group(2) == target(srv.port)
    assert (m.group(3), m.group(4)) == ("24", "24")
    assert (m.group(5), m.group(6)) == ("client", "done")


def test_many_clients_at_once(relay, pyserver):
    srv = pyserver(echo_handler)
    r = relay("127.0.0.1:0", target(srv.port))
    socks = [r.connect() for _ in range(20)]
    for i, s in enumerate(socks):
        s.sendall(b"client %d\n" % i)
    for i, s in enumerate(socks):
        assert recv_until(s, lambda d: d.endswith(b"\n")) == b"client %d\n" % i
        s.close()


def test_half_close_from_the_client(relay, pyserver):
    """The client's FIN reaches the target after its bytes; the target's
    answer after that still comes back."""
    got = []

    def handler(conn, srv):
        got.append(recv_all(conn))  # until the client's EOF
        conn.sendall(b"answer after your EOF")

    srv = pyserver(handler)
    r = relay("127.0.0.1:0", target(srv.port))
    with r.connect() as c:
        c.sendall(b"request")
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"answer after your EOF"
    srv.wait_handlers()
    assert got == [b"request"]
    m = r.log()
    assert (m.group(5), m.group(6)) == ("client", "done")


def test_half_close_from_the_target(relay, pyserver):
    """The target's FIN reaches the client; the client can still send."""
    got = []

    def handler(conn, srv):
        conn.sendall(b"greeting, then my EOF")
        conn.shutdown(socket.SHUT_WR)
        got.append(recv_all(conn))

    srv = pyserver(handler)
    r = relay("127.0.0.1:0", target(srv.port))
    with r.connect() as c:
        assert recv_all(c) == b"greeting, then my EOF"
        c.sendall(b"still talking")
        c.shutdown(socket.SHUT_WR)
        srv.wait_handlers()
    assert got == [b"still talking"]
    m = r.log()
    assert (m.group(5), m.group(6)) == ("target", "done")


def test_first_target_refuses_the_next_is_tried(relay, pyserver):
    dead = refusing_port()
    srv = pyserver(echo_handler)
    r = relay("127.0.0.1:0", target(dead.getsockname()[1]),
              target(srv.port))
    with r.connect() as c:
        c.sendall(b"ping")
        assert recv_until(c, lambda d: d == b"ping") == b"ping"
    m = r.log(r"^relay \S+: 127.0.0.1:(\d+): (.*); trying the next target$")
    assert int(m.group(1)) == dead.getsockname()[1]
    assert "refused" in m.group(2)
    assert r.log().group(2) == target(srv.port)
    dead.close()


def test_refused_target_closes_the_client(relay):
    dead = refusing_port()
    r = relay("127.0.0.1:0", target(dead.getsockname()[1]))
    with r.connect() as c:
        data, how = closed_or_reset(c)
    assert data == b""
    m = r.log(FAILED_RE)
    assert "127.0.0.1:%d: connection refused" % dead.getsockname()[1] in \
        m.group(2).lower()
    dead.close()


def test_target_that_times_out_closes_the_client(relay, blackhole):
    r = relay("--connect-timeout", "300ms", "127.0.0.1:0", target(blackhole))
    with r.connect() as c:
        c.settimeout(TIMEOUT)
        data, how = closed_or_reset(c)
    assert data == b""
    assert "timed out" in r.log(FAILED_RE).group(2)


def test_connect_timeout_negative_twin(relay, pyserver):
    """With a target that answers, -c changes nothing."""
    srv = pyserver(echo_handler)
    r = relay("--connect-timeout", "300ms", "127.0.0.1:0", target(srv.port))
    with r.connect() as c:
        c.sendall(b"x")
        assert recv_until(c, lambda d: d == b"x") == b"x"


def test_target_reset_mid_stream_resets_the_client(relay, pyserver):
    def handler(conn, srv):
        conn.sendall(b"partial")
        recv_until(conn, lambda d: d == b"go")
        reset(conn)

    srv = pyserver(handler)
    r = relay("127.0.0.1:0", target(srv.port))
    with r.connect() as c:
        assert recv_until(c, lambda d: d == b"partial") == b"partial"
        c.sendall(b"go")
        data, how = closed_or_reset(c)
    assert how == "reset", "the client saw a clean end of a cut stream"
    m = r.log()
    assert m.group(5) == "target"
    assert "reset" in m.group(6)


def test_client_reset_mid_stream_resets_the_target(relay, pyserver):
    seen = []
    got = threading.Event()

    def handler(conn, srv):
        recv_until(conn, lambda d: d == b"partial")
        got.set()
        seen.append(closed_or_reset(conn)[1])

    srv = pyserver(handler)
    r = relay("127.0.0.1:0", target(srv.port))
    c = r.connect()
    c.sendall(b"partial")
    assert got.wait(TIMEOUT)
    reset(c)
    srv.wait_handlers()
    assert seen == ["reset"], "the target saw a clean end of a cut stream"
    assert r.log().group(5) == "client"


def test_balance_spreads_over_two_targets(relay, pyserver):
    counts = [0, 0]
    lock = threading.Lock()

    def counting(i):
        def handler(conn, srv):
            with lock:
                counts[i] += 1
            echo_handler(conn, srv)
        return handler

    a, b = pyserver(counting(0)), pyserver(counting(1))
    r = relay("--balance", "127.0.0.1:0", target(a.port), target(b.port))
    for i in range(6):
        with r.connect() as c:
            c.sendall(b"%d" % i)
            assert recv_until(c, lambda d: d == b"%d" % i) == b"%d" % i
    a.wait_handlers(3)
    b.wait_handlers(3)
    assert counts == [3, 3]


def test_without_balance_the_first_target_takes_all(relay, pyserver):
    counts = [0, 0]

    def counting(i):
        def handler(conn, srv):
            counts[i] += 1
            echo_handler(conn, srv)
        return handler

    a, b = pyserver(counting(0)), pyserver(counting(1))
    r = relay("127.0.0.1:0", target(a.port), target(b.port))
    for i in range(4):
        with r.connect() as c:
            c.sendall(b"x")
            assert recv_until(c, lambda d: d == b"x") == b"x"
    a.wait_handlers(4)
    assert counts == [4, 0]


def test_idle_timeout_ends_a_silent_relay(relay, pyserver):
    srv = pyserver(echo_handler)
    r = relay("-i", "300ms", "127.0.0.1:0", target(srv.port))
    with r.connect() as c:
        c.sendall(b"x")
        assert recv_until(c, lambda d: d == b"x") == b"x"
        data, how = closed_or_reset(c)
    assert data == b""
    assert r.log().group(6).endswith(": idle timeout")


def test_idle_timeout_negative_twin(relay, pyserver):
    """Traffic keeps a relay with -i alive past the timeout."""
    srv = pyserver(echo_handler)
    r = relay("-i", "400ms", "127.0.0.1:0", target(srv.port))
    with r.connect() as c:
        for i in range(8):  # about 8 x 100 ms: twice the timeout
            c.sendall(b"%d" % i)
            assert recv_until(c, lambda d: d == b"%d" % i) == b"%d" % i
            c.settimeout(0.1)
            try:
                assert c.recv(1) == b"", "unexpected bytes"
                raise AssertionError("closed while active")
            except socket.timeout:
                pass
            c.settimeout(TIMEOUT)


def test_max_conns_turns_the_next_client_away(relay, pyserver):
    srv = pyserver(echo_handler)
    r = relay("--max-conns", "1", "127.0.0.1:0", target(srv.port))
    with r.connect() as first:
        first.sendall(b"a")
        assert recv_until(first, lambda d: d == b"a") == b"a"
        with r.connect() as second:
            assert closed_or_reset(second)[0] == b""
        r.log(r"rejected 127.0.0.1:\d+ .*too many connections")
        first.sendall(b"b")
        assert recv_until(first, lambda d: d == b"b") == b"b"


def test_log_format_json(relay, pyserver):
    srv = pyserver(echo_handler)
    r = relay("--log-format", "json", "127.0.0.1:0", target(srv.port))
    with r.connect() as c:
        c.sendall(b"abc")
        assert recv_until(c, lambda d: d == b"abc") == b"abc"
    rec = json.loads(r.log(r'^\{.*"event":"relay"').string)
    assert rec["target"] == target(srv.port)
    assert (rec["bytes_up"], rec["bytes_down"]) == (3, 3)
    assert rec["first"] == "client" and rec["reason"] == "done"
    assert rec["spliced"] is True


def test_log_format_logfmt_and_quiet(relay, pyserver):
    srv = pyserver(echo_handler)
    r = relay("--log-format", "logfmt", "127.0.0.1:0", target(srv.port))
    with r.connect() as c:
        c.sendall(b"abc")
        recv_until(c, lambda d: d == b"abc")
    m = r.log(r"^ts=\S+ event=relay peer=\S+ target=(\S+) duration_ms=\d+ "
              r"bytes_up=3 bytes_down=3 first=client spliced=true "
              r'reason="done"$')
    assert m.group(1) == target(srv.port)
    q = relay("-q", "127.0.0.1:0", target(srv.port))
    with q.connect() as c:
        c.sendall(b"abc")
        recv_until(c, lambda d: d == b"abc")
    assert q.stop() == 0
    assert "relay 127.0.0.1" not in q.err.text()


def test_sigterm_lets_a_relay_in_flight_finish(relay, pyserver):
    srv = pyserver(echo_handler)
    r = relay("127.0.0.1:0", target(srv.port))
    with r.connect() as c:
        c.sendall(b"before")
        recv_until(c, lambda d: d == b"before")
        r.proc.terminate()
        c.sendall(b"after the signal")
        assert recv_until(c, lambda d: d == b"after the signal") == \
            b"after the signal"
    assert r.proc.wait(TIMEOUT) == 0
    assert r.stop() == 0
    assert "stopped (SIGTERM)" in r.err.text()


def usage(args, msg):
    p = run(["relay"] + args)
    assert p.returncode == 64, p.stderr
    err = p.stderr.decode()
    assert msg in err, err
    assert err.count("\n") == 1 and err.startswith("tcpkit: relay: ")


def test_usage_errors():
    usage([], "LISTEN and TARGET are missing")
    usage(["127.0.0.1:0"], "TARGET is missing")
    usage(["127.0.0.1:x", "127.0.0.1:1"], "LISTEN '127.0.0.1:x'")
    usage(["127.0.0.1:0", "127.0.0.1"], "TARGET '127.0.0.1'")
    usage(["127.0.0.1:0", "127.0.0.1:0"], "TARGET '127.0.0.1:0'")
    # A program TARGET is test_relay_exec.py's; an empty one is refused.
    usage(["127.0.0.1:0", "exec:"], "TARGET 'exec:': exec: missing command")
    usage(["--balance", "127.0.0.1:0", "127.0.0.1:1"],
          "--balance needs two TARGETs or more")
    usage(["--cacert", "x", "127.0.0.1:0", "127.0.0.1:1"],
          "--cacert needs a tls:// TARGET")
    usage(["--cert", "x", "127.0.0.1:0", "127.0.0.1:1"],
          "--cert needs a tls:// LISTEN")
    usage(["--connect-timeout", "0", "127.0.0.1:0", "127.0.0.1:1"], "--connect-timeout")
    usage(["-i", "soon", "127.0.0.1:0", "127.0.0.1:1"], "-i/--idle-timeout")
    usage(["-w", "0", "127.0.0.1:0", "127.0.0.1:1"], "-w/--workers")
    usage(["--max-conns", "0", "127.0.0.1:0", "127.0.0.1:1"], "--max-conns")
    usage(["--log-format", "xml", "127.0.0.1:0", "127.0.0.1:1"],
          "--log-format is text, logfmt or json")
    usage(["--bal", "127.0.0.1:0", "127.0.0.1:1", "127.0.0.1:2"], "--bal")


def test_help():
    p = run(["relay", "--help"])
    assert p.returncode == 0
    assert p.stdout.startswith(b"usage: tcpkit relay [OPTIONS] LISTEN TARGET")


def test_drain_deadline_resets_a_relay_still_open(relay, pyserver):
    """The negative twin of the SIGTERM test: a relay still open at the
    --drain-timeout deadline is closed, and the process exits 0."""
    srv = pyserver(echo_handler)
    r = relay("--drain-timeout", "300ms", "127.0.0.1:0", target(srv.port))
    with r.connect() as c:
        c.sendall(b"x")
        recv_until(c, lambda d: d == b"x")
        r.proc.terminate()
        data, how = closed_or_reset(c)
        assert data == b""
    assert r.proc.wait(TIMEOUT) == 0
    assert r.stop() == 0
    assert "drain deadline: closing 1 relay still open" in r.err.text()


def test_client_gone_while_the_target_connects(relay, blackhole):
    """A client that resets while its target's connect is in progress is
    logged, and the connect is given up (no late relay to nobody)."""
    r = relay("--connect-timeout", "5s", "127.0.0.1:0", target(blackhole))
    c = r.connect()
    c.sendall(b"early bytes")
    reset(c)
    m = r.log(r"^relay 127.0.0.1:\d+: closed before relaying \((.*)\)$")
    assert "reset" in m.group(1) and target(blackhole) in m.group(1)
    # The relay is still serving.
    assert r.proc.poll() is None
