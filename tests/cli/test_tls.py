"""Black-box tests of TLS: `serve --tls`, `connect`/`send --tls` and `get
https://` against each other and against openssl (the peers of other
projects at large: test_tls_interop.py), with certificates made at test
time (tlscerts.py).  Every failure has its twin asserting the exit code,
the exact message and that no application byte crossed."""
import os
import re
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from tkhelpers import recv_all, run
from tlshelpers import (ALERT_PROTOCOL_VERSION, FP_RE, PIN_HINT, PROTO,
                        TIMEOUT, cert_fp, closed_line, lines, msg_records,
                        recv_exact, s_server, tls_serve)


def fail_msg(cmd, host, port, why):
    h = "[%s]" % host if ":" in host else host
    return "tcpkit: %s %s:%d: %s\n" % (cmd, h, port, why)


# --- tcpkit client against tcpkit server -----------------------------------

@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "::1"])
def test_send_verifies_name_and_address(serve, certs, host):
    srv = tls_serve(serve, certs)
    p = run(["send", "--tls", "--cacert", certs["ca"], host, str(srv.port),
             "hello"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"hello"
    assert p.stderr == b""
    assert closed_line(srv) == (5, 5, "done")


def test_connect_verbose_prints_session(serve, certs):
    srv = tls_serve(serve, certs, "--alpn", "h2,http/1.1")
    p = run(["connect", "-v", "--tls", "--cacert", certs["ca"], "--alpn",
             "http/1.1", "localhost", str(srv.port)], input=b"x\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"x\n"
    err = p.stderr.decode()
    assert re.search(r"^tls: TLSv1\.3 TLS_AES_\S+ group x25519 alpn "
                     r"http/1\.1$", err, re.M), err
    assert "tls: subject CN=localhost\n" in err
    assert "tls: issuer CN=tcpkit test CA\n" in err
    assert re.search(r"^tls: valid \d{4}-\d\d-\d\dT\S+Z to \S+Z$", err, re.M)
    fp = subprocess.run(["openssl", "x509", "-in", certs["srv"], "-noout",
                         "-fingerprint", "-sha256"], capture_output=True,
                        text=True).stdout.split("=")[1].strip()
    assert "tls: sha256:%s\n" % fp.replace(":", "").lower() in err


def test_pin_ephemeral_certificate(serve):
    srv = serve("--tls", "-w", "1", listeners=2)
    m = srv.err.wait_for(FP_RE.pattern)
    p = run(["send", "--tls", "--pin", "sha256:" + m.group(1), "127.0.0.1",
             str(srv.port), "pinned"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"pinned"
    # The pin may be written with colons, as openssl prints it.
    fp = ":".join(m.group(1)[i:i + 2] for i in range(0, 64, 2))
    p = run(["send", "--tls", "--pin", "SHA256:" + fp.upper(), "localhost",
             str(srv.port), "again"])
    assert p.returncode == 0, p.stderr


def test_pin_public_key(serve, certs):
    srv = tls_serve(serve, certs, cert="wrong")
    der = subprocess.run(["openssl", "x509", "-in", certs["wrong"], "-noout",
                          "-pubkey"], capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"],
                         input=der, capture_output=True, check=True).stdout
    spki = subprocess.run(["openssl", "dgst", "-sha256", "-r"], input=der,
                          capture_output=True, check=True,
                          text=False).stdout.split()[0].decode()
    p = run(["send", "--tls", "--pin", "sha256:" + spki, "127.0.0.1",
             str(srv.port), "spki"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"spki"


def test_pin_mismatch(serve):
    srv = serve("--tls", "-w", "1", listeners=2)
    fp = srv.err.wait_for(FP_RE.pattern).group(1)
    start = lines(srv)
    p = run(["send", "--tls", "--pin", "sha256:" + "0" * 64, "127.0.0.1",
             str(srv.port), "secret"])
    assert p.returncode == PROTO
    assert p.stdout == b""
    assert p.stderr.decode() == fail_msg(
        "send", "127.0.0.1", srv.port,
        "certificate pin mismatch (the peer's certificate is sha256:%s)" % fp)
    assert closed_line(srv, start=start) == \
        (0, 0, "the peer rejected our certificate")


def test_insecure_warns(serve):
    srv = serve("--tls", "-w", "1", listeners=2)
    p = run(["send", "--tls", "--insecure", "127.0.0.1", str(srv.port),
             "hi"])
    assert p.returncode == 0
    assert p.stdout == b"hi"
    assert p.stderr.decode() == (
        "tcpkit: warning --insecure: the server's certificate is not "
        "checked: anyone on the path can read and change this connection\n")


@pytest.mark.parametrize("cert,host,cacert,why", [
    ("srv", "localhost", "ca2", "certificate from an untrusted issuer "
     "(unable to get local issuer certificate)" + PIN_HINT),
    ("other", "localhost", "ca", "certificate from an untrusted issuer "
     "(unable to get local issuer certificate)" + PIN_HINT),
    (None, "127.0.0.1", None, "certificate from an untrusted issuer "
     "(self-signed certificate)" + PIN_HINT),
    ("wrong", "localhost", "ca", "certificate name mismatch "
     "(hostname mismatch)"),
    ("wrong", "127.0.0.1", "ca", "certificate name mismatch "
     "(IP address mismatch)"),
    ("wrong", "::1", "ca", "certificate name mismatch (IP address mismatch)"),
    ("expired", "localhost", "ca", "certificate expired or not yet valid "
     "(certificate has expired)"),
])
def test_verification_failures(serve, certs, cert, host, cacert, why):
    srv = tls_serve(serve, certs, cert=cert)
    fp = cert_fp(certs[cert]) if cert else \
        srv.err.wait_for(FP_RE.pattern).group(1)
    why = why.format(fp=fp)
    start = lines(srv)
    args = ["send", "--tls", host, str(srv.port), "secret"]
    if cacert:
        args[1:1] = ["--cacert", certs[cacert]]
    p = run(args)
    assert p.returncode == PROTO
    assert p.stdout == b""
    assert p.stderr.decode() == fail_msg("send", host, srv.port, why)
    # The server saw the client's alert, and not one application byte.
    assert closed_line(srv, start=start) == \
        (0, 0, "the peer rejected our certificate")


def test_suggested_pin_is_accepted(serve):
    """The pin an untrusted certificate's failure suggests is one --pin
    takes, and it lets exactly that server in."""
    srv = serve("--tls", "-w", "1", listeners=2)
    p = run(["send", "--tls", "127.0.0.1", str(srv.port), "secret"])
    assert p.returncode == PROTO
    m = re.search(r"; if you trust it: --pin (sha256:[0-9a-f]{64})\n$",
                  p.stderr.decode())
    assert m, p.stderr
    p = run(["send", "--tls", "--pin", m.group(1), "127.0.0.1",
             str(srv.port), "pinned"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"pinned"


def test_servername_overrides_host(serve, certs):
    srv = tls_serve(serve, certs, cert="wrong")
    p = run(["send", "--tls", "--cacert", certs["ca"], "--servername",
             "wrong.example", "127.0.0.1", str(srv.port), "sni"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"sni"


def test_common_name_without_san_is_refused(serve, certs):
    """CN=localhost and no subjectAltName: the name is checked against the
    subjectAltName only, as browsers and curl do."""
    srv = tls_serve(serve, certs, cert="cn_only")
    start = lines(srv)
    p = run(["send", "--tls", "--cacert", certs["ca"], "localhost",
             str(srv.port), "secret"])
    assert p.returncode == PROTO, p.stderr
    assert p.stdout == b""
    assert p.stderr.decode() == fail_msg(
        "send", "localhost", srv.port,
        "certificate name mismatch (hostname mismatch)")
    assert closed_line(srv, start=start) == \
        (0, 0, "the peer rejected our certificate")


def test_partial_wildcard_is_refused(serve, certs):
    """DNS:ww*.example.test must not cover www.example.test; the same
    certificate's other name passes, so the name alone is refused."""
    srv = tls_serve(serve, certs, cert="partial")
    p = run(["send", "--tls", "--cacert", certs["ca"], "--servername",
             "ok.example.test", "127.0.0.1", str(srv.port), "control"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"control"
    start = lines(srv)
    p = run(["send", "--tls", "--cacert", certs["ca"], "--servername",
             "www.example.test", "127.0.0.1", str(srv.port), "secret"])
    assert p.returncode == PROTO, p.stderr
    assert p.stdout == b""
    assert p.stderr.decode() == fail_msg(
        "send", "127.0.0.1", srv.port,
        "certificate name mismatch (hostname mismatch)")
    assert closed_line(srv, start=start) == \
        (0, 0, "the peer rejected our certificate")


def test_capath(serve, certs, tmp_path):
    d = tmp_path / "cadir"
    d.mkdir()
    h = subprocess.run(["openssl", "x509", "-in", certs["ca"], "-noout",
                        "-hash"], capture_output=True, text=True,
                       check=True).stdout.strip()
    shutil.copy(certs["ca"], str(d / (h + ".0")))
    srv = tls_serve(serve, certs)
    p = run(["send", "--tls", "--capath", str(d), "localhost", str(srv.port),
             "dir"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"dir"


def test_mutual_tls(serve, certs):
    srv = tls_serve(serve, certs, "--client-ca", certs["ca"])
    p = run(["send", "--tls", "--cacert", certs["ca"], "--cert",
             certs["client"], "--key", certs["client_key"], "localhost",
             str(srv.port), "me"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"me"
    # localhost is 127.0.0.1 or ::1 first, as /etc/hosts has it.
    srv.err.wait_for(r"^tls: client (127\.0\.0\.1|\[::1\]):\d+ subject "
                     r"CN=tcpkit client$")


def test_client_certificate_missing(serve, certs):
    srv = tls_serve(serve, certs, "--client-ca", certs["ca"],
                    "--client-auth", "required")
    start = lines(srv)
    p = run(["send", "--tls", "--cacert", certs["ca"], "localhost",
             str(srv.port), "secret"])
    assert p.returncode == PROTO
    assert p.stdout == b""
    assert p.stderr.decode() == fail_msg(
        "send", "localhost", srv.port, "client certificate required "
        "(tlsv13 alert certificate required)")
    assert closed_line(srv, start=start) == \
        (0, 0, "client certificate required")


def test_client_certificate_untrusted(serve, certs):
    srv = tls_serve(serve, certs, "--client-ca", certs["ca"])
    start = lines(srv)
    p = run(["send", "--tls", "--cacert", certs["ca"], "--cert",
             certs["other_client"], "--key", certs["other_client_key"],
             "localhost", str(srv.port), "secret"])
    assert p.returncode == PROTO
    assert p.stderr.decode() == fail_msg(
        "send", "localhost", srv.port, "the peer rejected our certificate "
        "(tlsv1 alert unknown ca)")
    assert closed_line(srv, start=start) == \
        (0, 0, "certificate from an untrusted issuer")


def test_client_certificate_optional(serve, certs):
    srv = tls_serve(serve, certs, "--client-ca", certs["ca"],
                    "--client-auth", "optional")
    p = run(["send", "--tls", "--cacert", certs["ca"], "localhost",
             str(srv.port), "anon"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"anon"
    srv.err.wait_for(r"^tls: client \S+ subject \(no certificate\)$")


def offered_versions(hello):
    """supported_versions (extension 43) of a ClientHello message."""
    i = 4 + 2 + 32
    i += 1 + hello[i]                                   # session id
    i += 2 + int.from_bytes(hello[i:i + 2], "big")      # cipher suites
    i += 1 + hello[i]                                   # compression
    end = i + 2 + int.from_bytes(hello[i:i + 2], "big")
    i += 2
    while i < end:
        typ = int.from_bytes(hello[i:i + 2], "big")
        n = int.from_bytes(hello[i + 2:i + 4], "big")
        if typ == 43:
            v = hello[i + 5:i + 4 + n]
            return [int.from_bytes(v[k:k + 2], "big")
                    for k in range(0, len(v), 2)]
        i += 4 + n
    return []


def test_tls_min_13_against_12_only_peer(certs):
    """--tls-min 1.3 offers TLS 1.3 alone; a server capped at 1.2 refuses
    it with a protocol_version alert, and no application byte crosses."""
    s, port = s_server(certs, "-tls1_2", "-msg")
    try:
        p = run(["send", "--tls", "--tls-min", "1.3", "--cacert",
                 certs["ca"], "localhost", str(port), "secret"])
        assert p.returncode == PROTO
        assert p.stderr.decode().startswith(fail_msg(
            "send", "localhost", port, "TLS protocol version not accepted")
            [:-1])
        out, _ = s.communicate(timeout=TIMEOUT)
    finally:
        s.kill()
        s.wait()
    recs = msg_records(out.decode(errors="replace"))
    got = [r for r in recs if r[0] == "<<<"]
    sent = [r for r in recs if r[0] == ">>>"]
    assert [r[1] for r in got] == ["Handshake"], recs
    assert got[0][2][0] == 1  # a ClientHello
    assert offered_versions(got[0][2]) == [0x0304]
    assert [(r[1], bytes(r[2])) for r in sent] == \
        [("Alert", bytes([2, ALERT_PROTOCOL_VERSION]))], recs
    assert b"secret" not in out


def test_keylog_file(serve, certs, tmp_path):
    srv = tls_serve(serve, certs)
    log = tmp_path / "keys.log"
    env = dict(os.environ, SSLKEYLOGFILE=str(log))
    p = run(["send", "--tls", "--cacert", certs["ca"], "localhost",
             str(srv.port), "k"], env=env)
    assert p.returncode == 0
    text = log.read_text()
    assert re.search(r"^CLIENT_TRAFFIC_SECRET_0 [0-9a-f]{64} [0-9a-f]+$",
                     text, re.M), text
    assert os.stat(str(log)).st_mode & 0o077 == 0


# --- the handshake deadline -----------------------------------------------

def test_stalled_handshake_is_closed_and_others_are_served(serve, certs):
    srv = tls_serve(serve, certs, "--handshake-timeout", "1s")
    start = lines(srv)
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", srv.port)) as s:
        # One worker, a stalled client: others still get served.
        p = run(["send", "--tls", "--cacert", certs["ca"], "localhost",
                 str(srv.port), "meanwhile"])
        assert p.returncode == 0 and p.stdout == b"meanwhile"
        s.settimeout(TIMEOUT)
        assert s.recv(100) == b""
    assert time.monotonic() - t0 < 8
    srv.err.wait_for(r"^closed \S+ at \[.*\] after \S+: 0 bytes in, 0 bytes "
                     r"out \(TLS handshake timed out\)$", start=start)


def test_client_handshake_timeout():
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    port = ls.getsockname()[1]
    try:
        # A peer that accepts and never answers: the same deadline applies.
        p = run(["send", "--tls", "--insecure", "-i", "0", "127.0.0.1",
                 str(port), "x"], timeout=30)
        assert p.returncode == 75
        assert p.stderr.decode().endswith(
            "tcpkit: send 127.0.0.1:%d: TLS handshake timed out\n" % port)
    finally:
        ls.close()


# --- the wrong side of TLS: hints ---------------------------------------

@pytest.mark.parametrize("cmd,args,stdin", [
    ("send", ["hello"], None),
    ("connect", [], b"hello\n"),
])
def test_plain_client_to_tls_server_hint(serve, cmd, args, stdin):
    """serve --tls answers a client whose first bytes are not TLS with an
    alert record; tcpkit without --tls recognises it and says so."""
    srv = serve("--tls", "-w", "1", listeners=2)
    start = lines(srv)
    p = run([cmd, "127.0.0.1", str(srv.port)] + args, input=stdin)
    assert p.returncode == PROTO, p.stderr
    assert p.stdout == b""
    assert p.stderr.decode() == fail_msg(
        cmd, "127.0.0.1", srv.port, "the peer answered with TLS: try --tls")
    assert closed_line(srv, start=start)[2] == "the peer does not speak TLS"


def test_get_http_to_tls_server_hint(serve):
    """get http:// against a TLS port: the answer is a TLS alert, not
    HTTP, and the error says so instead of "malformed HTTP response"."""
    srv = serve("--tls", "-w", "1", listeners=2)
    url = "http://127.0.0.1:%d/" % srv.port
    p = run(["get", url])
    assert p.returncode == PROTO, p.stderr
    assert p.stdout == b""
    assert p.stderr.decode() == (
        "tcpkit: get %s: the peer answered with TLS: try https://\n" % url)


def test_plain_client_sees_another_servers_alert(pyserver):
    """Any TLS server that answers plain bytes with an alert record (15 03
    0x, length 2) gets the same hint."""
    def handler(conn, srv):
        srv.received.append(conn.recv(4096))
        conn.sendall(b"\x15\x03\x03\x00\x02\x02\x0a")
    srv = pyserver(handler)
    p = run(["connect", "127.0.0.1", str(srv.port)], input=b"hi\n")
    assert p.returncode == PROTO, p.stderr
    assert p.stdout == b""
    assert p.stderr.decode() == fail_msg(
        "connect", "127.0.0.1", srv.port,
        "the peer answered with TLS: try --tls")


def test_plain_client_prints_what_only_resembles_tls(pyserver):
    """Its twin: bytes that start like a record but are not one (length
    not 2 for an alert) are data, printed as they came."""
    data = b"\x15\x03\x01\x00\x05hello"

    def handler(conn, srv):
        conn.sendall(data)
    srv = pyserver(handler)
    p = run(["connect", "127.0.0.1", str(srv.port)], input=b"")
    assert p.returncode == 0, p.stderr
    assert p.stdout == data


def test_tls_client_to_plain_server_hint(serve, pyserver):
    """A plain server answers our ClientHello with text, with the hello
    itself (echo), or with a few bytes and then waits: each is "does not
    speak TLS" at once (not a handshake timeout), and nothing is sent."""
    def ok_and_wait(conn, srv):
        srv.received.append(conn.recv(4096))
        conn.sendall(b"ok\n")
        conn.recv(4096)  # until the client goes

    ports = [serve(name, "-w", "1").port for name in ("basic", "echo")]
    ports.append(pyserver(ok_and_wait).port)
    for port in ports:
        t0 = time.monotonic()
        p = run(["send", "--tls", "--insecure", "127.0.0.1", str(port),
                 "secret"])
        assert p.returncode == PROTO, p.stderr
        assert p.stdout == b""
        assert p.stderr.decode().endswith(fail_msg(
            "send", "127.0.0.1", port, "the peer does not speak TLS"))
        assert time.monotonic() - t0 < 5


# --- past --max-conns ----------------------------------------------------

def test_busy_tls_server_sends_no_plaintext(serve, certs):
    """A line service past --max-conns tells a plain client "busy:" in one
    line; over TLS that line would be plaintext in a TLS stream, so the
    extra client is closed without a byte."""
    srv = tls_serve(serve, certs, "line", "--max-conns", "1")
    ctx = ssl.create_default_context(cafile=certs["ca"])
    with socket.create_connection(("localhost", srv.port),
                                  timeout=TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as held:
            held.sendall(b"hold\n")
            # Answered: the one slot is taken by an open session.
            assert recv_exact(held, 5) == b"hold\n"
            for i in range(2):
                start = lines(srv)
                with socket.create_connection(("127.0.0.1", srv.port),
                                              timeout=TIMEOUT) as s:
                    try:
                        got = recv_all(s, TIMEOUT)
                    except ConnectionResetError:
                        got = b""
                    assert got == b""
                srv.err.wait_for(r"^rejected (127\.0\.0\.1|\[::1\]):\d+ at "
                                 r"\[.*\]: too many connections$",
                                 start=start)
            # A TLS client refused the same way: the handshake meets the
            # close, not bytes that are not TLS.
            start = lines(srv)
            with socket.create_connection(("localhost", srv.port),
                                          timeout=TIMEOUT) as raw2:
                with pytest.raises((ssl.SSLEOFError, ssl.SSLZeroReturnError,
                                    ConnectionResetError,
                                    BrokenPipeError)):
                    ctx.wrap_socket(raw2, server_hostname="localhost")
            srv.err.wait_for(r"^rejected (127\.0\.0\.1|\[::1\]):\d+ ",
                             start=start)
            # The session that holds the slot is unharmed.
            held.sendall(b"still\n")
            assert recv_exact(held, 6) == b"still\n"


# --- usage: files and conflicts before any I/O ----------------------------

def usage(cmd, msg):
    return "tcpkit: %s: %s (see 'tcpkit help %s')\n" % (cmd, msg, cmd)


@pytest.mark.parametrize("args,err", [
    (["send", "--cacert", "ca.pem", "h", "1"],
     usage("send", "--cacert needs --tls")),
    (["connect", "--pin", "sha256:00", "h", "1"],
     usage("connect", "--pin needs --tls")),
    (["send", "--tls", "--insecure", "--pin", "sha256:" + "0" * 64, "h", "1"],
     usage("send", "--insecure excludes --pin")),
    (["send", "--tls", "--tls-min", "1.1", "h", "1"],
     usage("send", "--tls-min is 1.2 or 1.3, not '1.1'")),
    (["send", "--tls", "--key", "k.pem", "h", "1"],
     usage("send", "--key needs --cert")),
    (["get", "--cacert", "ca.pem", "http://h/"],
     usage("get", "--cacert needs an https:// URL")),
    (["get", "--tls", "http://h/"], usage("get", "use an https:// URL for "
                                          "TLS")),
    (["serve", "--cert", "x.pem"], usage("serve", "--cert needs --tls")),
    (["serve", "--tls", "--client-auth", "required"],
     usage("serve", "--client-auth needs --client-ca")),
    (["serve", "--tls", "--client-auth", "maybe"],
     usage("serve", "--client-auth is optional or required, not 'maybe'")),
    (["send", "--tls", "--pin", "md5:00", "h", "1"],
     "tcpkit: send tls: pin must be sha256: and 64 hex digits, not "
     "'md5:00'\n"),
    (["send", "--tls", "--cacert", "/nonexistent/ca.pem", "h", "1"],
     "tcpkit: send --cacert /nonexistent/ca.pem: No such file or "
     "directory\n"),
    (["serve", "--tls", "--cert", "/nonexistent/c.pem"],
     "tcpkit: serve --cert /nonexistent/c.pem: No such file or directory\n"),
])
def test_usage_errors(args, err):
    p = run(args)
    # A file that is not there is missing input (EX_NOINPUT), not usage.
    assert p.returncode == (66 if "No such file" in err else 64)
    assert p.stderr.decode() == err
    assert p.stdout == b""


def test_unparsable_certificate(tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    p = run(["serve", "--tls", "-p", "0", "--cert", str(bad)])
    assert p.returncode == 64
    assert p.stderr.decode() == (
        "tcpkit: serve tls: cannot load certificate %s: no start line\n"
        % bad)


def test_key_does_not_match(certs):
    p = run(["serve", "--tls", "-p", "0", "--cert", certs["srv"], "--key",
             certs["client_key"]])
    assert p.returncode == 64
    assert p.stderr.decode().startswith(
        "tcpkit: serve tls: cannot load key %s" % certs["client_key"])


# --- the configuration scan -----------------------------------------------

def test_sslscan_profile(serve, certs):
    if shutil.which("sslscan") is None:
        pytest.skip("sslscan is not installed")
    srv = tls_serve(serve, certs, "-q")
    p = subprocess.run(["sslscan", "--no-colour", "--no-heartbleed",
                        "127.0.0.1:%d" % srv.port], capture_output=True,
                       text=True, timeout=120)
    out = p.stdout
    protos = dict(re.findall(r"^(SSLv[23]|TLSv1\.[0-3])\s+(enabled|disabled)"
                             r"$", out, re.M))
    assert protos == {"SSLv2": "disabled", "SSLv3": "disabled",
                      "TLSv1.0": "disabled", "TLSv1.1": "disabled",
                      "TLSv1.2": "enabled", "TLSv1.3": "enabled"}, out
    ciphers = re.findall(r"^(?:Preferred|Accepted)\s+(TLSv1\.[23])\s+\d+ bits"
                         r"\s+(\S+)", out, re.M)
    allowed = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
               "TLS_CHACHA20_POLY1305_SHA256",
               "ECDHE-ECDSA-AES128-GCM-SHA256",
               "ECDHE-ECDSA-AES256-GCM-SHA384",
               "ECDHE-ECDSA-CHACHA20-POLY1305"}
    assert ciphers and {c for _, c in ciphers} <= allowed, out
    assert {v for v, _ in ciphers} == {"TLSv1.2", "TLSv1.3"}
    groups = re.findall(r"^TLSv1\.[23]\s+\d+ bits\s+(\S+)", out, re.M)
    assert groups and set(groups) <= {"x25519", "secp256r1", "secp384r1"}, \
        out
    assert "Session renegotiation not supported" in out
