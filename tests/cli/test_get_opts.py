"""tcpkit get's curl-like options, -H/--header, -o/--output, -I/--head and
--compressed, against raw-socket responders and Debian's nginx started
here on a loopback port."""
import gzip
import os
import select
import socket
import subprocess
import time
import zlib

import pytest

from conftest import TCPKIT, check_sanitizer, free_port, need, run
from test_get import read_request, responder, url, version, \
    wait_client_close

TIMEOUT = 20


def get(args, timeout=TIMEOUT):
    return run(["get"] + list(args), timeout=timeout)


def leftovers(directory):
    """Files -o may have left: anything starting with a dot."""
    return [n for n in os.listdir(directory) if n.startswith(".")]


# --- -H/--header -------------------------------------------------------------

def test_header_is_sent_and_replaces_the_defaults(pyserver):
    srv = pyserver(responder(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
                             b"ok"))
    p = get(["-H", "X-Test: a  b", "--header", "User-Agent: mine/1",
             "-H", "Host: example.test", "-H", "Accept: text/plain",
             "-H", "X-Empty:", url(srv, "/p")])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"ok"
    assert srv.received == [
        b"GET /p HTTP/1.1\r\nHost: example.test\r\nUser-Agent: mine/1\r\n"
        b"Accept: text/plain\r\nConnection: close\r\nX-Test: a  b\r\n"
        b"X-Empty:\r\n\r\n"]


@pytest.mark.parametrize("header", [
    "NoColon", "Bad Name: x", ": x", "X: a\r\nInjected: 1", "X: a\nB: c",
    "X: a\rB", "X: \x01", ""])
def test_malformed_header_is_a_usage_error(header):
    # Nothing listens: a connection attempt would be exit 69, not 64.
    u = "http://127.0.0.1:%d/" % free_port()
    p = get(["-H", header, u])
    assert p.returncode == 64, p.stderr
    assert p.stdout == b""
    err = p.stderr.decode()
    assert err.startswith("tcpkit: get: -H/--header '"), err
    assert err.endswith(": expected 'NAME: VALUE' (a token, a colon, no "
                        "CR, LF or other controls) (see 'tcpkit help "
                        "get')\n"), err
    assert "\r" not in err and err.count("\n") == 1


def test_host_and_credentials_stay_with_the_first_host(pyserver):
    """-L to another host: the -H Host and Authorization are not sent
    there (curl does the same for credentials)."""
    far = pyserver(responder(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"
                             b"far"))
    near = pyserver(responder(b"HTTP/1.1 302 Found\r\nLocation: "
                              b"http://localhost:%d/x\r\nContent-Length: 0"
                              b"\r\n\r\n" % far.port))
    p = get(["-L", "-H", "Authorization: Bearer s3cret", "-H",
             "Host: near.test", "-H", "X-Any: 1", url(near)])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"far"
    assert b"Authorization: Bearer s3cret\r\n" in near.received[0]
    assert b"Host: near.test\r\n" in near.received[0]
    assert far.received == [
        b"GET /x HTTP/1.1\r\nHost: localhost:%d\r\nUser-Agent: tcpkit/%s\r\n"
        b"Accept: */*\r\nConnection: close\r\nX-Any: 1\r\n\r\n"
        % (far.port, version().encode())]


# --- -o/--output -------------------------------------------------------------

def test_output_file_written_whole(pyserver, tmp_path):
    body = os.urandom(300000)
    srv = pyserver(responder(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"
                             % len(body) + body))
    out = tmp_path / "body.bin"
    p = get(["-o", str(out), url(srv)])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"" and p.stderr == b""
    assert out.read_bytes() == body
    assert leftovers(tmp_path) == []
    # The mode any new file gets, not mkstemp's 0600.
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_output_untouched_when_the_body_is_cut(pyserver, tmp_path):
    srv = pyserver(responder(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
                             b"12345", keep_open=False))
    out = tmp_path / "page"
    out.write_bytes(b"the old content")
    p = get(["--output", str(out), url(srv)])
    assert p.returncode == 76
    assert p.stderr.decode() == ("tcpkit: get %s: connection closed after 5 "
                                 "of 10 body bytes\n" % url(srv))
    assert out.read_bytes() == b"the old content"
    assert leftovers(tmp_path) == []


def test_output_not_created_on_fail(pyserver, tmp_path):
    srv = pyserver(responder(b"HTTP/1.1 404 Not Found\r\nContent-Length: 4"
                             b"\r\n\r\ngone"))
    out = tmp_path / "x"
    p = get(["-f", "-o", str(out), url(srv)])
    assert p.returncode == 1
    assert os.listdir(tmp_path) == []


def test_output_in_a_missing_directory(tmp_path):
    out = tmp_path / "no" / "such" / "file"
    # Checked before any I/O: nothing listens, and the error is the file's.
    p = get(["-o", str(out), "http://127.0.0.1:%d/" % free_port()])
    assert p.returncode == 73
    assert p.stderr.decode() == ("tcpkit: get %s: cannot create: No such "
                                 "file or directory\n" % out)


# --- -I/--head ---------------------------------------------------------------

def test_head_request_prints_the_head_and_reads_no_body(pyserver):
    head = (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n"
            b"Content-Type: text/plain\r\n\r\n")
    # The server keeps the connection open: tcpkit must not wait for the
    # 1000 bytes a GET would get.
    srv = pyserver(responder(head))
    p = get(["-I", url(srv, "/h")], timeout=10)
    assert p.returncode == 0, p.stderr
    assert p.stdout == head
    assert srv.received[0].startswith(b"HEAD /h HTTP/1.1\r\n")


# --- --compressed ------------------------------------------------------------

TEXT = b"".join(b"line %d of a text that compresses well\n" % i
                for i in range(5000))


def compressing(encoder, coding, chunked=False):
    def handler(conn, srv):
        req = read_request(conn)
        srv.received.append(req)
        data = encoder(TEXT)
        head = b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\n" % coding
        if chunked:
            conn.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")
            for i in range(0, len(data), 1000):
                part = data[i:i + 1000]
                conn.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            conn.sendall(b"0\r\n\r\n")
        else:
            conn.sendall(head + b"Content-Length: %d\r\n\r\n" % len(data)
                         + data)
        wait_client_close(conn)
    return handler


@pytest.mark.parametrize("encoder,coding,chunked", [
    (gzip.compress, b"gzip", False),
    (gzip.compress, b"gzip", True),
    (zlib.compress, b"deflate", False),
    (lambda d: gzip.compress(d[:1000]) + gzip.compress(d[1000:]), b"gzip",
     False),
])
def test_compressed_body_is_inflated(pyserver, encoder, coding, chunked):
    srv = pyserver(compressing(encoder, coding, chunked))
    p = get(["--compressed", url(srv)])
    assert p.returncode == 0, p.stderr
    assert p.stdout == TEXT
    assert b"\r\nAccept-Encoding: gzip, deflate\r\n" in srv.received[0]


def test_without_compressed_the_body_is_as_sent(pyserver):
    srv = pyserver(compressing(gzip.compress, b"gzip"))
    p = get([url(srv)])
    assert p.returncode == 0, p.stderr
    assert p.stdout == gzip.compress(TEXT)
    assert b"Accept-Encoding" not in srv.received[0]


@pytest.mark.parametrize("mangle,why", [
    (lambda d: d[:20] + bytes(b ^ 0x55 for b in d[20:40]) + d[40:],
     "corrupt gzip body: "),
    (lambda d: d[:len(d) // 2], "compressed body cut short"),
    (lambda d: d + b"junk", "corrupt gzip body: "),
])
def test_corrupt_compressed_body_is_an_error(pyserver, tmp_path, mangle, why):
    srv = pyserver(compressing(lambda d: mangle(gzip.compress(d)), b"gzip"))
    out = tmp_path / "f"
    p = get(["--compressed", "-o", str(out), url(srv)])
    assert p.returncode == 76, p.stderr
    assert p.stderr.decode().startswith("tcpkit: get %s: %s"
                                        % (url(srv), why)), p.stderr
    assert os.listdir(tmp_path) == []


# --- against nginx -----------------------------------------------------------

NGINX_CONF = """
worker_processes 1;
master_process off;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
    default_type text/plain;
    gzip on;
    gzip_min_length 1;
    gzip_types text/plain;
    server {{
        listen 127.0.0.1:{port};
        root {dir}/www;
        location = /echo {{
            return 200 "x-test=$http_x_test ua=$http_user_agent\\n";
        }}
    }}
}}
"""


@pytest.fixture
def nginx(tmp_path):
    """Debian's nginx on a free loopback port (nginx cannot listen on port
    0: a port is picked by binding and closing, and another tried if it
    was taken meanwhile).  Yields its base URL."""
    need("nginx")
    exe = "nginx"
    (tmp_path / "www").mkdir()
    (tmp_path / "tmp").mkdir()
    (tmp_path / "www" / "text.txt").write_bytes(TEXT)
    for attempt in range(5):
        port = free_port()
        conf = tmp_path / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=tmp_path, port=port))
        proc = subprocess.Popen([exe, "-p", str(tmp_path), "-c", str(conf),
                                 "-g", "error_log stderr;"],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        up = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                up = True
                break
            except OSError:
                # Wake at once if nginx says something (a bind error).
                select.select([proc.stderr], [], [], 0.05)
        if up:
            break
        proc.kill()
        err = proc.communicate(timeout=10)[1]
        if b"Address already in use" not in err:
            pytest.fail("nginx did not start: %s" % err.decode())
    else:
        pytest.fail("no free port for nginx in 5 tries")
    yield "http://127.0.0.1:%d" % port
    proc.kill()
    proc.communicate(timeout=10)


def test_nginx_header(nginx):
    p = get(["-H", "X-Test: hello there", "-H", "User-Agent: probe/2",
             nginx + "/echo"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"x-test=hello there ua=probe/2\n"


def test_nginx_head(nginx):
    p = get(["-I", nginx + "/text.txt"])
    assert p.returncode == 0, p.stderr
    head = p.stdout.decode()
    assert head.startswith("HTTP/1.1 200 OK\r\n"), head
    assert "\r\nContent-Length: %d\r\n" % len(TEXT) in head
    assert head.endswith("\r\n\r\n")


def test_nginx_output(nginx, tmp_path):
    out = tmp_path / "copy.txt"
    p = get(["-o", str(out), nginx + "/text.txt"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b""
    assert out.read_bytes() == TEXT
    p = get(["-f", "-o", str(out), nginx + "/missing"])
    assert p.returncode == 1
    assert p.stderr.decode() == ("tcpkit: get %s/missing: server answered "
                                 "404 Not Found\n" % nginx)
    assert out.read_bytes() == TEXT


def test_nginx_compressed(nginx):
    p = get(["--compressed", "-i", nginx + "/text.txt"])
    assert p.returncode == 0, p.stderr
    head, _, body = p.stdout.partition(b"\r\n\r\n")
    # nginx really sent gzip (chunked, as it compresses on the fly).
    assert b"\r\nContent-Encoding: gzip\r\n" in head + b"\r\n"
    assert body == TEXT
    p = get([nginx + "/text.txt"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == TEXT
