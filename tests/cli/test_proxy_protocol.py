"""The PROXY protocol: serve, listen and relay behind HAProxy (send-proxy,
send-proxy-v2) and behind tcpkit's own --send-proxy; the real client is
the one logged, matched by --deny and given to programs; connections
without a valid header in time, or from an untrusted sender, are closed and
logged; bytes after the header are never lost."""
import json
import socket
import ssl
import struct
import threading
import time

import pytest

from haproxyhelpers import haproxy  # noqa: F401
from relayhelpers import closed_or_reset, relay  # noqa: F401
from listenhelpers import listen, recv_all  # noqa: F401
from tkhelpers import recv_until, run

TIMEOUT = 15
FROM = ("--proxy-protocol-from", "127.0.0.1")
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"

ONE_SERVER = """frontend fe
    bind fd@{fd}
    default_backend be
backend be
    server s1 127.0.0.1:{port} {how}
"""


def v1(src, sport, dst="127.0.0.1", dport=80):  # port-ok: a header field
    return b"PROXY TCP4 %s %s %d %d\r\n" % (src.encode(), dst.encode(),
                                            sport, dport)


def v2(src, sport, dst="127.0.0.1", dport=80):  # port-ok: a header field
    body = socket.inet_aton(src) + socket.inet_aton(dst) + \
        struct.pack(">HH", sport, dport)
    return V2_SIG + b"\x21\x11" + struct.pack(">H", len(body)) + body


def echo(sock, data):
    sock.sendall(data)
    return recv_until(sock, lambda d: len(d) >= len(data), TIMEOUT)


def ended(sock):
    """What the server sent before it ended the connection (never an
    echo), and how it ended."""
    return closed_or_reset(sock)


@pytest.mark.parametrize("how", ["send-proxy", "send-proxy-v2"])
def test_haproxy_in_front_real_client_logged(serve, haproxy, how):
    srv = serve("echo", "-H", "127.0.0.1", *FROM)
    h = haproxy(ONE_SERVER, port=srv.port, how=how)
    with h.connect() as c:
        me = "%s:%d" % c.getsockname()
        assert echo(c, b"through haproxy\n") == b"through haproxy\n"
    # The client's own port, not the one HAProxy connected from.
    srv.err.wait_for(r"^connection from %s at " % me, TIMEOUT)
    srv.err.wait_for(r"^closed %s at .*\(done\)$" % me, TIMEOUT)
    assert "refused" not in srv.err.text()


def test_deny_matches_the_real_client(serve, haproxy):
    # HAProxy connects from 127.0.0.1 (allowed); the client it names from
    # 127.0.0.5 is the one --deny refuses.
    srv = serve("echo", "-H", "127.0.0.1", *FROM, "--deny", "127.0.0.5")
    h = haproxy(ONE_SERVER, port=srv.port, how="send-proxy-v2")
    with h.connect(source="127.0.0.5") as bad:
        who = "%s:%d" % bad.getsockname()
        bad.sendall(b"let me in\n")
        assert ended(bad)[0] == b""
    srv.err.wait_for(r"^denied %s at " % who, TIMEOUT)
    with h.connect() as good:
        assert echo(good, b"ok\n") == b"ok\n"
    assert srv.stop() == 0
    assert "denied 127.0.0.1" not in srv.err.text()


def test_no_header_untrusted_and_garbage_are_refused(serve):
    # --stats-interval: the totals at exit too, with the refusals counted.
    srv = serve("echo", "-H", "127.0.0.1", *FROM, "--stats-interval", "10m")
    cases = [
        # No header at all: a client that speaks first.
        ("127.0.0.1", b"hello\n", "no valid PROXY protocol header"),
        # A header from someone not in --proxy-protocol-from.
        ("127.0.0.2", v1("192.0.2.1", 1000) + b"hello\n",  # addr-ok: in a header only
         r"not in --proxy-protocol-from"),
        # A malformed one: a port out of range.
        ("127.0.0.1", b"PROXY TCP4 192.0.2.1 127.0.0.1 99999 80\r\nhi\n",  # addr-ok: in a header only
         "no valid PROXY protocol header"),
        # v2 with a length too short for its addresses.
        ("127.0.0.1", V2_SIG + b"\x21\x11\x00\x04abcdhi\n",
         "no valid PROXY protocol header"),
    ]
    for source, data, why in cases:
        s = socket.socket()
        s.settimeout(TIMEOUT)
        s.bind((source, 0))
        s.connect(("127.0.0.1", srv.port))
        who = "%s:%d" % s.getsockname()
        s.sendall(data)
        assert ended(s)[0] == b""  # nothing echoed
        s.close()
        srv.err.wait_for(r"^refused %s at \[.*\]: %s" % (who, why), TIMEOUT)
    assert "connection from" not in srv.err.text()
    assert srv.stop() == 0
    srv.err.wait_for(r"^stats exit .*; proxy-protocol refused 4$", TIMEOUT)


@pytest.mark.parametrize("make", [v1, v2], ids=["v1", "v2"])
def test_bytes_after_the_header_are_kept(serve, make):
    srv = serve("echo", "-H", "127.0.0.1", *FROM)
    payload = bytes(range(256)) * 512  # 128 KiB, every byte value
    with socket.create_connection(("127.0.0.1", srv.port),
                                  timeout=TIMEOUT) as s:
        # One segment: the header and the first bytes together.
        s.sendall(make("198.51.100.7", 4242) + payload[:1000])  # addr-ok: in a header only
        s.sendall(payload[1000:])
        got = recv_until(s, lambda d: len(d) >= len(payload), TIMEOUT)
    assert got == payload
    srv.err.wait_for(r"^connection from 198\.51\.100\.7:4242 at ", TIMEOUT)  # addr-ok: in a header only


def test_half_a_header_is_closed_at_the_deadline(serve):
    srv = serve("echo", "-H", "127.0.0.1", *FROM, "--handshake-timeout", "1s")
    with socket.create_connection(("127.0.0.1", srv.port),
                                  timeout=TIMEOUT) as s:
        who = "%s:%d" % s.getsockname()
        t0 = time.monotonic()
        s.sendall(b"PROXY TCP4 192.0.2.1 ")  # addr-ok: in a header only
        assert ended(s)[0] == b""
        took = time.monotonic() - t0
    assert 0.8 <= took < 8, took
    srv.err.wait_for(r"^refused %s at \[.*\]: no PROXY protocol header in "
                     r"time$" % who, TIMEOUT)


def test_header_comes_before_tls(serve):
    # The header is read off the socket first: the TLS handshake that
    # follows it (here in the same segment as the header's end) is TLS's.
    srv = serve("echo", "-H", "127.0.0.1", "--tls", *FROM)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the ephemeral certificate
    with socket.create_connection(("127.0.0.1", srv.port),
                                  timeout=TIMEOUT) as raw:
        raw.sendall(v2("198.51.100.20", 443))  # addr-ok: in a header only
        with ctx.wrap_socket(raw) as s:
            assert echo(s, b"over TLS\n") == b"over TLS\n"
    srv.err.wait_for(r"^connection from 198\.51\.100\.20:443 at ", TIMEOUT)  # addr-ok: in a header only


def test_local_command_keeps_the_balancer_address(serve):
    srv = serve("echo", "-H", "127.0.0.1", *FROM)
    with socket.create_connection(("127.0.0.1", srv.port),
                                  timeout=TIMEOUT) as s:
        me = "%s:%d" % s.getsockname()
        s.sendall(V2_SIG + b"\x20\x00\x00\x00" + b"health?\n")
        assert recv_until(s, lambda d: d.endswith(b"\n"), TIMEOUT) == \
            b"health?\n"
    srv.err.wait_for(r"^connection from %s at " % me, TIMEOUT)


def test_relay_send_proxy_v2_in_front_of_serve(serve, relay):
    srv = serve("echo", "-H", "127.0.0.1", *FROM)
    r = relay("127.0.0.1:0", "127.0.0.1:%d" % srv.port, "--send-proxy", "v2")
    with r.connect() as c:
        me = "%s:%d" % c.getsockname()
        assert echo(c, b"via relay\n") == b"via relay\n"
    srv.err.wait_for(r"^connection from %s at " % me, TIMEOUT)


def test_relay_passes_on_the_real_client(serve, relay):
    # relay accepts a header (its trusted sender: us) and sends the client
    # it names on to serve.
    srv = serve("echo", "-H", "127.0.0.1", *FROM)
    r = relay("127.0.0.1:0", "127.0.0.1:%d" % srv.port, *FROM,
              "--send-proxy", "v1")
    with r.connect() as c:
        c.sendall(v1("203.0.113.9", 31337))  # addr-ok: in a header only
        assert echo(c, b"relayed\n") == b"relayed\n"
    srv.err.wait_for(r"^connection from 203\.0\.113\.9:31337 at ", TIMEOUT)  # addr-ok: in a header only
    r.log(r"^relay 203\.0\.113\.9:31337 -> ")  # addr-ok: in a header only


def test_connect_send_proxy_v1_names_this_connection(pyserver):
    got = {}
    done = threading.Event()

    def handler(conn, srv):
        conn.settimeout(TIMEOUT)
        data = b""
        while not data.endswith(b"payload\n"):
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        got["data"] = data
        got["peer"] = conn.getpeername()
        got["local"] = conn.getsockname()
        done.set()

    srv = pyserver(handler)
    p = run(["connect", "--send-proxy", "v1", "127.0.0.1", str(srv.port)],
            input=b"payload\n", timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert done.wait(TIMEOUT)
    peer, local = got["peer"], got["local"]
    assert got["data"] == b"PROXY TCP4 %s %s %d %d\r\npayload\n" % (
        peer[0].encode(), local[0].encode(), peer[1], local[1])


def test_connect_send_proxy_v2_to_serve(serve):
    srv = serve("echo", "-H", "127.0.0.1", *FROM)
    p = run(["connect", "--send-proxy", "v2", "127.0.0.1", str(srv.port)],
            input=b"echo me\n", timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"echo me\n"  # the header is not echoed: it was read
    srv.err.wait_for(r"^connection from 127\.0\.0\.1:\d+ at ", TIMEOUT)


def test_listen_exec_sees_the_real_client(listen):
    lp = listen(*FROM, "--sh-exec",
                'echo "$TCPKIT_PEER_ADDR $TCPKIT_PEER_PORT"')
    with socket.create_connection(("127.0.0.1", lp.port),
                                  timeout=TIMEOUT) as s:
        s.sendall(v2("192.0.2.44", 5555))  # addr-ok: in a header only
        assert recv_all(s) == b"192.0.2.44 5555\n"  # addr-ok: in a header only
    assert lp.wait() == 0


def test_listen_refuses_an_untrusted_sender(listen):
    lp = listen("-k", "--proxy-protocol-from", "127.0.0.9", "--sh-exec",
                "echo ran")
    s = socket.socket()
    s.settimeout(TIMEOUT)
    s.bind(("127.0.0.1", 0))
    s.connect(("127.0.0.1", lp.port))
    who = "%s:%d" % s.getsockname()
    s.sendall(v1("192.0.2.1", 1))  # addr-ok: in a header only
    assert ended(s)[0] == b""
    s.close()
    lp.err.wait_for(r"^refused %s: not in --proxy-protocol-from" % who)


@pytest.mark.parametrize("cmd", [
    ["serve", "echo", "-p", "0"],
    ["listen", "127.0.0.1", "0"],
    ["relay", "127.0.0.1:0", "127.0.0.1:9"],  # port-ok: usage error
])
def test_proxy_protocol_needs_a_trusted_sender(cmd):
    p = run(cmd[:1] + ["--proxy-protocol"] + cmd[1:])
    assert p.returncode == 64
    assert p.stderr.decode().splitlines() == [
        "tcpkit: %s: --proxy-protocol needs --proxy-protocol-from CIDR: "
        "whose headers to believe must be said (see 'tcpkit help %s')"
        % (cmd[0], cmd[0])]


def test_bad_options():
    p = run(["serve", "--proxy-protocol-from", "10.0.0.0/33", "-p", "0"])  # addr-ok: parse
    assert p.returncode == 64 and b"--proxy-protocol-from" in p.stderr
    p = run(["connect", "--send-proxy", "v3", "127.0.0.1", "9"])  # port-ok: usage error
    assert p.returncode == 64 and b"--send-proxy 'v3': v1 or v2" in p.stderr
    p = run(["send", "--send-proxy", "v1", "127.0.0.1", "9", "x"])  # port-ok: usage error
    assert p.returncode == 64
    p = run(["relay", "--send-proxy", "v1", "127.0.0.1:0", "sh:cat"])
    assert p.returncode == 64 and b"not a program" in p.stderr


def test_refusals_in_json_records(serve):
    srv = serve("echo", "-H", "127.0.0.1", *FROM, "--log-format", "json")
    with socket.create_connection(("127.0.0.1", srv.port),
                                  timeout=TIMEOUT) as s:
        who = "%s:%d" % s.getsockname()
        s.sendall(b"no header\r\n")
        assert ended(s)[0] == b""
    m = srv.err.wait_for(r'"event":"pp_refuse"', TIMEOUT)
    rec = json.loads(m.string)
    assert rec["peer"] == who
    assert rec["reason"] == "no valid PROXY protocol header"
    assert srv.stop() == 0
    m = srv.err.wait_for(r'"event":"stats"', TIMEOUT)
    assert json.loads(m.string)["pp_refused"] == 1


@pytest.mark.parametrize("arg", [",", ",,", " "])
def test_proxy_protocol_from_without_a_cidr_is_refused(arg):
    # A list with no CIDR in it must not leave every sender trusted.
    p = run(["serve", "echo", "-p", "0", "--proxy-protocol-from", arg])
    assert p.returncode == 64
    assert b"--proxy-protocol-from" in p.stderr


@pytest.mark.parametrize("cmd", [
    ["connect", "--send-proxy", "v1", "--tls", "127.0.0.1", "9"],  # port-ok: usage error
    ["relay", "--send-proxy", "v2", "127.0.0.1:0", "tls://127.0.0.1:9"],  # port-ok: usage error
    ["relay", "--send-proxy", "v1", "127.0.0.1:0", "127.0.0.1:9",  # port-ok: usage error
     "tls://127.0.0.1:9"],  # port-ok: usage error
])
def test_send_proxy_with_tls_is_refused(cmd):
    # The header would go inside the TLS stream, where no balancer's peer
    # looks for it: every connection failed.  Said at once instead.
    p = run(cmd)
    assert p.returncode == 64
    assert b"--send-proxy" in p.stderr and b"TLS" in p.stderr


def test_unix_peer_is_not_a_trusted_balancer(serve, tmp_path):
    # A UNIX peer has no address that --proxy-protocol-from could name: it
    # is not in the list, so its header is not believed (anyone who may
    # open the socket could otherwise pose as any client).
    path = str(tmp_path / "pp.sock")
    srv = serve("echo", "-H", "unix:" + path, *FROM)
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(TIMEOUT)
        s.connect(path)
        s.sendall(v1("192.0.2.66", 1234) + b"hello\n")  # addr-ok: in a header only
        assert ended(s)[0] == b""  # nothing echoed
    srv.err.wait_for(r"^refused unix: at \[.*\]: not in "
                     r"--proxy-protocol-from", TIMEOUT)
    assert "192.0.2.66" not in srv.err.text()  # addr-ok: in a header only
