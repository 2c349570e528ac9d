"""The two tutorials' own Python programs (tests/peers/) interoperate with
tcpkit, both ways: their clients against `tcpkit serve`, tcpkit's clients
against their servers, with telnet, netcat and a telnet-style client as the
other real peers.  Every exchange is compared byte for byte with what the
tutorials print (docs/tutorials.md)."""
import datetime
import os
import re
import shutil
import signal
import socket
import subprocess
import sys

import pytest

from tkhelpers import (PEERS, TCPKIT, LineReader, check_sanitizer, connect,
                      recv_all, recv_until, run, need)

PY = sys.executable
WELCOME = b"Welcome to the server. Type something and hit enter\n"
# tcpkit prints Python's str(datetime.now()) with its six digits always; the
# Python peers print what str() gives, which drops ".000000".
TK_STAMP = rb"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}"
PY_STAMP = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{6})?"
TK_GREETING = rb"You connected at \[(" + TK_STAMP + rb")\]\n"
TIMEOUT = 15


def peer_env(port=None, host=None):
    env = dict(os.environ)
    env.pop("TUTORIAL_PORT", None)
    env.pop("TUTORIAL_HOST", None)
    if port is not None:
        env["TUTORIAL_PORT"] = str(port)
    if host is not None:
        env["TUTORIAL_HOST"] = host
    return env


def run_peer(name, args=(), port=None, host=None, input=None,
             timeout=TIMEOUT):
    """Run one of the tutorials' client programs to completion."""
    return subprocess.run([PY, "-u", os.path.join(PEERS, name)] + list(args),
                          input=input, capture_output=True, timeout=timeout,
                          env=peer_env(port, host))


def assert_recent(stamp):
    """A timestamp the program took just now, in local time."""
    if isinstance(stamp, bytes):
        stamp = stamp.decode()
    fmt = "%Y-%m-%d %H:%M:%S" + (".%f" if "." in stamp else "")
    when = datetime.datetime.strptime(stamp, fmt)
    assert abs((datetime.datetime.now() - when).total_seconds()) < 120, stamp


class PeerServer:
    """One of the tutorials' servers, started with TUTORIAL_PORT=0; .port is
    read from the "PORT n" line its test hook prints after listen()."""

    def __init__(self, name):
        self.proc = subprocess.Popen([PY, "-u", os.path.join(PEERS, name)],
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE,
                                     env=peer_env(port=0))
        self.out = LineReader(self.proc.stdout)
        self.err = LineReader(self.proc.stderr)
        try:
            self.port = int(self.out.wait_for(r"^PORT (\d+)$").group(1))
        except AssertionError:
            self.stop()
            raise AssertionError("%s did not start: %s" %
                                 (name, self.err.text()))

    def wait(self, timeout=TIMEOUT):
        rc = self.proc.wait(timeout)
        self.out.join()
        self.err.join()
        return rc

    def stop(self):
        if self.proc.poll() is None:
            # Not SIGINT: a Python program can miss a Ctrl-C that lands
            # just before a blocking recv() and stay blocked there.
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.join()
        self.err.join()


@pytest.fixture
def peer_server():
    """Factory: peer_server("demo_basic_server.py"), stopped at teardown."""
    started = []

    def start(name):
        s = PeerServer(name)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def exited(srv, timeout=TIMEOUT):
    """Wait for a tcpkit server that is to stop by itself; its exit code."""
    try:
        rc = srv.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("the server is still running after %ss" %
                             timeout)
    srv.out.join()
    srv.err.join()
    check_sanitizer(srv.err.text())
    return rc


def welcome_server(serve):
    return serve("welcome", "-H", "127.0.0.1")


# ---------------------------------------------------------------------------
# The peers agree with each other (so a failure below is tcpkit's).


def test_peers_demo_client_against_demo_server(peer_server):
    srv = peer_server("demo_basic_server.py")
    p = run_peer("demo_basic_client.py", ["hello"], port=srv.port)
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert re.fullmatch(
        r"Got Message \[You connected at \[%s\]\n\]\n"
        r"Successfully sent message \[hello\]\n"
        r"Got Second Message \[You sent: \[hello\]\n\]\n" % PY_STAMP,
        out), out
    srv.out.wait_for(r"^Got a connection from \[\('127\.0\.0\.1', \d+\)\] "
                     r"at \[%s\]$" % PY_STAMP)


def test_peers_tutorial1_server_welcomes_and_answers(peer_server):
    srv = peer_server("tutorial1_server.py")
    with connect(srv.port) as s:
        assert recv_until(s, lambda d: len(d) >= len(WELCOME)) == WELCOME
        s.sendall(b"hi\r\n")
        assert recv_until(s, lambda d: d.endswith(b"\n")) == b"OK...hi\r\n"
    srv.out.wait_for(r"^Connected with 127\.0\.0\.1:\d+$")


# ---------------------------------------------------------------------------
# Tutorial 2's client against `tcpkit serve basic`.


def test_demo_client_default_message_against_serve_basic(serve):
    srv = serve("basic", "-H", "127.0.0.1")
    p = run_peer("demo_basic_client.py", port=srv.port)
    assert p.returncode == 0, p.stderr
    m = re.fullmatch(
        rb'No message specified\. Defaulting to "Hey!"\n'
        rb"Got Message \[" + TK_GREETING + rb"\]\n"
        rb"Successfully sent message \[Hey!\]\n"
        rb"Got Second Message \[You sent: \[Hey!\]\n\]\n", p.stdout)
    assert m, p.stdout
    assert_recent(m.group(1))
    assert srv.proc.poll() is None, "serve basic ended after one client"
    assert srv.stop() == 0


def test_demo_client_with_message_against_serve_basic(serve):
    srv = serve("basic", "-H", "127.0.0.1")
    for msg in ["hello", "two words", "caf\u00e9 \u2713"]:
        p = run_peer("demo_basic_client.py", [msg], port=srv.port)
        assert p.returncode == 0, p.stderr
        want = (rb"Got Message \[" + TK_GREETING + rb"\]\n"
                rb"Successfully sent message \[" + re.escape(msg.encode()) +
                rb"\]\n"
                rb"Got Second Message \[You sent: \[" +
                re.escape(msg.encode()) + rb"\]\n\]\n")
        assert re.fullmatch(want, p.stdout), p.stdout
    assert srv.stop() == 0


def test_demo_client_shutdown_stops_serve_basic(serve):
    srv = serve("basic", "-H", "127.0.0.1")
    p = run_peer("demo_basic_client.py", [" ShutDown \n"], port=srv.port)
    assert p.returncode == 0, p.stderr
    # The server answers in two writes; the client's single recv(4096)
    # may see the first or both.
    m = re.fullmatch(
        rb"Got Message \[" + TK_GREETING + rb"\]\n"
        rb"Successfully sent message \[ ShutDown \n\]\n"
        rb"Got Second Message \[You sent: \[ ShutDown \n\]\n"
        rb"(You told me to shut down!\n)?\]\n", p.stdout)
    assert m, p.stdout
    assert exited(srv) == 0, srv.err.text()


def test_shutdown_reply_is_complete_before_serve_basic_exits(serve):
    """The whole tutorial exchange, as telnet would see it."""
    srv = serve("basic", "-H", "127.0.0.1")
    with connect(srv.port) as s:
        m = re.fullmatch(TK_GREETING, recv_until(
            s, lambda d: d.endswith(b"\n")))
        assert m
        s.sendall(b"shutdown\r\n")
        assert recv_all(s) == (b"You sent: [shutdown\r\n]\n"
                               b"You told me to shut down!\n")
    assert exited(srv) == 0, srv.err.text()


def test_serve_basic_serves_clients_one_after_another(serve):
    srv = serve("basic", "-H", "127.0.0.1")
    for i in range(5):
        with connect(srv.port) as s:
            assert re.fullmatch(TK_GREETING, recv_until(
                s, lambda d: d.endswith(b"\n")))
            s.sendall(b"msg %d" % i)
            assert recv_all(s) == b"You sent: [msg %d]\n" % i
    assert srv.stop() == 0


def test_serve_basic_stops_on_ctrl_c(serve):
    srv = serve("basic", "-H", "127.0.0.1")
    assert srv.stop(signal.SIGINT) == 0


# ---------------------------------------------------------------------------
# Tutorial 1's server side: `telnet localhost 9999` from several terminals,
# against `tcpkit serve welcome`.


def test_nc_against_serve_welcome(serve):
    need("nc")
    srv = welcome_server(serve)
    p = subprocess.run(["nc", "-N", "127.0.0.1", str(srv.port)],
                       input=b"hello\n", capture_output=True,
                       timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert p.stdout == WELCOME + b"OK...hello\n"
    assert srv.stop() == 0


def test_nc_lines_one_at_a_time_against_serve_welcome(serve, proc):
    need("nc")
    srv = welcome_server(serve)
    nc = proc(["nc", "-N", "127.0.0.1", str(srv.port)])
    nc.out.wait_for(r"^Welcome to the server\. Type something and hit enter$")
    for i, word in enumerate(["first", "second", "third"]):
        nc.send(word.encode() + b"\n")
        nc.out.wait_for(r"^OK\.\.\.%s$" % word, start=1 + i)
    nc.close_stdin()
    assert nc.wait() == 0
    assert nc.out.lines == [WELCOME.decode().rstrip("\n"), "OK...first",
                            "OK...second", "OK...third"]
    assert srv.stop() == 0


def test_telnet_client_against_serve_welcome(serve, proc):
    srv = welcome_server(serve)
    tn = proc([PY, "-u", os.path.join(PEERS, "telnet_client.py"),
               "--timeout", str(TIMEOUT), "127.0.0.1", str(srv.port)])
    tn.out.wait_for(r"^Welcome to the server\. Type something and hit enter$")
    tn.send(b"hello\n")
    tn.out.wait_for(r"^OK\.\.\.hello\r$")
    tn.send(b"world\n")
    tn.out.wait_for(r"^OK\.\.\.world\r$")
    tn.close_stdin()
    assert tn.wait() == 0, tn.err.text()
    assert tn.out.lines == [WELCOME.decode().rstrip("\n"), "OK...hello\r",
                            "OK...world\r"]
    assert "Connection closed by foreign host." in tn.err.text()
    assert srv.stop() == 0


@pytest.mark.skipif(shutil.which("telnet") is None, reason="no telnet")
def test_real_telnet_against_serve_welcome(serve, proc):
    # telnet quits as soon as its stdin ends, so keep stdin open until the
    # answer has arrived, then close it; the wait is bounded either way.
    srv = welcome_server(serve)
    tn = proc(["telnet", "127.0.0.1", str(srv.port)])
    tn.out.wait_for(r"^Welcome to the server\. Type something and hit enter$")
    tn.send(b"hello\n")
    tn.out.wait_for(r"^OK\.\.\.hello\r?$")
    tn.send(b"again\n")
    tn.out.wait_for(r"^OK\.\.\.again\r?$")
    tn.close_stdin()
    try:
        tn.wait(10)
    except subprocess.TimeoutExpired:
        tn.kill()
    assert srv.proc.poll() is None
    assert srv.stop() == 0


def test_several_clients_at_once_against_serve_welcome(serve, proc):
    """Several telnet-like clients connected at the same time, each
    answered on its own connection (the tutorial's thread per client)."""
    need("nc")
    srv = welcome_server(serve)
    clients = []
    for i in range(6):
        if i % 2:
            argv = ["nc", "-N", "127.0.0.1", str(srv.port)]
        else:
            argv = [PY, "-u", os.path.join(PEERS, "telnet_client.py"),
                    "--timeout", str(TIMEOUT), "127.0.0.1", str(srv.port)]
        c = proc(argv)
        clients.append(c)
    # All are connected and welcomed before any of them says anything.
    for c in clients:
        c.out.wait_for(r"^Welcome to the server")
    for rnd in range(3):
        for i, c in reversed(list(enumerate(clients))):
            c.send(b"client %d round %d\n" % (i, rnd))
        for i, c in enumerate(clients):
            c.out.wait_for(r"^OK\.\.\.client %d round %d\r?$" % (i, rnd))
    for c in clients:
        c.close_stdin()
    for i, c in enumerate(clients):
        assert c.wait() == 0, c.err.text()
        assert [l.rstrip("\r") for l in c.out.lines] == [
            WELCOME.decode().rstrip("\n")] + [
            "OK...client %d round %d" % (i, r) for r in range(3)]
    assert srv.stop() == 0


def test_many_raw_clients_at_once_against_serve_welcome(serve):
    srv = welcome_server(serve)
    socks = [connect(srv.port) for _ in range(50)]
    try:
        for s in socks:
            assert recv_until(s, lambda d: len(d) >= len(WELCOME)) == WELCOME
        for i, s in enumerate(socks):
            s.sendall(b"%d\n" % i)
        for i, s in enumerate(socks):
            assert recv_until(s, lambda d: d.endswith(b"\n")) == (
                b"OK...%d\n" % i)
    finally:
        for s in socks:
            s.close()
    assert srv.stop() == 0


def test_serve_welcome_answers_every_chunk_until_close(serve):
    srv = welcome_server(serve)
    with connect(srv.port) as s:
        assert recv_until(s, lambda d: len(d) >= len(WELCOME)) == WELCOME
        s.sendall(b"no newline")
        assert recv_until(s, lambda d: len(d) >= 15) == b"OK...no newline"
        s.sendall(b"\x00\xff binary\r\n")
        assert recv_until(s, lambda d: d.endswith(b"\n")) == (
            b"OK...\x00\xff binary\r\n")
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == b""
    assert srv.stop() == 0


def test_serve_welcome_waits_for_a_human_past_the_line_timeout(serve):
    """Tutorial 1's server waits for whoever is at the telnet prompt: the
    first word is not held to the 30 s line deadline by default (the idle
    timeout, 5 minutes, still applies).  The client here thinks for 31 s."""
    srv = welcome_server(serve)
    with connect(srv.port, timeout=60) as s:
        assert recv_until(s, lambda d: len(d) >= len(WELCOME)) == WELCOME
        s.settimeout(31)
        try:
            early = s.recv(100)  # sleep-ok: the human's pause is the test
        except socket.timeout:
            early = None
        assert early is None, "closed before the first word: %r" % early
        s.sendall(b"hello\r\n")
        assert recv_until(s, lambda d: d.endswith(b"\n")) == (
            b"OK...hello\r\n")
    assert srv.stop() == 0


# ---------------------------------------------------------------------------
# tcpkit's clients against tutorial 2's server.


def test_send_against_demo_server(peer_server):
    srv = peer_server("demo_basic_server.py")
    p = run(["send", "127.0.0.1", str(srv.port), "hello"], timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    m = re.fullmatch(rb"You connected at \[(" + PY_STAMP.encode() +
                     rb")\]\nYou sent: \[hello\]\n", p.stdout)
    assert m, p.stdout
    assert_recent(m.group(1))
    m = srv.out.wait_for(r"^Got a connection from \[\('127\.0\.0\.1', (\d+)\)"
                         r"\] at \[(%s)\]$" % PY_STAMP)
    assert 0 < int(m.group(1)) < 65536
    assert srv.proc.poll() is None


def test_send_stdin_against_demo_server(peer_server):
    srv = peer_server("demo_basic_server.py")
    p = run(["send", "127.0.0.1", str(srv.port)], input=b"from stdin\n",
            timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert re.fullmatch(rb"You connected at \[" + PY_STAMP.encode() +
                        rb"\]\nYou sent: \[from stdin\n\]\n", p.stdout), \
        p.stdout


def test_send_several_times_against_demo_server(peer_server):
    srv = peer_server("demo_basic_server.py")
    for i in range(3):
        p = run(["send", "127.0.0.1", str(srv.port), "n%d" % i],
                timeout=TIMEOUT)
        assert p.returncode == 0, p.stderr
        assert p.stdout.endswith(b"\nYou sent: [n%d]\n" % i), p.stdout
    srv.out.wait_for(r"^Got a connection from", start=3)
    assert len([l for l in srv.out.lines
                if l.startswith("Got a connection from")]) == 3


def test_send_shutdown_stops_demo_server(peer_server):
    srv = peer_server("demo_basic_server.py")
    p = run(["send", "127.0.0.1", str(srv.port), "shutdown"],
            timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert re.fullmatch(rb"You connected at \[" + PY_STAMP.encode() +
                        rb"\]\nYou sent: \[shutdown\]\n"
                        rb"You told me to shut down!\n", p.stdout), p.stdout
    assert srv.wait() == 0
    assert srv.out.lines[-1] == ("Execution ended because of "
                                 "[Remote user initiated shutdown.]")
    # Nobody listens any more: the negative twin.
    for argv in (["send", "127.0.0.1", str(srv.port), "hello"],
                 ["connect", "127.0.0.1", str(srv.port)]):
        p = run(argv, input=b"", timeout=TIMEOUT)
        assert p.returncode == 69, p.stderr
        assert p.stderr == ("tcpkit: %s 127.0.0.1:%d: Connection refused\n" %
                            (argv[0], srv.port)).encode()
        assert p.stdout == b""


def test_connect_against_demo_server(peer_server):
    srv = peer_server("demo_basic_server.py")
    p = run(["connect", "127.0.0.1", str(srv.port)], input=b"hello",
            timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    m = re.fullmatch(rb"You connected at \[(" + PY_STAMP.encode() +
                     rb")\]\nYou sent: \[hello\]\n", p.stdout)
    assert m, p.stdout
    assert_recent(m.group(1))
    srv.out.wait_for(r"^Got a connection from \[\('127\.0\.0\.1', \d+\)\] "
                     r"at \[%s\]$" % PY_STAMP)


def test_connect_on_a_terminal_against_demo_server(peer_server, proc):
    """As a person would, typing at a terminal: see the greeting, type a
    line; when the server hangs up, tcpkit ends at once, as telnet does."""
    srv = peer_server("demo_basic_server.py")
    c = proc([TCPKIT, "connect", "127.0.0.1", str(srv.port)], tty=True)
    c.out.wait_for(r"^You connected at \[%s\]$" % PY_STAMP)
    c.send(b"typed line\n")
    c.out.wait_for(r"^\]$")
    assert c.wait() == 0, c.err.text()
    assert c.out.lines[1:] == ["You sent: [typed line", "]"]
    check_sanitizer(c.err.text())


def test_connect_with_piped_stdin_against_demo_server(peer_server, proc):
    """With piped stdin, tcpkit sends it to its end even after the server
    closed (see `tcpkit help connect`), then exits 0."""
    srv = peer_server("demo_basic_server.py")
    c = proc([TCPKIT, "connect", "127.0.0.1", str(srv.port)])
    c.out.wait_for(r"^You connected at \[%s\]$" % PY_STAMP)
    c.send(b"piped line\n")
    c.out.wait_for(r"^\]$")
    c.close_stdin()
    assert c.wait() == 0, c.err.text()
    assert c.out.lines[1:] == ["You sent: [piped line", "]"]
    check_sanitizer(c.err.text())


# ---------------------------------------------------------------------------
# tcpkit connect against tutorial 1's server.


def test_connect_against_tutorial1_server(peer_server):
    srv = peer_server("tutorial1_server.py")
    p = run(["connect", "127.0.0.1", str(srv.port)], input=b"hello\n",
            timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert p.stdout == WELCOME + b"OK...hello\n"
    srv.out.wait_for(r"^Connected with 127\.0\.0\.1:\d+$")


def test_connect_interactive_against_tutorial1_server(peer_server, proc):
    srv = peer_server("tutorial1_server.py")
    c = proc([TCPKIT, "connect", "127.0.0.1",
              str(srv.port)])
    c.out.wait_for(r"^Welcome to the server\. Type something and hit enter$")
    for i, word in enumerate(["one", "two", "three"]):
        c.send(word.encode() + b"\n")
        c.out.wait_for(r"^OK\.\.\.%s$" % word, start=1 + i)
    c.close_stdin()
    assert c.wait() == 0, c.err.text()
    assert c.out.lines == [WELCOME.decode().rstrip("\n"), "OK...one",
                           "OK...two", "OK...three"]
    check_sanitizer(c.err.text())


def test_several_tcpkit_connects_at_once_against_tutorial1_server(
        peer_server, proc):
    srv = peer_server("tutorial1_server.py")
    cs = [proc([TCPKIT, "connect", "127.0.0.1",
                str(srv.port)]) for _ in range(4)]
    for c in cs:
        c.out.wait_for(r"^Welcome to the server")
    for i, c in enumerate(cs):
        c.send(b"I am %d\n" % i)
    for i, c in enumerate(cs):
        c.out.wait_for(r"^OK\.\.\.I am %d$" % i)
        c.close_stdin()
    for c in cs:
        assert c.wait() == 0, c.err.text()
        check_sanitizer(c.err.text())
    assert len([l for l in srv.out.lines
                if l.startswith("Connected with 127.0.0.1:")]) == 4


# ---------------------------------------------------------------------------
# Tutorial 1's client against tcpkit and against an HTTP responder.


def client_transcript(reply):
    return ("Socket Created\n"
            "Ip address of 127.0.0.1 is 127.0.0.1\n"
            "Socket Connected to 127.0.0.1 on ip 127.0.0.1\n"
            "Message send successfully\n" + reply + "\n").encode()


def test_tutorial1_client_against_serve_echo(serve):
    srv = serve("echo", "-H", "127.0.0.1")
    p = run_peer("tutorial1_client.py", port=srv.port, host="127.0.0.1")
    assert p.returncode == 0, p.stderr
    assert p.stdout == client_transcript("GET / HTTP/1.1\r\n\r\n")
    assert srv.proc.poll() is None
    assert srv.stop() == 0


def test_tutorial1_client_against_http_responder(pyserver):
    page = ("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
            "Content-Length: 13\r\nConnection: close\r\n\r\n<p>hello</p>\n")

    def http(conn, srv):
        req = recv_until(conn, lambda d: b"\r\n\r\n" in d)
        srv.received.append(req)
        conn.sendall(page.encode())

    srv = pyserver(http)
    p = run_peer("tutorial1_client.py", port=srv.port, host="127.0.0.1")
    assert p.returncode == 0, p.stderr
    assert p.stdout == client_transcript(page)
    assert srv.received == [b"GET / HTTP/1.1\r\n\r\n"]
    assert srv.errors == []


# ---------------------------------------------------------------------------
# A port is held by one server at a time, whichever of the two took it.

IN_USE = ("tcpkit: listen %s:%d: Address already in use: another program "
          "holds this port; choose another with -p, or -p 0 for any free "
          "port\n")


def test_serve_on_the_port_of_tutorial1_server(peer_server):
    srv = peer_server("tutorial1_server.py")
    for host in ("127.0.0.1", "0.0.0.0"):
        p = run(["serve", "welcome", "-H", host, "-p", str(srv.port)],
                timeout=TIMEOUT)
        assert p.returncode == 1, p.stderr
        assert p.stderr == (IN_USE % (host, srv.port)).encode()
        assert p.stdout == b""
    # The tutorial's server still has its port and its clients.
    p = run(["connect", "127.0.0.1", str(srv.port)], input=b"still me\n",
            timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert p.stdout == WELCOME + b"OK...still me\n"


def test_demo_server_on_the_port_of_serve_basic(serve):
    srv = serve("basic", "-H", "127.0.0.1")
    env = peer_env(port=srv.port)
    p = subprocess.run([PY, os.path.join(PEERS, "demo_basic_server.py")],
                       capture_output=True, timeout=TIMEOUT, env=env,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    assert p.stdout == (b"Socket listen failed due to error "
                        b"[[Errno 98] Address already in use]\n")
    # The tutorial's client still reaches tcpkit, not the Python server.
    p = run_peer("demo_basic_client.py", ["mine"], port=srv.port)
    assert re.fullmatch(rb"Got Message \[" + TK_GREETING + rb"\]\n"
                        rb"Successfully sent message \[mine\]\n"
                        rb"Got Second Message \[You sent: \[mine\]\n\]\n",
                        p.stdout), p.stdout
    assert srv.stop() == 0
