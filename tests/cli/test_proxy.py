"""--proxy on connect and send: SOCKS5 and SOCKS4 through Dante (with and
without username/password), HTTP CONNECT through tinyproxy (Basic auth),
SOCKS4a and broken proxies as Python fakes, TLS to the target through the
tunnel; and every failure's message and exit code."""
import socket

import pytest

from clienthelpers import err_line, peer, usage
from proxyhelpers import (DANTE_PASS, DANTE_USER, TINY_PASS, TINY_USER,
                          FakeProxy, recv_exact, socks4a_handler,
                          socks5_handler, start_dante, start_tinyproxy)
from tkhelpers import free_port, run

UNAVAILABLE, PROTOCOL, NOPERM = 69, 76, 77


@pytest.fixture
def proxies():
    started = []

    def keep(p):
        started.append(p)
        return p

    yield keep
    for p in started:
        p.stop() if hasattr(p, "stop") else p.close()


def greeter(conn):
    """The target: says hello first, then answers what it got."""
    conn.sendall(b"hello from the target\n")
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(100)
        if not chunk:
            break
        data += chunk
    conn.sendall(b"got: " + data)
    return data


def via(p, scheme="socks5", cred=""):
    return "%s://%s127.0.0.1:%d" % (scheme, cred, p.port)


def check_through(args, target, extra=()):
    p = run(["connect"] + list(extra) + ["--proxy"] + args, input=b"ping\n")
    assert p.stderr == b""
    assert p.returncode == 0
    assert p.stdout == b"hello from the target\ngot: ping\n"
    assert target.result() == b"ping\n"


def test_socks5_dante(tmp_path, proxies, pyserver):
    d = proxies(start_dante(tmp_path))
    t = peer(pyserver, greeter)
    check_through([via(d), "127.0.0.1", str(t.port)], t)


def test_socks5h_sends_the_name_dante_resolves(tmp_path, proxies, pyserver):
    d = proxies(start_dante(tmp_path))
    t = peer(pyserver, greeter)
    check_through([via(d, "socks5h"), "localhost:%d" % t.port], t)


@pytest.mark.parametrize("scheme,atyp,host", [("socks5", 1, "127.0.0.1"),
                                              ("socks5h", 3, "localhost")])
def test_socks5_who_resolves(proxies, pyserver, scheme, atyp, host):
    """socks5:// sends the address tcpkit resolved; socks5h:// the name."""
    fp = proxies(FakeProxy(socks5_handler))
    t = peer(pyserver, greeter)
    check_through([via(fp, scheme), "localhost" if atyp == 3 else
                   "127.0.0.1", str(t.port)], t)
    assert fp.seen == [(atyp, host, t.port)]


def test_socks5_resolves_the_name_here(proxies):
    """socks5:// to a name: the proxy is sent an address, IPv4 or IPv6
    (whichever the resolver gives first), never the name."""
    def answer(c, fp):
        socks5_request = recv_exact(c, 3)
        assert socks5_request == b"\5\1\0"
        c.sendall(b"\5\0")
        req = recv_exact(c, 4)
        n = {1: 4, 4: 16}.get(req[3], 0)
        fp.seen.append((req[3], recv_exact(c, n + 2)[n:]))
        c.sendall(b"\5\0\0\1\0\0\0\0\0\0" + b"answered\n")
    fp = proxies(FakeProxy(answer))
    p = run(["connect", "--proxy", via(fp), "localhost", "4321"], input=b"")
    assert p.stdout == b"answered\n"
    assert p.returncode == 0, p.stderr
    assert fp.seen[0][0] in (1, 4)
    assert fp.seen[0][1] == (4321).to_bytes(2, "big")


def test_socks5_auth_dante(tmp_path, proxies, pyserver):
    d = proxies(start_dante(tmp_path, auth=True))
    t = peer(pyserver, greeter)
    check_through([via(d, cred="%s:%s@" % (DANTE_USER, DANTE_PASS)),
                   "127.0.0.1", str(t.port)], t)


def test_socks5_wrong_password(tmp_path, proxies, pyserver):
    d = proxies(start_dante(tmp_path, auth=True))
    t = pyserver(lambda c, s: None)
    p = run(["connect", "--proxy", via(d, cred=DANTE_USER + ":nope@"),
             "127.0.0.1", str(t.port)], input=b"")
    assert p.returncode == NOPERM
    assert p.stderr == err_line(
        "127.0.0.1:%d via socks5://%s@127.0.0.1:%d" % (t.port, DANTE_USER,
                                                      d.port),
        "proxy authentication failed (the SOCKS5 proxy refused user "
        "'%s' (status 1))" % DANTE_USER)
    assert b"nope" not in p.stderr


def test_socks5_no_credentials_for_an_auth_proxy(tmp_path, proxies):
    d = proxies(start_dante(tmp_path, auth=True))
    p = run(["send", "--proxy", via(d), "127.0.0.1", "9", "x"])
    assert p.returncode == NOPERM
    assert p.stderr == err_line(
        "127.0.0.1:9 via socks5://127.0.0.1:%d" % d.port,
        "proxy authentication failed (the SOCKS5 proxy wants a user and a "
        "password)", cmd="send")


def test_socks5_target_refused(tmp_path, proxies):
    d = proxies(start_dante(tmp_path))
    port = free_port()
    p = run(["connect", "--proxy", via(d), "127.0.0.1", str(port)],
            input=b"")
    assert p.returncode == UNAVAILABLE
    assert p.stderr == err_line(
        "127.0.0.1:%d via socks5://127.0.0.1:%d" % (port, d.port),
        "the proxy could not reach the target (SOCKS5 reply 5: connection "
        "refused)")


def test_proxy_down():
    port = free_port()
    p = run(["connect", "--proxy", "socks5://127.0.0.1:%d" % port,
             "127.0.0.1", "9"], input=b"")
    assert p.returncode == UNAVAILABLE
    assert p.stderr == err_line(
        "127.0.0.1:9 via socks5://127.0.0.1:%d" % port, "Connection refused")


def test_socks4_dante(tmp_path, proxies, pyserver):
    d = proxies(start_dante(tmp_path))
    t = peer(pyserver, greeter)
    check_through([via(d, "socks4a"), "127.0.0.1", str(t.port)], t)


def test_socks4a_sends_the_name(proxies, pyserver):
    fp = proxies(FakeProxy(socks4a_handler))
    t = peer(pyserver, greeter)
    check_through([via(fp, "socks4a", "someone@"), "localhost",
                   str(t.port)], t)
    assert fp.seen == [("localhost", t.port, b"someone")]


def test_http_connect_tinyproxy(tmp_path, proxies, pyserver):
    tp = proxies(start_tinyproxy(tmp_path))
    # Percent-encoded in the URL, decoded before it is sent.
    cred = "%%%02x%s:%s@" % (ord(TINY_USER[0]), TINY_USER[1:], TINY_PASS)
    t = peer(pyserver, greeter)
    # tinyproxy ends the tunnel at the client's FIN: none is sent.
    check_through([via(tp, "http", cred), "127.0.0.1", str(t.port)], t,
                  extra=["--no-shutdown"])


def test_http_connect_wrong_password(tmp_path, proxies):
    tp = proxies(start_tinyproxy(tmp_path))
    p = run(["connect", "--proxy", via(tp, "http", TINY_USER + ":bad@"),
             "127.0.0.1", "9"], input=b"")
    assert p.returncode == NOPERM
    assert p.stderr == err_line(
        "127.0.0.1:9 via http://%s@127.0.0.1:%d" % (TINY_USER, tp.port),
        "proxy authentication failed (HTTP 401 Unauthorized)")


def test_http_connect_target_refused(tmp_path, proxies):
    tp = proxies(start_tinyproxy(tmp_path, auth=False))
    port = free_port()
    p = run(["connect", "--proxy", via(tp, "http"), "127.0.0.1", str(port)],
            input=b"")
    assert p.returncode == UNAVAILABLE
    assert p.stderr.startswith(err_line(
        "127.0.0.1:%d via http://127.0.0.1:%d" % (port, tp.port),
        "the proxy could not reach the target (HTTP 500")[:-1])


def test_proxy_speaking_garbage(proxies):
    def ssh(c, fp):
        c.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
        c.recv(100)
    fp = proxies(FakeProxy(ssh))
    p = run(["connect", "--proxy", via(fp), "127.0.0.1", "9"], input=b"")
    assert p.returncode == PROTOCOL
    assert p.stderr == err_line(
        "127.0.0.1:9 via socks5://127.0.0.1:%d" % fp.port,
        "proxy protocol error (not a SOCKS5 answer from the proxy)")


def test_no_byte_past_the_reply_is_lost(proxies):
    """The target's first bytes come in the same segment as the proxy's
    reply: they are the target's, and printed."""
    def fake(c, fp):
        assert recv_exact(c, 3) == b"\5\1\0"
        c.sendall(b"\5\0")
        req = recv_exact(c, 10)
        fp.seen.append(req)
        c.sendall(b"\5\0\0\1\x7f\0\0\1\0\1" + b"banner right behind\n")
        c.shutdown(socket.SHUT_WR)
        c.recv(100)
    fp = proxies(FakeProxy(fake))
    # addr-ok: the fake proxy only reads the request; nothing goes there
    p = run(["connect", "--proxy", via(fp), "10.1.2.3", "4567"], input=b"")  # addr-ok
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"banner right behind\n"
    assert fp.seen == [b"\5\1\0\1\x0a\1\2\3\x11\xd7"]


def test_http_connect_head_then_target_bytes(proxies):
    def fake(c, fp):
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += c.recv(1)
        fp.seen.append(head)
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\nfirst\n")
        c.shutdown(socket.SHUT_WR)
        c.recv(100)
    fp = proxies(FakeProxy(fake))
    p = run(["connect", "--proxy", via(fp, "http", "u:p@"), "example.test",
             "443"], input=b"")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"first\n"
    head = fp.seen[0].decode()
    assert head.startswith("CONNECT example.test:443 HTTP/1.1\r\n"
                           "Host: example.test:443\r\n"
                           "Proxy-Authorization: Basic dTpw\r\n")


def test_tls_through_the_tunnel(tmp_path, proxies, serve, certs):
    d = proxies(start_dante(tmp_path))
    srv = serve("--tls", "--cert", certs["srv"], "--key", certs["srv_key"],
                "-H", "127.0.0.1", "echo")
    p = run(["connect", "--proxy", via(d, "socks5h"), "--cacert",
             certs["ca"], "tls://localhost:%d" % srv.port], input=b"sealed\n")
    assert p.stderr == b""
    assert p.returncode == 0
    assert p.stdout == b"sealed\n"


def test_tls_through_the_tunnel_name_mismatch(tmp_path, proxies, serve,
                                              certs):
    d = proxies(start_dante(tmp_path))
    srv = serve("--tls", "--cert", certs["wrong"], "--key",
                certs["wrong_key"], "-H", "127.0.0.1", "echo")
    p = run(["connect", "--proxy", via(d, "socks5h"), "--cacert",
             certs["ca"], "tls://localhost:%d" % srv.port], input=b"x\n")
    assert p.returncode == PROTOCOL
    assert p.stdout == b""
    assert b"certificate name mismatch" in p.stderr
    assert p.stderr.startswith(b"tcpkit: connect localhost:%d via "
                               b"socks5h://127.0.0.1:%d: " % (srv.port,
                                                              d.port))


@pytest.mark.parametrize("url,why", [
    ("ftp://127.0.0.1:1", "unknown proxy scheme (socks5, socks5h, socks4a "
     "or http)"),
    ("socks5://:1080", "no proxy host in the URL"),
    ("socks5://h:99999", "bad port in the proxy URL"),
    ("socks5://u:p%zz@h", "bad user or password in the proxy URL (each 1 "
     "to 255 bytes, percent-encoded)"),
    ("socks5://h:1/path", "a proxy URL has no path, query or fragment"),
])
def test_bad_proxy_url(url, why):
    p = run(["connect", "--proxy", url, "127.0.0.1", "9"], input=b"")
    assert p.returncode == 64
    assert p.stderr == usage("--proxy: " + why)


def test_proxy_and_unix_exclude(tmp_path):
    p = run(["connect", "--proxy", "socks5://127.0.0.1:1", "unix:/nope"],
            input=b"")
    assert p.returncode == 64
    assert p.stderr == usage("--proxy is for TCP targets, not UNIX sockets")


# --- get: --proxy, --noproxy and the environment, as curl reads them --------

def http_target(conn):
    """An HTTP server for one request: answers with the request line."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(4096)
        if not chunk:
            break
        head += chunk
    line = head.split(b"\r\n")[0]
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                 b"Connection: close\r\n\r\n%s" % (len(line), line))
    return line


def get_env(**kw):
    """The environment with no proxy variable but those given."""
    import os
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("all_proxy", "http_proxy", "https_proxy",
                                "no_proxy")}
    env.update(kw)
    return env


def test_get_all_proxy(tmp_path, proxies, pyserver):
    d = proxies(start_dante(tmp_path))
    t = peer(pyserver, http_target)
    p = run(["get", "http://localhost:%d/x" % t.port],
            env=get_env(ALL_PROXY=via(d, "socks5h")))
    assert p.stderr == b""
    assert p.returncode == 0
    assert p.stdout == b"GET /x HTTP/1.1"


def test_get_env_proxy_down_names_it(pyserver):
    port = free_port()
    t = pyserver(lambda c, s: None)
    url = "http://127.0.0.1:%d/" % t.port
    p = run(["get", url], env=get_env(all_proxy="socks5://127.0.0.1:%d"
                                      % port))
    assert p.returncode == UNAVAILABLE
    assert p.stderr == err_line("%s via socks5://127.0.0.1:%d" % (url, port),
                                "Connection refused", cmd="get")


@pytest.mark.parametrize("no_proxy", ["localhost", "*", ".localhost",
                                      "example.com, localhost"])
def test_get_no_proxy(pyserver, no_proxy):
    t = peer(pyserver, http_target)
    dead = "socks5://127.0.0.1:%d" % free_port()
    p = run(["get", "http://localhost:%d/direct" % t.port],
            env=get_env(ALL_PROXY=dead, NO_PROXY=no_proxy))
    assert p.stderr == b""
    assert p.stdout == b"GET /direct HTTP/1.1"


def test_get_noproxy_flag_and_empty_proxy(pyserver):
    dead = "socks5://127.0.0.1:%d" % free_port()
    for args in (["--noproxy", "*"], ["--proxy", ""]):
        t = peer(pyserver, http_target)
        p = run(["get"] + args + ["http://localhost:%d/" % t.port],
                env=get_env(ALL_PROXY=dead))
        assert p.stderr == b"", args
        assert p.returncode == 0


def test_get_scheme_variables(pyserver):
    """https_proxy is not for http://; http_proxy is, in lower case only
    (a CGI program's HTTP_PROXY comes from a request's Proxy header)."""
    dead = "socks5://127.0.0.1:%d" % free_port()
    for env in ({"https_proxy": dead}, {"HTTPS_PROXY": dead},
                {"HTTP_PROXY": dead}):
        t = peer(pyserver, http_target)
        p = run(["get", "http://localhost:%d/" % t.port], env=get_env(**env))
        assert p.stderr == b"", env
    p = run(["get", "http://localhost:9/"], env=get_env(http_proxy=dead))
    assert p.returncode == UNAVAILABLE
    assert b" via socks5://" in p.stderr


# --- bench ------------------------------------------------------------------

def test_bench_through_dante(tmp_path, proxies, serve):
    d = proxies(start_dante(tmp_path))
    srv = serve("-H", "127.0.0.1", "echo")
    p = run(["bench", "echo", "--proxy", via(d), "-c", "2", "-n", "20",
             "--json", "127.0.0.1", str(srv.port)], timeout=60)
    assert p.returncode == 0, p.stderr
    import json
    r = json.loads(p.stdout)
    assert r["messages"] == 40
    assert r["errors"]["total"] == 0


def test_bench_proxy_down():
    port = free_port()
    p = run(["bench", "echo", "--proxy", "socks5://127.0.0.1:%d" % port,
             "-c", "1", "-n", "1", "127.0.0.1", "9"], timeout=60)
    assert p.returncode == UNAVAILABLE
    assert p.stderr == err_line(
        "127.0.0.1:9 via socks5://127.0.0.1:%d" % port,
        "Connection refused (no connection could be established)",
        cmd="bench")


def test_silent_proxy_times_out(proxies):
    """A proxy that accepts and says nothing: the handshake is part of the
    connect, under its deadline."""
    def silent(c, fp):
        c.settimeout(10)
        try:
            c.recv(100)
            c.recv(100)
        except OSError:
            pass
    fp = proxies(FakeProxy(silent))
    p = run(["connect", "-w", "500ms", "--proxy", via(fp), "127.0.0.1",
             "9"], input=b"")
    assert p.returncode == 75
    assert p.stderr == err_line(
        "127.0.0.1:9 via socks5://127.0.0.1:%d" % fp.port,
        "connect timed out after 500ms")


def test_proxy_closes_before_answering(proxies):
    def rude(c, fp):
        recv_exact(c, 3)
    fp = proxies(FakeProxy(rude))
    p = run(["connect", "--proxy", via(fp), "127.0.0.1", "9"], input=b"")
    assert p.returncode == PROTOCOL
    assert p.stderr == err_line(
        "127.0.0.1:9 via socks5://127.0.0.1:%d" % fp.port,
        "proxy protocol error (the proxy closed the connection before its "
        "answer)")


def https_target(certs):
    """An HTTPS server for one request, on loopback port 0."""
    import ssl
    import threading
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certs["srv"], certs["srv_key"])
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(4)

    def serve_one():
        lst.settimeout(15)
        try:
            c, _ = lst.accept()
        except OSError:
            return
        with ctx.wrap_socket(c, server_side=True) as s:
            s.settimeout(15)
            http_target(s)
    t = threading.Thread(target=serve_one, daemon=True)
    t.start()
    return lst, t


def test_get_https_through_the_tunnel(tmp_path, proxies, certs):
    d = proxies(start_dante(tmp_path))
    lst, t = https_target(certs)
    try:
        port = lst.getsockname()[1]
        p = run(["get", "--proxy", via(d, "socks5h"), "--cacert",
                 certs["ca"], "https://localhost:%d/sealed" % port],
                env=get_env())
        assert p.stderr == b""
        assert p.returncode == 0
        assert p.stdout == b"GET /sealed HTTP/1.1"
    finally:
        t.join(15)
        lst.close()


@pytest.mark.parametrize("cmd", [["connect"], ["get"], ["bench", "echo"]])
def test_password_hidden_from_ps(proxies, cmd):
    """Once parsed, the password in --proxy is overwritten: other users
    can read a process's arguments."""
    import subprocess
    import threading
    from tkhelpers import TCPKIT
    reached = threading.Event()

    def hold(c, fp):
        reached.set()
        c.settimeout(10)
        try:
            c.recv(100)
        except OSError:
            pass
    fp = proxies(FakeProxy(hold))
    target = ["http://127.0.0.1:9/"] if cmd == ["get"] else ["127.0.0.1",
                                                             "9"]
    p = subprocess.Popen([TCPKIT] + cmd + ["--proxy",
                                           via(fp, cred="u:sekrit@")] +
                         target, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert reached.wait(15), "tcpkit never reached the proxy"
        with open("/proc/%d/cmdline" % p.pid, "rb") as f:
            args = f.read()
        assert b"sekrit" not in args
        assert b"u:******@127.0.0.1" in args
    finally:
        p.kill()
        p.wait()
