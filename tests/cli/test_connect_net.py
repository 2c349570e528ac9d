"""Black-box tests of `tcpkit connect` and the network: host and port
forms, address families, source addresses, -v; every failure (refused,
unknown host, reset, stdout closed) with its exit code and its exact
one-line message; and sessions on a terminal."""
import os
import pty
import select
import socket
import struct
import subprocess
import time

import pytest

from clienthelpers import err_line, peer, recv_exactly, recv_to_eof
from tkhelpers import TCPKIT, check_sanitizer, free_port, run


# --- addresses, families, source ---------------------------------------------

def greet_with_peer_address(c):
    host, port = c.getpeername()[:2]
    c.sendall(("%s %d\n" % (host, port)).encode())
    return host, port


def test_host_port_as_one_argument(pyserver):
    srv = peer(pyserver, greet_with_peer_address)
    p = run(["connect", "-v", "127.0.0.1:%d" % srv.port], input=b"")
    assert p.returncode == 0, p.stderr
    assert p.stderr == b"connected to 127.0.0.1:%d\n" % srv.port
    assert p.stdout.startswith(b"127.0.0.1 ")


def test_verbose_long_form(pyserver):
    srv = peer(pyserver, lambda c: c.sendall(b"hi\n"))
    p = run(["connect", "--verbose", "127.0.0.1", str(srv.port)], input=b"")
    assert p.returncode == 0, p.stderr
    assert p.stderr == b"connected to 127.0.0.1:%d\n" % srv.port
    assert p.stdout == b"hi\n"


def test_without_verbose_stderr_is_empty(pyserver):
    srv = peer(pyserver, lambda c: c.sendall(b"hi\n"))
    p = run(["connect", "127.0.0.1", str(srv.port)], input=b"")
    assert (p.returncode, p.stdout, p.stderr) == (0, b"hi\n", b"")


@pytest.mark.parametrize("form", ["[::1]:{port}", "[::1] {port}",
                                  "::1 {port}"])
def test_ipv6_peer(pyserver, form):
    data = bytes(range(256))

    def echo(c):
        got = recv_to_eof(c)
        c.sendall(got)
        return c.getpeername()[0]

    srv = peer(pyserver, echo, host="::1", family=socket.AF_INET6)
    args = form.format(port=srv.port).split()
    p = run(["connect", "-v"] + args, input=data)
    assert p.returncode == 0, p.stderr
    assert p.stderr == b"connected to [::1]:%d\n" % srv.port
    assert p.stdout == data
    assert srv.result() == "::1"


def test_ipv6_only_with_6(pyserver):
    srv = peer(pyserver, lambda c: c.sendall(b"v6\n"), host="::1",
               family=socket.AF_INET6)
    p = run(["connect", "-6", "::1", str(srv.port)], input=b"")
    assert (p.returncode, p.stdout, p.stderr) == (0, b"v6\n", b"")


def test_ipv4_only_with_4_and_localhost(pyserver):
    srv = peer(pyserver, greet_with_peer_address)
    p = run(["connect", "-4", "-v", "localhost", str(srv.port)], input=b"")
    assert p.returncode == 0, p.stderr
    assert p.stderr == b"connected to 127.0.0.1:%d\n" % srv.port
    assert srv.result()[0] == "127.0.0.1"


def test_6_with_an_ipv4_literal():
    p = run(["connect", "-6", "127.0.0.1", "80"], input=b"")
    assert p.returncode == 68, p.stderr
    assert p.stderr == err_line("127.0.0.1:80",
                                "host has no address of the requested family")


def test_4_with_an_ipv6_literal():
    p = run(["connect", "-4", "::1", "80"], input=b"")
    assert p.returncode == 68, p.stderr
    assert p.stderr == err_line("[::1]:80",
                                "host has no address of the requested family")


def has_v6_localhost():
    try:
        return bool(socket.getaddrinfo("localhost", None, socket.AF_INET6,
                                       socket.SOCK_STREAM))
    except socket.gaierror:
        return False


def test_6_with_localhost(pyserver):
    """localhost with -6: connects to ::1 where localhost has it, else
    exit 68 (here /etc/hosts gives localhost only 127.0.0.1)."""
    if has_v6_localhost():
        srv = peer(pyserver, lambda c: c.sendall(b"v6\n"), host="::1",
                   family=socket.AF_INET6)
        p = run(["connect", "-6", "localhost", str(srv.port)], input=b"")
        assert (p.returncode, p.stdout, p.stderr) == (0, b"v6\n", b"")
    else:
        p = run(["connect", "-6", "localhost", "80"], input=b"")
        assert p.returncode == 68, p.stderr
        assert p.stderr == err_line(
            "localhost:80", "host has no address of the requested family")


def test_source_address(pyserver):
    srv = peer(pyserver, greet_with_peer_address)
    p = run(["connect", "-s", "127.0.0.2", "127.0.0.1", str(srv.port)],
            input=b"")
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    assert srv.result()[0] == "127.0.0.2"
    assert p.stdout.startswith(b"127.0.0.2 ")


def test_source_address_and_port_long_form(pyserver):
    srv = peer(pyserver, greet_with_peer_address)
    sport = free_port()
    p = run(["connect", "--source", "127.0.0.3:%d" % sport, "127.0.0.1",
             str(srv.port)], input=b"")
    assert p.returncode == 0, p.stderr
    assert srv.result() == ("127.0.0.3", sport)


def test_without_source_the_peer_sees_loopback(pyserver):
    srv = peer(pyserver, greet_with_peer_address)
    p = run(["connect", "127.0.0.1", str(srv.port)], input=b"")
    assert p.returncode == 0, p.stderr
    assert srv.result()[0] == "127.0.0.1"


def test_ipv6_source(pyserver):
    srv = peer(pyserver, greet_with_peer_address, host="::1",
               family=socket.AF_INET6)
    p = run(["connect", "-s", "[::1]:0", "::1", str(srv.port)], input=b"")
    assert p.returncode == 0, p.stderr
    assert srv.result()[0] == "::1"


def test_source_address_not_on_this_machine():
    port = free_port()
    p = run(["connect", "-s", "192.0.2.99", "127.0.0.1", str(port)],
            input=b"")
    assert p.returncode == 69, p.stderr
    assert p.stderr == err_line("127.0.0.1:%d" % port,
                                "Cannot assign requested address")


def test_ipv6_source_with_an_ipv4_destination():
    """-s ::1 restricts the destination to IPv6: 127.0.0.1 has none."""
    p = run(["connect", "-s", "::1", "127.0.0.1", "80"], input=b"")
    assert p.returncode == 68, p.stderr
    assert p.stderr == err_line("127.0.0.1:80",
                                "host has no address of the requested family")


# --- failures ----------------------------------------------------------------

def test_refused():
    port = free_port()
    p = run(["connect", "127.0.0.1", str(port)], input=b"")
    assert p.returncode == 69, p.stderr
    assert p.stderr == err_line("127.0.0.1:%d" % port, "Connection refused")
    assert p.stdout == b""


def test_refused_ipv6_bracketed():
    port = free_port()
    p = run(["connect", "[::1]:%d" % port], input=b"")
    assert p.returncode == 69, p.stderr
    assert p.stderr == err_line("[::1]:%d" % port, "Connection refused")


def test_refused_verbose_names_the_last_attempt():
    port = free_port()
    p = run(["connect", "-v", "127.0.0.1", str(port)], input=b"")
    assert p.returncode == 69, p.stderr
    assert p.stderr == (err_line("127.0.0.1:%d" % port, "Connection refused")
                        + b"last attempt: 127.0.0.1:%d: Connection refused\n"
                        % port)


def test_service_name_port_is_resolved():
    """'echo' is port 7: nothing listens there, so it is refused (and the
    error names the port as given)."""
    s = socket.socket()
    try:
        if s.connect_ex(("127.0.0.1", 7)) == 0:
            pytest.skip("something listens on 127.0.0.1:7")
    finally:
        s.close()
    p = run(["connect", "127.0.0.1", "echo"], input=b"")
    assert p.returncode == 69, p.stderr
    assert p.stderr == err_line("127.0.0.1:echo", "Connection refused")


def test_unknown_host():
    p = run(["connect", "nosuchhost.invalid", "80"], input=b"")
    assert p.returncode == 68, p.stderr
    assert p.stderr == err_line("nosuchhost.invalid:80", "host not found")
    assert p.stdout == b""


def test_unknown_host_one_argument():
    p = run(["connect", "nosuchhost.invalid:80"], input=b"")
    assert p.returncode == 68, p.stderr
    assert p.stderr == err_line("nosuchhost.invalid:80", "host not found")


def test_peer_reset(pyserver, spawn):
    def reset(c):
        got = recv_exactly(c, 3)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
        c.close()
        return got

    srv = peer(pyserver, reset)
    tk = spawn(["connect", "127.0.0.1", str(srv.port)])
    tk.write(b"hi\n")
    assert srv.result() == b"hi\n"
    rc, out, err = tk.wait(10)
    assert rc == 69, err
    assert err == err_line("127.0.0.1:%d" % srv.port,
                           "Connection reset by peer")
    assert out == b""


def test_stdout_closed_early_ends_without_hanging(pyserver, release):
    """Output piped into `head -c 10`, which exits: tcpkit must notice
    and exit (0, quietly) although the peer keeps sending and stdin stays
    open."""
    def flood(c):
        chunk = b"z" * 65536
        deadline = time.monotonic() + 30
        try:
            while time.monotonic() < deadline and not release.is_set():
                c.sendall(chunk)
        except OSError:
            return "stopped"
        return "deadline"

    srv = peer(pyserver, flood)
    tk = subprocess.Popen([TCPKIT, "connect", "127.0.0.1", str(srv.port)],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    head = subprocess.Popen(["head", "-c", "10"], stdin=tk.stdout,
                            stdout=subprocess.PIPE)
    tk.stdout.close()  # only head holds the read end now
    try:
        out, _ = head.communicate(timeout=10)
        assert out == b"z" * 10
        rc = tk.wait(10)
        err = tk.stderr.read()
    finally:
        for proc in (tk, head):
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
        tk.stdin.close()
        tk.stderr.close()
    check_sanitizer(err)
    assert (rc, err) == (0, b"")
    assert srv.result() == "stopped"


# --- interactive, from a terminal --------------------------------------------

class Pty:
    """tcpkit connect with its stdin and stdout on a pseudo-terminal."""

    def __init__(self, args):
        self.master, slave = pty.openpty()
        self.p = subprocess.Popen([TCPKIT] + args, stdin=slave, stdout=slave,
                                  stderr=subprocess.PIPE, close_fds=True)
        os.close(slave)
        self.buf = b""

    def expect(self, want, timeout=10):
        deadline = time.monotonic() + timeout
        while want not in self.buf:
            left = deadline - time.monotonic()
            assert left > 0, "no %r on the terminal; got %r" % (want, self.buf)
            r, _, _ = select.select([self.master], [], [], left)
            if not r:
                continue
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: the slave side is closed
                chunk = b""
            assert chunk, "terminal closed; got %r" % self.buf
            self.buf += chunk
        return self.buf

    def type(self, data):
        os.write(self.master, data)

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(10)
        self.p.stderr.close()
        os.close(self.master)


def test_interactive_session_on_a_terminal(serve):
    srv = serve("welcome", "-q")
    term = Pty(["connect", "127.0.0.1", str(srv.port)])
    try:
        # The terminal turns \n into \r\n on output.
        term.expect(b"Welcome to the server. Type something and hit enter"
                    b"\r\n")
        term.type(b"hello there\n")
        term.expect(b"OK...hello there\r\n")
        term.type(b"second line\n")
        term.expect(b"OK...second line\r\n")
        term.type(b"\x04")  # Ctrl-D: end of input
        rc = term.p.wait(10)
        err = term.p.stderr.read()
    finally:
        term.close()
    check_sanitizer(err)
    assert (rc, err) == (0, b"")


def test_terminal_session_ends_when_the_peer_closes(pyserver):
    """At a terminal, the peer's close ends the session at once (as with
    telnet): no Ctrl-D needed."""
    def say_bye(c):
        c.sendall(b"bye\n")
        c.shutdown(socket.SHUT_WR)
        return recv_to_eof(c)

    srv = peer(pyserver, say_bye)
    term = Pty(["connect", "127.0.0.1", str(srv.port)])
    try:
        term.expect(b"bye\r\n")
        rc = term.p.wait(10)
        err = term.p.stderr.read()
    finally:
        term.close()
    check_sanitizer(err)
    assert (rc, err) == (0, b"")
    assert srv.result() == b""
