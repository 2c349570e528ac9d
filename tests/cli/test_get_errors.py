"""tcpkit get: the negative twins: every failure of the network, the
response and the command line, with its exit code and its exact one-line
message, against raw-socket responders."""
import re
import select
import socket
import threading
import time

import pytest

from gethelpers import (TIMEOUT, expected_request, get, ok, read_request,
                        responder, url, wait_client_close)
from tkhelpers import free_port, run

UNKNOWN = "no-such-host.invalid"


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
     "malformed URL: port 99999 is out of range (1-65535)"),  # port-ok
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
