"""tcpkit relay with TLS on either side, with nc and socat as client and
target, and 1 GiB through a chain of two relays checked by SHA-256."""
import hashlib
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time

from relayhelpers import (FAILED_RE, TIMEOUT, closed_or_reset, echo_handler,
                          relay, target)  # noqa: F401
from tlshelpers import cert_fp
from tkhelpers import (ROOT, TCPKIT, LineReader, LISTEN_RE, need, recv_all,
                       recv_until, run)


def tls_client(port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def test_tls_termination(relay, pyserver, certs):
    got = []

    def handler(conn, srv):
        got.append(recv_until(conn, lambda d: len(d) >= 14))
        conn.sendall(b"plain answer")

    srv = pyserver(handler)
    r = relay("--cert", certs["srv"], "--key", certs["srv_key"],
              "tls://127.0.0.1:0", target(srv.port))
    with tls_client(r.port, certs["ca"]) as c:
        assert c.version() in ("TLSv1.2", "TLSv1.3")
        c.sendall(b"secret request")
        # The target's close becomes the relay's close_notify: a clean EOF.
        assert recv_all(c) == b"plain answer"
    srv.wait_handlers()
    assert got == [b"secret request"]
    m = r.log()
    assert (m.group(3), m.group(4), m.group(5)) == ("14", "12", "target")


def test_tls_termination_negative_twin(relay, pyserver, certs):
    """A plain client of a tls:// LISTEN relays nothing: the handshake
    fails, is logged, and the target is never connected."""
    conns = []

    def handler(conn, srv):
        conns.append(conn)

    srv = pyserver(handler)
    r = relay("--cert", certs["srv"], "--key", certs["srv_key"],
              "tls://127.0.0.1:0", target(srv.port))
    with socket.create_connection(("127.0.0.1", r.port), timeout=TIMEOUT) as c:
        c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data, _ = closed_or_reset(c)
    assert b"GET" not in data
    r.log(r"^relay 127.0.0.1:\d+: closed before relaying \(.*\)$")
    assert conns == [], "the target was connected"


def tls_echo(serve, certs, cert="srv"):
    return serve("--tls", "--cert", certs[cert], "--key", certs[cert + "_key"],
                 "-w", "1", "-H", "127.0.0.1")


def test_tls_origination_verified(relay, serve, certs):
    srv = tls_echo(serve, certs)
    r = relay("--cacert", certs["ca"], "127.0.0.1:0",
              "tls://127.0.0.1:%d" % srv.port)
    with r.connect() as c:
        c.sendall(b"over TLS to the target")
        assert recv_until(c, lambda d: len(d) == 22) == \
            b"over TLS to the target"
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b""
    m = r.log()
    assert m.group(2) == "tls://127.0.0.1:%d" % srv.port
    assert m.group(6) == "done"


def test_tls_origination_wrong_ca_closes_the_client(relay, serve, certs):
    """The negative twin: a target whose certificate the CA given does not
    vouch for is never relayed to; the client is closed, the reason
    logged."""
    srv = tls_echo(serve, certs)
    r = relay("--cacert", certs["ca2"], "127.0.0.1:0",
              "tls://127.0.0.1:%d" % srv.port)
    with r.connect() as c:
        c.sendall(b"must not arrive")
        data, _ = closed_or_reset(c)
    assert data == b""
    why = r.log(FAILED_RE).group(2)
    assert "untrusted issuer" in why, why


def test_tls_both_sides(relay, serve, certs):
    """TLS both ways: the bytes are copied through the connections'
    buffers (a TLS side cannot be spliced), and the log says so."""
    srv = tls_echo(serve, certs)
    r = relay("--log-format", "json", "--cert", certs["srv"], "--key",
              certs["srv_key"], "--cacert", certs["ca"], "tls://127.0.0.1:0",
              "tls://127.0.0.1:%d" % srv.port)
    with tls_client(r.port, certs["ca"]) as c:
        c.sendall(b"x" * 100000)
        assert recv_until(c, lambda d: len(d) == 100000) == b"x" * 100000
    rec = json.loads(r.log(r'^\{.*"event":"relay"').string)
    assert rec["bytes_up"] == 100000 and rec["spliced"] is False


def test_target_by_name(relay, pyserver):
    """A TARGET named, not numeric: resolved for each client (localhost's
    ::1 refused, 127.0.0.1 taken, Happy Eyeballs)."""
    srv = pyserver(echo_handler)
    r = relay("127.0.0.1:0", "localhost:%d" % srv.port)
    for _ in range(2):
        with r.connect() as c:
            c.sendall(b"by name")
            assert recv_until(c, lambda d: d == b"by name") == b"by name"
    assert r.log().group(2) == "localhost:%d" % srv.port


def test_socat_client_and_nc_target(relay, proc):
    need("socat")
    need("nc")
    # nc -l names its port 0's real port only with -v.
    nc = proc(["nc", "-l", "-v", "-N", "127.0.0.1", "0"])
    port = int(nc.err.wait_for(r"^Listening on \S+ (\d+)$").group(1))
    r = relay("127.0.0.1:0", target(port))
    nc.send(b"from nc\n")
    nc.close_stdin()
    p = subprocess.run(["socat", "-t", "5", "-", "TCP:127.0.0.1:%d" % r.port],
                       input=b"from socat\n", capture_output=True,
                       timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"from nc\n"
    assert nc.wait(TIMEOUT) == 0
    assert nc.out.text() == "from socat"
    assert r.log().group(6) == "done"


def test_nc_client_and_socat_target(relay):
    need("socat")
    need("nc")
    sc = subprocess.Popen(["socat", "-d", "-d", "TCP-LISTEN:0,bind=127.0.0.1",
                           "EXEC:tr a-z A-Z"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    try:
        err = LineReader(sc.stderr)
        m = err.wait_for(r"listening on .*:(\d+)$", timeout=TIMEOUT)
        r = relay("127.0.0.1:0", target(int(m.group(1))))
        p = subprocess.run(["nc", "-N", "127.0.0.1", str(r.port)],
                           input=b"shout this\n", capture_output=True,
                           timeout=TIMEOUT)
        assert p.stdout == b"SHOUT THIS\n"
        assert r.log().group(6) == "done"
    finally:
        sc.kill()
        sc.wait()


GIB = 1 << 30
BLOCK = 1 << 20


def test_one_gib_through_two_relays_checked_by_sha256(relay, pyserver):
    """Client -> relay -> relay -> sink: the sink hashes what it gets until
    EOF and answers with the digest (half-close both ways on the way)."""
    def sink(conn, srv):
        h = hashlib.sha256()
        buf = bytearray(1 << 20)
        while True:
            n = conn.recv_into(buf)
            if n == 0:
                break
            h.update(memoryview(buf)[:n])
        conn.sendall(h.hexdigest().encode())

    srv = pyserver(sink)
    far = relay("127.0.0.1:0", target(srv.port))
    near = relay("127.0.0.1:0", target(far.port))
    base = bytearray(os.urandom(BLOCK))
    sent = hashlib.sha256()
    start = time.monotonic()
    with near.connect() as c:
        c.settimeout(60)
        for i in range(GIB // BLOCK):
            base[:8] = i.to_bytes(8, "little")
            sent.update(base)
            c.sendall(base)
            assert time.monotonic() - start < 120, "1 GiB took over 120 s"
        c.shutdown(socket.SHUT_WR)
        digest = recv_all(c, timeout=60)
    assert digest == sent.hexdigest().encode()
    for r in (near, far):
        m = r.log()
        assert int(m.group(3)) == GIB and int(m.group(4)) == 64


def test_relay_listening_on_every_address(relay, pyserver):
    """":PORT" listens on every address (dual-stack where IPv6 is)."""
    srv = pyserver(echo_handler)
    r = relay(":0", target(srv.port))
    assert r.host in ("::", "0.0.0.0")
    with r.connect() as c:
        c.sendall(b"any")
        assert recv_until(c, lambda d: d == b"any") == b"any"


def test_relay_bare_port_listens_on_loopback(relay, pyserver):
    """A bare PORT is loopback, as for serve and listen: every address
    only when asked for (":PORT")."""
    srv = pyserver(echo_handler)
    r = relay("0", target(srv.port))
    assert r.host in ("127.0.0.1", "::1")
    with r.connect() as c:
        c.sendall(b"lo")
        assert recv_until(c, lambda d: d == b"lo") == b"lo"


def test_two_workers(relay, pyserver):
    srv = pyserver(echo_handler)
    r = relay("-w", "2", "127.0.0.1:0", target(srv.port), workers=False)
    socks = [r.connect() for _ in range(8)]
    done = []

    def talk(s, i):
        s.sendall(b"w%d" % i)
        done.append(recv_until(s, lambda d: d == b"w%d" % i) == b"w%d" % i)
        s.close()

    ts = [threading.Thread(target=talk, args=(s, i))
          for i, s in enumerate(socks)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(TIMEOUT)
    assert done == [True] * 8
    assert LISTEN_RE.search("listening on 127.0.0.1:%d" % r.port)


def test_tcp_to_a_unix_target(relay, serve, tmp_path):
    """tcpkit relay :PORT unix:/path, to serve echo on a UNIX socket; the
    pair is spliced (plain sockets both)."""
    sock = str(tmp_path / "app.sock")
    serve("-H", "unix:" + sock, "-w", "1")
    r = relay("--log-format", "json", "127.0.0.1:0", "unix:" + sock)
    with r.connect() as c:
        c.sendall(b"to a UNIX socket")
        assert recv_until(c, lambda d: len(d) == 16) == b"to a UNIX socket"
    rec = json.loads(r.log(r'^\{.*"event":"relay"').string)
    assert rec["target"] == "unix:" + sock
    assert rec["spliced"] is True and rec["bytes_down"] == 16


def test_unix_listen_to_tcp(relay, pyserver, tmp_path):
    srv = pyserver(echo_handler)
    sock = str(tmp_path / "relay.sock")
    r = relay("unix:" + sock, target(srv.port))
    assert r.unix == sock
    with r.connect() as c:
        c.sendall(b"from UNIX to TCP")
        assert recv_until(c, lambda d: len(d) == 16) == b"from UNIX to TCP"
    assert r.stop() == 0
    assert not os.path.exists(sock), "the socket file outlived the relay"


def test_unix_target_missing_closes_the_client(relay, tmp_path):
    """The negative twin: no socket at the path, the client is closed and
    the reason logged."""
    sock = str(tmp_path / "nobody.sock")
    r = relay("127.0.0.1:0", "unix:" + sock)
    with r.connect() as c:
        assert closed_or_reset(c)[0] == b""
    why = r.log(FAILED_RE).group(2)
    assert sock in why and "no such file" in why.lower(), why


def test_unix_listen_in_use_is_refused(relay, pyserver, tmp_path):
    srv = pyserver(echo_handler)
    sock = str(tmp_path / "busy.sock")
    relay("unix:" + sock, target(srv.port))
    p = run(["relay", "unix:" + sock, target(srv.port)], timeout=TIMEOUT)
    assert p.returncode == 1
    assert p.stderr.decode() == "tcpkit: listen unix:%s: in use: a server " \
        "is listening on this socket\n" % sock


def test_relay_bench_smoke():
    """bench/relay.py runs end to end (one short repetition, tcpkit only):
    the three tables, a number in each."""
    p = subprocess.run([sys.executable, os.path.join(ROOT, "bench",
                                                     "relay.py"),
                        "--tcpkit", TCPKIT, "--reps", "1", "-t", "0.2",
                        "--relays", "tcpkit"],
                       capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr[-2000:]
    for scn in ("R1", "R10", "RL"):
        assert "\n%s: " % scn in p.stdout
    assert re.search(r"^\| tcpkit \| \d+ \[\d+-\d+\] \| \d+ \[", p.stdout,
                     re.M), p.stdout
    assert re.search(r"^\| tcpkit \| [\d.]+ \[[\d.]+-[\d.]+\] \| [\d.-]+ \|$",
                     p.stdout, re.M), p.stdout


def test_tls_origination_pin_and_servername(relay, serve, certs):
    """--pin accepts exactly the target's certificate; --servername checks
    the name given, and a wrong one is refused; --insecure checks nothing
    (and warns)."""
    srv = tls_echo(serve, certs, cert="other")  # from ca2, untrusted
    tgt = "tls://127.0.0.1:%d" % srv.port
    fp = cert_fp(certs["other"])
    for args, ok in ((["--pin", "sha256:" + fp], True),
                     (["--pin", "sha256:" + "00" * 32], False),
                     (["--insecure"], True),
                     (["--cacert", certs["ca2"], "--servername", "localhost"],
                      True),
                     (["--cacert", certs["ca2"], "--servername",
                       "wrong.example"], False)):
        r = relay(*args, "127.0.0.1:0", tgt)
        with r.connect() as c:
            c.sendall(b"ping")
            data, _ = closed_or_reset(c) if not ok else (
                recv_until(c, lambda d: d == b"ping"), None)
        assert (data == b"ping") == ok, args
        if not ok:
            r.log(FAILED_RE)
        if "--insecure" in args:
            assert "tcpkit: warning --insecure:" in r.err.text()
        r.stop()


def test_handshake_timeout_closes_a_silent_tls_client(relay, pyserver,
                                                      certs):
    srv = pyserver(echo_handler)
    r = relay("--handshake-timeout", "300ms", "--cert", certs["srv"],
              "--key", certs["srv_key"], "tls://127.0.0.1:0",
              target(srv.port))
    with socket.create_connection(("127.0.0.1", r.port),
                                  timeout=TIMEOUT) as c:
        assert closed_or_reset(c)[0] == b""
    m = r.log(r"^relay 127.0.0.1:\d+: closed before relaying \((.*)\)$")
    assert "handshake timed out" in m.group(1)
