"""The README's "For netcat and socat users" table, row by row: each tcpkit
command runs as written there (ports, hosts and paths made local), with the
left column's tool as its peer where it has one.  A row without a test here,
or a test without its row, fails test_every_row_is_tested."""
import hashlib
import os
import re
import socket
import subprocess
import time

import pytest

from listenhelpers import Listen
from proxyhelpers import FakeProxy, socks5_handler
from relayhelpers import Relay, echo_handler
from tkhelpers import (ROOT, TCPKIT, LineReader, PyServer, check_sanitizer,
                       connect,
                       nc_listening, need, recv_all, recv_until, run)

TIMEOUT = 20
ROWS = {}


def row(command):
    """Register the test of the README row whose tcpkit column is command."""
    def register(fn):
        ROWS[command] = fn
        return fn
    return register


def readme_rows():
    text = open(os.path.join(ROOT, "README.md")).read()
    part = text.split("### For netcat and socat users")[1]
    part = part.split("\n#")[0]
    rows = re.findall(r"^\| `[^|]*?` [^|]*\| `(tcpkit [^`]*)` \|$", part,
                      re.M)
    assert rows, "no table in the README's netcat section"
    return rows


def test_every_row_is_tested():
    rows = readme_rows()
    assert len(rows) == len(set(rows)), "a row twice"
    assert set(rows) == set(ROWS), (
        "rows without a test: %s; tests without a row: %s" %
        (sorted(set(rows) - set(ROWS)), sorted(set(ROWS) - set(rows))))


def blob(n):
    return hashlib.sha256(b"tcpkit").digest() * (n // 32) + b"x" * (n % 32)


def nc_send(port, data, extra=()):
    """`nc` (netcat-openbsd) sends data and closes (-N: FIN at its EOF)."""
    need("nc")
    p = subprocess.run(["nc", "-N"] + list(extra) + ["127.0.0.1",
                                                      str(port)],
                       input=data, capture_output=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    return p.stdout


# --- listen ------------------------------------------------------------------

@row("tcpkit listen 9000 > file")
def listen_to_stdout(tmp):
    data = blob(1 << 20)
    out = tmp / "file"
    with open(out, "wb") as f:
        lp = Listen(stdout=f, hostport=("0",))
        try:
            nc_send(lp.port, data)
            assert lp.wait(TIMEOUT) == 0
        finally:
            lp.kill()
    assert out.read_bytes() == data


@row("tcpkit listen -o file 9000")
def listen_to_file(tmp):
    data = blob(300000)
    out = tmp / "file"
    lp = Listen("-o", str(out), hostport=("0",))
    try:
        nc_send(lp.port, data)
        assert lp.wait(TIMEOUT) == 0
    finally:
        lp.kill()
    assert out.read_bytes() == data
    assert [p.name for p in tmp.iterdir()] == ["file"], "a temporary left"


@row("tcpkit listen -k 9000")
def listen_keep_open(tmp):
    out = tmp / "out"
    with open(out, "wb") as f:
        lp = Listen("-k", stdout=f, hostport=("0",))
        try:
            nc_send(lp.port, b"first\n")
            nc_send(lp.port, b"second\n")
            deadline = time.monotonic() + TIMEOUT
            while out.read_bytes() != b"first\nsecond\n":
                assert time.monotonic() < deadline, out.read_bytes()
                time.sleep(0.02)  # sleep-ok: polling the file, bounded
        finally:
            lp.kill()


@row("tcpkit listen unix:/tmp/x.sock")
def listen_unix(tmp):
    need("nc")
    path = str(tmp / "x.sock")
    out = tmp / "out"
    with open(out, "wb") as f:
        lp = subprocess.Popen([TCPKIT, "listen", "unix:" + path],
                              stdin=subprocess.DEVNULL, stdout=f,
                              stderr=subprocess.PIPE)
        err = LineReader(lp.stderr)
        try:
            err.wait_for("^listening on unix:")
            p = subprocess.run(["nc", "-N", "-U", path], input=b"local\n",
                               capture_output=True, timeout=TIMEOUT)
            assert p.returncode == 0, p.stderr
            assert lp.wait(TIMEOUT) == 0
        finally:
            if lp.poll() is None:
                lp.kill()
                lp.wait()
    err.join()
    check_sanitizer(err.text())
    assert out.read_bytes() == b"local\n"
    assert not os.path.exists(path), "the socket file is left behind"


@row("tcpkit listen -k --sh-exec 'CMD' 9000")
def listen_sh_exec(tmp):
    need("ncat")
    lp = Listen("-k", "--sh-exec", "tr a-z A-Z", hostport=("0",))
    try:
        for word in (b"one\n", b"two\n"):
            p = subprocess.run(["ncat", "127.0.0.1", str(lp.port)],
                               input=word, capture_output=True,
                               timeout=TIMEOUT)
            assert p.returncode == 0, p.stderr
            assert p.stdout == word.upper()
    finally:
        lp.kill()


@row("tcpkit listen -k --exec /bin/cat 9000")
def listen_exec(tmp):
    need("ncat")
    lp = Listen("-k", "--exec", "/bin/cat", hostport=("0",))
    try:
        data = blob(100000)
        p = subprocess.run(["ncat", "127.0.0.1", str(lp.port)], input=data,
                           capture_output=True, timeout=TIMEOUT)
        assert p.returncode == 0, p.stderr
        assert p.stdout == data
    finally:
        lp.kill()


@row("tcpkit listen --broker 9000")
def listen_broker(tmp):
    lp = Listen("--broker", hostport=("0",))
    try:
        a, b, c = (connect(lp.port) for _ in range(3))
        a.sendall(b"to everyone else\n")
        for s in (b, c):
            assert recv_until(s, lambda d: d.endswith(b"\n")) == \
                b"to everyone else\n"
        for s in (a, b, c):
            s.close()
    finally:
        lp.kill()


@row("tcpkit listen --chat 9000")
def listen_chat(tmp):
    lp = Listen("--chat", hostport=("0",))
    try:
        a = connect(lp.port)
        recv_until(a, lambda d: b"\n" in d)  # "* you are user..."
        b = connect(lp.port)
        recv_until(b, lambda d: b"\n" in d)
        recv_until(a, lambda d: b"joined" in d)
        a.sendall(b"hello\n")
        got = recv_until(b, lambda d: b"hello\n" in d)
        assert re.search(rb"<user\d+> hello\n", got), got
        a.close()
        b.close()
    finally:
        lp.kill()


@row("tcpkit listen --allow 10.0.0.0/8 9000")  # addr-ok: the README's text
def listen_allow(tmp):
    # The table's network, made local: 127.0.0.2 is in the list, .3 not.
    lp = Listen("-k", "--allow", "127.0.0.2/32", hostport=("0",))
    try:
        denied = socket.socket()
        denied.bind(("127.0.0.3", 0))
        denied.settimeout(TIMEOUT)
        denied.connect(("127.0.0.1", lp.port))
        try:
            assert denied.recv(10) == b""
        except ConnectionResetError:
            pass
        denied.close()
        lp.err.wait_for(r"denied 127\.0\.0\.3")
        ok = socket.socket()
        ok.bind(("127.0.0.2", 0))
        ok.settimeout(TIMEOUT)
        ok.connect(("127.0.0.1", lp.port))
        ok.sendall(b"allowed\n")
        lp.out.wait_for("^allowed$")
        ok.close()
    finally:
        lp.kill()


@row("tcpkit listen --tls 9000")
def listen_tls(tmp):
    need("ncat")
    lp = Listen("--tls", stdin=subprocess.PIPE, hostport=("0",))
    nc = None
    try:
        # The listener's certificate is an ephemeral self-signed one: the
        # client takes it as ncat --ssl does by default (no verification).
        nc = subprocess.Popen(["ncat", "--ssl", "127.0.0.1", str(lp.port)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
        nc.stdin.write(b"over TLS\n")
        nc.stdin.flush()
        lp.out.wait_for("^over TLS$")
        lp.proc.stdin.write(b"and back\n")
        lp.proc.stdin.close()  # our end: close_notify, FIN; ncat exits
        out, err = nc.communicate(timeout=TIMEOUT)
        assert out == b"and back\n", err
        assert lp.wait(TIMEOUT) == 0
    finally:
        if nc is not None and nc.poll() is None:
            nc.kill()
            nc.wait()
        lp.kill()


# --- connect -----------------------------------------------------------------

@row("tcpkit connect host 9000 < file")
def connect_file(tmp):
    data = blob(200000)
    src = tmp / "file"
    src.write_bytes(data)
    nc, port = nc_listening()
    nc.stdin.close()  # nc sends nothing back: its FIN ends our reading
    nc.stdin = None
    try:
        with open(src, "rb") as f:
            p = subprocess.run([TCPKIT, "connect", "127.0.0.1", str(port)],
                               stdin=f, capture_output=True, timeout=TIMEOUT)
        assert p.returncode == 0, p.stderr
        check_sanitizer(p.stderr)
        out, _ = nc.communicate(timeout=TIMEOUT)
        assert out == data
    finally:
        if nc.poll() is None:
            nc.kill()
            nc.wait()


@row("tcpkit connect -p 5555 host 9000")
def connect_source_port(tmp):
    seen = []

    def handler(conn, srv):
        seen.append(conn.getpeername()[1])
        conn.sendall(b"hi\n")

    with PyServer(handler) as srv:
        # A source port the kernel has just shown to be free.
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        sport = probe.getsockname()[1]
        probe.close()
        p = run(["connect", "-p", str(sport), "127.0.0.1", str(srv.port)],
                input=b"")
        assert p.returncode == 0, p.stderr
        srv.wait_handlers()
    assert seen == [sport]


@row("tcpkit connect -t host 23")
def connect_telnet(tmp):
    IAC, DO, WONT = 255, 253, 252
    answers = []

    def handler(conn, srv):
        conn.sendall(bytes([IAC, DO, 1]) + b"login: ")
        answers.append(recv_until(conn, lambda d: len(d) >= 3))

    with PyServer(handler) as srv:
        # stdin stays open until the answer is in: at its end the client
        # half-closes, and a refusal could not be sent any more.
        p = subprocess.Popen([TCPKIT, "connect", "-t", "127.0.0.1",
                              str(srv.port)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        srv.wait_handlers()
        out, err = p.communicate(timeout=TIMEOUT)
    check_sanitizer(err)
    assert out == b"login: "
    assert answers == [bytes([IAC, WONT, 1])]


@row("tcpkit connect unix:/run/app.sock")
def connect_unix(tmp):
    path = str(tmp / "app.sock")
    need("socat")
    srv = subprocess.Popen(["socat", "UNIX-LISTEN:%s,fork" % path,
                            "EXEC:cat"], stderr=subprocess.PIPE)
    try:
        # socat says nothing when it listens: probe until a connect gets
        # through (the file exists from bind(), before listen()).
        deadline = time.monotonic() + TIMEOUT
        while True:
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                assert time.monotonic() < deadline, "socat did not listen"
                time.sleep(0.02)  # sleep-ok: polling socat under a deadline
            finally:
                probe.close()
        p = run(["connect", "unix:" + path], input=b"through a file\n")
        assert p.returncode == 0, p.stderr
        assert p.stdout == b"through a file\n"
    finally:
        srv.kill()
        srv.wait()


@row("tcpkit connect -u host 7")
def connect_udp(tmp):
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))
    srv.settimeout(TIMEOUT)
    port = srv.getsockname()[1]
    p = subprocess.Popen([TCPKIT, "connect", "-u", "127.0.0.1", str(port)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdin.write(b"one datagram\n")
    p.stdin.close()
    p.stdin = None  # (for communicate())
    data, peer = srv.recvfrom(65536)
    assert data == b"one datagram\n"
    srv.sendto(b"its answer\n", peer)
    out, err = p.communicate(timeout=TIMEOUT)
    srv.close()
    assert p.returncode == 0, err
    check_sanitizer(err)
    assert out == b"its answer\n"


@row("tcpkit listen -u 9000")
def listen_udp(tmp):
    need("nc")
    p = subprocess.Popen([TCPKIT, "listen", "-u", "0"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    nc = None
    try:
        err = LineReader(p.stderr)
        port = int(err.wait_for(r"listening on udp://127\.0\.0\.1:(\d+)$")
                   .group(1))
        nc = subprocess.Popen(["nc", "-u", "127.0.0.1", str(port)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL)
        nc_out = LineReader(nc.stdout)
        out = LineReader(p.stdout)
        nc.stdin.write(b"to tcpkit\n")
        nc.stdin.flush()
        out.wait_for(r"^to tcpkit$", timeout=TIMEOUT)
        p.stdin.write(b"to nc\n")
        p.stdin.flush()
        nc_out.wait_for(r"^to nc$", timeout=TIMEOUT)
        p.terminate()
        assert p.wait(TIMEOUT) == 0
        err.join()
        check_sanitizer(err.text())
    finally:
        for q in (p, nc):
            if q is not None and q.poll() is None:
                q.kill()
                q.wait()


@row("tcpkit relay udp://:5353 udp://host:53")
def relay_udp(tmp):
    """A Python UDP echo as the target; two clients, each its answers."""
    target = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target.bind(("127.0.0.1", 0))
    target.settimeout(TIMEOUT)
    p = subprocess.Popen([TCPKIT, "relay", "udp://127.0.0.1:0",
                          "udp://127.0.0.1:%d" % target.getsockname()[1]],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    clients = []
    try:
        err = LineReader(p.stderr)
        port = int(err.wait_for(r"listening on udp://127\.0\.0\.1:(\d+)$")
                   .group(1))
        for name in (b"one", b"two"):
            c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            c.settimeout(TIMEOUT)
            clients.append(c)
            c.sendto(b"query " + name, ("127.0.0.1", port))
            data, peer = target.recvfrom(65536)
            assert data == b"query " + name
            target.sendto(b"answer " + name, peer)
            assert c.recvfrom(65536) == (b"answer " + name,
                                         ("127.0.0.1", port))
        p.terminate()
        assert p.wait(TIMEOUT) == 0
        err.join()
        check_sanitizer(err.text())
        assert err.text().count("ended (stopped): 1 datagram") == 2
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        for c in clients:
            c.close()
        target.close()


@row("tcpkit scan host 20-30")
def scan_ports(tmp):
    need("nc")
    # Two listening ports and one bound but not listening (closed).
    socks = [socket.socket() for _ in range(3)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    socks[0].listen(8)
    socks[1].listen(8)
    ports = [s.getsockname()[1] for s in socks]
    try:
        plist = ",".join(str(p) for p in ports)
        p = run(["scan", "--open", "127.0.0.1", plist])
        assert p.returncode == 0, p.stderr
        found = set(int(m) for m in re.findall(rb"\s(\d+)/tcp\s+open",
                                                p.stdout))
        nc = subprocess.run(["nc", "-zv", "127.0.0.1"] +
                            [str(p) for p in ports], capture_output=True,
                            timeout=TIMEOUT)
        by_nc = set(int(m) for m in re.findall(
            rb"127\.0\.0\.1 (\d+) port \[tcp/[^]]*\] succeeded", nc.stderr))
        assert found == set(ports[:2]) == by_nc, (p.stdout, nc.stderr)
    finally:
        for s in socks:
            s.close()


@row("tcpkit connect -x dump.txt host 9000")
def connect_hexdump(tmp):
    dump = tmp / "dump.txt"
    with PyServer(echo_handler) as srv:
        p = run(["connect", "-x", str(dump), "127.0.0.1", str(srv.port)],
                input=b"hello")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"hello"
    text = dump.read_text()
    assert re.search(r"^> .*\n  00000000  68 65 6c 6c 6f .*\|hello\|$", text,
                     re.M), text
    assert re.search(r"^< .*\n  00000000  68 65 6c 6c 6f .*\|hello\|$", text,
                     re.M), text


@row("tcpkit connect --exec /bin/cat host 9000")
def connect_exec(tmp):
    got = []

    def handler(conn, srv):
        conn.sendall(b"echo me\n")
        got.append(recv_until(conn, lambda d: d.endswith(b"\n")))

    with PyServer(handler) as srv:
        p = run(["connect", "--exec", "/bin/cat", "127.0.0.1",
                 str(srv.port)])
        srv.wait_handlers()
    assert got == [b"echo me\n"]
    assert p.returncode == 0, p.stderr


@row("tcpkit connect --proxy socks5://p:1080 host 9000")
def connect_proxy(tmp):
    # The test's own SOCKS5 server (Dante's tests are in test_proxy.py).
    proxy = FakeProxy(socks5_handler)
    try:
        with PyServer(echo_handler) as target:
            p = run(["connect", "--proxy",
                     "socks5://127.0.0.1:%d" % proxy.port, "127.0.0.1",
                     str(target.port)], input=b"tunnelled\n")
        assert p.returncode == 0, p.stderr
        assert p.stdout == b"tunnelled\n"
        assert proxy.seen == [(1, "127.0.0.1", target.port)]
        assert proxy.errors == []
    finally:
        proxy.close()


# --- relay -------------------------------------------------------------------

def relay_round_trip(r, data=b"through the relay\n"):
    with r.connect() as c:
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == data


@row("tcpkit relay :8080 backend:80")
def relay_tcp(tmp):
    need("socat")
    with PyServer(echo_handler) as srv:
        r = Relay(":0", "127.0.0.1:%d" % srv.port)
        try:
            # socat as the client, as a socat user would test it.
            data = blob(500000)
            p = subprocess.run(["socat", "-", "TCP:127.0.0.1:%d" % r.port],
                               input=data, capture_output=True,
                               timeout=TIMEOUT)
            assert p.returncode == 0, p.stderr
            assert p.stdout == data
        finally:
            assert r.stop() == 0


@row("tcpkit relay --cert c.pem --key k.pem tls://:8443 127.0.0.1:8080")
def relay_tls_termination(tmp, certs):
    need("socat")
    with PyServer(echo_handler) as srv:
        r = Relay("--cert", certs["srv"], "--key", certs["srv_key"],
                  "tls://127.0.0.1:0", "127.0.0.1:%d" % srv.port)
        try:
            p = subprocess.run(
                ["socat", "-", "OPENSSL:localhost:%d,cafile=%s" %
                 (r.port, certs["ca"])],
                input=b"terminated here\n", capture_output=True,
                timeout=TIMEOUT)
            assert p.returncode == 0, p.stderr
            assert p.stdout == b"terminated here\n"
        finally:
            assert r.stop() == 0


@row("tcpkit relay :5432 unix:/run/app.sock")
def relay_to_unix(tmp):
    path = str(tmp / "app.sock")
    lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lst.bind(path)
    lst.listen(8)
    r = Relay("127.0.0.1:0", "unix:" + path)
    try:
        c = connect(r.port)
        conn, _ = lst.accept()
        c.sendall(b"to a socket file")
        assert recv_until(conn, lambda d: len(d) >= 16) == b"to a socket file"
        conn.close()
        c.close()
    finally:
        lst.close()
        assert r.stop() == 0


@row("tcpkit relay unix:/tmp/x.sock tls://example.org:443")
def relay_unix_to_tls(tmp, certs):
    path = str(tmp / "x.sock")
    srv = subprocess.Popen([TCPKIT, "serve", "echo", "-p", "0", "-w", "1",
                            "--tls", "--cert", certs["srv"], "--key",
                            certs["srv_key"]], stderr=subprocess.PIPE)
    try:
        line = b""
        while b"listening on" not in line:
            line = srv.stderr.readline()
            assert line, "serve did not listen"
        port = int(re.search(rb":(\d+)\n", line).group(1))
        # example.org:443 made local: the test CA's localhost.
        r = Relay("--cacert", certs["ca"], "unix:" + path,
                  "tls://localhost:%d" % port)
        try:
            relay_round_trip(r, b"originated TLS\n")
        finally:
            assert r.stop() == 0
    finally:
        srv.terminate()
        srv.wait(TIMEOUT)


@row("tcpkit relay -x - :8080 backend:80")
def relay_hexdump(tmp):
    with PyServer(echo_handler) as srv:
        r = Relay("-x", "-", "127.0.0.1:0", "127.0.0.1:%d" % srv.port)
        try:
            relay_round_trip(r, b"hello")
            r.err.wait_for(r"00000000  68 65 6c 6c 6f .*\|hello\|")
        finally:
            assert r.stop() == 0


@row("tcpkit relay :9000 sh:'CMD'")
def relay_sh(tmp):
    r = Relay("127.0.0.1:0", "sh:tr a-z A-Z")
    try:
        with r.connect() as c:
            c.sendall(b"shout\n")
            c.shutdown(socket.SHUT_WR)
            assert recv_all(c) == b"SHOUT\n"
    finally:
        assert r.stop() == 0


@pytest.mark.parametrize("command", sorted(ROWS))
def test_row(command, tmp_path, request):
    fn = ROWS[command]
    if "certs" in fn.__code__.co_varnames[:fn.__code__.co_argcount]:
        fn(tmp_path, request.getfixturevalue("certs"))
    else:
        fn(tmp_path)
