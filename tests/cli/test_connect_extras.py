"""connect's extras against real Python peers: -x/--hexdump,
--keepalive, -p/--source-port and -t/--telnet."""
import re
import socket
import subprocess
import time

import pytest

from tkhelpers import TCPKIT, free_port, need, run

TIMEOUT = 10
HEADER = re.compile(r"^([<>]) \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} "
                    r"(sent|received) (\d+) bytes? at offset (\d+)$")
LINE = re.compile(r"^  ([0-9a-f]{8})  ((?:[0-9a-f]{2} | {3}){8} "
                  r"(?:[0-9a-f]{2} | {3}){8}) \|(.{1,16})\|$")


def echo(conn, srv):
    while True:
        data = conn.recv(65536)
        if not data:
            break
        conn.sendall(data)


def parse_dump(text):
    """The bytes of each direction as the dump tells them, checking each
    chunk's offset against what came before, and each line's offset."""
    streams = {">": b"", "<": b""}
    cur = None
    for line in text.splitlines():
        m = HEADER.match(line)
        if m:
            cur, length, off = m.group(1), int(m.group(3)), int(m.group(4))
            assert (cur == ">") == (m.group(2) == "sent")
            assert off == len(streams[cur]), line
            want_end = off + length
            continue
        m = LINE.match(line)
        assert m and cur is not None, "unexpected dump line %r" % line
        assert int(m.group(1), 16) == len(streams[cur]), line
        chunk = bytes.fromhex(m.group(2).replace(" ", ""))
        ascii = "".join(chr(b) if 0x20 <= b < 0x7f else "." for b in chunk)
        assert m.group(3) == ascii, line
        streams[cur] += chunk
        assert len(streams[cur]) <= want_end
    return streams


PAYLOAD = b"hello, world\n" + bytes(range(256)) + b"\xff" * 40


def test_hexdump_file_shows_both_directions(pyserver, tmp_path):
    srv = pyserver(echo)
    dump = tmp_path / "dump.txt"
    p = run(["connect", "-x", str(dump), "127.0.0.1", str(srv.port)],
            input=PAYLOAD)
    assert p.returncode == 0, p.stderr
    assert p.stdout == PAYLOAD, "the bytes relayed are unchanged"
    assert p.stderr == b""
    text = dump.read_text()
    streams = parse_dump(text)
    assert streams[">"] == PAYLOAD
    assert streams["<"] == PAYLOAD
    assert re.search(r"^  00000000  68 65 6c 6c 6f 2c 20 77  6f 72 6c 64 0a "
                     r"00 01 02  \|hello, world\.\.\.\.\|$", text, re.M), text


def test_hexdump_dash_is_stderr(pyserver):
    srv = pyserver(echo)
    p = run(["connect", "--hexdump", "-", "127.0.0.1", str(srv.port)],
            input=b"abc")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"abc"
    streams = parse_dump(p.stderr.decode())
    assert streams == {">": b"abc", "<": b"abc"}


def test_without_hexdump_nothing_is_dumped(pyserver):
    """The negative twin: the same session without -x writes no trace."""
    srv = pyserver(echo)
    p = run(["connect", "127.0.0.1", str(srv.port)], input=b"abc")
    assert p.returncode == 0
    assert p.stdout == b"abc"
    assert p.stderr == b""


def test_hexdump_in_a_missing_directory_is_exit_73(pyserver, tmp_path):
    srv = pyserver(echo)
    path = tmp_path / "no" / "dump.txt"
    p = run(["connect", "-x", str(path), "127.0.0.1", str(srv.port)],
            input=b"abc")
    assert p.returncode == 73, p.stderr
    assert p.stderr.decode() == (
        "tcpkit: connect --hexdump %s: No such file or directory\n" % path)


def test_hexdump_write_failure_ends_the_session(pyserver):
    srv = pyserver(echo)
    p = run(["connect", "-x", "/dev/full", "127.0.0.1", str(srv.port)],
            input=b"abc")
    assert p.returncode == 74, p.stderr
    assert p.stderr.decode() == (
        "tcpkit: connect --hexdump /dev/full: No space left on device\n")


# --- --keepalive -------------------------------------------------------------

def ss_timers(port, side):
    """ss's timer field of the established sockets with the given port on
    the given side ("sport" or "dport")."""
    p = subprocess.run(["ss", "-tnoH", "state", "established",
                        "( %s = :%d )" % (side, port)],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    return re.findall(r"timer:\((\w+),", p.stdout), p.stdout


def wait_ss(port, side, want_sockets=1):
    deadline = time.monotonic() + TIMEOUT
    while True:
        timers, out = ss_timers(port, side)
        lines = [l for l in out.splitlines() if l.strip()]
        if len(lines) >= want_sockets or time.monotonic() > deadline:
            return timers, out
        time.sleep(0.02)  # sleep-ok: polling ss under a deadline


def hold(conn, srv):
    """Keep the connection until the client closes it."""
    srv.received.append(conn.getpeername())
    while conn.recv(65536):
        pass


def test_keepalive_on_connect_arms_the_timer(pyserver, proc):
    need("ss")
    srv = pyserver(hold)
    p = proc([TCPKIT, "connect", "--keepalive=30,5,3", "127.0.0.1",
              str(srv.port)])
    try:
        timers, out = wait_ss(srv.port, "dport")
        assert timers == ["keepalive"], out
        m = re.search(r"timer:\(keepalive,(\d+)(?:\.\d+)?(ms|sec|min)", out)
        assert m, out
        assert m.group(2) == "sec" and 25 <= int(m.group(1)) <= 30, out
    finally:
        p.close_stdin()
    assert p.wait() == 0


def test_no_keepalive_without_the_option(pyserver, proc):
    need("ss")
    srv = pyserver(hold)
    p = proc([TCPKIT, "connect", "127.0.0.1", str(srv.port)])
    try:
        srv_seen = time.monotonic() + TIMEOUT
        while not srv.received and time.monotonic() < srv_seen:
            time.sleep(0.01)  # sleep-ok: polling the peer under a deadline
        timers, out = wait_ss(srv.port, "dport")
        assert out.strip(), "no socket found"
        assert "keepalive" not in timers, out
    finally:
        p.close_stdin()
    assert p.wait() == 0


def test_keepalive_on_serve_reaches_accepted_sockets(serve):
    need("ss")
    srv = serve("-H", "127.0.0.1", "-w", "1", "--keepalive=40")
    with socket.create_connection(("127.0.0.1", srv.port), TIMEOUT) as c:
        c.sendall(b"x")
        assert c.recv(1) == b"x"
        timers, out = wait_ss(srv.port, "sport")
        assert timers == ["keepalive"], out
        m = re.search(r"timer:\(keepalive,(\d+)(?:\.\d+)?(ms|sec|min)", out)
        assert m and 35 <= int(m.group(1)) <= 40 and m.group(2) == "sec", \
            out


@pytest.mark.parametrize("arg,msg", [
    ("--keepalive=0", "--keepalive IDLE is a number from 1 to 32767, "
     "not '0'"),
    ("--keepalive=x", "--keepalive IDLE is a number from 1 to 32767, "
     "not 'x'"),
    ("--keepalive=30,99999", "--keepalive INTVL is a number from 1 to "
     "32767, not '99999'"),
    ("--keepalive=,,128", "--keepalive CNT is a number from 1 to 127, "
     "not '128'"),
    ("--keepalive=1,2,3,4", "--keepalive takes at most three values, "
     "IDLE,INTVL,CNT, not '1,2,3,4'"),
])
def test_keepalive_bad_values(arg, msg):
    for cmd in ("connect", "send"):
        p = run([cmd, arg, "127.0.0.1", "9"], input=b"")
        assert p.returncode == 64, p.stderr
        assert p.stderr.decode() == \
            "tcpkit: %s: %s (see 'tcpkit help %s')\n" % (cmd, msg, cmd)


# --- -p/--source-port -----------------------------------------------------------

def peer_name(conn, srv):
    srv.received.append(conn.getpeername())
    while conn.recv(65536):
        pass


@pytest.mark.parametrize("cmd", ["connect", "send"])
def test_source_port_is_what_the_server_sees(pyserver, cmd):
    srv = pyserver(peer_name)
    port = free_port()
    p = run([cmd, "-p", str(port), "127.0.0.1", str(srv.port)], input=b"hi")
    assert p.returncode == 0, p.stderr
    srv.wait_handlers()
    assert srv.received == [("127.0.0.1", port)]


def test_source_port_with_source_address(pyserver):
    srv = pyserver(peer_name)
    port = free_port()
    p = run(["connect", "-s", "127.0.0.2", "--source-port", str(port),
             "127.0.0.1", str(srv.port)], input=b"hi")
    assert p.returncode == 0, p.stderr
    srv.wait_handlers()
    assert srv.received == [("127.0.0.2", port)]


def test_source_port_in_use_is_a_clear_error(pyserver):
    srv = pyserver(peer_name)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        p = run(["connect", "-p", str(port), "127.0.0.1", str(srv.port)],
                input=b"hi")
    assert p.returncode == 1, p.stderr
    assert p.stderr.decode() == "tcpkit: connect 127.0.0.1:%d: source " \
        "port %d: Address already in use\n" % (srv.port, port)
    assert srv.received == []


def test_source_port_conflicting_with_source():
    p = run(["connect", "-s", "127.0.0.1:1000", "-p", "2000", "127.0.0.1",
             "9"], input=b"")
    assert p.returncode == 64
    assert p.stderr.decode() == (
        "tcpkit: connect: -s/--source gives port 1000, -p/--source-port "  # port-ok: parse only
        "2000 (see 'tcpkit help connect')\n")


# --- -t/--telnet -------------------------------------------------------------------

IAC, DO, DONT, WILL, WONT, SB, SE = b"\xff", b"\xfd", b"\xfe", b"\xfb", \
    b"\xfc", b"\xfa", b"\xf0"


def recv_exactly(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def negotiating(conn, srv):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.sendall(IAC + DO + b"\x01" + IAC + WILL + b"\x03" + b"login: " +
                 IAC + IAC + b"!" + IAC + WONT + b"\x05")
    srv.received.append(recv_exactly(conn, 6))
    # A sequence cut in two sends, and a subnegotiation.
    conn.sendall(b"A" + IAC)
    conn.sendall(DO + b"\x18" + b"B" + IAC + SB + b"\x18\x01" + IAC + SE)
    srv.received.append(recv_exactly(conn, 3))
    conn.sendall(b"bye\n")


def test_telnet_refuses_and_strips(pyserver):
    srv = pyserver(negotiating)
    p = subprocess.Popen([TCPKIT, "connect", "-t", "127.0.0.1",
                          str(srv.port)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        srv.wait_handlers()
        out, err = p.communicate(b"", timeout=TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert srv.errors == []
    assert srv.received == [IAC + WONT + b"\x01" + IAC + DONT + b"\x03",
                            IAC + WONT + b"\x18"]
    assert out == b"login: \xff!ABbye\n"
    assert err == b""


def test_without_telnet_the_bytes_pass_raw(pyserver):
    """The negative twin: no -t, no answer, every byte printed."""
    def greet(conn, srv):
        conn.sendall(IAC + DO + b"\x01" + b"hi\n")

    srv = pyserver(greet)
    p = run(["connect", "127.0.0.1", str(srv.port)], input=b"")
    assert p.returncode == 0
    assert p.stdout == IAC + DO + b"\x01" + b"hi\n"


def test_telnet_and_hexdump_are_connect_only():
    for opt in ("-t", "-x-"):
        p = run(["send", opt, "127.0.0.1", "9", "x"], input=b"")
        assert p.returncode == 64
        assert b"is for 'tcpkit connect'" in p.stderr
