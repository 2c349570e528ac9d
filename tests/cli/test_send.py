"""Black-box tests of `tcpkit send`: one exchange (MESSAGE or stdin, FIN,
everything printed until the server closes), --newline and -C, the -v
narration, tutorial 2 against `tcpkit serve basic`, the idle timeout and
every error with its exit code and exact one-line message."""
import hashlib
import os
import re
import socket
import struct
import time

import pytest

# The client tests share their helpers: both commands run one session code.
from clienthelpers import err_line, peer, recv_to_eof, trickle_forever, usage
from tkhelpers import free_port, run


def send_err(where, why):
    return err_line(where, why, cmd="send")


def send_usage(msg):
    return usage(msg, cmd="send")


def reply_after_eof(prefix=b"got [", suffix=b"]\n"):
    """A peer that answers only once it has seen our FIN."""
    def fn(c):
        got = recv_to_eof(c)
        c.sendall(prefix + got + suffix)
        return got
    return fn


# --- the exchange ------------------------------------------------------------

def test_message_argument(pyserver):
    srv = peer(pyserver, reply_after_eof())
    p = run(["send", "127.0.0.1", str(srv.port), "Hey!"])
    assert (p.returncode, p.stderr) == (0, b"")
    assert p.stdout == b"got [Hey!]\n"
    assert srv.result() == b"Hey!"


def test_message_argument_ignores_stdin(pyserver):
    srv = peer(pyserver, reply_after_eof())
    p = run(["send", "127.0.0.1", str(srv.port), "only this"],
            input=b"not this\n")
    assert (p.returncode, p.stderr) == (0, b"")
    assert srv.result() == b"only this"


def test_empty_message_sends_nothing_but_fin(pyserver):
    srv = peer(pyserver, reply_after_eof())
    p = run(["send", "127.0.0.1", str(srv.port), ""])
    assert (p.returncode, p.stdout, p.stderr) == (0, b"got []\n", b"")
    assert srv.result() == b""


def test_stdin_when_no_message(pyserver):
    data = b"line one\nline two\n" + bytes(range(256))
    srv = peer(pyserver, reply_after_eof())
    p = run(["send", "127.0.0.1", str(srv.port)], input=data)
    assert (p.returncode, p.stderr) == (0, b"")
    assert srv.result() == data
    assert p.stdout == b"got [" + data + b"]\n"


def test_stdin_with_host_port_form(pyserver):
    srv = peer(pyserver, reply_after_eof())
    p = run(["send", "127.0.0.1:%d" % srv.port], input=b"hello")
    assert (p.returncode, p.stdout, p.stderr) == (0, b"got [hello]\n", b"")


def test_ipv6_host_port_form(pyserver):
    srv = peer(pyserver, reply_after_eof(), host="::1",
               family=socket.AF_INET6)
    p = run(["send", "[::1]:%d" % srv.port], input=b"six")
    assert (p.returncode, p.stdout, p.stderr) == (0, b"got [six]\n", b"")


def test_newline(pyserver):
    srv = peer(pyserver, reply_after_eof())
    p = run(["send", "--newline", "127.0.0.1", str(srv.port), "Hey!"])
    assert (p.returncode, p.stderr) == (0, b"")
    assert srv.result() == b"Hey!\n"


@pytest.mark.parametrize("crlf", ["-C", "--crlf"])
def test_newline_with_crlf(pyserver, crlf):
    srv = peer(pyserver, reply_after_eof())
    p = run(["send", crlf, "--newline", "127.0.0.1", str(srv.port), "Hey!"])
    assert (p.returncode, p.stderr) == (0, b"")
    assert srv.result() == b"Hey!\r\n"


def test_without_newline_nothing_is_added(pyserver):
    srv = peer(pyserver, reply_after_eof())
    p = run(["send", "-C", "127.0.0.1", str(srv.port), "Hey!"])
    assert p.returncode == 0, p.stderr
    assert srv.result() == b"Hey!"


def test_crlf_converts_the_message(pyserver):
    srv = peer(pyserver, reply_after_eof())
    p = run(["send", "-C", "127.0.0.1", str(srv.port), "a\nb\r\nc"])
    assert p.returncode == 0, p.stderr
    assert srv.result() == b"a\r\nb\r\nc"


def test_crlf_converts_stdin(pyserver):
    srv = peer(pyserver, reply_after_eof())
    p = run(["send", "--crlf", "127.0.0.1", str(srv.port)],
            input=b"GET / HTTP/1.0\n\n")
    assert p.returncode == 0, p.stderr
    assert srv.result() == b"GET / HTTP/1.0\r\n\r\n"


def test_everything_is_printed_until_the_server_closes(pyserver):
    """After our FIN the server sends a large answer in pieces, some of
    them late; all of it is printed, then exit 0."""
    big = os.urandom(4 * 1024 * 1024)

    def answer(c):
        got = recv_to_eof(c)
        c.sendall(b"first\n")
        time.sleep(0.2)  # sleep-ok: pacing the scenario, not synchronising
        c.sendall(big)
        time.sleep(0.2)  # sleep-ok: pacing the scenario
        c.sendall(b"last\n")
        return got

    srv = peer(pyserver, answer)
    p = run(["send", "127.0.0.1", str(srv.port), "go"], timeout=60)
    assert (p.returncode, p.stderr) == (0, b"")
    assert srv.result() == b"go"
    want = b"first\n" + big + b"last\n"
    assert len(p.stdout) == len(want)
    assert hashlib.sha256(p.stdout).digest() == hashlib.sha256(want).digest()


def test_source_address(pyserver):
    def who(c):
        recv_to_eof(c)
        c.sendall(c.getpeername()[0].encode() + b"\n")

    srv = peer(pyserver, who)
    p = run(["send", "-s", "127.0.0.2", "127.0.0.1", str(srv.port), "x"])
    assert (p.returncode, p.stdout, p.stderr) == (0, b"127.0.0.2\n", b"")


def test_ipv4_only(pyserver):
    srv = peer(pyserver, reply_after_eof())
    p = run(["send", "-4", "localhost", str(srv.port), "v4"])
    assert (p.returncode, p.stdout, p.stderr) == (0, b"got [v4]\n", b"")


# --- -v ----------------------------------------------------------------------

def test_verbose_narrates_each_step(pyserver):
    srv = peer(pyserver, reply_after_eof())
    p = run(["send", "-v", "127.0.0.1", str(srv.port), "Hey!"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"got [Hey!]\n"
    assert p.stderr.decode() == (
        "resolved 127.0.0.1 to 1 address\n"
        "connected to 127.0.0.1:%d\n"
        "sent 4 bytes\n"
        "half-closed: sent FIN, reading the answer\n"
        "received 11 bytes; the server closed\n" % srv.port)


def test_verbose_counts_stdin_and_crlf(pyserver):
    srv = peer(pyserver, reply_after_eof(b"", b""))
    p = run(["send", "--verbose", "-C", "127.0.0.1", str(srv.port)],
            input=b"a\nb\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"a\r\nb\r\n"
    assert p.stderr.decode() == (
        "resolved 127.0.0.1 to 1 address\n"
        "connected to 127.0.0.1:%d\n"
        "sent 6 bytes\n"
        "half-closed: sent FIN, reading the answer\n"
        "received 6 bytes; the server closed\n" % srv.port)


def test_verbose_with_a_name(pyserver):
    addrs = []
    for fam, _, _, _, sa in socket.getaddrinfo("localhost", None, 0,
                                               socket.SOCK_STREAM):
        if sa[0] not in addrs:
            addrs.append(sa[0])
    srv = peer(pyserver, reply_after_eof())
    p = run(["send", "-4", "-v", "localhost", str(srv.port), "x"])
    assert p.returncode == 0, p.stderr
    v4 = [a for a in addrs if ":" not in a]
    first = p.stderr.decode().splitlines()[0]
    assert first == "resolved localhost to %d address%s" % (
        len(v4), "" if len(v4) == 1 else "es")
    assert p.stderr.decode().splitlines()[1] == \
        "connected to 127.0.0.1:%d" % srv.port


def test_without_verbose_stderr_is_empty(pyserver):
    srv = peer(pyserver, reply_after_eof())
    p = run(["send", "127.0.0.1", str(srv.port), "x"])
    assert (p.returncode, p.stderr) == (0, b"")


def test_verbose_refused():
    port = free_port()
    p = run(["send", "-v", "127.0.0.1", str(port), "x"])
    assert p.returncode == 69, p.stderr
    assert p.stderr.decode() == (
        "resolved 127.0.0.1 to 1 address\n"
        "tcpkit: send 127.0.0.1:%d: Connection refused\n"
        "last attempt: 127.0.0.1:%d: Connection refused\n" % (port, port))


# --- tutorial 2 --------------------------------------------------------------

STAMP = rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}"


def test_tutorial2_against_serve_basic(serve):
    srv = serve("basic")
    p = run(["send", "127.0.0.1", str(srv.port), "Hey!"])
    assert (p.returncode, p.stderr) == (0, b"")
    assert re.fullmatch(rb"You connected at \[" + STAMP + rb"\]\n"
                        rb"You sent: \[Hey!\]\n", p.stdout), p.stdout
    srv.err.wait_for(r"^Got a connection from \[127\.0\.0\.1:\d+\] at ")


def test_tutorial2_from_stdin_against_serve_basic(serve):
    srv = serve("basic", "-q")
    p = run(["send", "127.0.0.1:%d" % srv.port], input=b"from stdin")
    assert (p.returncode, p.stderr) == (0, b"")
    assert re.fullmatch(rb"You connected at \[" + STAMP + rb"\]\n"
                        rb"You sent: \[from stdin\]\n", p.stdout), p.stdout


# --- timeouts ----------------------------------------------------------------

def silent_after_eof(release):
    """Reads our message and FIN, then says nothing and keeps the
    connection open until the test ends."""
    def fn(c):
        got = recv_to_eof(c)
        release.wait(60)
        return got
    return fn


def test_idle_timeout_default_is_30s(pyserver, release):
    srv = peer(pyserver, silent_after_eof(release))
    t0 = time.monotonic()
    p = run(["send", "127.0.0.1", str(srv.port), "anyone?"], timeout=60)
    took = time.monotonic() - t0
    assert p.returncode == 75, p.stderr
    assert p.stderr == send_err("127.0.0.1:%d" % srv.port,
                                "idle timeout (no data for 30s)")
    assert p.stdout == b""
    assert 29.5 <= took < 45, took
    release.set()
    assert srv.result() == b"anyone?"


@pytest.mark.parametrize("opt", [["-i", "1"], ["--idle-timeout", "1s"],
                                 ["--idle-timeout=1000ms"]])
def test_idle_timeout(pyserver, release, opt):
    srv = peer(pyserver, silent_after_eof(release))
    t0 = time.monotonic()
    p = run(["send"] + opt + ["127.0.0.1", str(srv.port), "anyone?"])
    took = time.monotonic() - t0
    assert p.returncode == 75, p.stderr
    assert p.stderr == send_err("127.0.0.1:%d" % srv.port,
                                "idle timeout (no data for 1s)")
    assert 0.9 <= took < 6, took


def test_idle_timeout_after_partial_answer(pyserver, release):
    """Some data, then silence: the timer counts from the last byte."""
    def fn(c):
        recv_to_eof(c)
        c.sendall(b"partial")
        release.wait(60)

    srv = peer(pyserver, fn)
    p = run(["send", "-i", "500ms", "127.0.0.1", str(srv.port), "x"])
    assert p.returncode == 75, p.stderr
    assert p.stdout == b"partial"
    assert p.stderr == send_err("127.0.0.1:%d" % srv.port,
                                "idle timeout (no data for 500ms)")


def slow_answer(c):
    got = recv_to_eof(c)
    time.sleep(1.5)  # sleep-ok: the scenario: a server slower than -i 1
    c.sendall(b"late answer\n")
    return got


def test_idle_timeout_zero_waits(pyserver):
    srv = peer(pyserver, slow_answer)
    p = run(["send", "-i", "0", "127.0.0.1", str(srv.port), "x"])
    assert (p.returncode, p.stdout, p.stderr) == (0, b"late answer\n", b"")


def test_max_time_cuts_a_trickling_server(pyserver):
    """The idle timeout never fires on a server that answers a byte at a
    time without end; --max-time ends the exchange."""
    srv = peer(pyserver, trickle_forever)
    t0 = time.monotonic()
    p = run(["send", "--max-time", "700ms", "127.0.0.1", str(srv.port),
             "x"])
    took = time.monotonic() - t0
    assert p.returncode == 75, p.stderr
    assert p.stdout and p.stdout == b"x\n" * (len(p.stdout) // 2)
    assert p.stderr == send_err(
        "127.0.0.1:%d" % srv.port,
        "max time (700ms) reached: sent 1 bytes, received %d"
        % len(p.stdout))
    assert 0.6 <= took < 6, took
    assert srv.result() == "gone"


def test_max_time_not_reached(pyserver):
    srv = peer(pyserver, reply_after_eof())
    p = run(["send", "-m", "10", "127.0.0.1", str(srv.port), "Hey!"])
    assert (p.returncode, p.stdout, p.stderr) == (0, b"got [Hey!]\n", b"")


def test_idle_timeout_one_second_gives_up_on_the_same_server(pyserver):
    """The twin of -i 0: the same slow server, and -i 1 gives up."""
    srv = peer(pyserver, slow_answer)
    p = run(["send", "-i", "1", "127.0.0.1", str(srv.port), "x"])
    assert p.returncode == 75, p.stderr
    assert p.stderr == send_err("127.0.0.1:%d" % srv.port,
                                "idle timeout (no data for 1s)")


def test_connect_timeout(blackhole):
    p = run(["send", "-w", "1", "127.0.0.1", str(blackhole), "x"])
    assert p.returncode == 75, p.stderr
    assert p.stderr == send_err("127.0.0.1:%d" % blackhole,
                                "connect timed out after 1s")


# --- failures ----------------------------------------------------------------

def test_refused():
    port = free_port()
    p = run(["send", "127.0.0.1", str(port), "x"])
    assert p.returncode == 69, p.stderr
    assert p.stderr == send_err("127.0.0.1:%d" % port, "Connection refused")
    assert p.stdout == b""


def test_unknown_host():
    p = run(["send", "nosuchhost.invalid", "80", "x"])
    assert p.returncode == 68, p.stderr
    assert p.stderr == send_err("nosuchhost.invalid:80", "host not found")


def test_6_with_an_ipv4_literal():
    p = run(["send", "-6", "127.0.0.1", "80", "x"])
    assert p.returncode == 68, p.stderr
    assert p.stderr == send_err("127.0.0.1:80",
                                "host has no address of the requested family")


def test_reset_by_the_server(pyserver):
    def reset(c):
        got = recv_to_eof(c)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
        c.close()
        return got

    srv = peer(pyserver, reset)
    p = run(["send", "127.0.0.1", str(srv.port), "x"])
    assert p.returncode == 69, p.stderr
    assert p.stderr == send_err("127.0.0.1:%d" % srv.port,
                                "Connection reset by peer")
    assert srv.result() == b"x"


# --- help and usage errors ---------------------------------------------------

@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help(flag):
    p = run(["send", flag])
    assert (p.returncode, p.stderr) == (0, b"")
    assert p.stdout == run(["help", "send"]).stdout
    assert p.stdout.startswith(
        b"usage: tcpkit send [OPTIONS] HOST PORT [MESSAGE]\n")


USAGE_ERRORS = [
    ([], "missing HOST and PORT"),
    (["127.0.0.1"],
     "missing PORT (give HOST PORT or HOST:PORT, not '127.0.0.1')"),
    (["127.0.0.1", "abc", "x"], "unknown port 'abc'"),
    (["127.0.0.1", "70000", "x"], "port 70000 is out of range (1-65535)"),  # port-ok
    (["127.0.0.1", "1", "msg", "extra"], "unexpected argument 'extra'"),
    (["-4", "-6", "127.0.0.1", "1", "x"], "-4 and -6 exclude each other"),
    (["--no-shutdown", "127.0.0.1", "1", "x"],
     "option '--no-shutdown' is for 'tcpkit connect'"),
    (["--send-only", "127.0.0.1", "1", "x"],
     "option '--send-only' is for 'tcpkit connect'"),
    (["--recv-only", "127.0.0.1", "1", "x"],
     "option '--recv-only' is for 'tcpkit connect'"),
    (["-z", "127.0.0.1", "1", "x"], "unknown option '-z'"),
    (["--bogus", "127.0.0.1", "1", "x"], "unknown option '--bogus'"),
    (["127.0.0.1", "1", "x", "-i"], "option '-i' needs a value"),
    (["-i", "x", "127.0.0.1", "1", "x"],
     "-i/--idle-timeout needs a duration such as 10, 1.5s or 250ms, not 'x'"),
    (["-i", "25h", "127.0.0.1", "1", "x"],
     "-i/--idle-timeout must be at most 24h, not 25h"),
    (["-w", "0", "127.0.0.1", "1", "x"],
     "-w/--connect-timeout must be more than zero"),
    (["-s", "nope", "127.0.0.1", "1", "x"],
     "-s/--source needs an IP address (optionally with :PORT), not 'nope'"),
    (["-6", "-s", "127.0.0.1", "::1", "1", "x"],
     "-s/--source is an IPv4 address, but -6 was asked for"),
]


@pytest.mark.parametrize("args,msg", USAGE_ERRORS,
                         ids=[" ".join(a) or "none" for a, _ in USAGE_ERRORS])
def test_usage_errors(args, msg):
    p = run(["send"] + args, input=b"")
    assert p.returncode == 64, p.stderr
    assert p.stderr == send_usage(msg)
    assert p.stdout == b""
