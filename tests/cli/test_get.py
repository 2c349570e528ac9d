"""tcpkit get: an HTTP/1.1 GET against real peers (raw-socket responders
and Python's http.server): bodies, the request, what is shown, https.  The
negative twins of every failure are in test_get_errors.py, redirects in
test_get_redirects.py."""
import hashlib
import http.server
import os
import pty
import random
import select
import socket
import ssl
import subprocess
import threading
import time
import tty

import pytest

from gethelpers import (TIMEOUT, expected_request, get, https_url, ok,
                        read_request, responder, url, version,
                        wait_client_close)
from tkhelpers import TCPKIT, check_sanitizer


# --- bodies ----------------------------------------------------------------

def test_content_length_body(pyserver):
    body = b"Hello, world!\n"
    srv = pyserver(responder(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                             b"Content-Type: text/plain\r\n\r\n" % len(body)
                             + body))
    p = get([url(srv, "/hello")])
    ok(p)
    assert p.stdout == body


def test_bytes_past_content_length_are_not_printed(pyserver):
    srv = pyserver(responder(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"
                             b"abcEXTRA"))
    p = get([url(srv)])
    ok(p)
    assert p.stdout == b"abc"


def test_zero_content_length(pyserver):
    srv = pyserver(responder(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
    p = get([url(srv)])
    ok(p)
    assert p.stdout == b""


def test_chunked_body_with_extensions_and_trailers(pyserver):
    pieces = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
              b"5\r\nHello\r\n",
              b"7;name=value;flag\r\n, chunk\r\n",
              b"9\r\ned world!\r\n",
              b"1",  # the size line split across segments
              b"\r\n\n\r\n",
              b"0;last\r\nX-Checksum: 1234\r\nX-Other: yes\r\n\r\n"]
    srv = pyserver(responder(pieces))
    p = get([url(srv)])
    ok(p)
    assert p.stdout == b"Hello, chunked world!\n"


def test_chunked_body_in_one_segment_with_head(pyserver):
    srv = pyserver(responder(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: "
                             b"chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n"
                             b"0\r\n\r\n"))
    p = get([url(srv)])
    ok(p)
    assert p.stdout == b"abcde"


def test_close_delimited_body(pyserver):
    body = b"no length, no chunks: until the server closes\n" * 100
    srv = pyserver(responder(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain"
                             b"\r\n\r\n" + body, keep_open=False))
    p = get([url(srv)])
    ok(p)
    assert p.stdout == body


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
def test_binary_body_all_byte_values(pyserver, framing):
    body = bytes(range(256)) * 4 + b"\r\n\r\n\0\n0\r\n\r\n"
    if framing == "length":
        resp = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) \
            + body
    elif framing == "chunked":
        resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        for i in range(0, len(body), 100):
            part = body[i:i + 100]
            resp += b"%x\r\n" % len(part) + part + b"\r\n"
        resp += b"0\r\n\r\n"
    else:
        resp = b"HTTP/1.1 200 OK\r\n\r\n" + body
    srv = pyserver(responder(resp, keep_open=framing != "close"))
    p = get([url(srv)])
    ok(p)
    assert p.stdout == body


def test_16_mib_body_streams_and_matches(pyserver):
    """16 MiB through stdout, compared by sha256.  The server holds back all
    but the first MiB until the test has read that MiB from tcpkit's
    stdout: a client that buffered the body whole would never get there."""
    size = 16 * 1024 * 1024
    first = 1024 * 1024
    body = random.Random(16).randbytes(size)
    released = threading.Event()

    def handler(conn, srv):
        srv.received.append(read_request(conn))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        conn.sendall(body[:first])
        if not released.wait(TIMEOUT):
            raise AssertionError("tcpkit did not stream the first MiB")
        conn.sendall(body[first:])
        wait_client_close(conn)

    srv = pyserver(handler)
    proc = subprocess.Popen([TCPKIT, "get", url(srv, "/big")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    h = hashlib.sha256()
    got = 0
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, "no end after 60s"
        r, _, _ = select.select([proc.stdout], [], [], 5)
        assert r, "no output for 5s; %d bytes so far" % got
        chunk = proc.stdout.read1(1 << 20)
        if not chunk:
            break
        h.update(chunk)
        got += len(chunk)
        if got >= first:
            released.set()
    rc = proc.wait(TIMEOUT)
    err = proc.stderr.read()
    check_sanitizer(err)
    assert rc == 0, err
    assert got == size
    assert h.hexdigest() == hashlib.sha256(body).hexdigest()
    assert srv.errors == []


# --- the request -----------------------------------------------------------

@pytest.mark.parametrize("path,target", [
    ("", "/"),
    ("/", "/"),
    ("/a/b.txt", "/a/b.txt"),
    ("/search?q=tcp&x=1", "/search?q=tcp&x=1"),
    ("?q=1", "/?q=1"),
    ("/page#section", "/page"),
    ("/%7Euser/", "/%7Euser/"),
])
def test_exact_request_bytes(pyserver, path, target):
    srv = pyserver(responder(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
                             b"ok"))
    p = get(["http://127.0.0.1:%d%s" % (srv.port, path)])
    ok(p)
    assert p.stdout == b"ok"
    assert srv.received == [
        expected_request(target, "127.0.0.1:%d" % srv.port)]


def test_no_half_close_before_the_response(pyserver):
    """Some servers take an early FIN for an abort: tcpkit must keep its
    side open until the response is in.  The server looks for an EOF for
    a moment after the request; it must see none."""
    seen = []

    def handler(conn, srv):
        read_request(conn)
        conn.settimeout(0.5)
        try:
            seen.append(conn.recv(1))
        except socket.timeout:
            seen.append("still open")
        conn.settimeout(TIMEOUT)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        wait_client_close(conn)

    srv = pyserver(handler)
    p = get([url(srv)])
    ok(p)
    assert p.stdout == b"ok"
    assert seen == ["still open"]


def test_scheme_and_host_case_kept_in_host_header(pyserver):
    srv = pyserver(responder(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
    p = get(["HTTP://LocalHost:%d/X" % srv.port, "-4"])
    ok(p)
    assert srv.received == [expected_request("/X", "LocalHost:%d" % srv.port)]


def test_ipv6_literal_url(pyserver):
    try:
        srv = pyserver(responder(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                                 b"\r\nsix"), host="::1",
                       family=socket.AF_INET6)
    except OSError as e:
        pytest.skip("no IPv6 loopback: %s" % e)
    u = "http://[::1]:%d/v6" % srv.port
    p = get(["-v", u])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"six"
    assert srv.received == [expected_request("/v6", "[::1]:%d" % srv.port)]
    assert p.stderr.decode().splitlines() == [
        "connected to [::1]:%d" % srv.port,
        "> GET /v6 HTTP/1.1",
        "< HTTP/1.1 200 OK",
    ]


@pytest.mark.parametrize("opt,u", [
    ("-4", "http://[::1]:1/"),
    ("-6", "http://127.0.0.1:1/"),
])
def test_literal_of_the_other_family(opt, u):
    p = get([opt, u])
    assert p.returncode == 68
    assert p.stderr.decode() == (
        "tcpkit: get %s: host has no address of the requested family\n" % u)


# --- what is shown ---------------------------------------------------------

def test_include_writes_the_head_as_received(pyserver):
    head = (b"HTTP/1.1 200 Fine\r\nX-Odd-Case: Value  \r\n"
            b"Content-Length: 4\r\n\r\n")
    srv = pyserver(responder(head + b"body"))
    p = get(["-i", url(srv)])
    ok(p)
    assert p.stdout == head + b"body"


def test_include_long_option_and_bare_lf_head(pyserver):
    head = b"HTTP/1.1 200 OK\nContent-Length: 2\n\n"
    srv = pyserver(responder(head + b"hi"))
    p = get(["--include", url(srv)])
    ok(p)
    assert p.stdout == head + b"hi"


def test_verbose_lines(pyserver):
    srv = pyserver(responder(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n"
                             b"x"))
    p = get(["-v", url(srv, "/v?x=1")])
    assert p.returncode == 0
    assert p.stdout == b"x"
    assert p.stderr.decode().splitlines() == [
        "connected to 127.0.0.1:%d" % srv.port,
        "> GET /v?x=1 HTTP/1.1",
        "< HTTP/1.1 200 OK",
    ]


# A reason phrase a hostile server could use on a terminal: a C1 CSI
# (U+009B, as UTF-8 and as a raw byte), bytes that are not UTF-8, a tab,
# and text in UTF-8 that must stay readable.
HOSTILE_REASON = b"OK \xc2\x9b2J \x9b31m \xff\xfe \xed\xa0\x80 a\tb caf\xc3\xa9 \xe2\x82\xac"
ESCAPED_REASON = (b"OK \\xc2\\x9b2J \\x9b31m \\xff\\xfe \\xed\\xa0\\x80 a\\x09b "
                  b"caf\xc3\xa9 \xe2\x82\xac")


def test_verbose_escapes_the_status_line(pyserver):
    srv = pyserver(responder(b"HTTP/1.1 200 " + HOSTILE_REASON + b"\r\n"
                             b"Content-Length: 3\r\n\r\n\x9b\xffx"))
    p = get(["-v", url(srv)])
    assert p.returncode == 0, p.stderr
    # The body is data: never escaped.
    assert p.stdout == b"\x9b\xffx"
    assert p.stderr.splitlines()[-1] == b"< HTTP/1.1 200 " + ESCAPED_REASON


def test_fail_escapes_the_reason(pyserver):
    srv = pyserver(responder(b"HTTP/1.1 404 " + HOSTILE_REASON + b"\r\n"
                             b"Content-Length: 0\r\n\r\n"))
    p = get(["-f", url(srv)])
    assert p.returncode == 1
    assert p.stderr == (b"tcpkit: get %s: server answered 404 "
                        % url(srv).encode() + ESCAPED_REASON + b"\n")


def run_on_tty(args):
    """Run tcpkit with stdout on a raw pseudo-terminal (no CRLF
    translation); returns (exit code, what the terminal got, stderr)."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    proc = subprocess.Popen([TCPKIT] + args, stdout=slave,
                            stderr=subprocess.PIPE)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 1)
        if not r:
            if proc.poll() is not None:
                break
            continue
        try:
            d = os.read(master, 65536)
        except OSError:  # EIO: the last writer closed the terminal
            break
        if not d:
            break
        out += d
    os.close(master)
    rc = proc.wait(TIMEOUT)
    err = proc.stderr.read()
    check_sanitizer(err)
    return rc, out, err


def test_include_on_a_terminal_escapes_the_head(pyserver):
    head = (b"HTTP/1.1 200 " + HOSTILE_REASON + b"\r\n"
            b"X-Evil: \x9d0;title\x9c \xc2\x9d \xf0\x9f\x98\x80\r\n"
            b"Content-Length: 3\r\n\r\n")
    srv = pyserver(responder(head + b"\x9b\xffx"))
    rc, out, err = run_on_tty(["get", "-i", url(srv)])
    assert rc == 0, err
    assert out == (b"HTTP/1.1 200 " + ESCAPED_REASON + b"\r\n"
                   b"X-Evil: \\x9d0;title\\x9c \\xc2\\x9d \xf0\x9f\x98\x80\r\n"
                   b"Content-Length: 3\r\n\r\n\x9b\xffx")
    # Into a pipe the head stays byte for byte what the server sent.
    p = get(["-i", url(srv)])
    ok(p)
    assert p.stdout == head + b"\x9b\xffx"


def test_interim_responses_are_skipped(pyserver):
    heads = (b"HTTP/1.1 100 Continue\r\n\r\n"
             b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n")
    final = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    srv = pyserver(responder([heads[:10], heads[10:], final + b"final"]))
    p = get(["-v", url(srv)])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"final"
    assert p.stderr.decode().splitlines()[1:] == [
        "> GET / HTTP/1.1",
        "< HTTP/1.1 100 Continue",
        "< HTTP/1.1 103 Early Hints",
        "< HTTP/1.1 200 OK",
    ]
    # With -i every head is shown, as curl does.
    p = get(["-i", url(srv)])
    ok(p)
    assert p.stdout == heads + final + b"final"


@pytest.mark.parametrize("status", [b"204 No Content", b"304 Not Modified"])
def test_no_body_statuses_end_without_waiting(pyserver, status):
    """A 204 or 304 has no body even with Content-Length; the server keeps
    the connection open, so only the framing can end the exchange."""
    srv = pyserver(responder(b"HTTP/1.1 " + status + b"\r\n"
                             b"Content-Length: 10\r\n\r\n"))
    t0 = time.monotonic()
    p = get(["-i", url(srv)])
    ok(p)
    assert p.stdout == b"HTTP/1.1 " + status + b"\r\nContent-Length: 10\r\n\r\n"
    assert time.monotonic() - t0 < 10


def test_error_status_without_fail_prints_body(pyserver):
    srv = pyserver(responder(b"HTTP/1.1 404 Not Found\r\nContent-Length: 10"
                             b"\r\n\r\nnot here\r\n"))
    p = get([url(srv, "/missing")])
    ok(p)
    assert p.stdout == b"not here\r\n"


def test_fail_on_404(pyserver):
    srv = pyserver(responder(b"HTTP/1.1 404 Not Found\r\nContent-Length: 10"
                             b"\r\n\r\nnot here\r\n"))
    u = url(srv, "/missing")
    for opt in ("-f", "--fail"):
        p = get([opt, "-i", u])
        assert p.returncode == 1
        assert p.stdout == b""
        assert p.stderr.decode() == \
            "tcpkit: get %s: server answered 404 Not Found\n" % u


def test_fail_on_500_without_reason(pyserver):
    srv = pyserver(responder(b"HTTP/1.1 500 \r\nContent-Length: 0\r\n\r\n"))
    p = get(["-f", url(srv)])
    assert p.returncode == 1
    assert p.stdout == b""
    assert p.stderr.decode() == \
        "tcpkit: get %s: server answered 500\n" % url(srv)


def test_fail_passes_success_and_redirects(pyserver):
    srv = pyserver(responder(b"HTTP/1.1 302 Found\r\nLocation: /x\r\n"
                             b"Content-Length: 5\r\n\r\nmoved"))
    p = get(["-f", url(srv)])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"moved"
    assert p.stderr.decode() == "tcpkit: get %s: 302 -> %s (use -L)\n" % (
        url(srv), url(srv, "/x"))


def test_reader_going_away_ends_quietly(pyserver):
    """`tcpkit get URL | head -c 10`: when stdout's reader leaves, tcpkit
    stops at once, with exit 0 and no error line, as `tcpkit connect`."""
    size = 8 * 1024 * 1024

    def handler(conn, srv):
        read_request(conn)
        try:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"
                         % size + b"x" * size)
        except OSError:
            pass  # tcpkit left before the end, as it should
        wait_client_close(conn)

    srv = pyserver(handler)
    proc = subprocess.Popen([TCPKIT, "get", url(srv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout.read(10) == b"x" * 10
    proc.stdout.close()
    rc = proc.wait(TIMEOUT)
    err = proc.stderr.read()
    check_sanitizer(err)
    assert rc == 0
    assert err == b""


# --- a real HTTP server ----------------------------------------------------

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        Handler.requests.append((self.path, dict(self.headers)))
        if self.path == "/hello":
            body = b"hello from http.server\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"one ", b"two ", b"three\n"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_error(404, "Not Found")


@pytest.fixture
def httpd():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    Handler.requests = []
    yield srv
    srv.shutdown()
    srv.server_close()
    t.join(5)


def test_http_server_content_length(httpd):
    port = httpd.server_address[1]
    p = get(["http://127.0.0.1:%d/hello" % port])
    ok(p)
    assert p.stdout == b"hello from http.server\n"
    path, headers = Handler.requests[0]
    assert path == "/hello"
    assert headers["Host"] == "127.0.0.1:%d" % port
    assert headers["Connection"] == "close"
    assert headers["User-Agent"] == "tcpkit/" + version()


def test_http_server_chunked(httpd):
    p = get(["http://127.0.0.1:%d/chunked" % httpd.server_address[1]])
    ok(p)
    assert p.stdout == b"one two three\n"


def test_http_server_404_with_and_without_fail(httpd):
    u = "http://127.0.0.1:%d/nope" % httpd.server_address[1]
    p = get([u])
    ok(p)
    assert b"404" in p.stdout
    p = get(["--fail", u])
    assert p.returncode == 1
    assert p.stdout == b""
    assert p.stderr.decode() == \
        "tcpkit: get %s: server answered 404 Not Found\n" % u


# --- https: the end of a close-delimited body -------------------------------

def tls_responder(certs, response, close_notify):
    """A handler: TLS handshake, read the request, send response, then
    close with close_notify (unwrap) or with a bare FIN, as a truncation
    attack (or a careless server) would."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs["srv"], certs["srv_key"])

    def handler(conn, srv):
        s = ctx.wrap_socket(conn, server_side=True)
        srv.received.append(read_request(s))
        s.sendall(response)
        if close_notify:
            s.unwrap()
        else:
            # SSLSocket.shutdown() drops the TLS layer first: FIN only.
            s.shutdown(socket.SHUT_WR)
            wait_client_close(s)
        s.close()

    return handler


def test_https_close_delimited_body_without_close_notify(pyserver, certs):
    body = b"no length, no chunks" * 10
    srv = pyserver(tls_responder(certs, b"HTTP/1.1 200 OK\r\n\r\n" + body,
                                 close_notify=False))
    u = https_url(srv)
    p = get(["--cacert", certs["ca"], u])
    assert p.returncode == 76
    assert p.stdout == body
    assert p.stderr.decode() == (
        "tcpkit: get %s: truncated: no TLS close_notify after %d body "
        "bytes\n" % (u, len(body)))


def test_https_close_delimited_body_with_close_notify(pyserver, certs):
    body = b"no length, no chunks" * 10
    srv = pyserver(tls_responder(certs, b"HTTP/1.1 200 OK\r\n\r\n" + body,
                                 close_notify=True))
    p = get(["--cacert", certs["ca"], https_url(srv)])
    ok(p)
    assert p.stdout == body


def test_https_framed_body_needs_no_close_notify(pyserver, certs):
    """With Content-Length the framing says the body is whole: a bare FIN
    after it is how most servers close, not an error."""
    srv = pyserver(tls_responder(certs, b"HTTP/1.1 200 OK\r\n"
                                 b"Content-Length: 3\r\n\r\nabc",
                                 close_notify=False))
    p = get(["--cacert", certs["ca"], https_url(srv)])
    ok(p)
    assert p.stdout == b"abc"
