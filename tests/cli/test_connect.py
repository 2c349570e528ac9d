"""Black-box tests of `tcpkit connect`: stdin to the peer and the peer to
stdout, binary-safe; half-close at end of input and its opt-outs; timeouts;
--crlf; help and usage errors with their exit code and exact message.
Addresses, failures and terminals: test_connect_net.py."""
import hashlib
import os
import queue
import socket
import subprocess
import time

import pytest

from clienthelpers import (err_line, peer, recv_exactly, recv_to_eof,
                           sees_nothing, trickle_forever, usage)
from tkhelpers import TCPKIT, check_sanitizer, run

MIB = 1024 * 1024


# --- data flow ---------------------------------------------------------------

def test_all_byte_values_both_ways(pyserver):
    data = bytes(range(256)) * 4

    def echo_reversed(c):
        got = recv_to_eof(c)
        c.sendall(got[::-1])
        return got

    srv = peer(pyserver, echo_reversed)
    p = run(["connect", "127.0.0.1", str(srv.port)], input=data)
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    assert srv.result() == data
    assert p.stdout == data[::-1]


def sha(data):
    return hashlib.sha256(data).hexdigest()


def test_16mib_from_a_pipe_through_serve_echo(serve):
    data = os.urandom(16 * MIB)
    srv = serve("echo", "-q")
    p = run(["connect", "127.0.0.1", str(srv.port)], input=data, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    assert len(p.stdout) == len(data)
    assert sha(p.stdout) == sha(data)


def test_16mib_from_a_regular_file_through_serve_echo(serve, tmp_path):
    data = os.urandom(16 * MIB)
    path = tmp_path / "in.bin"
    path.write_bytes(data)
    srv = serve("echo", "-q")
    with open(path, "rb") as f:
        p = subprocess.run([TCPKIT, "connect", "127.0.0.1", str(srv.port)],
                           stdin=f, capture_output=True, timeout=120)
    check_sanitizer(p.stderr)
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    assert len(p.stdout) == len(data)
    assert sha(p.stdout) == sha(data)


def test_16mib_to_stdout_with_recv_only_and_dev_null(pyserver):
    data = os.urandom(16 * MIB)

    def send_then_close(c):
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
        return recv_to_eof(c)  # what tcpkit sent: must be nothing

    srv = peer(pyserver, send_then_close)
    with open(os.devnull, "rb") as devnull:
        p = subprocess.run([TCPKIT, "connect", "--recv-only", "127.0.0.1",
                            str(srv.port)], stdin=devnull,
                           capture_output=True, timeout=120)
    check_sanitizer(p.stderr)
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    assert sha(p.stdout) == sha(data)
    assert srv.result() == b""


def test_dev_null_stdin_sends_fin_at_once(serve):
    """/dev/null is read without polling: EOF at once, FIN, the echo
    server closes, exit 0 with no output."""
    srv = serve("echo", "-q")
    with open(os.devnull, "rb") as devnull:
        p = subprocess.run([TCPKIT, "connect", "127.0.0.1", str(srv.port)],
                           stdin=devnull, capture_output=True, timeout=20)
    check_sanitizer(p.stderr)
    assert (p.returncode, p.stdout, p.stderr) == (0, b"", b"")


def test_fin_at_end_of_stdin_and_output_until_peer_closes(pyserver):
    """The peer answers only after it has seen our FIN: the answer must
    still be printed."""
    def reply_after_eof(c):
        got = recv_to_eof(c)
        c.sendall(b"after EOF you sent " + got)
        c.sendall(b"and one more chunk\n")
        return got

    srv = peer(pyserver, reply_after_eof)
    p = run(["connect", "127.0.0.1", str(srv.port)], input=b"hello\n")
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    assert srv.result() == b"hello\n"
    assert p.stdout == b"after EOF you sent hello\nand one more chunk\n"


def test_no_shutdown_sends_no_fin(pyserver):
    def check_no_fin(c):
        got = recv_exactly(c, 6)
        quiet = sees_nothing(c, 1.0)
        c.sendall(b"bye\n")
        return got, quiet

    srv = peer(pyserver, check_no_fin)
    p = run(["connect", "--no-shutdown", "127.0.0.1", str(srv.port)],
            input=b"hello\n")
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    assert p.stdout == b"bye\n"
    assert srv.result() == (b"hello\n", True)


def test_without_no_shutdown_the_peer_sees_fin(pyserver):
    """The twin of --no-shutdown: the same peer sees EOF at once."""
    def check_no_fin(c):
        got = recv_exactly(c, 6)
        quiet = sees_nothing(c, 5.0)
        c.sendall(b"bye\n")
        return got, quiet

    srv = peer(pyserver, check_no_fin)
    p = run(["connect", "127.0.0.1", str(srv.port)], input=b"hello\n")
    assert p.returncode == 0, p.stderr
    assert srv.result() == (b"hello\n", ("got", b""))


def test_send_only_prints_nothing(pyserver):
    data = bytes(range(256)) * 64

    def chatty(c):
        c.sendall(b"this must not be printed\n" * 100)
        return recv_to_eof(c)

    srv = peer(pyserver, chatty)
    p = run(["connect", "--send-only", "127.0.0.1", str(srv.port)],
            input=data)
    assert p.returncode == 0, p.stderr
    assert (p.stdout, p.stderr) == (b"", b"")
    assert srv.result() == data


def test_recv_only_sends_nothing_and_no_fin(pyserver):
    def talk_then_listen(c):
        c.sendall(b"from the peer\n")
        return sees_nothing(c, 1.0)

    srv = peer(pyserver, talk_then_listen)
    p = run(["connect", "--recv-only", "127.0.0.1", str(srv.port)],
            input=b"stdin must not be sent\n")
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    assert p.stdout == b"from the peer\n"
    assert srv.result() is True


def test_peer_half_closing_first_still_gets_piped_input(pyserver, spawn):
    """The peer sends FIN first: piped stdin still goes to its end, then
    our FIN, then exit 0."""
    def fin_first(c):
        c.sendall(b"goodbye\n")
        c.shutdown(socket.SHUT_WR)
        return recv_to_eof(c)

    srv = peer(pyserver, fin_first)
    tk = spawn(["connect", "127.0.0.1", str(srv.port)])
    deadline = time.monotonic() + 10
    while tk.out != b"goodbye\n":  # the peer's FIN has arrived by then
        assert time.monotonic() < deadline, bytes(tk.out)
        time.sleep(0.01)  # sleep-ok: polling output under a deadline
    assert tk.p.poll() is None, "exited before the end of stdin"
    tk.write(b"written after the peer's FIN\n")
    tk.write(b"and more\n")
    tk.close_stdin()
    rc, out, err = tk.wait(10)
    assert (rc, out, err) == (0, b"goodbye\n", b"")
    assert srv.result() == b"written after the peer's FIN\nand more\n"


def test_peer_closing_first_with_stdin_at_eof(pyserver):
    """Nothing left to send: the peer's close ends the session."""
    def close_first(c):
        c.sendall(b"goodbye\n")
        return recv_to_eof(c)

    srv = peer(pyserver, close_first)
    p = run(["connect", "127.0.0.1", str(srv.port)], input=b"hi\n")
    assert (p.returncode, p.stdout, p.stderr) == (0, b"goodbye\n", b"")
    assert srv.result() == b"hi\n"


def test_interleaved_exchange_with_open_stdin(pyserver, spawn):
    """Line by line: each line we write reaches the peer and its answer
    comes back before the next line is written."""
    def answer_each_line(c):
        f = c.makefile("rb")
        n = 0
        for line in f:
            c.sendall(b"re: " + line)
            n += 1
        return n

    srv = peer(pyserver, answer_each_line)
    tk = spawn(["connect", "127.0.0.1", str(srv.port)])
    for i in range(5):
        line = b"line %d\n" % i
        tk.write(line)
        deadline = time.monotonic() + 10
        while not tk.out.endswith(b"re: " + line):
            assert time.monotonic() < deadline, bytes(tk.out)
            time.sleep(0.01)  # sleep-ok: polling output under a deadline
    tk.close_stdin()
    rc, out, err = tk.wait(10)
    assert (rc, err) == (0, b"")
    assert out == b"".join(b"re: line %d\n" % i for i in range(5))
    assert srv.result() == 5


# --- timeouts ----------------------------------------------------------------

def test_connect_timeout_against_a_full_listen_queue(blackhole):
    t0 = time.monotonic()
    p = run(["connect", "-w", "1", "127.0.0.1", str(blackhole)],
            input=b"", timeout=20)
    took = time.monotonic() - t0
    assert p.returncode == 75, p.stderr
    assert p.stderr == err_line("127.0.0.1:%d" % blackhole,
                                "connect timed out after 1s")
    assert p.stdout == b""
    assert 0.9 <= took < 5, took


def test_connect_timeout_long_form_with_ms(blackhole):
    t0 = time.monotonic()
    p = run(["connect", "--connect-timeout", "250ms", "127.0.0.1",
             str(blackhole)], input=b"")
    took = time.monotonic() - t0
    assert p.returncode == 75, p.stderr
    assert p.stderr == err_line("127.0.0.1:%d" % blackhole,
                                "connect timed out after 250ms")
    assert 0.2 <= took < 4, took


def test_connect_timeout_fractional_seconds(blackhole):
    p = run(["connect", "--connect-timeout=1.5", "127.0.0.1:%d" % blackhole],
            input=b"")
    assert p.returncode == 75, p.stderr
    assert p.stderr == err_line("127.0.0.1:%d" % blackhole,
                                "connect timed out after 1.5s")


def test_connect_timeout_default_is_10s(blackhole):
    t0 = time.monotonic()
    p = run(["connect", "127.0.0.1", str(blackhole)], input=b"", timeout=30)
    took = time.monotonic() - t0
    assert p.returncode == 75, p.stderr
    assert p.stderr == err_line("127.0.0.1:%d" % blackhole,
                                "connect timed out after 10s")
    assert 9.5 <= took < 20, took


def test_connect_timeout_does_not_fire_when_connected(pyserver):
    """-w bounds the connect only: a session outliving it is not cut."""
    def slow(c):
        for i in range(4):
            c.sendall(b"%d\n" % i)
            time.sleep(0.2)  # sleep-ok: pacing the scenario
        return recv_to_eof(c)

    srv = peer(pyserver, slow)
    p = run(["connect", "-w", "250ms", "127.0.0.1", str(srv.port)],
            input=b"x")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"0\n1\n2\n3\n"
    assert srv.result() == b"x"


def silent_peer(release):
    def fn(c):
        release.wait(60)
    return fn


def test_idle_timeout(pyserver, spawn, release):
    srv = peer(pyserver, silent_peer(release))
    t0 = time.monotonic()
    tk = spawn(["connect", "-i", "1", "127.0.0.1", str(srv.port)])
    rc, out, err = tk.wait(15)
    took = time.monotonic() - t0
    assert rc == 75, err
    assert err == err_line("127.0.0.1:%d" % srv.port,
                           "idle timeout (no data for 1s)")
    assert out == b""
    assert 0.9 <= took < 6, took


def test_idle_timeout_long_form(pyserver, spawn, release):
    srv = peer(pyserver, silent_peer(release))
    tk = spawn(["connect", "--idle-timeout", "300ms", "127.0.0.1",
                str(srv.port)])
    rc, out, err = tk.wait(15)
    assert rc == 75, err
    assert err == err_line("127.0.0.1:%d" % srv.port,
                           "idle timeout (no data for 300ms)")


def test_idle_timeout_is_reset_by_data(pyserver):
    """Data every 300ms for 1.5s keeps a 1s idle timeout from firing."""
    def trickle(c):
        for i in range(5):
            c.sendall(b"%d\n" % i)
            time.sleep(0.3)  # sleep-ok: pacing the scenario

    srv = peer(pyserver, trickle)
    p = run(["connect", "-i", "1", "127.0.0.1", str(srv.port)], input=b"")
    assert (p.returncode, p.stderr) == (0, b"")
    assert p.stdout == b"0\n1\n2\n3\n4\n"


def test_idle_timeout_zero_is_accepted(pyserver):
    srv = peer(pyserver, lambda c: c.sendall(b"ok\n"))
    p = run(["connect", "-i", "0", "127.0.0.1", str(srv.port)], input=b"")
    assert (p.returncode, p.stdout, p.stderr) == (0, b"ok\n", b"")


def test_max_time_cuts_a_trickling_peer(pyserver):
    srv = peer(pyserver, trickle_forever)
    t0 = time.monotonic()
    p = run(["connect", "-i", "1", "--max-time", "800ms", "127.0.0.1",
             str(srv.port)], input=b"")
    took = time.monotonic() - t0
    assert p.returncode == 75, p.stderr
    assert p.stdout and p.stdout == b"x\n" * (len(p.stdout) // 2)
    assert p.stderr == err_line(
        "127.0.0.1:%d" % srv.port,
        "max time (800ms) reached: sent 0 bytes, received %d"
        % len(p.stdout))
    assert 0.7 <= took < 6, took
    assert srv.result() == "gone"


def test_max_time_while_connecting(blackhole):
    t0 = time.monotonic()
    p = run(["connect", "-m", "500ms", "127.0.0.1", str(blackhole)],
            input=b"")
    took = time.monotonic() - t0
    assert p.returncode == 75, p.stderr
    assert p.stderr == err_line("127.0.0.1:%d" % blackhole,
                                "max time (500ms) reached while connecting")
    assert 0.4 <= took < 5, took


def test_max_time_not_reached(pyserver):
    srv = peer(pyserver, lambda c: c.sendall(b"ok\n"))
    p = run(["connect", "--max-time", "10s", "127.0.0.1", str(srv.port)],
            input=b"")
    assert (p.returncode, p.stdout, p.stderr) == (0, b"ok\n", b"")


def test_max_time_bad_value():
    p = run(["connect", "--max-time", "soon", "127.0.0.1", "1"])
    assert p.returncode == 64
    assert p.stderr == usage("-m/--max-time needs a duration such as 10, "
                             "1.5s or 250ms, not 'soon'")


# --- --crlf ------------------------------------------------------------------

def test_crlf_turns_bare_lf_into_crlf(pyserver):
    srv = peer(pyserver, recv_to_eof)
    p = run(["connect", "--crlf", "127.0.0.1", str(srv.port)],
            input=b"a\nb\r\nc\n\n\r\nd\re\n")
    assert (p.returncode, p.stdout, p.stderr) == (0, b"", b"")
    assert srv.result() == b"a\r\nb\r\nc\r\n\r\n\r\nd\re\r\n"


def test_crlf_short_form_leaves_received_data_alone(pyserver):
    def echo(c):
        c.sendall(b"peer\nlines\n")
        return recv_to_eof(c)

    srv = peer(pyserver, echo)
    p = run(["connect", "-C", "127.0.0.1", str(srv.port)], input=b"x\n")
    assert (p.returncode, p.stdout, p.stderr) == (0, b"peer\nlines\n", b"")
    assert srv.result() == b"x\r\n"


def test_crlf_cr_and_lf_in_separate_reads(pyserver, spawn):
    """CR at the end of one read and LF at the start of the next is
    already a CRLF: no second CR."""
    got = queue.Queue()

    def collect(c):
        buf = recv_exactly(c, 2)
        got.put(buf)
        return buf + recv_to_eof(c)

    srv = peer(pyserver, collect)
    tk = spawn(["connect", "-C", "127.0.0.1", str(srv.port)])
    tk.write(b"x\r")
    assert got.get(timeout=10) == b"x\r"
    tk.write(b"\ny\n")
    tk.close_stdin()
    rc, out, err = tk.wait(10)
    assert (rc, out, err) == (0, b"", b"")
    assert srv.result() == b"x\r\ny\r\n"


def test_without_crlf_line_ends_pass_unchanged(pyserver):
    srv = peer(pyserver, recv_to_eof)
    p = run(["connect", "127.0.0.1", str(srv.port)], input=b"a\nb\r\n")
    assert p.returncode == 0, p.stderr
    assert srv.result() == b"a\nb\r\n"


# --- help and usage errors ---------------------------------------------------

@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help(flag):
    p = run(["connect", flag])
    assert p.returncode == 0
    assert p.stderr == b""
    assert p.stdout == run(["help", "connect"]).stdout
    assert p.stdout.startswith(b"usage: tcpkit connect [OPTIONS] HOST PORT\n")


USAGE_ERRORS = [
    ([], "missing HOST and PORT"),
    (["127.0.0.1"],
     "missing PORT (give HOST PORT or HOST:PORT, not '127.0.0.1')"),
    (["127.0.0.1:"],
     "missing PORT (give HOST PORT or HOST:PORT, not '127.0.0.1:')"),
    (["127.0.0.1", "abc"], "unknown port 'abc'"),
    (["127.0.0.1:abc"], "unknown port 'abc'"),
    (["127.0.0.1", "70000"], "port 70000 is out of range (1-65535)"),  # port-ok
    # The same port in the one-argument form is not "missing".
    (["127.0.0.1:70000"], "port 70000 is out of range (1-65535)"),  # port-ok
    (["127.0.0.1", ""], "malformed port ''"),
    (["127.0.0.1", "1", "extra"], "unexpected argument 'extra'"),
    (["-4", "-6", "127.0.0.1", "1"], "-4 and -6 exclude each other"),
    (["--send-only", "--recv-only", "127.0.0.1", "1"],
     "--send-only and --recv-only exclude each other"),
    (["-Q", "127.0.0.1", "1"], "unknown option '-Q'"),
    (["--bogus", "127.0.0.1", "1"], "unknown option '--bogus'"),
    (["--bogus=1", "127.0.0.1", "1"], "unknown option '--bogus'"),
    (["--newline", "127.0.0.1", "1"],
     "option '--newline' is for 'tcpkit send'"),
    (["127.0.0.1", "1", "-w"], "option '-w' needs a value"),
    (["127.0.0.1", "1", "--idle-timeout"],
     "option '--idle-timeout' needs a value"),
    (["-w", "0", "127.0.0.1", "1"],
     "-w/--connect-timeout must be more than zero"),
    (["-w", "x", "127.0.0.1", "1"],
     "-w/--connect-timeout needs a duration such as 10, 1.5s or 250ms, "
     "not 'x'"),
    (["-w", "25h", "127.0.0.1", "1"],
     "-w/--connect-timeout must be at most 24h, not 25h"),
    (["-i", "-1", "127.0.0.1", "1"],
     "-i/--idle-timeout needs a duration such as 10, 1.5s or 250ms, not '-1'"),
    (["-i", "5x", "127.0.0.1", "1"],
     "-i/--idle-timeout needs a duration such as 10, 1.5s or 250ms, not '5x'"),
    (["-s", "bad", "127.0.0.1", "1"],
     "-s/--source needs an IP address (optionally with :PORT), not 'bad'"),
    (["-s", "localhost", "127.0.0.1", "1"],
     "-s/--source needs an IP address (optionally with :PORT), "
     "not 'localhost'"),
    (["-s", "127.0.0.1", "-6", "::1", "1"],
     "-s/--source is an IPv4 address, but -6 was asked for"),
    (["-6", "-s", "127.0.0.1", "::1", "1"],
     "-s/--source is an IPv4 address, but -6 was asked for"),
    (["-4", "--source", "::1", "127.0.0.1", "1"],
     "-s/--source is an IPv6 address, but -4 was asked for"),
]


@pytest.mark.parametrize("args,msg", USAGE_ERRORS,
                         ids=[" ".join(a) or "none" for a, _ in USAGE_ERRORS])
def test_usage_errors(args, msg):
    p = run(["connect"] + args, input=b"")
    assert p.returncode == 64, p.stderr
    assert p.stderr == usage(msg)
    assert p.stdout == b""


def test_usage_error_comes_before_any_io(pyserver):
    """A conflict is rejected before connecting: the peer sees nobody."""
    accepted = []
    srv = pyserver(lambda c, s: accepted.append(c.getpeername()))
    p = run(["connect", "--send-only", "--recv-only", "127.0.0.1",
             str(srv.port)], input=b"x")
    assert p.returncode == 64
    # A connect tcpkit made would already be in the accept queue: probe
    # with a connection of our own, which must be the first one.
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        mine = s.getsockname()
        deadline = time.monotonic() + 10
        while not accepted and time.monotonic() < deadline:
            time.sleep(0.01)  # sleep-ok: polling output under a deadline
    assert accepted[:1] == [mine]


@pytest.mark.parametrize("arg", ["--send-only=x", "--recv-only=x",
                                 "--no-shutdown=1", "--verbose=x",
                                 "--crlf=yes", "--help=1"])
def test_long_option_given_a_value_it_does_not_take(arg):
    p = run(["connect", arg, "127.0.0.1", "1"], input=b"")
    assert p.returncode == 64, p.stderr
    assert p.stderr == usage("option '%s' takes no value" % arg.split("=")[0])
    assert p.stdout == b""
