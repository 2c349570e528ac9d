"""SIGHUP in serve, listen and relay: the certificate and the access-list
files are read again for new clients; open connections keep what they
began with; a bad new file is refused in one line and the old one stays.
Clients are Python's ssl module and sockets bound to 127.0.0.2/127.0.0.3;
every wait is on a log line, never a sleep."""
import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess

from listenhelpers import listen  # noqa: F401 (a fixture)
from relayhelpers import relay  # noqa: F401 (a fixture)
from test_acl import client, echoed, refused_silently
from tkhelpers import recv_all
from tlshelpers import cert_fp, lines

TIMEOUT = 15
OK_TLS = (r"^reload: certificate (\S+): subject (.*), sha256:([0-9a-f]{64}), "
          r"valid to (\S+)$")
REFUSED = r"^tcpkit: {cmd} reload: (.*); the certificate in use stays"


def replace(path, data):
    """Put data in place at path at once, as a deploy tool does: written
    beside it, then renamed over it."""
    tmp = str(path) + ".new"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, str(path))


def install(certs, name, cert, key):
    with open(certs[name], "rb") as f:
        replace(cert, f.read())
    with open(certs[name + "_key"], "rb") as f:
        replace(key, f.read())


def tls_client(port, src=None):
    """A TLS client (no verification: the test checks the fingerprint);
    returns the socket and the server certificate's SHA-256."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT,
                                   source_address=(src, 0) if src else None)
    s = ctx.wrap_socket(raw)
    return s, hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


def echo(s, data):
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        d = s.recv(len(data) - len(got))
        assert d, "EOF after %r" % got
        got += d
    return got


def hup(p, pattern):
    """SIGHUP the tcpkit process p (serve, listen or relay), then wait for
    its reload line; returns the match."""
    start = lines(p)
    p.proc.send_signal(signal.SIGHUP)
    return p.err.wait_for(pattern, timeout=TIMEOUT, start=start)


def reload_lines(err, start):
    with err.cond:
        return [ln for ln in err.lines[start:] if "reload" in ln]


def tls_files(certs, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    install(certs, "srv", cert, key)
    return str(cert), str(key)


def check_tls_swap(p, certs, cert, key):
    """The common case: a client from before keeps its session, one from
    after sees the new certificate."""
    old, fp = tls_client(p.port)
    assert fp == cert_fp(certs["srv"])
    assert echo(old, b"before\n") == b"before\n"
    install(certs, "other", cert, key)
    m = hup(p, OK_TLS)
    assert m.group(1) == cert
    assert m.group(3) == cert_fp(certs["other"])
    new, fp = tls_client(p.port)
    assert fp == cert_fp(certs["other"]), "a new client got the old one"
    assert echo(new, b"after\n") == b"after\n"
    # The session from before the reload goes on, on its old certificate.
    assert echo(old, b"still here\n") == b"still here\n"
    assert hashlib.sha256(old.getpeercert(binary_form=True)).hexdigest() \
        == cert_fp(certs["srv"])
    old.close()
    new.close()


def test_serve_tls_reload_keeps_open_sessions(serve, certs, tmp_path):
    cert, key = tls_files(certs, tmp_path)
    srv = serve("--tls", "--cert", cert, "--key", key, "-H", "127.0.0.1",
                "-w", "2")
    check_tls_swap(srv, certs, cert, key)
    assert srv.stop() == 0


def test_serve_bad_certificate_keeps_the_old(serve, certs, tmp_path):
    cert, key = tls_files(certs, tmp_path)
    srv = serve("--tls", "--cert", cert, "--key", key, "-H", "127.0.0.1",
                "-w", "1")
    good = cert_fp(certs["srv"])
    refused = REFUSED.format(cmd="serve")
    bad = [
        # (what the files become, what the one line must say)
        (lambda: replace(cert, b"not a certificate\n"),
         "cannot load certificate %s: no start line" % cert),
        (lambda: os.unlink(cert),
         "--cert %s: No such file or directory" % cert),
        (lambda: install(certs, "expired", cert, key),
         "certificate %s expired on 20" % cert),
    ]
    for spoil, why in bad:
        spoil()
        n = lines(srv)
        m = hup(srv, refused)
        assert m.group(1).startswith(why), m.group(0)
        # One line, and no success line with it.
        assert len(reload_lines(srv.err, n)) == 1, reload_lines(srv.err, n)
        s, fp = tls_client(srv.port)
        assert fp == good, "a refused certificate was put in use"
        assert echo(s, b"x") == b"x"
        s.close()
    # A key that is not the certificate's names the key.
    install(certs, "other", cert, key)
    shutil.copyfile(certs["srv_key"], key)
    m = hup(srv, refused)
    assert key in m.group(1), m.group(0)
    # Fixed, the next SIGHUP takes it.
    install(certs, "other", cert, key)
    m = hup(srv, OK_TLS)
    assert m.group(3) == cert_fp(certs["other"])
    assert srv.stop() == 0


def test_allow_file_reload_applies_at_accept(serve, tmp_path):
    allow = tmp_path / "allow.txt"
    replace(allow, b"# everyone on loopback\n127.0.0.0/8\n")
    srv = serve("-H", "127.0.0.1", "-w", "1", "--allow-file", str(allow),
                "--deny", "127.0.0.3")
    before = client(srv.port, "127.0.0.2")
    assert echo(before, b"one\n") == b"one\n"
    assert refused_silently(srv.port, "127.0.0.3")

    replace(allow, b"127.0.0.1\n")
    n = lines(srv)
    hup(srv, r"^reload: access list: 1 allow rule, 1 deny rule \(lists "
        r"apply to new clients\)$")
    assert refused_silently(srv.port, "127.0.0.2")
    srv.err.wait_for(r"^denied 127\.0\.0\.2:\d+ ", TIMEOUT, start=n)
    # Accepted before: not cut.
    assert echo(before, b"two\n") == b"two\n"
    assert echoed(srv.port, "127.0.0.1") == b"ping\n"
    # The inline --deny stays.
    assert refused_silently(srv.port, "127.0.0.3")

    # A malformed file: one line naming it, the list in use stays.
    replace(allow, b"127.0.0.1\n10.0.0.0/33\n")  # addr-ok: parse only
    n = lines(srv)
    m = hup(srv, r"^tcpkit: serve reload: (.*); the access list in use "
            r"stays$")
    assert m.group(1) == ("--allow-file %s:2: '10.0.0.0/33': prefix longer "  # addr-ok
                          "than 32" % allow)
    assert len(reload_lines(srv.err, n)) == 1
    assert refused_silently(srv.port, "127.0.0.2")
    assert echoed(srv.port, "127.0.0.1") == b"ping\n"
    before.close()
    assert srv.stop() == 0


def test_sighup_no_longer_stops_and_says_so(serve):
    srv = serve("-H", "127.0.0.1", "-w", "1")
    hup(srv, r"^reload: nothing to reload \(no --cert, --allow-file or "
        r"--deny-file\)$")
    assert echoed(srv.port, "127.0.0.1") == b"ping\n"
    assert srv.stop() == 0


def test_relay_tls_reload(relay, serve, certs, tmp_path):
    target = serve("-H", "127.0.0.1", "-w", "1")
    cert, key = tls_files(certs, tmp_path)
    r = relay("--cert", cert, "--key", key, "tls://127.0.0.1:0",
              "127.0.0.1:%d" % target.port)
    check_tls_swap(r, certs, cert, key)
    # A bad one: refused in one line, the new clients keep the current.
    replace(cert, b"junk\n")
    m = hup(r, REFUSED.format(cmd="relay"))
    assert cert in m.group(1)
    s, fp = tls_client(r.port)
    assert fp == cert_fp(certs["other"])
    s.close()
    assert r.stop() == 0


def test_listen_keep_exec_tls_reload(listen, certs, tmp_path):  # noqa: F811
    cert, key = tls_files(certs, tmp_path)
    lp = listen("-k", "--tls", "--cert", cert, "--key", key, "--exec",
                "/bin/cat")
    check_tls_swap(lp, certs, cert, key)
    replace(key, b"junk\n")
    m = hup(lp, REFUSED.format(cmd="listen"))
    assert key in m.group(1)
    assert lp.stop() == 0


def test_relay_target_cas_reload(relay, serve, certs, tmp_path):
    """relay's tls:// targets: --cacert read again; a client relayed
    after the reload reaches the target its new CA vouches for."""
    target = serve("--tls", "--cert", certs["srv"], "--key",
                   certs["srv_key"], "-H", "127.0.0.1", "-w", "1")
    cafile = tmp_path / "ca.pem"
    with open(certs["ca2"], "rb") as f:
        replace(cafile, f.read())  # the wrong CA: no target verifies
    r = relay("--cacert", str(cafile), "127.0.0.1:0",
              "tls://127.0.0.1:%d" % target.port)
    with socket.create_connection(("127.0.0.1", r.port), TIMEOUT) as s:
        assert recv_all(s, TIMEOUT) == b""
    r.log(r"^relay \S+: no target reached \(.*untrusted issuer")
    with open(certs["ca"], "rb") as f:
        replace(cafile, f.read())
    hup(r, r"^reload: CAs for tls:// targets: --cacert %s$"
        % re.escape(str(cafile)))
    with socket.create_connection(("127.0.0.1", r.port), TIMEOUT) as s:
        assert echo(s, b"through\n") == b"through\n"
    # A CA file gone: one line, the CAs in use stay.
    os.unlink(str(cafile))
    m = hup(r, r"^tcpkit: relay reload: (.*); the CAs in use for tls:// "
            r"targets stay$")
    assert m.group(1) == "--cacert %s: No such file or directory" % cafile
    with socket.create_connection(("127.0.0.1", r.port), TIMEOUT) as s:
        assert echo(s, b"still\n") == b"still\n"
    assert r.stop() == 0


def test_relay_target_capath_gone_keeps_the_old(relay, serve, certs,
                                                tmp_path):
    """A --capath directory gone at a reload is refused as a --cacert file
    is, rather than put in place as a store that vouches for no target."""
    target = serve("--tls", "--cert", certs["srv"], "--key",
                   certs["srv_key"], "-H", "127.0.0.1", "-w", "1")
    capath = tmp_path / "cas"
    capath.mkdir()
    shutil.copy(certs["ca"], str(capath / "ca.pem"))
    subprocess.run(["openssl", "rehash", str(capath)], check=True,
                   timeout=TIMEOUT)
    r = relay("--capath", str(capath), "127.0.0.1:0",
              "tls://127.0.0.1:%d" % target.port)
    with socket.create_connection(("127.0.0.1", r.port), TIMEOUT) as s:
        assert echo(s, b"through\n") == b"through\n"
    shutil.rmtree(str(capath))
    m = hup(r, r"^(tcpkit: relay reload: .*|reload: CAs for tls:// .*)$")
    assert m.group(1) == "tcpkit: relay reload: --capath %s: No such " \
        "file or directory; the CAs in use for tls:// targets stay" % capath
    with socket.create_connection(("127.0.0.1", r.port), TIMEOUT) as s:
        assert echo(s, b"still\n") == b"still\n"
    assert r.stop() == 0


def mtls_echo(port, certs):
    """One line through a client holding certs["client"] (from ca): the
    echo, or None when the server refused the certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(certs["client"], certs["client_key"])
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    try:
        with ctx.wrap_socket(raw) as s:
            return echo(s, b"me\n")
    except (ssl.SSLError, ConnectionResetError, AssertionError):
        return None


def test_serve_client_ca_reload(serve, certs, tmp_path):
    cert, key = tls_files(certs, tmp_path)
    client_ca = tmp_path / "clients.pem"
    with open(certs["ca2"], "rb") as f:
        replace(client_ca, f.read())  # not the client's issuer
    srv = serve("--tls", "--cert", cert, "--key", key, "--client-ca",
                str(client_ca), "-H", "127.0.0.1", "-w", "1")
    assert mtls_echo(srv.port, certs) is None
    with open(certs["ca"], "rb") as f:
        replace(client_ca, f.read())
    hup(srv, OK_TLS)
    assert mtls_echo(srv.port, certs) == b"me\n"
    assert srv.stop() == 0
