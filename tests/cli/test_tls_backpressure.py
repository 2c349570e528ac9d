"""TLS echo under backpressure: with --max-pending at its floor the server
stops and resumes reading many times inside TLS records, and every byte
still comes back; and the resume that must read bytes OpenSSL already
holds (no epoll event will come for them) is forced and checked."""
import hashlib
import os
import socket
import ssl
import select
import time

from tkhelpers import check_sanitizer

TIMEOUT = 10


def tight_tls_echo(serve):
    """`serve echo --tls` with --max-pending at its floor, and a client
    context that trusts it (these tests are about flow, not trust)."""
    srv = serve("echo", "--tls", "-H", "127.0.0.1", "--max-pending", "4096",
                "-w", "1")
    srv.err.wait_for(r"^tls: self-signed certificate sha256:")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return srv, ctx


def test_tls_echo_resumes_with_buffered_record(serve):
    srv, ctx = tight_tls_echo(serve)
    # Several rounds, each a fresh connection and handshake.
    for _ in range(8):
        exchange(ctx, srv.port)
    assert srv.stop() == 0
    check_sanitizer(srv.err.text())


def exchange(ctx, port):
    """Send 1 MiB in 16 KiB records while reading the echo 1 KiB at a
    time, in one thread (an SSL object must not be shared by threads)."""
    data = os.urandom(1 << 20)
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    with ctx.wrap_socket(raw) as s:
        s.setblocking(False)
        sent, got = 0, bytearray()
        deadline = time.monotonic() + TIMEOUT
        while len(got) < len(data):
            assert time.monotonic() < deadline, \
                "stalled: %d of %d bytes back" % (len(got), len(data))
            want_write = sent < len(data)
            # Bytes our own SSL object holds raise no event either.
            wait = 0.0 if s.pending() else deadline - time.monotonic()
            r, w, _ = select.select([s], [s] if want_write else [], [],
                                    max(0.0, wait))
            if w and want_write:
                try:
                    sent += s.send(data[sent:sent + 16384])
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    pass
            if r or s.pending():
                try:
                    chunk = s.recv(1024)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    continue
                assert chunk, "EOF after %d bytes" % len(got)
                got += chunk
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def test_tls_resume_reads_what_openssl_holds(serve):
    """One 16 KiB TLS record, and nothing after it.  The client's receive
    buffer is tiny, so the server's echo backs up and it stops reading
    (--max-pending 4096) with the rest of the record already decrypted in
    OpenSSL and the socket empty.  When the client reads, the server must
    resume from OpenSSL's buffer, as no new byte will raise an event: a
    server without that path stalls here every time (seen: 10 of 10)."""
    srv, ctx = tight_tls_echo(serve)
    for i in range(5):
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        raw.settimeout(TIMEOUT)
        raw.connect(("127.0.0.1", srv.port))
        with ctx.wrap_socket(raw) as s:
            data = os.urandom(16384)
            s.sendall(data)  # Python sends it as one record
            got = b""
            while len(got) < len(data):
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    raise AssertionError("round %d stalled: %d of %d bytes "
                                         "back" % (i, len(got), len(data)))
                assert chunk, "EOF after %d bytes" % len(got)
                got += chunk
            assert got == data
    assert srv.stop() == 0
    check_sanitizer(srv.err.text())
