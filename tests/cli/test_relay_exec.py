"""tcpkit relay to a program (exec:PROG ARGS, sh:COMMAND: socat's
TCP-LISTEN,fork SYSTEM/EXEC) and relay --proxy (TCP targets through a
SOCKS5 proxy, a Python fake with and without username/password)."""
import os
import re
import signal
import socket
import ssl
import subprocess

import pytest

from clienthelpers import usage
from proxyhelpers import FakeProxy, pipe, recv_exact, socks5_handler
from relayhelpers import (FAILED_RE, TIMEOUT, Relay, closed_or_reset,
                          echo_handler, relay, target)  # noqa: F401
from tkhelpers import need, recv_all, recv_until, run

# "PEER: pid N exit S after D", listen --exec's line.
EXIT_RE = r"^127\.0\.0\.1:(\d+): pid (\d+) (exit \d+|killed by .*) after \S+$"


@pytest.fixture
def proxies():
    started = []

    def keep(p):
        started.append(p)
        return p

    yield keep
    for p in started:
        p.close()


def talk(r, data):
    """Send data, half-close, read until the program's EOF."""
    with r.connect() as c:
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
        return recv_all(c, timeout=TIMEOUT)


def wait_exits(r, n):
    """The matches of the first n exit lines, waited for one by one."""
    found, start = [], 0
    for _ in range(n):
        m = r.log(EXIT_RE, start=start)
        found.append(m)
        with r.err.cond:
            start = next(i for i, ln in enumerate(r.err.lines)
                         if i >= start and re.search(EXIT_RE, ln)) + 1
    return found


def children(pid):
    """The PIDs whose parent is pid (from /proc), zombies included, with
    their state letter."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            out[int(d)] = fields[0]
    return out


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_sh_cat_echoes_and_the_exit_is_logged(relay):
    r = relay("127.0.0.1:0", "sh:cat")
    assert talk(r, b"hello through a program\n") == \
        b"hello through a program\n"
    m = r.log(EXIT_RE)
    assert m.group(3) == "exit 0"


def test_exit_status_and_exec_arguments(relay):
    """exec: splits like a shell's words, no shell; the status is logged."""
    r = relay("127.0.0.1:0", "exec:printf '%s|%s' one 'two three'")
    assert talk(r, b"") == b"one|two three"
    assert r.log(EXIT_RE).group(3) == "exit 0"
    r2 = relay("127.0.0.1:0", "sh:echo bye; exit 3")
    assert talk(r2, b"") == b"bye\n"
    assert r2.log(EXIT_RE).group(3) == "exit 3"


def test_two_clients_at_once_each_its_own_child(relay):
    r = relay("127.0.0.1:0", "sh:echo $$; exec cat")
    a, b = r.connect(), r.connect()
    with a, b:
        pa = recv_until(a, lambda d: d.endswith(b"\n"))
        pb = recv_until(b, lambda d: d.endswith(b"\n"))
        assert pa != pb
        # Both programs run at once: each answers its own client.
        b.sendall(b"to b\n")
        a.sendall(b"to a\n")
        assert recv_until(a, lambda d: d.endswith(b"\n")) == b"to a\n"
        assert recv_until(b, lambda d: d.endswith(b"\n")) == b"to b\n"
        assert {int(pa), int(pb)} <= set(children(r.proc.pid))
    pids = {m.group(2) for m in wait_exits(r, 2)}
    assert pids == {pa.strip().decode(), pb.strip().decode()}
    assert children(r.proc.pid) == {}


def test_environment(relay):
    r = relay("127.0.0.1:0", "sh:echo $TCPKIT_PEER_ADDR $TCPKIT_PEER_PORT "
              "$TCPKIT_LOCAL_ADDR $TCPKIT_LOCAL_PORT")
    with r.connect() as c:
        me = c.getsockname()
        c.shutdown(socket.SHUT_WR)
        got = recv_all(c, timeout=TIMEOUT)
    assert got == ("127.0.0.1 %d 127.0.0.1 %d\n"
                   % (me[1], r.port)).encode()


def test_no_zombie_after_the_children_end(relay):
    r = relay("127.0.0.1:0", "sh:cat")
    for i in range(3):
        assert talk(r, b"%d\n" % i) == b"%d\n" % i
    # Each exit line is a child reaped: none is left, zombie or not.
    assert [m.group(3) for m in wait_exits(r, 3)] == ["exit 0"] * 3
    assert children(r.proc.pid) == {}


def test_sigterm_stops_the_children(relay):
    r = relay("127.0.0.1:0", "sh:echo $$; exec cat")
    c = r.connect()
    with c:
        pid = int(recv_until(c, lambda d: d.endswith(b"\n")))
        assert alive(pid)
        assert r.stop() == 0
        # The program got SIGTERM and was reaped: its client sees EOF.
        assert recv_all(c, timeout=TIMEOUT) == b""
    assert not alive(pid)
    assert re.search(r"^stopping 1 program still running \(SIGTERM\)$",
                     r.err.text(), re.M)


def test_max_conns_bounds_the_children(relay):
    r = relay("--max-conns", "1", "127.0.0.1:0", "sh:echo $$; exec cat")
    a = r.connect()
    with a:
        recv_until(a, lambda d: d.endswith(b"\n"))
        b = r.connect()
        with b:
            b.sendall(b"waiting\n")
            b.settimeout(0.5)
            with pytest.raises(socket.timeout):
                b.recv(100)  # no program for b while a's runs
            assert len(children(r.proc.pid)) == 1
            a.shutdown(socket.SHUT_WR)
            assert recv_all(a, timeout=TIMEOUT) == b""
            b.settimeout(TIMEOUT)
            got = recv_until(b, lambda d: d.count(b"\n") >= 2)
            assert got.split(b"\n")[1] == b"waiting"


def test_max_conns_negative_twin(relay):
    """Without --max-conns the second client is served at once."""
    r = relay("127.0.0.1:0", "sh:echo $$; exec cat")
    a, b = r.connect(), r.connect()
    with a, b:
        recv_until(a, lambda d: d.endswith(b"\n"))
        b.sendall(b"now\n")
        got = recv_until(b, lambda d: d.count(b"\n") >= 2)
        assert got.split(b"\n")[1] == b"now"


def test_tls_listen_with_a_program(relay):
    r = relay("tls://127.0.0.1:0", "sh:cat")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the relay's ephemeral certificate
    raw = socket.create_connection(("127.0.0.1", r.port), timeout=TIMEOUT)
    with ctx.wrap_socket(raw) as c:
        c.sendall(b"over tls\n")
        assert recv_until(c, lambda d: d.endswith(b"\n")) == b"over tls\n"
    assert r.log(EXIT_RE).group(3) == "exit 0"


def test_nc_as_the_client(relay):
    need("nc")
    r = relay("127.0.0.1:0", "exec:tr a-z A-Z")
    p = subprocess.run(["nc", "-N", "127.0.0.1", str(r.port)],
                       input=b"shout\n", capture_output=True,
                       timeout=TIMEOUT)
    assert p.stdout == b"SHOUT\n"


def test_socat_as_the_client(relay):
    need("socat")
    r = relay("127.0.0.1:0", "sh:wc -c")
    p = subprocess.run(["socat", "-", "TCP:127.0.0.1:%d" % r.port],
                       input=b"12345", capture_output=True, timeout=TIMEOUT)
    assert p.stdout.strip() == b"5"


@pytest.mark.parametrize("args,msg", [
    (["-w", "2", "127.0.0.1:0", "sh:cat"],
     "-w/--workers 2: an exec: or sh: TARGET runs on one loop (-w 1)"),
    (["-x", "-", "127.0.0.1:0", "sh:cat"],
     "-x and an exec: or sh: TARGET exclude each other (the program has "
     "the socket: its bytes never pass through tcpkit)"),
    (["127.0.0.1:0", "sh:cat", "127.0.0.1:9"],
     "an exec: or sh: TARGET is the only TARGET ('127.0.0.1:9' too)"),
    (["127.0.0.1:0", "sh:cat", "exec:cat"],
     "an exec: or sh: TARGET is the only TARGET (one program per client)"),
    (["--balance", "127.0.0.1:0", "sh:cat"],
     "--balance needs TCP, TLS or UNIX TARGETs, not a program"),
    (["--proxy", "socks5://127.0.0.1:9", "127.0.0.1:0", "sh:cat"],
     "--proxy is for TCP and TLS TARGETs, not a program"),
    (["--proxy", "socks5://127.0.0.1:9", "127.0.0.1:0", "unix:/tmp/x.sock"],
     "--proxy is for TCP and TLS TARGETs, not UNIX sockets "
     "('unix:/tmp/x.sock')"),
    (["--proxy", "ftp://127.0.0.1:9", "127.0.0.1:0", "127.0.0.1:9"], None),
])
def test_usage_errors(args, msg):
    p = run(["relay"] + args)
    assert p.returncode == 64
    if msg is not None:
        assert p.stderr == usage(msg, "relay")
    else:
        assert p.stderr.startswith(b"tcpkit: relay: --proxy: ")


def test_usage_twins_start():
    """-w 1 with a program, and --proxy to a TCP TARGET, are accepted."""
    for args in (["-w", "1", "127.0.0.1:0", "sh:cat"],
                 ["--proxy", "socks5://127.0.0.1:9", "127.0.0.1:0",
                  "127.0.0.1:9"]):
        r = Relay(*args, workers=False)
        assert r.stop() == 0


def test_program_not_found():
    p = run(["relay", "127.0.0.1:0", "exec:no-such-program-here -v"])
    assert p.returncode == 66
    assert p.stderr == (b"tcpkit: relay exec:no-such-program-here -v: "
                        b"no-such-program-here: program not found in PATH\n")


# --proxy


def socks5_auth_handler(user, password):
    """A SOCKS5 server that wants username/password (RFC 1929)."""
    def handler(c, fp):
        head = recv_exact(c, 2)
        methods = recv_exact(c, head[1])
        assert 2 in methods, methods
        c.sendall(b"\5\2")
        ver = recv_exact(c, 2)
        u = recv_exact(c, ver[1])
        p = recv_exact(c, recv_exact(c, 1)[0])
        fp.seen.append((u.decode(), p.decode()))
        if (u.decode(), p.decode()) != (user, password):
            c.sendall(b"\1\1")
            return
        c.sendall(b"\1\0")
        req = recv_exact(c, 4)
        assert req[3] == 1, req
        host = socket.inet_ntoa(recv_exact(c, 4))
        port = int.from_bytes(recv_exact(c, 2), "big")
        t = socket.create_connection((host, port), timeout=TIMEOUT)
        with t:
            c.sendall(b"\5\0\0\1\0\0\0\0\0\0")
            pipe(c, t)
    return handler


def test_proxy_socks5(relay, pyserver, proxies):
    echo = pyserver(echo_handler)
    fp = proxies(FakeProxy(socks5_handler))
    r = relay("--proxy", "socks5://127.0.0.1:%d" % fp.port, "127.0.0.1:0",
              target(echo.port))
    assert talk(r, b"via socks\n") == b"via socks\n"
    r.log(r"^relay 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:%d via "
          r"socks5://127\.0\.0\.1:%d after \S+: 10 bytes up, 10 bytes "
          r"down, client closed first \(done\)$" % (echo.port, fp.port))
    assert fp.seen == [(1, "127.0.0.1", echo.port)]


def test_proxy_socks5_password(relay, pyserver, proxies):
    echo = pyserver(echo_handler)
    fp = proxies(FakeProxy(socks5_auth_handler("ann", "pw1")))
    r = relay("--proxy", "socks5://ann:pw1@127.0.0.1:%d" % fp.port,
              "127.0.0.1:0", target(echo.port))
    assert talk(r, b"with a password\n") == b"with a password\n"
    assert fp.seen == [("ann", "pw1")]
    # ps shows no password.
    with open("/proc/%d/cmdline" % r.proc.pid, "rb") as f:
        assert b"pw1" not in f.read()


def test_proxy_socks5_wrong_password(relay, pyserver, proxies):
    echo = pyserver(echo_handler)
    fp = proxies(FakeProxy(socks5_auth_handler("ann", "pw1")))
    r = relay("--proxy", "socks5://ann:nope@127.0.0.1:%d" % fp.port,
              "127.0.0.1:0", target(echo.port))
    with r.connect() as c:
        c.sendall(b"never relayed\n")
        assert closed_or_reset(c)[0] == b""
    m = r.log(FAILED_RE)
    assert m.group(2) == (
        "127.0.0.1:%d via socks5://ann@127.0.0.1:%d: proxy authentication "
        "failed (the SOCKS5 proxy refused user 'ann' (status 1))"
        % (echo.port, fp.port))
    assert fp.seen == [("ann", "nope")]
    assert r.proc.poll() is None  # the relay goes on
    assert r.stop() == 0
    assert "nope" not in r.err.text()


def tls_echo(certs):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs["srv"], certs["srv_key"])

    def handler(conn, srv):
        with ctx.wrap_socket(conn, server_side=True) as t:
            data = recv_until(t, lambda d: d.endswith(b"\n"))
            t.sendall(b"tls: " + data)
    return handler


@pytest.mark.parametrize("ca,ok", [("ca", True), ("ca2", False)])
def test_proxy_to_a_tls_target(relay, pyserver, proxies, certs, ca, ok):
    """TLS to the TARGET runs through the tunnel and is verified; its twin
    trusts another CA and relays nothing."""
    t = pyserver(tls_echo(certs))
    fp = proxies(FakeProxy(socks5_handler))
    r = relay("--proxy", "socks5://127.0.0.1:%d" % fp.port, "--cacert",
              certs[ca], "127.0.0.1:0", "tls://127.0.0.1:%d" % t.port)
    with r.connect() as c:
        c.sendall(b"hi\n")
        got = closed_or_reset(c)[0] if not ok else \
            recv_until(c, lambda d: d.endswith(b"\n"))
    assert fp.seen == [(1, "127.0.0.1", t.port)]
    if ok:
        assert got == b"tls: hi\n"
    else:
        assert got == b""
        m = r.log(FAILED_RE)
        assert m.group(2).startswith(
            "tls://127.0.0.1:%d via socks5://127.0.0.1:%d: " % (t.port,
                                                                fp.port))
