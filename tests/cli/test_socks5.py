"""tcpkit serve socks5: curl --socks5-hostname, Python clients and tcpkit's
own --proxy through it; authentication from --users; reply codes for a
refused, denied or unsupported request; garbage and a silent client; the
no-auth-on-loopback-only rule; one log line per tunnel."""
import http.server
import re
import socket
import struct
import subprocess
import threading

import pytest

from clienthelpers import peer
from tkhelpers import free_port, need, recv_all, run

USAGE = 64


@pytest.fixture
def http_server():
    """A Python HTTP server on loopback serving one known body."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"hello through socks\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def curl(port, url, cred=""):
    need("curl")
    return subprocess.run(
        ["curl", "-sS", "--max-time", "10", "--proxy",
         "socks5h://%s127.0.0.1:%d" % (cred, port), url],
        capture_output=True, timeout=20)


def echo(conn):
    data = b""
    conn.settimeout(10)
    while True:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
        conn.sendall(chunk)
    return data


def request(host, port, cmd=1):
    """An RFC 1928 request for an IPv4 literal or a name."""
    try:
        addr = b"\x01" + socket.inet_aton(host)
    except OSError:
        addr = b"\x03" + bytes([len(host)]) + host.encode()
    return b"\x05" + bytes([cmd]) + b"\x00" + addr + struct.pack(">H", port)


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def handshake(port, req, auth=None):
    """Greeting (and RFC 1929 auth), then req: the socket and the reply's
    first 4 bytes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    if auth is None:
        s.sendall(b"\x05\x01\x00")
        assert read_exact(s, 2) == b"\x05\x00"
    else:
        u, p = auth
        s.sendall(b"\x05\x01\x02")
        assert read_exact(s, 2) == b"\x05\x02"
        s.sendall(b"\x01" + bytes([len(u)]) + u + bytes([len(p)]) + p)
        assert read_exact(s, 2) == b"\x01\x00"
    s.sendall(req)
    head = read_exact(s, 4)
    if len(head) == 4:
        read_exact(s, 6 if head[3] == 1 else 18)
    return s, head


def test_curl_socks5_hostname(serve, http_server):
    srv = serve("socks5")
    p = curl(srv.port, "http://localhost:%d/x" % http_server)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"hello through socks\n"
    m = srv.err.wait_for(r"socks5 127\.0\.0\.1:\d+ -> localhost:%d after "
                         r"\S+: (\d+) bytes up, (\d+) bytes down, "
                         r"(client|target) closed first \(done\)"
                         % http_server)
    assert int(m.group(1)) > 0 and int(m.group(2)) > len(p.stdout)
    assert srv.stop() == 0


def test_python_client_relays_both_ways(serve, pyserver):
    t = peer(pyserver, echo)
    srv = serve("socks5")
    s, head = handshake(srv.port, request("127.0.0.1", t.port))
    assert head == b"\x05\x00\x00\x01"
    payload = bytes(range(256)) * 4096  # 1 MiB
    threading.Thread(target=lambda: (s.sendall(payload),
                                     s.shutdown(socket.SHUT_WR)),
                     daemon=True).start()
    assert recv_all(s) == payload
    s.close()
    assert t.result() == payload
    srv.err.wait_for(r"-> 127\.0\.0\.1:%d after \S+: %d bytes up, %d bytes "
                     r"down, client closed first" % (t.port, len(payload),
                                                     len(payload)))


def test_bytes_sent_before_the_reply_reach_the_target(serve, pyserver):
    t = peer(pyserver, echo)
    srv = serve("socks5")
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    # Greeting, request and data in one write, as optimistic clients do.
    s.sendall(b"\x05\x01\x00" + request("127.0.0.1", t.port) + b"early")
    s.shutdown(socket.SHUT_WR)
    got = recv_all(s)
    assert got == b"\x05\x00\x05\x00\x00\x01" + bytes(6) + b"early"
    assert t.result() == b"early"


def test_tcpkit_connect_proxy_socks5h(serve, pyserver):
    def greeter(conn):
        conn.sendall(b"hi\n")
        return echo(conn)

    t = peer(pyserver, greeter)
    srv = serve("socks5")
    p = run(["connect", "--proxy", "socks5h://127.0.0.1:%d" % srv.port,
             "localhost", str(t.port)], input=b"ping\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"hi\nping\n"


@pytest.fixture
def users(tmp_path):
    f = tmp_path / "users"
    f.write_text("# who may use the proxy\nalice:s3cret:with:colons\n\n"
                 "bob:hunter2\n")
    return str(f)


def test_auth_good_and_bad(serve, http_server, users):
    srv = serve("socks5", "--users", users)
    url = "http://127.0.0.1:%d/" % http_server
    good = curl(srv.port, url, "alice:s3cret%3Awith%3Acolons@")
    assert good.returncode == 0, good.stderr
    assert good.stdout == b"hello through socks\n"
    srv.err.wait_for(r"socks5 127\.0\.0\.1:\d+ user alice -> 127\.0\.0\.1:%d "
                     r"after" % http_server)
    bad = curl(srv.port, url, "alice:wrong@")
    assert bad.returncode == 97  # curl: proxy handshake error
    assert bad.stdout == b""
    srv.err.wait_for(r"socks5 127\.0\.0\.1:\d+ user alice -> \(no request\): "
                     r"authentication failed")
    # No credentials at all: no acceptable method (0xff).
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"\x05\x01\x00")
    assert recv_all(s) == b"\x05\xff"
    assert srv.stop() == 0


def test_target_refused_reply_5(serve):
    srv = serve("socks5")
    closed = free_port()
    s, head = handshake(srv.port, request("127.0.0.1", closed))
    assert head == b"\x05\x05\x00\x01"
    assert recv_all(s) == b""
    srv.err.wait_for(r"socks5 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:%d: reply 5 "
                     r"\(connection refused\)" % closed)


def test_target_denied_by_rule_reply_2(serve):
    target = socket.socket()
    target.bind(("127.0.0.1", 0))
    target.listen(4)
    target.settimeout(0.5)
    port = target.getsockname()[1]
    # addr-ok: a rule only; nothing is ever sent to 10/8
    srv = serve("socks5", "--allow-target", "10.0.0.0/8",  # addr-ok
                "--deny-target", "127.0.0.0/8", "--deny-target", "::1")
    # An address, and a name whose addresses are all denied.
    for host in ("127.0.0.1", "localhost"):
        s, head = handshake(srv.port, request(host, port))
        assert head == b"\x05\x02\x00\x01", host
        assert recv_all(s) == b""
        srv.err.wait_for(r"-> %s:%d: reply 2 \(connection not allowed "
                         r"by ruleset\)" % (re.escape(host), port))
    # Checked before connecting: the target never saw a SYN completed.
    with pytest.raises(socket.timeout):
        target.accept()
    target.close()


def test_garbage_unsupported_command_and_address_type(serve):
    srv = serve("socks5")
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert recv_all(s) == b""
    srv.err.wait_for(r"socks5 127\.0\.0\.1:\d+ -> \(no request\): not a "
                     r"SOCKS5 client")
    # BIND (2) is not supported: reply 7.
    s, head = handshake(srv.port, request("127.0.0.1", 9, cmd=2))
    assert head == b"\x05\x07\x00\x01"
    # Address type 9 does not exist: reply 8.
    s, head = handshake(srv.port, b"\x05\x01\x00\x09\x00\x00")
    assert head == b"\x05\x08\x00\x01"
    assert srv.stop() == 0


def test_silent_client_cut_at_the_handshake_deadline(serve):
    srv = serve("socks5", "--handshake-timeout", "300ms")
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"\x05\x01")  # half a greeting, then nothing
    assert recv_all(s, timeout=8) == b""
    srv.err.wait_for(r"socks5 127\.0\.0\.1:\d+ -> \(no request\): .*timed "
                     r"out")


def test_no_auth_only_on_loopback():
    p = run(["serve", "socks5", "-H", "0.0.0.0", "-p", "0"])
    assert p.returncode == USAGE
    assert p.stderr == (
        b"tcpkit: serve: socks5 on 0.0.0.0 without --users: anyone who can "
        b"reach it could use it; give --users FILE, or listen on loopback "
        b"only (see 'tcpkit help serve')\n")
    p = run(["serve", "echo", "--users", "/nonexistent"])
    assert p.returncode == USAGE


def test_users_file_errors(tmp_path):
    bad = tmp_path / "bad"
    bad.write_text("nocolon\n")
    p = run(["serve", "socks5", "-p", "0", "--users", str(bad)])
    assert p.returncode == USAGE
    assert b"--users %s:1: not USER:PASSWORD" % str(bad).encode() in p.stderr
    p = run(["serve", "socks5", "-p", "0", "--users",
             str(tmp_path / "missing")])
    assert p.returncode == 66


def test_much_early_data_in_one_write_is_kept(serve, pyserver):
    t = peer(pyserver, echo)
    srv = serve("socks5")
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    early = bytes(range(256)) * 400  # 100 KiB before any reply
    s.sendall(b"\x05\x01\x00" + request("127.0.0.1", t.port) + early)
    s.shutdown(socket.SHUT_WR)
    got = recv_all(s)
    assert got[:12] == b"\x05\x00\x05\x00\x00\x01" + bytes(6)
    assert got[12:] == early
    assert t.result() == early
