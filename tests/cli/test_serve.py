"""Black-box tests of `tcpkit serve`: every service, every flag and its
negative twin (exit code and exact message), the connection log, the stop
summary, and the remote "shutdown" word refused to a peer that is not on
loopback (a client in a network namespace of our own)."""
import datetime
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from servehelpers import (HINT, PROG, TIMEOUT, assert_usage, echo_roundtrip,
                          err_lines, start, usage)
from tkhelpers import check_sanitizer, connect, recv_all, recv_until, run

WELCOME = b"Welcome to the server. Type something and hit enter\n"
# The log's stamps always carry six digits; the basic service's greeting is
# Python's str(datetime.now()), which drops ".000000".
LOG_STAMP = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}"
BASIC_STAMP = rb"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{6})?"
BASIC_GREETING = re.compile(rb"You connected at \[(" + BASIC_STAMP + rb")\]\n")
SHUTDOWN_REPLY = b"You told me to shut down!\n"
REFUSED_REPLY = (b"Shutdown refused: only a client on this machine's loopback"
                 b" may stop this server\n")
REMOTE_END = "Execution ended because of [Remote user initiated shutdown.]"
SUMMARY = re.compile(r"^stopped \((SIGINT|SIGTERM|remote shutdown)\): "
                     r"(\d+) connections? served, (\d+) closed by the stop, "
                     r"(\d+) bytes in, (\d+) bytes out$")
CLOSED = (r"^closed %s at \[(" + LOG_STAMP + r")\] after (\d+ms|[\d.]+s): "
          r"(\d+) bytes in, (\d+) bytes out \((.*)\)$")


def summary(srv):
    """The one summary line, parsed; fails unless there is exactly one."""
    found = [SUMMARY.match(l) for l in err_lines(srv)]
    found = [f for f in found if f]
    assert len(found) == 1, err_lines(srv)
    m = found[0]
    return m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4)), \
        int(m.group(5))


def assert_recent(stamp):
    if isinstance(stamp, bytes):
        stamp = stamp.decode()
    fmt = "%Y-%m-%d %H:%M:%S" + (".%f" if "." in stamp else "")
    when = datetime.datetime.strptime(stamp, fmt)
    assert abs((datetime.datetime.now() - when).total_seconds()) < 120, stamp


# ---------------------------------------------------------------------------
# Help.


def test_help_short_and_long():
    ref = run(["help", "serve"])
    assert ref.returncode == 0
    assert ref.stdout.startswith(b"usage: tcpkit serve [SERVICE]")
    for flag in ("-h", "--help"):
        p = run(["serve", flag])
        assert p.returncode == 0, p.stderr
        assert p.stderr == b""
        assert p.stdout == ref.stdout


def test_help_wins_over_other_options():
    p = run(["serve", "welcome", "-p", "0", "-h"])
    assert p.returncode == 0
    assert p.stdout.startswith(b"usage: tcpkit serve")
    assert b"listening on" not in p.stderr


def test_help_mentions_every_option():
    text = run(["serve", "--help"]).stdout.decode()
    for word in ("echo", "discard", "welcome", "basic", "--host", "--port",
                 "--backlog", "--idle-timeout", "--allow-remote-shutdown",
                 "--quiet", "--help", "Exit codes"):
        assert word in text, word


# ---------------------------------------------------------------------------
# Services.


def test_default_is_echo_on_both_loopbacks(serve):
    srv = start(serve, listeners=2)
    assert srv.addrs == [("127.0.0.1", srv.port), ("::1", srv.port)]
    lines = err_lines(srv)
    assert lines[0] == "listening on 127.0.0.1:%d" % srv.port
    assert lines[1] == "listening on [::1]:%d" % srv.port
    srv.err.wait_for("^try: ")
    assert HINT in srv.err.lines
    assert "try: %s connect 127.0.0.1 %d" % (PROG, srv.port) in \
        srv.err.lines
    assert echo_roundtrip(srv.port, "127.0.0.1", b"v4 \x00\xff\n") == \
        b"v4 \x00\xff\n"
    assert echo_roundtrip(srv.port, "::1", b"v6\r\n") == b"v6\r\n"
    assert srv.stop() == 0


def test_echo_named(serve):
    srv = start(serve, "echo", "-H", "127.0.0.1")
    assert echo_roundtrip(srv.port, data=b"hello, echo") == b"hello, echo"
    assert srv.stop() == 0


def test_echo_answers_each_chunk_before_the_next(serve):
    srv = start(serve, "echo", "-H", "127.0.0.1")
    with connect(srv.port) as s:
        for i in range(50):
            msg = b"round %d\n" % i
            s.sendall(msg)
            assert recv_until(s, lambda d: len(d) >= len(msg)) == msg
    assert srv.stop() == 0


def test_discard(serve):
    srv = start(serve, "discard", "-H", "127.0.0.1")
    data = os.urandom(1 << 20)
    with connect(srv.port) as s:
        local = s.getsockname()[1]
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == b""
    m = srv.err.wait_for(CLOSED % re.escape("127.0.0.1:%d" % local))
    assert int(m.group(3)) == len(data)
    assert int(m.group(4)) == 0
    assert m.group(5) == "done"
    assert srv.stop() == 0
    assert summary(srv)[3:] == (len(data), 0)


def test_welcome_greeting_then_ok_per_chunk(serve):
    srv = start(serve, "welcome", "-H", "127.0.0.1")
    with connect(srv.port) as s:
        assert recv_until(s, lambda d: len(d) >= len(WELCOME)) == WELCOME
        for msg in (b"hello\n", b"second line\r\n", b"\x00\xff binary"):
            s.sendall(msg)
            want = b"OK..." + msg
            assert recv_until(s, lambda d: len(d) >= len(want)) == want
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == b""
    assert srv.stop() == 0


def test_welcome_large_chunk_keeps_every_byte(serve):
    srv = start(serve, "welcome", "-H", "127.0.0.1")
    data = b"x" * (256 << 10)
    with connect(srv.port) as s:
        assert recv_until(s, lambda d: len(d) >= len(WELCOME)) == WELCOME
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = recv_all(s)
    # However the server's reads split it, each piece comes back as
    # "OK..." + piece, in order.
    assert got.startswith(b"OK...x")
    assert got.replace(b"OK...", b"") == data
    assert srv.stop() == 0


def test_welcome_greets_without_waiting_for_input(serve):
    srv = start(serve, "welcome", "-H", "127.0.0.1")
    with connect(srv.port) as a, connect(srv.port) as b:
        assert recv_until(b, lambda d: len(d) >= len(WELCOME)) == WELCOME
        assert recv_until(a, lambda d: len(d) >= len(WELCOME)) == WELCOME
    assert srv.stop() == 0


def basic_exchange(port, msg, host="127.0.0.1"):
    """Greeting, one message, the whole reply up to EOF."""
    with connect(port, host) as s:
        greet = recv_until(s, lambda d: d.endswith(b"\n"))
        m = BASIC_GREETING.fullmatch(greet)
        assert m, greet
        assert_recent(m.group(1))
        if msg is None:
            s.shutdown(socket.SHUT_WR)
        else:
            s.sendall(msg)
        return recv_all(s)


def test_basic_one_message_then_close(serve):
    srv = start(serve, "basic", "-H", "127.0.0.1")
    assert basic_exchange(srv.port, b"Hey!") == b"You sent: [Hey!]\n"
    # The server serves the next client too.
    assert basic_exchange(srv.port, b"again\n") == b"You sent: [again\n]\n"
    assert srv.proc.poll() is None
    assert srv.stop() == 0
    assert summary(srv)[1] == 2


def test_basic_client_that_sends_nothing(serve):
    srv = start(serve, "basic", "-H", "127.0.0.1")
    assert basic_exchange(srv.port, None) == b"You sent: []\n"
    assert srv.proc.poll() is None
    assert srv.stop() == 0


@pytest.mark.parametrize("word", [b"shutdown", b" SHUTDOWN \r\n",
                                  b"ShutDown\n", b"\tshutdown\t"])
def test_basic_shutdown_from_loopback(serve, word):
    srv = start(serve, "basic", "-H", "127.0.0.1")
    reply = basic_exchange(srv.port, word)
    assert reply == b"You sent: [" + word + b"]\n" + SHUTDOWN_REPLY
    assert srv.proc.wait(TIMEOUT) == 0
    srv.err.join()
    check_sanitizer(srv.err.text())
    assert REMOTE_END in err_lines(srv)
    how, served, _, nin, nout = summary(srv)
    assert (how, served, nin) == ("remote shutdown", 1, len(word))


def test_basic_shutdown_over_ipv6_loopback(serve):
    srv = start(serve, "basic", "-H", "::1")
    assert basic_exchange(srv.port, b"shutdown", "::1") == \
        b"You sent: [shutdown]\n" + SHUTDOWN_REPLY
    assert srv.proc.wait(TIMEOUT) == 0
    srv.err.join()
    assert REMOTE_END in err_lines(srv)


def test_basic_shutdown_over_dual_stack_from_ipv4_loopback(serve):
    """On "::" an IPv4 client arrives as ::ffff:127.0.0.1: still loopback."""
    srv = start(serve, "basic", "-H", "::")
    assert basic_exchange(srv.port, b"shutdown") == \
        b"You sent: [shutdown]\n" + SHUTDOWN_REPLY
    assert srv.proc.wait(TIMEOUT) == 0
    srv.err.join()
    assert REMOTE_END in err_lines(srv)


@pytest.mark.parametrize("word", [b"shutdown now", b"shut down", b"shutdownx",
                                  b"please shutdown"])
def test_basic_other_words_do_not_stop(serve, word):
    srv = start(serve, "basic", "-H", "127.0.0.1")
    assert basic_exchange(srv.port, word) == b"You sent: [" + word + b"]\n"
    assert basic_exchange(srv.port, b"still there?") == \
        b"You sent: [still there?]\n"
    assert srv.proc.poll() is None
    assert srv.stop() == 0
    assert REMOTE_END not in err_lines(srv)


def test_basic_allow_remote_shutdown_still_honours_loopback(serve):
    srv = start(serve, "basic", "-H", "127.0.0.1", "--allow-remote-shutdown")
    assert basic_exchange(srv.port, b"shutdown") == \
        b"You sent: [shutdown]\n" + SHUTDOWN_REPLY
    assert srv.proc.wait(TIMEOUT) == 0


@pytest.mark.parametrize("service", ["ftp", "Echo", "echo ", ""])
def test_unknown_service(service):
    assert_usage([service, "-p", "0"],
                 "unknown service '%s' (echo, discard, welcome, basic, line, "
                 "broker, chat, socks5)" % service)


def test_extra_argument():
    assert_usage(["echo", "extra", "-p", "0"], "unexpected argument 'extra'")
    assert_usage(["basic", "welcome"], "unexpected argument 'welcome'")


@pytest.mark.parametrize("opt", ["-z", "-x"])
def test_unknown_short_option(opt):
    assert_usage([opt], "unknown option '%s'" % opt)


@pytest.mark.parametrize("opt,name", [("--bogus", "--bogus"),
                                      ("--ports=1", "--ports")])
def test_unknown_long_option(opt, name):
    assert_usage([opt], "unknown option '%s'" % name)


@pytest.mark.parametrize("opt", ["-H", "-p", "-i"])
def test_short_option_needs_value(opt):
    assert_usage([opt], "option '%s' needs a value" % opt)


@pytest.mark.parametrize("opt,short", [("--host", "-H"), ("--port", "-p"),
                                       ("--idle-timeout", "-i")])
def test_long_option_needs_value(opt, short):
    """Either spelling of the option may be named: both exist."""
    p = run(["serve", opt])
    assert p.returncode == 64, p.stderr
    assert p.stderr.decode() in (usage("option '%s' needs a value" % opt),
                                 usage("option '%s' needs a value" % short))


def test_backlog_needs_value():
    """--backlog has no short form: the message must not name "-b", an
    option that does not exist."""
    assert_usage(["--backlog"], "option '--backlog' needs a value")


@pytest.mark.parametrize("arg", ["--allow-remote-shutdown=yes",
                                 "--quiet=1", "--help=1"])
def test_flag_given_a_value(arg):
    """A flag with "=value" is rejected naming the flag the user typed, not
    an internal short letter ("-R" does not exist)."""
    p = run(["serve", "basic", arg])
    assert p.returncode == 64, p.stderr
    assert p.stdout == b""
    err = p.stderr.decode()
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith("tcpkit: serve: "), err
    assert err.endswith(" (see 'tcpkit help serve')\n"), err
    assert "'" + arg.split("=")[0] in err, err


# ---------------------------------------------------------------------------
# -i/--idle-timeout.


def test_idle_timeout_closes_a_silent_client(serve):
    srv = start(serve, "-H", "127.0.0.1", "-i", "300ms")
    with connect(srv.port) as s:
        local = s.getsockname()[1]
        t0 = time.monotonic()
        assert recv_all(s, timeout=10) == b""
        took = time.monotonic() - t0
    assert 0.25 <= took < 5, took
    m = srv.err.wait_for(CLOSED % re.escape("127.0.0.1:%d" % local))
    assert m.group(5) == "idle timeout"
    assert (m.group(3), m.group(4)) == ("0", "0")
    assert srv.stop() == 0


def test_idle_timeout_long_form_and_welcome(serve):
    srv = start(serve, "welcome", "-H", "127.0.0.1", "--idle-timeout=0.4s")
    with connect(srv.port) as s:
        t0 = time.monotonic()
        assert recv_all(s, timeout=10) == WELCOME
        assert 0.3 <= time.monotonic() - t0 < 5
    srv.err.wait_for(r"^closed .*\(idle timeout\)$")
    assert srv.stop() == 0


def test_idle_timeout_spares_a_talking_client(serve):
    srv = start(serve, "-H", "127.0.0.1", "-i", "600ms")
    with connect(srv.port) as s:
        t0 = time.monotonic()
        i = 0
        # Talk every 100 ms for well over the timeout.
        while time.monotonic() - t0 < 2.0:
            msg = b"tick %d\n" % i
            s.sendall(msg)
            assert recv_until(s, lambda d: len(d) >= len(msg)) == msg
            s.settimeout(0.1)
            try:
                assert s.recv(1) != b"", "closed while talking"
            except socket.timeout:
                pass
            i += 1
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == b""
    assert "idle timeout" not in srv.err.text()
    assert srv.stop() == 0


def test_no_idle_timeout_by_default(serve):
    srv = start(serve, "-H", "127.0.0.1")
    with connect(srv.port) as s:
        s.settimeout(1.5)
        with pytest.raises(socket.timeout):
            s.recv(1)
        s.sendall(b"still open")
        assert recv_until(s, lambda d: len(d) >= 10) == b"still open"
    assert srv.stop() == 0


@pytest.mark.parametrize("value", ["30", "1.5s", "500ms", "5m", "1h", "24h",
                                   ".5", "0", "0ms"])
def test_idle_timeout_forms_accepted(serve, value):
    srv = start(serve, "-H", "127.0.0.1", "-i", value)
    assert echo_roundtrip(srv.port) == b"ping\n"
    assert srv.stop() == 0


@pytest.mark.parametrize("value,msg", [
    ("25h", "-i/--idle-timeout must be at most 24h, not 25h"),
    ("abc", "-i/--idle-timeout needs a duration such as 10, 1.5s or 250ms, "
            "not 'abc'"),
    ("-1", "-i/--idle-timeout needs a duration such as 10, 1.5s or 250ms, "
           "not '-1'"),
    ("10x", "-i/--idle-timeout needs a duration such as 10, 1.5s or 250ms, "
            "not '10x'"),
    ("", "-i/--idle-timeout needs a duration such as 10, 1.5s or 250ms, "
         "not ''"),
    ("nan", "-i/--idle-timeout needs a duration such as 10, 1.5s or 250ms, "
            "not 'nan'"),
])
def test_idle_timeout_bad(value, msg):
    assert_usage(["-i", value], msg)
    assert_usage(["--idle-timeout=" + value], msg)


# ---------------------------------------------------------------------------
# -q and --allow-remote-shutdown.


def test_quiet(serve):
    srv = start(serve, "-H", "127.0.0.1", "-q")
    assert echo_roundtrip(srv.port, data=b"quiet") == b"quiet"
    assert srv.stop() == 0
    lines = err_lines(srv)
    assert lines[0] == "listening on 127.0.0.1:%d" % srv.port
    assert len(lines) == 2, lines
    assert summary(srv) == ("SIGTERM", 1, 0, 5, 5)


def test_quiet_long_form_basic(serve):
    srv = start(serve, "basic", "--quiet", "-H", "127.0.0.1")
    assert basic_exchange(srv.port, b"Hey!") == b"You sent: [Hey!]\n"
    assert srv.stop() == 0
    assert not any(l.startswith(("Got a connection", "closed ", "hint:",
                                 "try:")) for l in err_lines(srv))


@pytest.mark.parametrize("service", [None, "echo", "discard", "welcome"])
def test_allow_remote_shutdown_only_with_basic(service):
    args = ([service] if service else []) + ["--allow-remote-shutdown",
                                             "-p", "0"]
    assert_usage(args, "--allow-remote-shutdown applies to the basic "
                       "service only")


# ---------------------------------------------------------------------------
# The log, the hints and the stop.


def test_log_echo_connection_and_close(serve):
    srv = start(serve, "-H", "127.0.0.1")
    with connect(srv.port) as s:
        local = s.getsockname()[1]
        who = re.escape("127.0.0.1:%d" % local)
        m = srv.err.wait_for(r"^connection from %s at \[(%s)\]$"
                             % (who, LOG_STAMP))
        assert_recent(m.group(1))
        s.sendall(b"12345")
        assert recv_until(s, lambda d: len(d) >= 5) == b"12345"
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == b""
    m = srv.err.wait_for(CLOSED % who)
    assert_recent(m.group(1))
    assert m.group(3, 4, 5) == ("5", "5", "done")
    assert srv.stop() == 0


def test_log_ipv6_peer(serve):
    srv = start(serve, "-H", "::1")
    with connect(srv.port, "::1") as s:
        who = re.escape("[::1]:%d" % s.getsockname()[1])
        srv.err.wait_for(r"^connection from %s at \[%s\]$" % (who, LOG_STAMP))
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == b""
    srv.err.wait_for(CLOSED % who)
    assert srv.stop() == 0


def test_log_welcome_wording(serve):
    srv = start(serve, "welcome", "-H", "127.0.0.1")
    with connect(srv.port) as s:
        who = re.escape("127.0.0.1:%d" % s.getsockname()[1])
        m = srv.err.wait_for(r"^Connected with %s at \[(%s)\]$"
                             % (who, LOG_STAMP))
        assert_recent(m.group(1))
        assert recv_until(s, lambda d: len(d) >= len(WELCOME)) == WELCOME
    srv.err.wait_for(CLOSED % who)
    assert srv.stop() == 0


def test_log_basic_wording(serve):
    srv = start(serve, "basic", "-H", "127.0.0.1")
    with connect(srv.port) as s:
        who = re.escape("127.0.0.1:%d" % s.getsockname()[1])
        m = srv.err.wait_for(r"^Got a connection from \[%s\] at \[(%s)\]$"
                             % (who, LOG_STAMP))
        assert_recent(m.group(1))
        greet = recv_until(s, lambda d: d.endswith(b"\n"))
        s.sendall(b"Hey!")
        reply = recv_all(s)
        assert reply == b"You sent: [Hey!]\n"
    m = srv.err.wait_for(CLOSED % who)
    assert m.group(3, 4, 5) == ("4", str(len(greet) + len(reply)), "done")
    assert srv.stop() == 0
    assert "try: %s send 127.0.0.1 %d 'Hey!'" % (PROG, srv.port) in \
        err_lines(srv)


@pytest.mark.parametrize("sig,name", [(signal.SIGINT, "SIGINT"),
                                      (signal.SIGTERM, "SIGTERM")])
def test_signal_stops_with_one_summary(serve, sig, name):
    srv = start(serve, "-H", "127.0.0.1")
    assert echo_roundtrip(srv.port, data=b"abc") == b"abc"
    srv.err.wait_for(r"^closed ")
    with connect(srv.port) as s:
        s.sendall(b"open")
        assert recv_until(s, lambda d: len(d) >= 4) == b"open"
        assert srv.stop(sig) == 0
        # The stop closed the open connection.
        assert recv_all(s) == b""
    assert summary(srv) == (name, 2, 1, 7, 7)
    assert sum(1 for l in err_lines(srv) if l.startswith("stopped")) == 1
    assert not any(l.startswith("tcpkit:") for l in err_lines(srv))
    assert srv.out.text() == ""


def test_sigint_basic_says_ctrl_c(serve):
    srv = start(serve, "basic", "-H", "127.0.0.1")
    assert srv.stop(signal.SIGINT) == 0
    lines = err_lines(srv)
    assert "User pressed Ctrl-C, stopping." in lines
    assert lines.index("User pressed Ctrl-C, stopping.") < \
        [i for i, l in enumerate(lines) if l.startswith("stopped")][0]
    assert summary(srv)[0] == "SIGINT"


def test_sigterm_basic_no_ctrl_c_line(serve):
    srv = start(serve, "basic", "-H", "127.0.0.1")
    assert srv.stop(signal.SIGTERM) == 0
    assert "User pressed Ctrl-C, stopping." not in err_lines(srv)


def test_signal_stops_an_idle_server_at_once(serve):
    srv = start(serve, "-H", "127.0.0.1")
    t0 = time.monotonic()
    assert srv.stop(signal.SIGINT, timeout=5) == 0
    assert time.monotonic() - t0 < 5
    assert summary(srv) == ("SIGINT", 0, 0, 0, 0)


def test_sigint_stops_a_busy_server(serve):
    """Ctrl-C during a transfer that never ends: stops at once, exit 0,
    the connection counted as closed by the stop, the client sees the end."""
    srv = start(serve, "-H", "127.0.0.1")
    s = connect(srv.port)
    flowing = threading.Event()
    ended = []

    def pump():
        block = os.urandom(1 << 16)
        try:
            while True:
                s.sendall(block)
                if not s.recv(1 << 16):
                    ended.append("EOF")
                    return
                flowing.set()
        except OSError as e:
            ended.append(e)

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    try:
        assert flowing.wait(10), "no echo came back"
        t0 = time.monotonic()
        assert srv.stop(signal.SIGINT, timeout=5) == 0
        assert time.monotonic() - t0 < 5
        how, served, by_stop, nin, nout = summary(srv)
        assert (how, served, by_stop) == ("SIGINT", 1, 1)
        assert nin > 0 and nout > 0
        t.join(10)
        assert not t.is_alive(), "the client never saw the server go"
        assert ended and not isinstance(ended[0], socket.timeout), ended
    finally:
        s.close()
        t.join(10)


def test_hint_with_loopback_only_not_with_all_interfaces(serve):
    lo = start(serve, "-H", "127.0.0.1")
    lo.err.wait_for("^try: ")
    assert HINT in err_lines(lo)
    every = start(serve, "-H", "0.0.0.0")
    every.err.wait_for("^try: ")
    assert not any(l.startswith("hint:") for l in err_lines(every))
    assert lo.stop() == 0 and every.stop() == 0


def test_server_stays_up_after_a_client_reset(serve):
    srv = start(serve, "-H", "127.0.0.1")
    s = connect(srv.port)
    s.sendall(b"x" * 1000)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00"
                 b"\x00\x00\x00\x00")
    s.close()
    srv.err.wait_for(r"^closed ")
    assert echo_roundtrip(srv.port) == b"ping\n"
    assert srv.stop() == 0


# ---------------------------------------------------------------------------
# Remote shutdown from a peer that is not on loopback: a client in a network
# namespace of our own, joined to the host by a veth pair.


def ip(*args, check=True):
    return subprocess.run(["ip"] + list(args), capture_output=True,
                          timeout=TIMEOUT, check=check)


@pytest.fixture
def netns():
    """A namespace NAME with a veth peer; yields (name, host_ip, ns_ip)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2 "
                    "(euid %d)" % os.geteuid())
    pid = os.getpid()
    name = "tkserve%d" % pid
    host_if, ns_if = "tkh%d" % pid, "tkn%d" % pid
    # addr-ok: a /30 of 198.18.0.0/15 chosen by pid (parallel runs do not
    # collide), only on the veth pair into the test's own namespace.
    n = (pid % 32768) * 4
    host_ip = "198.%d.%d.%d" % (18 + n // 65536, (n // 256) % 256, n % 256 + 1)
    ns_ip = "198.%d.%d.%d" % (18 + n // 65536, (n // 256) % 256, n % 256 + 2)
    p = ip("netns", "add", name, check=False)
    if p.returncode != 0:
        pytest.skip("ip netns add failed: %s" % p.stderr.decode().strip())
    try:
        try:
            ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
            ip("link", "set", ns_if, "netns", name)
            ip("addr", "add", host_ip + "/30", "dev", host_if)
            ip("link", "set", host_if, "up")
            ip("netns", "exec", name, "ip", "addr", "add", ns_ip + "/30",
               "dev", ns_if)
            ip("netns", "exec", name, "ip", "link", "set", ns_if, "up")
            ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        except subprocess.CalledProcessError as e:
            pytest.skip("cannot set up the namespace: %s: %s"
                        % (" ".join(e.cmd), e.stderr.decode().strip()))
        yield name, host_ip, ns_ip
    finally:
        # Deleting the namespace takes its veth end, and so the pair.
        ip("netns", "del", name, check=False)
        ip("link", "del", host_if, check=False)


NS_CLIENT = r"""
import socket, sys
host, port, msg = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
s = socket.create_connection((host, port), timeout=10)
greet = b""
while not greet.endswith(b"\n"):
    c = s.recv(4096)
    if not c:
        break
    greet += c
s.sendall(msg)
rest = b""
while True:
    c = s.recv(4096)
    if not c:
        break
    rest += c
print(s.getsockname()[0], s.getsockname()[1], greet.hex(), rest.hex())
"""


def ns_client(name, host, port, msg):
    """Run the basic exchange from inside the namespace."""
    p = subprocess.run(["ip", "netns", "exec", name, "/usr/bin/python3", "-c",
                        NS_CLIENT, host, str(port), msg],
                       capture_output=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    src, sport, greet, rest = p.stdout.decode().split()
    return src, int(sport), bytes.fromhex(greet), bytes.fromhex(rest)


def test_remote_shutdown_refused_by_default(serve, netns):
    name, host_ip, ns_ip = netns
    srv = start(serve, "basic", "-H", host_ip)
    srv.err.wait_for("^try: ")
    assert HINT not in err_lines(srv)
    src, sport, greet, rest = ns_client(name, host_ip, srv.port, "shutdown")
    assert src == ns_ip
    assert BASIC_GREETING.fullmatch(greet), greet
    assert rest == b"You sent: [shutdown]\n" + REFUSED_REPLY
    srv.err.wait_for(r"^Got a connection from \[%s\] at \[%s\]$"
                     % (re.escape("%s:%d" % (ns_ip, sport)), LOG_STAMP))
    srv.err.wait_for(CLOSED % re.escape("%s:%d" % (ns_ip, sport)))
    # Still serving.
    assert srv.proc.poll() is None
    _, _, _, rest = ns_client(name, host_ip, srv.port, " SHUTDOWN \r\n")
    assert rest == b"You sent: [ SHUTDOWN \r\n]\n" + REFUSED_REPLY
    _, _, _, rest = ns_client(name, host_ip, srv.port, "Hey!")
    assert rest == b"You sent: [Hey!]\n"
    assert srv.proc.poll() is None
    assert srv.stop() == 0
    assert REMOTE_END not in err_lines(srv)
    assert summary(srv)[:2] == ("SIGTERM", 3)


def test_remote_shutdown_allowed_when_asked(serve, netns):
    name, host_ip, ns_ip = netns
    srv = start(serve, "basic", "-H", host_ip, "--allow-remote-shutdown")
    src, _, greet, rest = ns_client(name, host_ip, srv.port, "shutdown")
    assert src == ns_ip
    assert BASIC_GREETING.fullmatch(greet), greet
    assert rest == b"You sent: [shutdown]\n" + SHUTDOWN_REPLY
    assert srv.proc.wait(TIMEOUT) == 0
    srv.err.join()
    check_sanitizer(srv.err.text())
    assert REMOTE_END in err_lines(srv)
    assert summary(srv)[:2] == ("remote shutdown", 1)
