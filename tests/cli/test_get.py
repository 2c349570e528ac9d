"""tcpkit get: an HTTP/1.1 GET against real peers (raw-socket responders
and Python's http.server), with a negative twin for every failure."""
import hashlib
import os
import pty
import random
import re
import http.server
import tty
import select
import socket
import ssl
import subprocess
import threading
import time

import pytest

import tlscerts
from tkhelpers import TCPKIT, check_sanitizer, free_port, run

UNKNOWN = "no-such-host.invalid"
TIMEOUT = 20


def version():
    p = run(["version"])
    assert p.returncode == 0
    return p.stdout.decode().split()[1]


def expected_request(target, host):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tcpkit/%s\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n"
            % (target, host, version())).encode()


def read_request(conn):
    """The request head, read up to its empty line."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def wait_client_close(conn):
    """Hold the connection open until the client closes it (bounded by the
    socket timeout): tcpkit must end on the framing, not on our FIN."""
    try:
        while conn.recv(65536):
            pass
    except OSError:
        pass


def responder(response, keep_open=True):
    """A handler: read the request, send response (bytes, or a list of
    pieces sent one by one), then wait for the client to close."""

    def handler(conn, srv):
        srv.received.append(read_request(conn))
        pieces = response if isinstance(response, list) else [response]
        for piece in pieces:
            conn.sendall(piece)
        if keep_open:
            wait_client_close(conn)

    return handler


def url(srv, path="/"):
    return "http://127.0.0.1:%d%s" % (srv.port, path)


def get(args, timeout=TIMEOUT):
    return run(["get"] + list(args), timeout=timeout)


def ok(p):
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""


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


# --- negative twins: the network -------------------------------------------

def test_refused_port():
    u = "http://127.0.0.1:%d/" % free_port()
    p = get([u])
    assert p.returncode == 69
    assert p.stdout == b""
    assert p.stderr.decode() == "tcpkit: get %s: Connection refused\n" % u


def test_unknown_host():
    u = "http://%s/" % UNKNOWN
    p = get([u])
    assert p.returncode == 68
    assert p.stderr.decode() == "tcpkit: get %s: host not found\n" % u


def test_idle_timeout_when_the_server_never_answers(pyserver):
    done = threading.Event()

    def handler(conn, srv):
        srv.received.append(read_request(conn))
        done.wait(TIMEOUT)

    srv = pyserver(handler)
    u = url(srv)
    t0 = time.monotonic()
    try:
        p = get(["-t", "1", u])
    finally:
        done.set()
    elapsed = time.monotonic() - t0
    assert p.returncode == 75
    assert p.stdout == b""
    assert p.stderr.decode() == \
        "tcpkit: get %s: idle timeout (no data for 1s)\n" % u
    assert 0.9 <= elapsed < 8
    assert srv.received == [expected_request("/", "127.0.0.1:%d" % srv.port)]


def test_idle_timeout_counts_silence_not_total_time(pyserver):
    """Data every 0.3s for about 1.5s, with -t 1: no timeout."""
    def handler(conn, srv):
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(5):
            conn.sendall(b"1\r\n.\r\n")
            time.sleep(0.3)  # sleep-ok: pacing the peer
        conn.sendall(b"0\r\n\r\n")
        wait_client_close(conn)

    srv = pyserver(handler)
    p = get(["-t", "1", url(srv)])
    ok(p)
    assert p.stdout == b"....."


def trickler(first, piece, every=0.05, limit=400):
    """A handler: send first, then piece every `every` seconds until the
    client goes away (at most limit pieces: bounded in count and time)."""

    def handler(conn, srv):
        read_request(conn)
        try:
            conn.sendall(first)
            for _ in range(limit):
                conn.sendall(piece)
                r, _, _ = select.select([conn], [], [], every)
                if r and not conn.recv(65536):
                    return  # tcpkit closed: the test is over
        except OSError:
            pass  # reset by tcpkit's close

    return handler


def test_max_time_cuts_a_1xx_storm(pyserver):
    """1xx heads without end keep -t quiet: only --max-time ends it, and
    the error says so."""
    srv = pyserver(trickler(b"", b"HTTP/1.1 102 Processing\r\n\r\n"))
    t0 = time.monotonic()
    p = get(["-t", "10s", "--max-time", "1s", url(srv)])
    elapsed = time.monotonic() - t0
    assert p.returncode == 75, p.stderr
    assert p.stdout == b""
    m = re.fullmatch(r"tcpkit: get %s: max time reached: 1xx responses for "
                     r"1s \((\d+) of them\) and no final response\n"
                     % re.escape(url(srv)), p.stderr.decode())
    assert m, p.stderr
    assert int(m.group(1)) >= 5
    assert 0.9 <= elapsed < 8


def test_max_time_cuts_a_trickled_body(pyserver):
    srv = pyserver(trickler(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n"
                            b"\r\n", b"x"))
    p = get(["-m", "700ms", url(srv)])
    assert p.returncode == 75, p.stderr
    assert p.stdout and p.stdout == b"x" * len(p.stdout)
    assert p.stderr.decode() == (
        "tcpkit: get %s: max time reached: body not complete within 700ms "
        "(%d bytes received)\n" % (url(srv), len(p.stdout)))


def test_max_time_cuts_endless_trailers(pyserver):
    srv = pyserver(trickler(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
                            b"\r\n\r\n3\r\nabc\r\n0\r\n",
                            b"X-More: trailer\r\n"))
    p = get(["--max-time", "700ms", url(srv)])
    assert p.returncode == 75, p.stderr
    assert p.stdout == b"abc"
    assert p.stderr.decode() == (
        "tcpkit: get %s: max time reached: chunked body not complete within "
        "700ms (3 bytes received)\n" % url(srv))


def test_max_time_cuts_a_trickled_head(pyserver):
    srv = pyserver(trickler(b"HTTP/1.1 200 OK\r\n", b"X-Slow: y\r\n"))
    p = get(["--max-time", "700ms", url(srv)])
    assert p.returncode == 75, p.stderr
    assert p.stderr.decode() == (
        "tcpkit: get %s: max time reached: no complete response within "
        "700ms\n" % url(srv))


def test_max_time_not_reached(pyserver):
    srv = pyserver(responder(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                             b"\r\nok"))
    p = get(["--max-time", "10s", url(srv)])
    ok(p)
    assert p.stdout == b"ok"


def full_listener():
    """A loopback listener whose accept queue is full: further SYNs are
    dropped, so a connect to it hangs until its timeout."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    fillers = []
    for _ in range(64):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(ls.getsockname())
        fillers.append(s)
        _, w, _ = select.select([], [s], [], 0.5)
        if not w:
            return ls, fillers
    for s in fillers:
        s.close()
    ls.close()
    return None, []


def test_connect_timeout():
    ls, fillers = full_listener()
    if ls is None:
        pytest.skip("cannot fill a loopback accept queue here")
    try:
        u = "http://127.0.0.1:%d/" % ls.getsockname()[1]
        t0 = time.monotonic()
        p = get(["-w", "1", u])
        elapsed = time.monotonic() - t0
    finally:
        for s in fillers:
            s.close()
        ls.close()
    assert p.returncode == 75
    assert p.stderr.decode() == \
        "tcpkit: get %s: connect timed out after 1s\n" % u
    assert 0.9 <= elapsed < 8


# --- negative twins: the response ------------------------------------------

def test_truncated_content_length_body(pyserver):
    srv = pyserver(responder(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
                             b"abc", keep_open=False))
    p = get([url(srv)])
    assert p.returncode == 76
    assert p.stdout == b"abc"
    assert p.stderr.decode() == \
        "tcpkit: get %s: connection closed after 3 of 10 body bytes\n" \
        % url(srv)


def test_truncated_chunked_body(pyserver):
    srv = pyserver(responder(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
                             b"\r\n\r\n5\r\nabcde\r\n8\r\nfgh",
                             keep_open=False))
    p = get([url(srv)])
    assert p.returncode == 76
    assert p.stdout == b"abcdefgh"
    assert p.stderr.decode() == \
        "tcpkit: get %s: connection closed inside a chunked body\n" % url(srv)


def test_chunked_body_without_last_chunk(pyserver):
    srv = pyserver(responder(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
                             b"\r\n\r\n2\r\nab\r\n", keep_open=False))
    p = get([url(srv)])
    assert p.returncode == 76
    assert p.stderr.decode() == \
        "tcpkit: get %s: connection closed inside a chunked body\n" % url(srv)


@pytest.mark.parametrize("resp", [
    b"HTTP/1.1 2OO OK\r\n\r\n",
    b"HTTP/2 200 OK\r\n\r\n",
    b"HTTP/1.1 200OK\r\n\r\n",
    b"SSH-2.0-OpenSSH_9.6\r\n",
    b"Welcome to the server. Type something and hit enter\n",
    b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n folded: header\r\n\r\n",
])
def test_malformed_head(pyserver, resp):
    srv = pyserver(responder(resp))
    p = get([url(srv)])
    assert p.returncode == 76
    assert p.stdout == b""
    assert p.stderr.decode() == \
        "tcpkit: get %s: malformed HTTP response\n" % url(srv)


@pytest.mark.parametrize("headers", [
    b"Content-Length: 5\r\nContent-Length: 6\r\n",
    b"Content-Length: 5, 6\r\n",
    b"Content-Length: -1\r\n",
    b"Content-Length: 12abc\r\n",
    b"Transfer-Encoding: bogus\r\n",
])
def test_bad_framing(pyserver, headers):
    srv = pyserver(responder(b"HTTP/1.1 200 OK\r\n" + headers
                             + b"\r\nhello"))
    p = get(["-i", url(srv)])
    assert p.returncode == 76
    assert p.stdout == b""
    assert p.stderr.decode() == (
        "tcpkit: get %s: malformed HTTP response: bad Content-Length or "
        "Transfer-Encoding\n" % url(srv))


@pytest.mark.parametrize("headers", [
    b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
    b"transfer-encoding: gzip\r\ncontent-length: 5\r\n",
])
def test_content_length_and_transfer_encoding_refused(pyserver, headers):
    """RFC 9112 section 6.3: two framings in one response are an error,
    not a choice; nothing of the body is written."""
    srv = pyserver(responder(b"HTTP/1.1 200 OK\r\n" + headers
                             + b"\r\n5\r\nhello\r\n0\r\n\r\n"))
    p = get(["-i", url(srv)])
    assert p.returncode == 76
    assert p.stdout == b""
    assert p.stderr.decode() == (
        "tcpkit: get %s: malformed HTTP response: both Content-Length and "
        "Transfer-Encoding (RFC 9112 section 6.3)\n" % url(srv))


@pytest.mark.parametrize("body", [
    b"zz\r\nabc\r\n0\r\n\r\n",
    b"3\r\nabcX\r\n0\r\n\r\n",
    b"\r\n",
])
def test_bad_chunk(pyserver, body):
    srv = pyserver(responder(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
                             b"\r\n\r\n" + body))
    p = get([url(srv)])
    assert p.returncode == 76
    assert p.stderr.decode() == (
        "tcpkit: get %s: malformed HTTP response: bad chunked encoding\n"
        % url(srv))


def test_head_over_64_kib(pyserver):
    def handler(conn, srv):
        read_request(conn)
        try:
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70000
                         + b"\r\n\r\n")
        except OSError:
            pass  # tcpkit may close before taking it all
        wait_client_close(conn)

    srv = pyserver(handler)
    p = get([url(srv)])
    assert p.returncode == 76
    assert p.stderr.decode() == (
        "tcpkit: get %s: malformed HTTP response: head larger than 64 KiB\n"
        % url(srv))


def test_too_many_headers(pyserver):
    head = b"HTTP/1.1 200 OK\r\n" + b"X-H: v\r\n" * 101 + b"\r\n"
    srv = pyserver(responder(head))
    p = get([url(srv)])
    assert p.returncode == 76
    assert p.stderr.decode() == (
        "tcpkit: get %s: malformed HTTP response: more than 100 header "
        "fields\n" % url(srv))


def test_switching_protocols_unasked(pyserver):
    srv = pyserver(responder(b"HTTP/1.1 101 Switching Protocols\r\n"
                             b"Upgrade: websocket\r\n\r\n"))
    p = get([url(srv)])
    assert p.returncode == 76
    assert p.stderr.decode() == (
        "tcpkit: get %s: malformed HTTP response: 101 Switching Protocols "
        "without an Upgrade request\n" % url(srv))


@pytest.mark.parametrize("resp,why", [
    (b"", "connection closed without a response"),
    (b"HTTP/1.1 200 OK\r\nContent-Le", "connection closed inside the "
     "response head"),
])
def test_closed_before_the_head_ends(pyserver, resp, why):
    srv = pyserver(responder(resp, keep_open=False))
    p = get([url(srv)])
    assert p.returncode == 76
    assert p.stderr.decode() == "tcpkit: get %s: %s\n" % (url(srv), why)


# --- negative twins: the command line --------------------------------------

@pytest.mark.parametrize("u,why", [
    ("ftp://example.com/file", "unsupported scheme 'ftp' (http or https)"),
    ("gopher://x/", "unsupported scheme 'gopher' (http or https)"),
    ("example.com", "malformed URL: no scheme (expected "
     "http://HOST[:PORT][/PATH])"),
    ("127.0.0.1:8080/", "malformed URL: no scheme (expected "
     "http://HOST[:PORT][/PATH])"),
    ("http:/example.com/", "malformed URL: no scheme (expected "
     "http://HOST[:PORT][/PATH])"),
    ("://example.com/", "malformed URL: no scheme (expected "
     "http://HOST[:PORT][/PATH])"),
    ("example.com/a://b", "malformed URL: no scheme (expected "
     "http://HOST[:PORT][/PATH])"),
    ("http://", "malformed URL: no host"),
    ("http:///path", "malformed URL: no host"),
    ("http://:80/", "malformed URL: no host"),
    ("http://user:pw@example.com/",
     "malformed URL: user:password@ is not supported"),
    ("http://example.com:http/", "malformed URL: bad port 'http'"),
    ("http://example.com:99999/",
     "malformed URL: port 99999 is out of range (1-65535)"),
    ("http://example.com:/", "malformed URL: bad port ''"),
    ("http://example.com:0/", "malformed URL: bad port '0'"),
    ("http://[::1/", "malformed URL: '[' without ']'"),
    ("http://[::1]x/", "malformed URL: junk after ']'"),
    ("http://[1.2.3.4]/", "malformed URL: bad IPv6 address '1.2.3.4'"),
    ("http://256.1.1.1/", "malformed URL: bad host '256.1.1.1'"),
    ("http://exa mple.com/", "malformed URL: spaces, controls and "
     "non-ASCII must be percent-encoded"),
    ("http://example.com/a b", "malformed URL: spaces, controls and "
     "non-ASCII must be percent-encoded"),
    ("http://exa$mple.com/", "malformed URL: bad host 'exa$mple.com'"),
])
def test_bad_urls(u, why):
    p = get([u])
    assert p.returncode == 64
    assert p.stdout == b""
    assert p.stderr.decode() == "tcpkit: get %s: %s\n" % (u, why)


@pytest.mark.parametrize("args,msg", [
    ([], "no URL given"),
    (["http://a/", "http://b/"], "unexpected argument 'http://b/'"),
    (["-4", "-6", "http://a/"], "-4 and -6 exclude each other"),
    (["-x", "http://a/"], "unknown option '-x'"),
    (["--insecure", "http://a/"], "--insecure needs an https:// URL"),
    (["--bogus", "http://a/"], "unknown option '--bogus'"),
    (["http://a/", "-t"], "option '-t' needs a value"),
    (["-t", "soon", "http://a/"], "-t/--timeout needs a duration such as 10, "
     "1.5s or 250ms, not 'soon'"),
    (["-w", "0", "http://a/"], "-w/--connect-timeout must be more than zero"),
    (["--connect-timeout", "2d", "http://a/"], "-w/--connect-timeout needs a "
     "duration such as 10, 1.5s or 250ms, not '2d'"),
    (["-t", "25h", "http://a/"], "-t/--timeout must be at most 24h, not 25h"),
    (["--max-time", "soon", "http://a/"], "-m/--max-time needs a duration "
     "such as 10, 1.5s or 250ms, not 'soon'"),
    (["-L", "--max-redirs", "-1", "http://a/"], "--max-redirs needs a "
     "whole number, not '-1'"),
])
def test_usage_errors(args, msg):
    p = get(args)
    assert p.returncode == 64
    assert p.stdout == b""
    assert p.stderr.decode() == \
        "tcpkit: get: %s (see 'tcpkit help get')\n" % msg


def test_help():
    for argv in (["get", "-h"], ["get", "--help"], ["help", "get"]):
        p = run(argv)
        assert p.returncode == 0
        out = p.stdout.decode()
        assert out.startswith("usage: tcpkit get [OPTIONS] URL\n")
        for word in ("--include", "--fail", "--verbose", "--connect-timeout",
                     "--timeout", "--max-time", "--location", "--max-redirs",
                     "--allow-https-downgrade", "-4", "-6", "Exit codes",
                     "Examples",
                     "64", "68", "69", "75", "76"):
            assert word in out, word
        assert max(len(line) for line in out.splitlines()) <= 80


# --- https: the end of a close-delimited body -------------------------------

@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return tlscerts.make(str(tmp_path_factory.mktemp("certs")))


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


def https_url(srv, path="/"):
    return "https://localhost:%d%s" % (srv.port, path)


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


# --- redirects -------------------------------------------------------------

def router(routes):
    """A handler answering by request path: routes maps a path to the
    response bytes (a callable gets the server and returns them)."""

    def handler(conn, srv):
        req = read_request(conn)
        srv.received.append(req)
        path = req.split(b" ")[1].decode() if b" " in req else ""
        resp = routes.get(path)
        if callable(resp):
            resp = resp(srv)
        if resp is None:
            resp = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        conn.sendall(resp)
        wait_client_close(conn)

    return handler


def moved(status, location, body=b"moved"):
    return (b"HTTP/1.1 %d Elsewhere\r\nLocation: %s\r\nContent-Length: %d"
            b"\r\n\r\n%s" % (status, location, len(body), body))


FINAL = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal"


def test_redirect_without_location_option_says_where(pyserver):
    srv = pyserver(router({"/a/start": moved(301, b"../b/c?x=1")}))
    p = get([url(srv, "/a/start")])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"moved"
    assert p.stderr.decode() == "tcpkit: get %s: 301 -> %s (use -L)\n" % (
        url(srv, "/a/start"), url(srv, "/b/c?x=1"))
    assert len(srv.received) == 1


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_location_follows_each_redirect_status(pyserver, status):
    """A relative Location is resolved against the URL it came with; the
    next request is a GET (303 asks for one; the others keep the
    method, which is GET) to the new target."""
    srv = pyserver(router({"/a/start": moved(status, b"../b/c?x=1#frag"),
                           "/b/c?x=1": FINAL}))
    for opt in ("-L", "--location"):
        p = get([opt, url(srv, "/a/start")])
        ok(p)
        assert p.stdout == b"final"
    srv.wait_handlers(4)
    assert srv.received[1] == expected_request(
        "/b/c?x=1", "127.0.0.1:%d" % srv.port)


def test_location_across_hosts_and_chains(pyserver):
    far = pyserver(router({"/end": FINAL}))
    near = pyserver(router({
        "/1": moved(302, b"/2"),
        "/2": moved(307, b"http://localhost:%d/end" % far.port)}))
    p = get(["-L", "-v", url(near, "/1")])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"final"
    far.wait_handlers(1)
    assert far.received[0] == expected_request("/end",
                                               "localhost:%d" % far.port)
    err = p.stderr.decode()
    assert "redirected (302) to %s\n" % url(near, "/2") in err
    assert "redirected (307) to http://localhost:%d/end\n" % far.port in err


def test_location_with_include_shows_every_head(pyserver):
    first = moved(301, b"/next", body=b"")
    srv = pyserver(router({"/": first, "/next": FINAL}))
    p = get(["-L", "-i", url(srv)])
    ok(p)
    assert p.stdout == first + FINAL


def test_location_then_fail(pyserver):
    srv = pyserver(router({"/": moved(302, b"/gone")}))
    p = get(["-L", "-f", url(srv)])
    assert p.returncode == 1
    assert p.stdout == b""
    assert p.stderr.decode() == (
        "tcpkit: get %s: server answered 404 Not Found\n"
        % url(srv, "/gone"))


def test_redirect_without_a_location_is_final(pyserver):
    srv = pyserver(responder(b"HTTP/1.1 302 Found\r\nContent-Length: 4\r\n"
                             b"\r\nhere"))
    p = get(["-L", url(srv)])
    ok(p)
    assert p.stdout == b"here"


def endless(srv):
    n = len(srv.received)
    return moved(302, b"/%d" % n)


@pytest.mark.parametrize("args,follows", [([], 10), (["--max-redirs", "2"], 2),
                                          (["--max-redirs=0"], 0)])
def test_too_many_redirects(pyserver, args, follows):
    srv = pyserver(router({"/%d" % i: endless for i in range(30)}))
    p = get(["-L"] + args + [url(srv, "/0")])
    assert p.returncode == 76
    assert p.stdout == b""
    assert p.stderr.decode() == (
        "tcpkit: get %s: too many redirects (more than --max-redirs %d); "
        "the next was to %s\n" % (url(srv, "/%d" % follows), follows,
                                   url(srv, "/%d" % (follows + 1))))
    srv.wait_handlers(follows + 1)
    assert len(srv.received) == follows + 1


def test_max_time_covers_every_redirect(pyserver):
    """Each hop is quick, but the chain has no end short of --max-redirs
    1000: the deadline is for the whole chain, not for each hop."""
    def slow_endless(srv):
        time.sleep(0.1)  # sleep-ok: pacing the hops
        return endless(srv)

    srv = pyserver(router({"/%d" % i: slow_endless for i in range(200)}))
    t0 = time.monotonic()
    p = get(["-L", "--max-redirs", "1000", "--max-time", "1s",
             url(srv, "/0")])
    elapsed = time.monotonic() - t0
    assert p.returncode == 75, p.stderr
    assert re.fullmatch(r"tcpkit: get http://127\.0\.0\.1:%d/\d+: max time "
                        r"(\(1s\) reached|reached: no complete response "
                        r"within 1s)\n" % srv.port, p.stderr.decode()), \
        p.stderr
    assert 3 <= len(srv.received) <= 12
    assert 0.9 <= elapsed < 8


def test_redirect_to_a_malformed_location(pyserver):
    srv = pyserver(router({"/": moved(301, b"/caf\xc3\xa9 \x9b")}))
    p = get([url(srv)])
    assert p.returncode == 0
    # Not a URL (a space, raw UTF-8): shown as sent, escaped for the
    # terminal.
    assert p.stderr == (b"tcpkit: get %s: 301 -> /caf\xc3\xa9 \\x9b (use -L)\n"
                        % url(srv).encode())
    p = get(["-L", url(srv)])
    assert p.returncode == 76
    assert p.stdout == b""
    assert p.stderr == ("tcpkit: get %s: 301 redirect to a malformed "
                        "Location '/caf" % url(srv)).encode() + \
        b"\xc3\xa9 \\x9b'\n"


def test_redirect_to_another_scheme_refused(pyserver):
    srv = pyserver(router({"/": moved(302, b"ftp://127.0.0.1/file")}))
    p = get(["-L", url(srv)])
    assert p.returncode == 76
    assert p.stderr.decode() == (
        "tcpkit: get %s: redirect to 'ftp://127.0.0.1/file' refused: not "
        "http or https\n" % url(srv))


def tls_router(certs, routes):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs["srv"], certs["srv_key"])
    inner = router(routes)

    def handler(conn, srv):
        with ctx.wrap_socket(conn, server_side=True) as s:
            inner(s, srv)

    return handler


def test_https_to_http_redirect_refused_unless_asked(pyserver, certs):
    plain = pyserver(router({"/clear": FINAL}))
    secure = pyserver(tls_router(certs, {
        "/": moved(301, b"http://127.0.0.1:%d/clear" % plain.port)}))
    u = https_url(secure)
    p = get(["-L", "--cacert", certs["ca"], u])
    assert p.returncode == 76
    assert p.stdout == b""
    assert p.stderr.decode() == (
        "tcpkit: get %s: redirect from https to http refused: "
        "http://127.0.0.1:%d/clear (use --allow-https-downgrade)\n"
        % (u, plain.port))
    assert plain.received == []
    p = get(["-L", "--allow-https-downgrade", "--cacert", certs["ca"], u])
    ok(p)
    assert p.stdout == b"final"


def test_http_to_https_redirect_uses_the_tls_options(pyserver, certs):
    secure = pyserver(tls_router(certs, {"/s": FINAL}))
    plain = pyserver(router({
        "/": moved(308, b"https://localhost:%d/s" % secure.port)}))
    p = get(["-L", "--cacert", certs["ca"], url(plain)])
    ok(p)
    assert p.stdout == b"final"
