"""TLS against the peers of other projects: openssl s_client and
s_server speaking old protocols or weak ciphers (refused, with the alert
that says why), session resumption, Python's ssl module, curl, and `get
https://` against s_server and a Python server, with certificates made at
test time (tlscerts.py)."""
import re
import shutil
import socket
import ssl
import subprocess
import threading

import pytest

from tkhelpers import check_sanitizer, run, shim_env
from tlshelpers import (ALERT_PROTOCOL_VERSION, PIN_HINT, PROTO, TIMEOUT,
                        cert_fp, closed_line, lines, msg_records, recv_exact,
                        s_server, tls_serve)


ALERT_HANDSHAKE_FAILURE = 40


# --- peers speaking old protocols or weak ciphers -------------------------

def s_client(port, *args, input=b""):
    # -no_ign_eof last: -quiet would turn ign_eof back on.
    return subprocess.run(["openssl", "s_client", "-connect",
                           "127.0.0.1:%d" % port] + list(args) +
                          ["-no_ign_eof"], input=input, capture_output=True,
                          timeout=TIMEOUT)


V = ALERT_PROTOCOL_VERSION
H = ALERT_HANDSHAKE_FAILURE


@pytest.mark.parametrize("args,why,alert", [
    (["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"],
     "TLS protocol version not accepted", V),
    (["-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"],
     "TLS protocol version not accepted", V),
    (["-tls1_2", "-cipher", "AES128-SHA256"], "TLS handshake failure", H),
    (["-tls1_2", "-cipher", "AES128-GCM-SHA256"], "TLS handshake failure",
     H),
    (["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"],
     "TLS handshake failure", H),
    (["-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256"],
     "TLS handshake failure", H),
])
def test_server_refuses_weak_peers(serve, certs, args, why, alert):
    """Refused for the right reason, read off the wire: the server's only
    answer is one fatal alert (protocol_version for an old version,
    handshake_failure for a weak suite), no ServerHello, no cipher."""
    srv = tls_serve(serve, certs)
    start = lines(srv)
    p = s_client(srv.port, "-msg", *args, input=b"secret\n")
    assert p.returncode != 0
    got = [(r[1], bytes(r[2])) for r in msg_records(p.stdout.decode())
           if r[0] == "<<<"]
    assert got == [("Alert", bytes([2, alert]))], p.stdout
    assert b"Cipher is (NONE)" in p.stdout
    assert closed_line(srv, start=start) == (0, 0, why)


def test_tls_min_13_server(serve, certs):
    srv = tls_serve(serve, certs, "--tls-min", "1.3")
    start = lines(srv)
    p = s_client(srv.port, "-msg", "-tls1_2", input=b"x\n")
    assert p.returncode != 0
    got = [(r[1], bytes(r[2])) for r in msg_records(p.stdout.decode())
           if r[0] == "<<<"]
    assert got == [("Alert", bytes([2, ALERT_PROTOCOL_VERSION]))], p.stdout
    assert b"Cipher is (NONE)" in p.stdout
    assert closed_line(srv, start=start) == \
        (0, 0, "TLS protocol version not accepted")


# --- interoperability -----------------------------------------------------

def test_s_client_verifies_tcpkit(serve, certs):
    # basic answers one message and closes: s_client waits for that.
    srv = tls_serve(serve, certs, "basic")
    p = subprocess.run(["openssl", "s_client", "-connect",
                        "127.0.0.1:%d" % srv.port, "-CAfile", certs["ca"],
                        "-verify_return_error", "-verify_hostname",
                        "localhost", "-quiet"], input=b"from s_client",
                       capture_output=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert re.match(rb"You connected at \[.*\]\nYou sent: \[from s_client\]",
                    p.stdout), p.stdout


def test_session_resumption_with_tickets(serve, certs):
    srv = tls_serve(serve, certs)
    ctx = ssl.create_default_context(cafile=certs["ca"])
    session = None
    for attempt in range(2):
        with socket.create_connection(("localhost", srv.port)) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost",
                                 session=session) as s:
                s.settimeout(TIMEOUT)
                s.sendall(b"ticket\n")
                # The tickets come before the echo: the session is ready.
                assert recv_exact(s, 7) == b"ticket\n"
                assert s.session_reused == (attempt == 1)
                session = s.session
    assert session.has_ticket


def test_python_ssl_client(serve, certs):
    srv = tls_serve(serve, certs)
    ctx = ssl.create_default_context(cafile=certs["ca"])
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx.maximum_version = version
        with socket.create_connection(("localhost", srv.port)) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.settimeout(TIMEOUT)
                assert s.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                       ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[
                                           version]
                # Forward secrecy and AEAD on 1.2 as well.
                name = s.cipher()[0]
                assert "GCM" in name or "CHACHA20" in name, name
                s.sendall(b"py" * 40000)
                got = b""
                while len(got) < 80000:
                    got += s.recv(65536)
                assert got == b"py" * 40000


def test_close_notify_waits_for_a_full_socket(serve, certs, shim):
    """The server's close_notify goes out even when the socket refuses it
    at first.  The short-write shim cuts every server write to 3 bytes and
    fails about one in five with EAGAIN, so the close_notify alert (over
    20 bytes) meets EAGAIN on most connections.  A client that holds a
    FIN without close_notify for an error (as a truncation attack would
    look) sees a clean end every time."""
    srv = serve("basic", "--tls", "--cert", certs["srv"], "--key",
                certs["srv_key"], "-w", "1", listeners=2,
                env=shim_env(shim, 3))
    ctx = ssl.create_default_context(cafile=certs["ca"])
    # Python sets this by default; without it OpenSSL reports a FIN that
    # came without close_notify.
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    for i in range(20):
        with socket.create_connection(("localhost", srv.port),
                                      timeout=TIMEOUT) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost",
                                 suppress_ragged_eofs=False) as s:
                s.sendall(b"hello %d\n" % i)
                got = b""
                while True:
                    try:
                        d = s.recv(4096)
                    except ssl.SSLError as e:
                        pytest.fail("connection %d: FIN without "
                                    "close_notify after %r: %s" % (i, got, e))
                    if not d:
                        break
                    got += d
                # And the FIN follows the close_notify.
                with s.unwrap() as plain:
                    assert plain.recv(1) == b""
        assert got.startswith(b"You connected at "), got
        assert got.endswith(b"You sent: [hello %d\n]\n" % i), got
    assert srv.stop() == 0
    check_sanitizer(srv.err.text())


def test_curl_fetches_over_tls(serve, certs):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    srv = tls_serve(serve, certs, "basic")
    p = subprocess.run(["curl", "-sS", "-v", "--http0.9", "--max-time", "10",
                        "--cacert", certs["ca"],
                        "https://localhost:%d/tls" % srv.port],
                       capture_output=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert b"SSL certificate verify ok" in p.stderr
    assert re.match(rb"You connected at \[.*\]\nYou sent: \[GET /tls "
                    rb"HTTP/1\.1\r\n", p.stdout), p.stdout
    # And its twin: no CA, no exchange.
    p = subprocess.run(["curl", "-sS", "--http0.9", "--max-time", "10",
                        "https://localhost:%d/" % srv.port],
                       capture_output=True, timeout=TIMEOUT)
    assert p.returncode == 60, p.stderr


def test_get_https_from_s_server(certs):
    s, port = s_server(certs, "-www")
    try:
        p = run(["get", "-v", "--cacert", certs["ca"],
                 "https://localhost:%d/" % port])
        assert p.returncode == 0, p.stderr
        assert b"<HTML><BODY BGCOLOR=\"#ffffff\">" in p.stdout
        assert b"tls: subject CN=localhost" in p.stderr
    finally:
        s.kill()
        s.wait()


class TLSPyServer:
    """A Python ssl server: records what it receives after its handshake,
    and answers an HTTP response."""

    def __init__(self, certs, cert="srv", request_client=False):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(certs[cert], certs[cert + "_key"])
        if request_client:
            self.ctx.load_verify_locations(certs["ca"])
            self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.errors = []
        self.peer = None
        self.done = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        conn, _ = self.sock.accept()
        conn.settimeout(TIMEOUT)
        try:
            with self.ctx.wrap_socket(conn, server_side=True) as s:
                self.peer = s.getpeercert()
                while b"\r\n\r\n" not in self.received:
                    d = s.recv(4096)
                    if not d:
                        break
                    self.received += d
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
        except (ssl.SSLError, OSError) as e:
            self.errors.append(e)
        finally:
            self.done.set()

    def close(self):
        self.sock.close()


def test_get_https_python_server(certs):
    srv = TLSPyServer(certs)
    try:
        p = run(["get", "--cacert", certs["ca"],
                 "https://localhost:%d/path" % srv.port])
        assert p.returncode == 0, p.stderr
        assert p.stdout == b"ok\n"
        assert srv.done.wait(TIMEOUT)
        assert srv.received.startswith(b"GET /path HTTP/1.1\r\nHost: "
                                       b"localhost:%d\r\n" % srv.port)
    finally:
        srv.close()


def test_get_https_client_certificate(certs):
    srv = TLSPyServer(certs, request_client=True)
    try:
        p = run(["get", "--cacert", certs["ca"], "--cert", certs["client"],
                 "--key", certs["client_key"],
                 "https://127.0.0.1:%d/" % srv.port])
        assert p.returncode == 0, p.stderr
        assert srv.done.wait(TIMEOUT)
        assert ((("commonName", "tcpkit client"),),) == \
            srv.peer["subject"]
    finally:
        srv.close()


@pytest.mark.parametrize("cert,why", [
    ("wrong", "certificate name mismatch (hostname mismatch)"),
    ("expired", "certificate expired or not yet valid "
     "(certificate has expired)"),
    ("other", "certificate from an untrusted issuer "
     "(unable to get local issuer certificate)" + PIN_HINT),
])
def test_get_https_refuses_and_sends_nothing(certs, cert, why):
    why = why.format(fp=cert_fp(certs[cert]))
    srv = TLSPyServer(certs, cert=cert)
    try:
        url = "https://localhost:%d/secret" % srv.port
        p = run(["get", "--cacert", certs["ca"], url])
        assert p.returncode == PROTO
        assert p.stderr.decode() == "tcpkit: get %s: %s\n" % (url, why)
        assert srv.done.wait(TIMEOUT)
        assert srv.received == b""
        assert srv.errors  # the handshake failed on its side too
    finally:
        srv.close()
