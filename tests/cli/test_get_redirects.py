"""tcpkit get and redirects: without -L/--location it says where to; with
it every redirect status is followed across hosts and chains, with -i and
-f, under the limit and --max-time; malformed Locations, other schemes and
https to http are refused (unless asked); against raw-socket responders."""
import re
import ssl
import time

import pytest

from gethelpers import (expected_request, get, https_url, ok, read_request,
                        responder, url, wait_client_close)


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
