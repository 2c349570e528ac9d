"""Black-box tests of `tcpkit connect`: stdin to the peer and the peer to
stdout, binary-safe; half-close at end of input and its opt-outs; timeouts;
address families and source addresses; --crlf; -v; every error with its
exit code and its exact one-line message."""
import errno
import hashlib
import os
import pty
import queue
import select
import socket
import struct
import subprocess
import threading
import time

import pytest

from tkhelpers import TCPKIT, check_sanitizer, free_port, run

MIB = 1024 * 1024


# --- helpers -----------------------------------------------------------------

def usage(msg, cmd="connect"):
    """The exact stderr of a usage error."""
    return ("tcpkit: %s: %s (see 'tcpkit help %s')\n"
            % (cmd, msg, cmd)).encode()


def err_line(where, why, cmd="connect"):
    """The exact stderr of a runtime error: `tcpkit: CMD WHERE: WHY`."""
    return ("tcpkit: %s %s: %s\n" % (cmd, where, why)).encode()


def recv_exactly(conn, n, timeout=20):
    """Read n bytes from conn (fewer only at EOF), bounded."""
    conn.settimeout(timeout)
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def recv_to_eof(conn, timeout=20):
    conn.settimeout(timeout)
    buf = bytearray()
    while True:
        chunk = conn.recv(1 << 20)
        if not chunk:
            return bytes(buf)
        buf += chunk


def sees_nothing(conn, wait=1.0):
    """True when neither data nor EOF arrives within wait seconds: the way
    to observe that a FIN was NOT sent."""
    conn.settimeout(wait)
    try:
        data = conn.recv(1)
    except socket.timeout:
        return True
    return ("got", data)


def peer(pyserver, fn, **kw):
    """A Python server running fn(conn) for one client; .result() returns
    what fn returned (or re-raises what it raised), with a deadline."""
    q = queue.Queue()

    def handler(conn, srv):
        try:
            q.put((True, fn(conn)))
        except BaseException as e:
            q.put((False, e))
            raise

    srv = pyserver(handler, **kw)

    def result(timeout=20):
        try:
            ok, value = q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("the peer did not finish in %ss" % timeout)
        if not ok:
            raise AssertionError("the peer failed: %r" % (value,))
        return value

    srv.result = result
    return srv


class Proc:
    """A tcpkit process whose stdout and stderr are drained by threads, so
    the test can keep its stdin open and still wait with a deadline."""

    def __init__(self, args, stdin=subprocess.PIPE, stdout=subprocess.PIPE):
        self.p = subprocess.Popen([TCPKIT] + list(args), stdin=stdin,
                                  stdout=stdout, stderr=subprocess.PIPE)
        self.out = bytearray()
        self.err = bytearray()
        self.threads = []
        for pipe, buf in ((self.p.stdout, self.out),
                          (self.p.stderr, self.err)):
            if pipe is None:
                continue
            t = threading.Thread(target=self._pump, args=(pipe, buf),
                                 daemon=True)
            t.start()
            self.threads.append(t)

    @staticmethod
    def _pump(pipe, buf):
        for chunk in iter(lambda: pipe.read1(65536), b""):
            buf += chunk

    def write(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def close_stdin(self):
        self.p.stdin.close()

    def wait(self, timeout=20):
        """Wait for the exit; returns (rc, stdout, stderr)."""
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("tcpkit did not exit within %ss; stderr %r"
                                 % (timeout, bytes(self.err)))
        for t in self.threads:
            t.join(10)
        check_sanitizer(bytes(self.err))
        return rc, bytes(self.out), bytes(self.err)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(10)
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass


@pytest.fixture
def spawn():
    """Factory: spawn(args, ...) starts tcpkit; killed at teardown."""
    procs = []

    def start(args, **kw):
        p = Proc(args, **kw)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.kill()


@pytest.fixture
def release():
    """An event the test sets at teardown to let silent peers go."""
    ev = threading.Event()
    yield ev
    ev.set()


@pytest.fixture
def blackhole():
    """A listener that never accepts and whose queue is full, so a new
    connect neither completes nor is refused: it can only time out."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    port = lst.getsockname()[1]
    fillers = []
    pending = False
    try:
        for _ in range(256):
            s = socket.socket()
            s.setblocking(False)
            fillers.append(s)
            rc = s.connect_ex(("127.0.0.1", port))
            if rc == 0 or rc not in (errno.EINPROGRESS, errno.EAGAIN):
                continue
            _, w, _ = select.select([], [s], [], 0.3)
            if not w:
                pending = True
                break
        assert pending, "could not fill the listen queue of a listen(0) socket"
        yield port
    finally:
        for s in fillers:
            s.close()
        lst.close()


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


def trickle_forever(c):
    """Two bytes every 50ms until tcpkit goes away (bounded: 400 sends,
    20s): a peer that keeps an idle timeout quiet for ever."""
    for _ in range(400):
        try:
            c.sendall(b"x\n")
        except OSError:
            return "gone"
        time.sleep(0.05)  # sleep-ok: pacing the trickle
    return "still there"


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
    (["127.0.0.1", "70000"], "port 70000 is out of range (1-65535)"),
    # The same port in the one-argument form is not "missing".
    (["127.0.0.1:70000"], "port 70000 is out of range (1-65535)"),
    (["127.0.0.1", ""], "malformed port ''"),
    (["127.0.0.1", "1", "extra"], "unexpected argument 'extra'"),
    (["-4", "-6", "127.0.0.1", "1"], "-4 and -6 exclude each other"),
    (["--send-only", "--recv-only", "127.0.0.1", "1"],
     "--send-only and --recv-only exclude each other"),
    (["-x", "127.0.0.1", "1"], "unknown option '-x'"),
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
