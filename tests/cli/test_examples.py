"""The examples/ programs, built by CMake into $TCPKIT_EXAMPLES, run against
real peers: Python sockets and HTTP responders, nc, the tutorials' own
Python clients (tests/peers/), and each other.  Exit codes and output lines
are asserted exactly; servers listen on port 0 and tests wait on their
"listening on" line.  Defaults (fixed ports 60000, 9999, 80) are tested only
inside a private network namespace, where no fixed port can collide."""
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import traceback

import pytest

from tkhelpers import (EXAMPLES, PEERS, LineReader, check_sanitizer, connect,
                      free_port, recv_all, recv_until)

PY = sys.executable
TIMEOUT = 15
GREETING = b"Welcome to the server. Type something and hit enter\n"
# Python's str(datetime.now()): microseconds left out when they are zero.
STAMP = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{6})?"
LISTEN = r"^listening on (\S+):(\d+)$"
DEMO_CLIENT = os.path.join(PEERS, "demo_basic_client.py")
UNKNOWN = "no-such-host.invalid"
REFUSED_REPLY = (b"Shutdown refused: only a client on this machine's loopback "
                 b"may stop this server\n")


def example(name):
    """Path of a built example; a missing one is a build failure."""
    path = os.path.join(EXAMPLES, name)
    if not os.access(path, os.X_OK):
        pytest.fail("example %s is not built at %s (set TCPKIT_EXAMPLES or "
                    "build first)" % (name, path))
    return path


def run_example(name, *args, timeout=TIMEOUT, env=None):
    """Run an example to completion; bytes output, sanitizer checked."""
    p = subprocess.run([example(name)] + [str(a) for a in args],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout, env=env)
    check_sanitizer(p.stderr)
    return p


def lines(data):
    return data.decode(errors="replace").splitlines()


def linger_reset(sock):
    """Close with RST instead of FIN (SO_LINGER on, 0 seconds)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))
    sock.close()


class ExampleServer:
    """A server example on a port read from its "listening on" line."""

    def __init__(self, name, *args):
        self.proc = subprocess.Popen([example(name)] + [str(a) for a in args],
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.out = LineReader(self.proc.stdout)
        self.err = LineReader(self.proc.stderr)
        try:
            m = self.err.wait_for(LISTEN, timeout=TIMEOUT)
        except AssertionError:
            self.stop(signal.SIGKILL)
            raise
        self.host, self.port = m.group(1), int(m.group(2))

    def wait(self, timeout=TIMEOUT):
        """Wait for the server to exit on its own; returns its code."""
        rc = self.proc.wait(timeout)
        self.out.join()
        self.err.join()
        check_sanitizer(self.err.text())
        return rc

    def stop(self, sig=signal.SIGTERM, timeout=TIMEOUT):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("server did not stop within %ss" % timeout)


@pytest.fixture
def server():
    """Factory: server(name, *args) starts an example server; stopped at
    teardown if still running."""
    started = []

    def start(name, *args):
        s = ExampleServer(name, *args)
        started.append(s)
        return s

    yield start
    # SIGTERM, not SIGKILL: a clean exit lets LeakSanitizer report.
    for s in started:
        if s.proc.poll() is None:
            s.stop(signal.SIGTERM)


# ---------------------------------------------------------------------------
# http_client: tutorial 1's client.


def http_responder(pyserver, reply, received, host="127.0.0.1",
                   family=socket.AF_INET):
    """A Python HTTP responder: reads one request head, records it, sends
    reply (a list of pieces, each sent whole) and closes."""
    def handler(conn, srv):
        head = recv_until(conn, lambda d: b"\r\n\r\n" in d)
        received.append(head)
        for piece in reply:
            conn.sendall(piece)
    return pyserver(handler, host=host, family=family)


def test_http_client_prints_the_whole_reply(pyserver):
    body = bytes(range(256)) * 1024  # 256 KiB: many reads, binary intact
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    received = []
    srv = http_responder(pyserver, [head, body[:1000], body[1000:]],
                         received)
    p = run_example("http_client", "127.0.0.1", srv.port)
    assert p.returncode == 0, p.stderr
    assert p.stdout == head + body
    assert lines(p.stderr) == [
        "IP address of 127.0.0.1 is 127.0.0.1",
        "Connected to 127.0.0.1 on 127.0.0.1:%d" % srv.port,
        "Request sent",
    ]
    # The tutorial's request, with the Host header HTTP/1.1 requires.
    assert received == [b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                        b"Connection: close\r\n\r\n" % srv.port]


def test_http_client_resolves_a_name(pyserver):
    received = []
    srv = http_responder(pyserver, [b"HTTP/1.1 204 No Content\r\n\r\n"],
                         received)
    p = run_example("http_client", "localhost", srv.port)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"HTTP/1.1 204 No Content\r\n\r\n"
    err = lines(p.stderr)
    assert "IP address of localhost is 127.0.0.1" in err
    assert all(re.match(r"IP address of localhost is \S+$", l)
               for l in err[:-2]), err
    assert err[-2:] == ["Connected to localhost on 127.0.0.1:%d" % srv.port,
                        "Request sent"]
    assert received == [b"GET / HTTP/1.1\r\nHost: localhost:%d\r\n"
                        b"Connection: close\r\n\r\n" % srv.port]


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback")
def test_http_client_ipv6_literal_is_bracketed(pyserver):
    received = []
    srv = http_responder(pyserver, [b"HTTP/1.1 200 OK\r\n\r\nhi"], received,
                         host="::1", family=socket.AF_INET6)
    p = run_example("http_client", "::1", srv.port)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"HTTP/1.1 200 OK\r\n\r\nhi"
    assert lines(p.stderr) == [
        "IP address of ::1 is ::1",
        "Connected to ::1 on [::1]:%d" % srv.port,
        "Request sent",
    ]
    assert received == [b"GET / HTTP/1.1\r\nHost: [::1]:%d\r\n"
                        b"Connection: close\r\n\r\n" % srv.port]


def test_http_client_unknown_host():
    p = run_example("http_client", UNKNOWN, 80)
    assert p.returncode == 1
    assert p.stdout == b""
    assert lines(p.stderr) == [
        "http_client: %s could not be resolved: host not found" % UNKNOWN]


def test_http_client_connection_refused():
    port = free_port()
    p = run_example("http_client", "127.0.0.1", port)
    assert p.returncode == 1
    assert p.stdout == b""
    assert lines(p.stderr) == [
        "IP address of 127.0.0.1 is 127.0.0.1",
        "http_client: connect 127.0.0.1:%d: Connection refused" % port,
    ]


def test_http_client_reset_by_server(pyserver):
    def handler(conn, srv):
        recv_until(conn, lambda d: b"\r\n\r\n" in d)
        linger_reset(conn)
    srv = pyserver(handler)
    p = run_example("http_client", "127.0.0.1", srv.port)
    assert p.returncode == 1
    assert p.stdout == b""
    assert lines(p.stderr)[-1] == (
        "http_client: receive 127.0.0.1:%d: Connection reset by peer"
        % srv.port)


@pytest.mark.parametrize("port", ["http", "99999", "-1", ""])
def test_http_client_bad_port(port):
    p = run_example("http_client", "127.0.0.1", port)
    assert p.returncode == 1
    assert lines(p.stderr) == ["http_client: port %s: malformed port" % port]


def test_http_client_usage():
    p = run_example("http_client", "a", "80", "extra")
    assert p.returncode == 1
    assert lines(p.stderr) == ["usage: http_client [HOST [PORT]]"]


# ---------------------------------------------------------------------------
# echo_server: tutorial 1's threaded server, on an event loop.


def test_echo_server_serves_python_clients_at_once(server):
    srv = server("echo_server", 0)
    assert srv.host == "127.0.0.1"
    clients = [connect(srv.port) for _ in range(5)]
    try:
        # Every client is greeted before any has said a word: none waits
        # for another, as with the tutorial's thread per client.
        for c in clients:
            assert recv_until(c, lambda d: len(d) >= len(GREETING)) == \
                GREETING
        for c in clients:
            srv.out.wait_for(r"^Connected with 127\.0\.0\.1:%d$"
                             % c.getsockname()[1])
        for i, c in reversed(list(enumerate(clients))):
            msg = b"line %d\r\n" % i
            c.sendall(msg)
            want = b"OK..." + msg
            assert recv_until(c, lambda d: len(d) >= len(want)) == want
        # Bytes, not text: every byte value comes back intact.
        data = bytes(range(256))
        clients[0].sendall(data)
        want = b"OK..." + data
        assert recv_until(clients[0], lambda d: len(d) >= len(want)) == want
        # The client closes its side; the server finishes and closes.
        for c in clients:
            c.shutdown(socket.SHUT_WR)
            assert recv_all(c) == b""
    finally:
        for c in clients:
            c.close()
    assert srv.stop(signal.SIGTERM) == 0
    assert srv.err.lines == ["listening on 127.0.0.1:%d" % srv.port,
                             "stopping on SIGTERM"]
    assert len(srv.out.lines) == 5
    assert all(re.match(r"^Connected with 127\.0\.0\.1:\d+$", l)
               for l in srv.out.lines)


@pytest.mark.skipif(shutil.which("nc") is None, reason="nc not installed")
def test_echo_server_with_several_nc_at_once(server):
    srv = server("echo_server", 0)
    ncs = [subprocess.Popen(["nc", "-N", "127.0.0.1", str(srv.port)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE) for _ in range(3)]
    try:
        outs = [n.communicate(b"hello from nc %d\n" % i, timeout=TIMEOUT)
                for i, n in enumerate(ncs)]
    finally:
        for n in ncs:
            if n.poll() is None:
                n.kill()
                n.wait()
    for i, (n, (out, err)) in enumerate(zip(ncs, outs)):
        assert n.returncode == 0, err
        assert out == GREETING + b"OK...hello from nc %d\n" % i
    assert srv.stop(signal.SIGINT) == 0
    assert srv.err.lines[-1] == "stopping on SIGINT"
    assert len(srv.out.lines) == 3


def test_echo_server_ctrl_c_closes_connected_clients(server):
    srv = server("echo_server", 0)
    c = connect(srv.port)
    try:
        assert recv_until(c, lambda d: len(d) >= len(GREETING)) == GREETING
        assert srv.stop(signal.SIGINT) == 0
        # The client sees an orderly end of stream, not a hang.
        assert recv_all(c) == b""
    finally:
        c.close()
    assert srv.err.lines == ["listening on 127.0.0.1:%d" % srv.port,
                             "stopping on SIGINT"]


def test_echo_server_reports_a_reset_and_goes_on(server):
    srv = server("echo_server", 0)
    c = connect(srv.port)
    port = c.getsockname()[1]
    assert recv_until(c, lambda d: len(d) >= len(GREETING)) == GREETING
    linger_reset(c)
    srv.err.wait_for(r"^echo_server: connection 127\.0\.0\.1:%d: "
                     r"Connection reset by peer$" % port)
    c = connect(srv.port)
    try:
        assert recv_until(c, lambda d: len(d) >= len(GREETING)) == GREETING
    finally:
        c.close()
    assert srv.stop() == 0


def test_echo_server_port_in_use():
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        p = run_example("echo_server", port)
    finally:
        holder.close()
    assert p.returncode == 1
    assert p.stdout == b""
    assert lines(p.stderr) == [
        "echo_server: listen 127.0.0.1:%d: Address already in use" % port]


@pytest.mark.parametrize("port", ["abc", "65536", "9999x"])
def test_echo_server_bad_port(port):
    p = run_example("echo_server", port)
    assert p.returncode == 1
    assert lines(p.stderr) == ["echo_server: port %s: malformed port" % port]


def test_echo_server_usage():
    p = run_example("echo_server", "1", "2")
    assert p.returncode == 1
    assert lines(p.stderr) == ["usage: echo_server [PORT]"]


# ---------------------------------------------------------------------------
# basic_server and basic_client: tutorial 2.


def client_lines(message, reply):
    """What the tutorial's client prints: each message with its newline
    inside the brackets, as Python prints what recv() returned."""
    return ([r"Got Message \[You connected at \[%s\]" % STAMP, r"\]",
             r"Successfully sent message \[%s\]" % re.escape(message)] +
            [r"Got Second Message \[" + re.escape(reply[0])] +
            [re.escape(l) for l in reply[1:]] + [r"\]"])


def assert_lines(out, patterns):
    got = lines(out)
    assert len(got) == len(patterns), got
    for line, pat in zip(got, patterns):
        assert re.fullmatch(pat, line), (pat, line, got)


def test_basic_client_against_basic_server(server):
    srv = server("basic_server", 0)
    p = run_example("basic_client", "Hello there", srv.port)
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    assert_lines(p.stdout, client_lines("Hello there",
                                        ["You sent: [Hello there]"]))
    srv.out.wait_for(r"^Got a connection from \[\('127\.0\.0\.1', \d+\)\] "
                     r"at \[%s\]$" % STAMP)
    assert srv.stop(signal.SIGTERM) == 0
    assert srv.out.lines[-1] == "Terminated (SIGTERM), stopping."
    assert srv.err.lines == ["listening on 127.0.0.1:%d" % srv.port]


def test_basic_server_serves_clients_one_after_another(server):
    srv = server("basic_server", 0)
    for i in range(3):
        p = run_example("basic_client", "message %d" % i, srv.port)
        assert p.returncode == 0, p.stderr
        assert_lines(p.stdout, client_lines("message %d" % i,
                                            ["You sent: [message %d]" % i]))
    assert srv.stop(signal.SIGINT) == 0
    assert len(srv.out.lines) == 4
    for line in srv.out.lines[:3]:
        assert re.fullmatch(r"Got a connection from \[\('127\.0\.0\.1', "
                            r"\d+\)\] at \[%s\]" % STAMP, line)
    assert srv.out.lines[3] == "User pressed Ctrl-C, stopping."


def test_basic_client_empty_message(server):
    # The client's FIN marks the end of its message, even an empty one.
    srv = server("basic_server", 0)
    p = run_example("basic_client", "", srv.port)
    assert srv.stop() == 0  # first: shows a sanitizer report, if any
    assert p.returncode == 0, p.stderr
    assert_lines(p.stdout, client_lines("", ["You sent: []"]))


@pytest.mark.parametrize("word", ["shutdown", " ShutDown \n"])
def test_shutdown_word_stops_basic_server(server, word):
    srv = server("basic_server", 0)
    p = run_example("basic_client", word, srv.port)
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert ("Got Second Message [You sent: [%s]\nYou told me to shut down!\n]"
            "\n" % word) in out
    assert srv.wait() == 0
    assert srv.out.lines[-1] == ("Execution ended because of [Remote user "
                                 "initiated shutdown.]")
    assert srv.err.lines == ["listening on 127.0.0.1:%d" % srv.port]


def run_demo_client(port, *args):
    env = dict(os.environ, TUTORIAL_PORT=str(port), TUTORIAL_HOST="127.0.0.1")
    return subprocess.run([PY, "-u", DEMO_CLIENT] + list(args),
                          capture_output=True, timeout=TIMEOUT, env=env)


needs_demo_client = pytest.mark.skipif(
    not os.path.exists(DEMO_CLIENT),
    reason="tests/peers/demo_basic_client.py not present")


@needs_demo_client
def test_demo_client_against_basic_server(server):
    srv = server("basic_server", 0)
    p = run_demo_client(srv.port)
    assert p.returncode == 0, p.stderr
    assert_lines(p.stdout, ['No message specified\\. Defaulting to "Hey!"'] +
                 client_lines("Hey!", ["You sent: [Hey!]"]))
    p = run_demo_client(srv.port, "Hi there")
    assert p.returncode == 0, p.stderr
    assert_lines(p.stdout, client_lines("Hi there", ["You sent: [Hi there]"]))
    assert srv.stop() == 0


@needs_demo_client
def test_demo_client_and_basic_client_print_the_same(server):
    srv = server("basic_server", 0)
    ours = run_example("basic_client", "same words", srv.port)
    theirs = run_demo_client(srv.port, "same words")
    assert ours.returncode == theirs.returncode == 0
    stamp = re.compile(STAMP.encode())
    assert stamp.sub(b"T", ours.stdout) == stamp.sub(b"T", theirs.stdout)


@needs_demo_client
def test_demo_client_shutdown_stops_basic_server(server):
    srv = server("basic_server", 0)
    p = run_demo_client(srv.port, "shutdown")
    assert p.returncode == 0, p.stderr
    assert srv.wait() == 0
    assert srv.out.lines[-1] == ("Execution ended because of [Remote user "
                                 "initiated shutdown.]")


def test_basic_client_connection_refused():
    port = free_port()
    p = run_example("basic_client", "Hi", port)
    assert p.returncode == 1
    assert p.stdout == b""
    assert lines(p.stderr) == [
        "basic_client: connect 127.0.0.1:%d: Connection refused" % port]


def test_basic_client_cuts_the_greeting_at_its_newline(pyserver):
    # The greeting comes in two pieces, the second joined with the start
    # of the reply; the reply ends when the server closes.
    got = []

    def handler(conn, srv):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(b"You conn")
        conn.sendall(b"ected at [then]\nYou sent: ")
        got.append(recv_all(conn))  # the client's FIN ends its message
        conn.sendall(b"[Hi]\n")
    srv = pyserver(handler)
    p = run_example("basic_client", "Hi", srv.port)
    assert p.returncode == 0, p.stderr
    assert lines(p.stdout) == [
        "Got Message [You connected at [then]",
        "]",
        "Successfully sent message [Hi]",
        "Got Second Message [You sent: [Hi]",
        "]",
    ]
    assert got == [b"Hi"]


def test_basic_client_server_closes_before_greeting(pyserver):
    srv = pyserver(lambda conn, s: conn.sendall(b"half a greeting"))
    p = run_example("basic_client", "Hi", srv.port)
    assert p.returncode == 1
    assert p.stdout == b""
    assert lines(p.stderr) == [
        "basic_client: receive 127.0.0.1:%d: connection closed before the "
        "end of the data" % srv.port]


def test_basic_client_reset_while_waiting_for_reply(pyserver):
    def handler(conn, srv):
        conn.sendall(b"You connected at [now]\n")
        recv_all(conn)
        linger_reset(conn)
    srv = pyserver(handler)
    p = run_example("basic_client", "Hi", srv.port)
    assert p.returncode == 1
    assert lines(p.stdout) == ["Got Message [You connected at [now]", "]",
                               "Successfully sent message [Hi]"]
    assert lines(p.stderr) == [
        "basic_client: receive 127.0.0.1:%d: Connection reset by peer"
        % srv.port]


def test_basic_client_greeting_too_long(pyserver):
    srv = pyserver(lambda conn, s: conn.sendall(b"x" * 5000))
    p = run_example("basic_client", "Hi", srv.port)
    assert p.returncode == 1
    assert p.stdout == b""
    assert lines(p.stderr) == [
        "basic_client: receive 127.0.0.1:%d: line too long" % srv.port]


@pytest.mark.parametrize("port", ["abc", "70000"])
def test_basic_client_bad_port(port):
    p = run_example("basic_client", "Hi", port)
    assert p.returncode == 1
    assert p.stdout == b""
    assert lines(p.stderr) == ["basic_client: port %s: malformed port" % port]


def test_basic_server_bad_address():
    p = run_example("basic_server", 0, "300.1.2.3")
    assert p.returncode == 1
    assert lines(p.stderr) == [
        "basic_server: address 300.1.2.3: malformed address"]


def test_basic_server_port_in_use(server):
    srv = server("basic_server", 0)
    p = run_example("basic_server", srv.port)
    assert p.returncode == 1
    assert lines(p.stderr) == [
        "basic_server: listen 127.0.0.1:%d: Address already in use"
        % srv.port]
    assert srv.stop() == 0


def test_basic_server_usage():
    p = run_example("basic_server", "1", "127.0.0.1", "x")
    assert p.returncode == 1
    assert lines(p.stderr) == ["usage: basic_server [PORT [ADDRESS]]"]


# ---------------------------------------------------------------------------
# resolve and interfaces: the tutorials' name lookup and `ip a` steps.


def test_resolve_localhost_and_literals():
    p = run_example("resolve", "localhost", "127.0.0.1", "::1")
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    out = lines(p.stdout)
    assert "localhost IPv4 127.0.0.1" in out
    assert all(re.fullmatch(r"localhost IPv[46] \S+", l) for l in out[:-2])
    assert out[-2:] == ["127.0.0.1 IPv4 127.0.0.1", "::1 IPv6 ::1"]


def test_resolve_unknown_host_does_not_stop_the_others():
    p = run_example("resolve", UNKNOWN, "127.0.0.1")
    assert p.returncode == 1
    assert lines(p.stdout) == ["127.0.0.1 IPv4 127.0.0.1"]
    assert lines(p.stderr) == ["resolve: %s: host not found" % UNKNOWN]


def test_resolve_usage():
    p = run_example("resolve")
    assert p.returncode == 1
    assert lines(p.stderr) == ["usage: resolve HOST..."]


def test_interfaces_shows_loopback():
    p = run_example("interfaces")
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    out = lines(p.stdout)
    lo = [i for i, l in enumerate(out) if re.match(r"\d+: lo: ", l)]
    assert len(lo) == 1, out
    i = lo[0]
    assert re.fullmatch(r"\d+: lo: <LOOPBACK,UP,RUNNING> mtu \d+", out[i])
    addrs = []
    for l in out[i + 1:]:
        if not l.startswith("    "):
            break
        addrs.append(l)
    assert "    inet 127.0.0.1/8" in addrs
    for l in out:
        assert re.fullmatch(r"\d+: \S+: <[A-Z,]+> mtu \d+|"
                            r"    link/ether [0-9a-f:]{17}|"
                            r"    inet [0-9.]+/\d+|"
                            r"    inet6 [0-9a-f:]+/\d+", l), l


def test_interfaces_usage():
    p = run_example("interfaces", "-a")
    assert p.returncode == 1
    assert lines(p.stderr) == ["usage: interfaces"]


# ---------------------------------------------------------------------------
# Defaults (fixed ports) and a non-loopback client, in a private network
# namespace: `unshare -rn` gives this test its own loopback, where port
# 60000 or 80 collides with nothing and 198.51.100.7 (a documentation
# address) can be put on lo to be a client that is not loopback.

NETNS_ADDR = "198.51.100.7"


def netns_available():
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    try:
        p = subprocess.run(["unshare", "-rn", "ip", "link", "set", "lo",
                            "up"], capture_output=True, timeout=TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return p.returncode == 0


needs_netns = pytest.mark.skipif(not netns_available(),
                                 reason="unshare -rn not permitted here")


def run_in_netns(scenario):
    """Run scenario (a function below) in a fresh network namespace; it
    prints a JSON document of its results, returned here."""
    p = subprocess.run(["unshare", "-rn", PY, os.path.abspath(__file__),
                        scenario], capture_output=True, timeout=60,
                       env=dict(os.environ, TCPKIT_EXAMPLES=EXAMPLES))
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    check_sanitizer(p.stderr)
    return json.loads(p.stdout)


def netns_setup():
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "add", NETNS_ADDR + "/32", "dev", "lo"],
                   check=True)


def scenario_basic_defaults():
    srv = ExampleServer("basic_server")
    client = run_example("basic_client")
    stop = run_example("basic_client", "shutdown")
    rc = srv.wait()
    return {"listen": srv.err.lines, "client": client.stdout.decode(),
            "client_rc": client.returncode, "stop_rc": stop.returncode,
            "server_rc": rc, "server_out": srv.out.lines}


@needs_netns
def test_basic_server_and_client_defaults_port_60000():
    r = run_in_netns("scenario_basic_defaults")
    assert r["listen"] == ["listening on 127.0.0.1:60000"]
    assert r["client_rc"] == 0 and r["stop_rc"] == 0 and r["server_rc"] == 0
    assert_lines(r["client"].encode(),
                 ['No message specified\\. Defaulting to "Hey!"'] +
                 client_lines("Hey!", ["You sent: [Hey!]"]))
    assert r["server_out"][-1] == ("Execution ended because of [Remote user "
                                   "initiated shutdown.]")


def scenario_remote_shutdown_refused():
    srv = ExampleServer("basic_server", 0, "0.0.0.0")
    c = socket.socket()
    c.bind((NETNS_ADDR, 0))
    c.connect((NETNS_ADDR, srv.port))
    recv_until(c, lambda d: b"\n" in d)
    c.sendall(b"shutdown")
    c.shutdown(socket.SHUT_WR)
    refused = recv_all(c).decode()
    c.close()
    running = srv.proc.poll() is None
    # From loopback, the word is honoured.
    stop = run_example("basic_client", "shutdown", srv.port)
    rc = srv.wait()
    return {"listen": srv.err.lines, "refused": refused, "running": running,
            "stop": stop.stdout.decode(), "server_rc": rc,
            "server_out": srv.out.lines}


@needs_netns
def test_basic_server_refuses_shutdown_from_a_remote_peer():
    r = run_in_netns("scenario_remote_shutdown_refused")
    assert len(r["listen"]) == 1
    assert re.fullmatch(r"listening on 0\.0\.0\.0:\d+", r["listen"][0])
    assert r["refused"] == ("You sent: [shutdown]\n" +
                            REFUSED_REPLY.decode())
    assert r["running"]
    assert "You told me to shut down!" in r["stop"]
    assert r["server_rc"] == 0
    assert re.fullmatch(r"Got a connection from \[\('%s', \d+\)\] at \[%s\]"
                        % (re.escape(NETNS_ADDR), STAMP), r["server_out"][0])


def scenario_echo_default_port():
    srv = ExampleServer("echo_server")
    c = connect(9999)
    greeting = recv_until(c, lambda d: len(d) >= len(GREETING))
    c.close()
    rc = srv.stop(signal.SIGINT)
    return {"listen": srv.err.lines[0], "greeting": greeting.decode(),
            "rc": rc}


@needs_netns
def test_echo_server_default_port_9999():
    r = run_in_netns("scenario_echo_default_port")
    assert r == {"listen": "listening on 127.0.0.1:9999",
                 "greeting": GREETING.decode(), "rc": 0}


def scenario_http_default_port():
    import threading
    received = []
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 80))  # root in our own namespace may
    lsock.listen(1)

    def serve():
        conn, _ = lsock.accept()
        with conn:
            received.append(recv_until(conn, lambda d: b"\r\n\r\n" in d))
            conn.sendall(b"HTTP/1.1 200 OK\r\n\r\nport 80")
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    p = run_example("http_client", "127.0.0.1")
    t.join(TIMEOUT)
    lsock.close()
    return {"rc": p.returncode, "out": p.stdout.decode(),
            "err": p.stderr.decode(), "request": [r.decode() for r in received]}


@needs_netns
def test_http_client_default_port_80_leaves_it_out_of_host():
    r = run_in_netns("scenario_http_default_port")
    assert r["rc"] == 0, r["err"]
    assert r["out"] == "HTTP/1.1 200 OK\r\n\r\nport 80"
    assert r["request"] == ["GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            "Connection: close\r\n\r\n"]
    assert r["err"].splitlines()[1] == "Connected to 127.0.0.1 on 127.0.0.1:80"


if __name__ == "__main__":
    # Inside `unshare -rn`: run one scenario, print its results as JSON.
    try:
        netns_setup()
        print(json.dumps(globals()[sys.argv[1]]()))
    except Exception:
        traceback.print_exc()
        sys.exit(1)
