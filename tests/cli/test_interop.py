"""tcpkit against the other real tools: netcat (netcat-openbsd) and telnet as
clients of `tcpkit serve`, netcat and Python servers as peers of `tcpkit
connect` and `tcpkit send`; bytes must pass intact in both directions."""
import hashlib
import os
import random
import shutil
import socket
import subprocess
import sys
import threading

import pytest

from tkhelpers import (PEERS, TCPKIT, LineReader, check_sanitizer, connect,
                      recv_all, run, need)

PY = sys.executable
TIMEOUT = 20
EVERY_BYTE = bytes(range(256))


def blob(n, seed):
    """n deterministic pseudo-random bytes (all 256 values appear)."""
    return EVERY_BYTE + random.Random(seed).randbytes(n)


def nc_listener(proc, host="127.0.0.1"):
    """`nc -l` on port 0: netcat-openbsd names the port it got only with
    -v ("Listening on HOST PORT" on stderr), so read it from there."""
    need("nc")
    args = ["nc", "-l", "-v", "-N"]
    if ":" in host:
        args.append("-6")
    nc = proc(args + [host, "0"])
    port = int(nc.err.wait_for(r"^Listening on \S+ (\d+)$").group(1))
    return nc, port


def nc_client(port, data, host="127.0.0.1", timeout=TIMEOUT):
    """nc as a one-shot client: send data, half-close (-N), read to EOF."""
    need("nc")
    return subprocess.run(["nc", "-N", host, str(port)], input=data,
                          capture_output=True, timeout=timeout)


# ---------------------------------------------------------------------------
# netcat and telnet as clients of tcpkit's servers.


def test_nc_against_serve_echo_is_byte_exact(serve):
    srv = serve("echo", "-H", "127.0.0.1")
    data = blob(1 << 20, 1)
    p = nc_client(srv.port, data)
    assert p.returncode == 0, p.stderr
    assert len(p.stdout) == len(data)
    assert p.stdout == data
    assert srv.stop() == 0


def test_nc_empty_input_against_serve_echo(serve):
    srv = serve("echo", "-H", "127.0.0.1")
    p = nc_client(srv.port, b"")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b""
    assert srv.stop() == 0


def test_nc_text_lines_against_serve_echo(serve):
    srv = serve("echo", "-H", "127.0.0.1")
    text = "line one\nline two\r\nno newline at the end \u00e9\u2713".encode()
    p = nc_client(srv.port, text)
    assert p.returncode == 0, p.stderr
    assert p.stdout == text
    assert srv.stop() == 0


def test_nc_over_ipv6_against_serve_echo(serve):
    need("nc")
    srv = serve("echo", "-H", "::1")
    assert srv.host == "::1"
    assert "listening on [::1]:%d" % srv.port in srv.err.lines
    data = blob(64 << 10, 2)
    p = subprocess.run(["nc", "-6", "-N", "::1", str(srv.port)], input=data,
                       capture_output=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert p.stdout == data
    assert srv.stop() == 0


def test_nc_both_families_against_one_serve_echo(serve):
    srv = serve("echo", "-H", "127.0.0.1", "-H", "::1", listeners=2)
    # Server(listeners=2) can return after the first line; wait for both.
    v4 = srv.err.wait_for(r"^listening on 127\.0\.0\.1:(\d+)$")
    v6 = srv.err.wait_for(r"^listening on \[::1\]:(\d+)$")
    addrs = [("127.0.0.1", int(v4.group(1))), ("::1", int(v6.group(1)))]
    for host, port in addrs:
        p = nc_client(port, b"via " + host.encode() + b"\n", host=host)
        assert p.returncode == 0, p.stderr
        assert p.stdout == b"via " + host.encode() + b"\n"
    assert srv.stop() == 0


def test_many_nc_clients_at_once_against_serve_echo(serve):
    need("nc")
    srv = serve("echo", "-H", "127.0.0.1")
    datas = [blob(256 << 10, 100 + i) for i in range(16)]
    procs = [subprocess.Popen(["nc", "-N", "127.0.0.1", str(srv.port)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in datas]
    results = [None] * len(procs)

    def drive(i):
        results[i] = procs[i].communicate(datas[i], timeout=TIMEOUT)

    threads = [threading.Thread(target=drive, args=(i,))
               for i in range(len(procs))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT + 5)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for i, p in enumerate(procs):
        assert results[i] is not None, "nc %d did not finish" % i
        assert p.returncode == 0, results[i][1]
        assert hashlib.sha256(results[i][0]).hexdigest() == \
            hashlib.sha256(datas[i]).hexdigest(), "client %d" % i
    assert srv.stop() == 0


def test_nc_against_serve_discard(serve):
    srv = serve("discard", "-H", "127.0.0.1")
    p = nc_client(srv.port, blob(1 << 20, 3))
    assert p.returncode == 0, p.stderr
    assert p.stdout == b""
    assert srv.stop() == 0


def test_half_close_against_serve_echo(serve):
    """After our FIN the echo server sends what is left, then closes."""
    srv = serve("echo", "-H", "127.0.0.1")
    with connect(srv.port) as s:
        s.sendall(b"before fin")
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == b"before fin"
    assert srv.stop() == 0


def test_telnet_client_escapes_pass_through_serve_echo(serve, proc):
    """telnet_client.py doubles 0xff (IAC IAC) on the way out and undoes it
    on the way in; the echo server must return those bytes untouched."""
    srv = serve("echo", "-H", "127.0.0.1")
    tn = proc([PY, "-u", os.path.join(PEERS, "telnet_client.py"),
               "--timeout", str(TIMEOUT), "127.0.0.1", str(srv.port)])
    tn.send(b"plain line\n")
    tn.out.wait_for(r"^plain line\r$")
    tn.send(b"a\xffb\n")
    tn.close_stdin()
    assert tn.wait() == 0, tn.err.text()
    assert tn.out.lines == ["plain line\r", "a\ufffdb\r"]
    assert srv.stop() == 0


@pytest.mark.skipif(shutil.which("telnet") is None, reason="no telnet")
def test_real_telnet_against_serve_echo(serve, proc):
    srv = serve("echo", "-H", "127.0.0.1")
    tn = proc(["telnet", "127.0.0.1", str(srv.port)])
    tn.out.wait_for(r"^Connected to ")
    tn.send(b"hello telnet\n")
    tn.out.wait_for(r"^hello telnet\r?$")
    tn.close_stdin()
    try:
        tn.wait(10)
    except subprocess.TimeoutExpired:
        tn.kill()
    assert srv.stop() == 0


# ---------------------------------------------------------------------------
# tcpkit's clients against netcat and Python servers.


def test_connect_against_nc_listener(proc):
    nc, port = nc_listener(proc)
    c = proc([TCPKIT, "connect", "127.0.0.1", str(port)])
    nc.err.wait_for(r"^Connection received on ")
    c.send(b"ping from tcpkit\n")
    nc.out.wait_for(r"^ping from tcpkit$")
    nc.send(b"pong from nc\n")
    c.out.wait_for(r"^pong from nc$")
    c.send(b"second\n")
    nc.out.wait_for(r"^second$")
    # tcpkit's stdin ends: it sends FIN, nc sees EOF and closes, and
    # tcpkit, having read to the end, exits 0.
    c.close_stdin()
    assert c.wait() == 0, c.err.text()
    assert nc.wait() == 0, nc.err.text()
    assert c.out.lines == ["pong from nc"]
    assert nc.out.lines == ["ping from tcpkit", "second"]
    check_sanitizer(c.err.text())


def test_connect_over_ipv6_against_nc_listener(proc):
    nc, port = nc_listener(proc, host="::1")
    c = proc([TCPKIT, "connect", "::1", str(port)])
    nc.err.wait_for(r"^Connection received on ")
    nc.send(b"hello over v6\n")
    c.out.wait_for(r"^hello over v6$")
    c.send(b"answer\n")
    nc.out.wait_for(r"^answer$")
    c.close_stdin()
    assert c.wait() == 0, c.err.text()
    assert nc.wait() == 0, nc.err.text()
    check_sanitizer(c.err.text())


def test_send_against_nc_listener(proc):
    nc, port = nc_listener(proc)
    msg = "hello nc \u00e9"
    p = run(["send", "127.0.0.1", str(port), msg], timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b""
    assert nc.wait() == 0, nc.err.text()
    assert nc.out.lines == [msg]


def test_send_binary_stdin_against_nc_listener(tmp_path):
    need("nc")
    data = blob(256 << 10, 4)
    out = tmp_path / "nc.out"
    # nc writes what it receives to a file, so the bytes compare exactly;
    # its stdin stays open (so it sends no FIN of its own) until it is done.
    with open(out, "wb") as f:
        nc = subprocess.Popen(["nc", "-l", "-v", "127.0.0.1", "0"],
                              stdin=subprocess.PIPE, stdout=f,
                              stderr=subprocess.PIPE)
        try:
            err = LineReader(nc.stderr)
            port = int(err.wait_for(r"^Listening on \S+ (\d+)$").group(1))
            p = run(["send", "127.0.0.1", str(port)], input=data,
                    timeout=TIMEOUT)
            assert p.returncode == 0, p.stderr
            assert p.stdout == b""
            assert nc.wait(TIMEOUT) == 0, err.text()
        finally:
            nc.stdin.close()
            if nc.poll() is None:
                nc.kill()
                nc.wait()
    assert out.read_bytes() == data


def test_send_delivers_all_stdin_to_a_server_that_half_closes_first(
        pyserver):
    """A server may send its FIN before it has read the request (nc -N
    with nothing to say does): `send` must still deliver all of stdin,
    since the server's side is still reading."""
    data = blob(1 << 20, 7)

    def sink(conn, srv):
        conn.shutdown(socket.SHUT_WR)
        srv.received.append(recv_all(conn, timeout=TIMEOUT))

    srv = pyserver(sink)
    p = run(["send", "127.0.0.1", str(srv.port)], input=data,
            timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b""
    srv.wait_handlers(1, TIMEOUT)
    assert srv.errors == []
    assert len(srv.received) == 1
    assert len(srv.received[0]) == len(data)
    assert srv.received[0] == data


def test_send_binary_against_python_server(pyserver):
    """All of stdin goes out, all of the answer comes back, bytes intact."""
    data = blob(1 << 20, 5)

    def reverse(conn, srv):
        got = recv_all(conn, timeout=TIMEOUT)
        srv.received.append(got)
        conn.sendall(got[::-1])

    srv = pyserver(reverse)
    p = run(["send", "127.0.0.1", str(srv.port)], input=data,
            timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert srv.errors == []
    assert srv.received == [data]
    assert p.stdout == data[::-1]


def test_connect_binary_against_python_echo(pyserver):
    data = blob(1 << 20, 6)

    def echo(conn, srv):
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            conn.sendall(chunk)

    srv = pyserver(echo)
    p = run(["connect", "127.0.0.1", str(srv.port)], input=data,
            timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert srv.errors == []
    assert p.stdout == data


def test_connect_passes_telnet_commands_through(pyserver):
    """tcpkit connect is a raw TCP client: a telnet server's option
    negotiation reaches stdout as bytes, it is not interpreted."""
    greeting = bytes([255, 253, 1, 255, 251, 3]) + b"login: "

    def telnetd(conn, srv):
        conn.sendall(greeting)
        srv.received.append(recv_all(conn, timeout=TIMEOUT))

    srv = pyserver(telnetd)
    p = run(["connect", "127.0.0.1", str(srv.port)], input=b"user\r\n",
            timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert p.stdout == greeting
    assert srv.received == [b"user\r\n"]


# ---------------------------------------------------------------------------
# The telnet-style peer itself against a server that negotiates options, so
# that its refusals are known to be right.


def test_telnet_client_refuses_options(pyserver, proc):
    def telnetd(conn, srv):
        # DO ECHO, WILL SUPPRESS-GO-AHEAD, DO TERMINAL-TYPE, a
        # subnegotiation, a NOP inside the text and an escaped 0xff.
        conn.sendall(bytes([255, 253, 1, 255, 251, 3, 255, 253, 24]) +
                     bytes([255, 250, 24, 1, 255, 240]) +
                     b"hel" + bytes([255, 241]) + b"lo " +
                     bytes([255, 255]) + b"\n")
        srv.received.append(recv_all(conn, timeout=TIMEOUT))

    srv = pyserver(telnetd)
    tn = proc([PY, "-u", os.path.join(PEERS, "telnet_client.py"),
               "--timeout", str(TIMEOUT), "127.0.0.1", str(srv.port)])
    # Type only once the greeting is shown: by then the refusals are sent.
    tn.out.wait_for(r"^hello \ufffd$")
    tn.send(b"me\n")
    tn.close_stdin()
    assert tn.wait() == 0, tn.err.text()
    assert srv.errors == []
    assert srv.received == [bytes([255, 252, 1, 255, 254, 3, 255, 252, 24]) +
                            b"me\r\n"]
