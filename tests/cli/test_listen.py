"""tcpkit listen: one client piped to stdio or a file (nc -l), -k, -o with
its atomic rename, --append, the progress line, half-close both ways."""
import hashlib
import re
import os
import select
import signal
import socket
import struct
import subprocess
import time

import pytest

from listenhelpers import connect, listen, recv_all  # noqa: F401
from tkhelpers import LISTEN_RE, TCPKIT, need, run


def reset(s):
    """Close s with a reset (RST), as a crashed or killed client does."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def blob(n):
    """n bytes that are not all alike (a counter through SHA-256)."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(i.to_bytes(8, "little")).digest() * 64
        i += 1
    return bytes(out[:n])


def test_receives_100mb_from_python_byte_exact(listen, tmp_path):
    data = os.urandom(1 << 20) * 100
    path = tmp_path / "got"
    with open(path, "wb") as out:
        lp = listen(stdout=out)
        s = connect(lp.port)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s, 60) == b""  # stdin is /dev/null: FIN at once
        s.close()
        assert lp.wait(60) == 0
    assert hashlib.sha256(path.read_bytes()).hexdigest() == \
        hashlib.sha256(data).hexdigest()


def test_receives_100mb_from_nc_byte_exact(listen, tmp_path):
    need("nc")
    src = tmp_path / "src"
    src.write_bytes(os.urandom(1 << 20) * 100)
    path = tmp_path / "got"
    with open(path, "wb") as out:
        lp = listen(stdout=out)
        with open(src, "rb") as f:
            nc = subprocess.run(["nc", "-N", "127.0.0.1", str(lp.port)],
                                stdin=f, capture_output=True, timeout=60)
        assert nc.returncode == 0, nc.stderr
        assert lp.wait() == 0
    assert hashlib.sha256(path.read_bytes()).hexdigest() == \
        hashlib.sha256(src.read_bytes()).hexdigest()


def test_sends_stdin_to_the_client(listen):
    lp = listen(stdin=subprocess.PIPE)
    s = connect(lp.port)
    lp.proc.stdin.write(b"from the listener\n")
    lp.proc.stdin.close()
    assert recv_all(s) == b"from the listener\n"
    s.close()
    assert lp.wait() == 0


def test_half_close_listener_first(listen):
    """Our stdin ends first: the client sees FIN and may still send."""
    lp = listen()
    s = connect(lp.port)
    assert recv_all(s) == b""
    s.sendall(b"after your FIN\n")
    s.shutdown(socket.SHUT_WR)
    assert lp.wait() == 0
    assert lp.out.text() == "after your FIN"
    s.close()


def test_half_close_client_first(listen):
    """The client's FIN first: piped stdin still goes out to its end."""
    lp = listen(stdin=subprocess.PIPE)
    s = connect(lp.port)
    s.sendall(b"question\n")
    s.shutdown(socket.SHUT_WR)
    lp.out.wait_for("^question$")
    lp.proc.stdin.write(b"answer after your FIN\n")
    lp.proc.stdin.close()
    assert recv_all(s) == b"answer after your FIN\n"
    assert lp.wait() == 0
    s.close()


def test_second_client_refused_without_k(listen):
    lp = listen(stdin=subprocess.PIPE)
    s = connect(lp.port)
    s.sendall(b"x\n")
    lp.out.wait_for("^x$")  # the first is being served
    deadline = time.monotonic() + 10
    while True:
        # The listener closes with the first accept; until then a
        # connect may still land in the backlog of the closing socket.
        try:
            t = connect(lp.port, timeout=2)
        except ConnectionRefusedError:
            break
        except ConnectionResetError:  # in the backlog as it closed
            continue
        t.close()
        assert time.monotonic() < deadline, "the listener stayed open"
    lp.proc.stdin.close()
    s.shutdown(socket.SHUT_WR)
    assert lp.wait() == 0
    s.close()


def test_keep_open_serves_three_clients_in_order(listen):
    lp = listen("-k")
    socks = [connect(lp.port) for _ in range(3)]
    # All three send at once; the output must still come client by client.
    for i in (2, 1, 0):
        socks[i].sendall(b"client %d\n" % i)
        socks[i].shutdown(socket.SHUT_WR)
    for s in socks:
        assert recv_all(s) == b""
        s.close()
    lp.out.wait_for("^client 2$")
    assert lp.stop() == 0
    assert lp.out.lines == ["client 0", "client 1", "client 2"]


def listing(d):
    return sorted(p.name for p in d.iterdir())


def test_tls_endpoint_speaks_tls(listen):
    """tls://HOST:PORT is --tls (an ephemeral certificate): openssl's
    client gets our stdin and we get its."""
    need("openssl")
    lp = listen(stdin=subprocess.PIPE, hostport=("tls://127.0.0.1:0",))
    c = subprocess.Popen(["openssl", "s_client", "-quiet", "-connect",
                          "127.0.0.1:%d" % lp.port],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    c.stdin.write(b"over tls\n")
    c.stdin.flush()
    lp.out.wait_for("^over tls$")
    lp.proc.stdin.write(b"back over tls\n")
    lp.proc.stdin.close()
    assert c.stdout.readline() == b"back over tls\n"
    c.stdin.close()
    c.wait(20)
    assert lp.wait() == 0


def test_output_file_whole_on_fin(listen, tmp_path):
    data = blob(3 << 20)
    lp = listen("-o", str(tmp_path / "file"))
    s = connect(lp.port)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    recv_all(s)
    s.close()
    assert lp.wait() == 0
    assert (tmp_path / "file").read_bytes() == data
    assert listing(tmp_path) == ["file"]  # no temporary file left


def test_output_cut_by_reset_leaves_no_file(listen, tmp_path):
    lp = listen("-o", str(tmp_path / "file"))
    s = connect(lp.port)
    s.sendall(blob(1 << 20))
    reset(s)
    assert lp.wait() == 69
    assert listing(tmp_path) == []
    assert "transfer cut after" in lp.err.text()
    assert "not written" in lp.err.text()


def test_output_cut_keeps_the_old_file(listen, tmp_path):
    (tmp_path / "file").write_bytes(b"old\n")
    lp = listen("-o", str(tmp_path / "file"))
    s = connect(lp.port)
    s.sendall(b"half of the new one")
    reset(s)
    assert lp.wait() == 69
    assert (tmp_path / "file").read_bytes() == b"old\n"
    assert listing(tmp_path) == ["file"]


def test_output_cut_by_sigint_leaves_no_file(listen, tmp_path):
    lp = listen("-o", str(tmp_path / "file"), stdin=subprocess.PIPE)
    s = connect(lp.port)
    s.sendall(b"some bytes")
    # Wait until the temporary file holds them, then interrupt.
    deadline = time.monotonic() + 10
    while not any(p.stat().st_size == 10 for p in tmp_path.iterdir()):
        assert time.monotonic() < deadline
        select.select([], [], [], 0.02)
    assert lp.stop(signal.SIGINT) == 1
    assert listing(tmp_path) == []
    assert "Interrupt: transfer cut after 10 B; not written" in lp.err.text()
    s.close()


def test_idle_timeout_cuts_and_leaves_no_file(listen, tmp_path):
    lp = listen("-i", "300ms", "-o", str(tmp_path / "file"),
                stdin=subprocess.PIPE)
    s = connect(lp.port)
    s.sendall(b"then silence")
    assert lp.wait() == 75
    assert re.search(r"^tcpkit: listen 127\.0\.0\.1:\d+: idle timeout "
                     r"\(no data for 300ms\)$", lp.err.text(), re.M), \
        lp.err.text()
    assert listing(tmp_path) == []
    s.close()


def test_ipv4_and_ipv6_default_hosts():
    for flag, want in (("-4", "127.0.0.1"), ("-6", "[::1]")):
        p = subprocess.Popen([TCPKIT, "listen", flag, "0"],
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        try:
            line = p.stderr.readline().decode()
            assert re.match(r"listening on %s:\d+$" % re.escape(want),
                            line), line
        finally:
            p.send_signal(signal.SIGTERM)
            assert p.wait(20) == 0
            p.stderr.close()


def test_append(listen, tmp_path):
    (tmp_path / "file").write_bytes(b"old\n")
    lp = listen("-o", str(tmp_path / "file"), "--append")
    s = connect(lp.port)
    s.sendall(b"new\n")
    s.shutdown(socket.SHUT_WR)
    recv_all(s)
    assert lp.wait() == 0
    assert (tmp_path / "file").read_bytes() == b"old\nnew\n"


def test_append_cut_keeps_what_came_and_says_so(listen, tmp_path):
    lp = listen("-o", str(tmp_path / "file"), "--append")
    s = connect(lp.port)
    s.sendall(b"part")
    deadline = time.monotonic() + 10
    while (tmp_path / "file").stat().st_size < 4:
        assert time.monotonic() < deadline
        select.select([], [], [], 0.02)
    reset(s)
    assert lp.wait() == 69
    assert (tmp_path / "file").read_bytes() == b"part"
    assert "transfer cut: 4 bytes appended" in lp.err.text()


def test_append_keep_open_one_after_another(listen, tmp_path):
    lp = listen("-k", "-o", str(tmp_path / "file"), "--append")
    for i in range(3):
        s = connect(lp.port)
        s.sendall(b"%d\n" % i)
        s.shutdown(socket.SHUT_WR)
        recv_all(s)
        s.close()
    deadline = time.monotonic() + 10
    while (tmp_path / "file").stat().st_size < 6:
        assert time.monotonic() < deadline
        select.select([], [], [], 0.02)
    assert lp.stop() == 0
    assert (tmp_path / "file").read_bytes() == b"0\n1\n2\n"


def test_output_into_missing_directory_exits_73(tmp_path):
    p = run(["listen", "-o", str(tmp_path / "no" / "file"), "127.0.0.1",
             "0"])
    assert p.returncode == 73
    assert p.stderr.decode() == (
        "tcpkit: listen %s: cannot create: No such file or directory\n"
        % (tmp_path / "no" / "file"))


def test_progress_line_on_a_terminal(listen, tmp_path):
    lp = listen("-o", str(tmp_path / "file"), tty=True)
    s = connect(lp.port)
    s.sendall(blob(2 << 20))
    # Updated while the client is still connected.
    lp.tty_wait_for(rb"\r2\.0 MiB received, [0-9.]+ [KMG]?i?B/s, \d+\.\ds")
    s.shutdown(socket.SHUT_WR)
    recv_all(s)
    s.close()
    # The last state, then a newline: the shell prompt starts clean.
    lp.tty_wait_for(rb"\r2\.0 MiB received, [^\r\n]*\n")
    assert lp.wait() == 0


def test_no_progress_line_when_piped(listen, tmp_path):
    lp = listen("-o", str(tmp_path / "file"))
    s = connect(lp.port)
    s.sendall(blob(2 << 20))
    # Longer than a few progress periods.
    select.select([], [], [], 0.8)
    s.shutdown(socket.SHUT_WR)
    recv_all(s)
    s.close()
    assert lp.wait() == 0
    assert "received" not in lp.err.text()


@pytest.mark.parametrize("args,why", [
    (["--append", "0"], "--append needs -o FILE"),
    (["-k", "-o", "f", "0"], "-k with -o needs --append"),
    (["--exec", "cat", "-o", "f", "0"], "-o and --exec exclude each other"),
    (["--stderr-to-peer", "0"], "--stderr-to-peer needs --exec"),
    (["-4", "-6", "0"], "-4 and -6 exclude each other"),
    ([], "missing PORT"),
    (["localhost"], "'localhost': missing port"),
    (["70000"], "port '70000' out of range"),
    (["127.0.0.1", "70000"], "PORT 70000 is out of range"),  # port-ok
    (["--max-conns", "0", "0"], "--max-conns"),
    (["--keep", "0"], "--keep"),
])
def test_usage_errors(args, why):
    p = run(["listen"] + args)
    assert p.returncode == 64, p.stderr
    assert why in p.stderr.decode()
    assert p.stderr.decode().startswith("tcpkit: listen: ")


# --- access lists, -x, --broker and --chat -----------------------------------

def connect_from(src, port, timeout=20):
    """A client bound to src (loopback has the whole of 127/8)."""
    return socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                    source_address=(src, 0))


def test_allow_serves_only_the_listed_client(listen):
    lp = listen("-k", "--allow", "127.0.0.2")
    bad = connect_from("127.0.0.3", lp.port)
    # Closed before any byte either way: EOF (or a reset), nothing read.
    try:
        assert recv_all(bad) == b""
    except ConnectionResetError:
        pass
    lp.err.wait_for(r"^denied 127\.0\.0\.3:%d$" % bad.getsockname()[1])
    bad.close()
    good = connect_from("127.0.0.2", lp.port)
    good.sendall(b"from .2\n")
    good.shutdown(socket.SHUT_WR)
    recv_all(good)
    good.close()
    lp.out.wait_for("^from .2$")
    assert lp.stop() == 0
    assert lp.out.lines == ["from .2"]


def test_deny_refuses_the_listed_client(listen):
    lp = listen("-k", "--deny", "127.0.0.3/32")
    bad = connect_from("127.0.0.3", lp.port)
    bad.sendall(b"never printed\n")
    lp.err.wait_for(r"^denied 127\.0\.0\.3:\d+$")
    bad.close()
    good = connect_from("127.0.0.2", lp.port)
    good.sendall(b"printed\n")
    good.shutdown(socket.SHUT_WR)
    recv_all(good)
    good.close()
    lp.out.wait_for("^printed$")
    assert lp.stop() == 0
    assert "never printed" not in lp.out.text()


def test_hexdump_both_directions_with_the_client(listen, tmp_path):
    dump = tmp_path / "dump"
    lp = listen("-x", str(dump), stdin=subprocess.PIPE)
    s = connect(lp.port)
    s.sendall(b"hello")
    lp.proc.stdin.write(b"world")
    lp.proc.stdin.close()
    assert recv_all(s) == b"world"
    s.shutdown(socket.SHUT_WR)
    s.close()
    assert lp.wait() == 0
    who = r"127\.0\.0\.1:\d+"
    text = dump.read_text()
    assert re.search(r"^< \S+ \S+ %s received 5 bytes at offset 0\n"
                     r"  00000000  68 65 6c 6c 6f .*\|hello\|$" % who,
                     text, re.M), text
    assert re.search(r"^> \S+ \S+ %s sent 5 bytes at offset 0\n"
                     r"  00000000  77 6f 72 6c 64 .*\|world\|$" % who,
                     text, re.M), text


def test_broker_fans_out_to_the_others(listen):
    lp = listen("--broker")
    socks = [connect(lp.port) for _ in range(3)]
    # Everyone is in the set once the server has seen three clients.
    deadline = time.monotonic() + 10
    while True:
        socks[0].sendall(b"ping\n")
        if all(select.select([s], [], [], 0.2)[0] for s in socks[1:]):
            break
        assert time.monotonic() < deadline, "no fan-out"
    for s in socks[1:]:
        s.settimeout(5)
        assert s.recv(100).startswith(b"ping\n")
    # The sender does not get its own bytes back.
    assert not select.select([socks[0]], [], [], 0.3)[0]
    for s in socks:
        s.close()
    assert lp.stop() == 0


def test_chat_names_and_lines(listen):
    lp = listen("--chat")
    a = connect(lp.port)
    a.settimeout(10)
    assert a.recv(100) == b"* you are user1\n"
    b = connect(lp.port)
    b.settimeout(10)
    assert b.recv(100) == b"* you are user2\n"
    assert a.recv(100) == b"* user2 joined\n"
    a.sendall(b"hi\n")
    assert b.recv(100) == b"<user1> hi\n"
    a.close()
    b.close()
    assert lp.stop() == 0


@pytest.mark.parametrize("args,why", [
    (["--broker", "--exec", "cat", "0"], "--broker takes none of --exec"),
    (["--chat", "-o", "f", "0"], "--chat takes none of"),
    (["--broker", "--chat", "0"], "--broker and --chat exclude each other"),
    (["-x", "-", "--exec", "cat", "0"], "-x and --exec exclude each other"),
    (["--allow", "300.0.0.1", "0"], "--allow"),
])
def test_usage_errors_of_the_extras(args, why):
    p = run(["listen"] + args)
    assert p.returncode == 64, p.stderr
    assert why in p.stderr.decode()


@pytest.mark.parametrize("where,hosts", [
    (("0",), ("127.0.0.1", "::1")),           # a bare PORT: loopback
    ((":0",), ("::", "0.0.0.0")),              # ":PORT": every address
    (("-4", ":0"), ("0.0.0.0",)),
])
def test_address_bare_port_is_loopback_colon_port_every_address(
        listen, where, hosts):
    lp = listen(hostport=where)
    m = LISTEN_RE.search(lp.err.text())
    assert m.group(1).strip("[]") in hosts, lp.err.text()
    with connect(lp.port) as s:
        s.sendall(b"x")
        s.shutdown(socket.SHUT_WR)
        recv_all(s)
    assert lp.wait(20) == 0


def listen_side_timers(port):
    """ss's timer fields of listen's accepted socket (source port port),
    once ss sees it."""
    deadline = time.monotonic() + 20
    while True:
        out = subprocess.run(["ss", "-tnoH", "state", "established",
                              "( sport = :%d )" % port], capture_output=True,
                             text=True, timeout=10).stdout
        if out.strip() or time.monotonic() > deadline:
            return re.findall(r"timer:\((\w+),(\d+)", out), out
        time.sleep(0.02)  # sleep-ok: polling ss under a deadline


@pytest.mark.parametrize("args,want", [
    (["--keepalive=40,5,3"], True),
    ([], False),  # the negative twin: no timer without the option
])
def test_keepalive_on_the_accepted_socket(listen, args, want):
    need("ss")
    lp = listen(*args, stdin=subprocess.PIPE)
    with connect(lp.port) as s:
        s.sendall(b"x\n")
        lp.out.wait_for("^x$")  # accepted and read: the socket is there
        timers, out = listen_side_timers(lp.port)
        assert out.strip(), "ss found no socket"
        if want:
            assert [t for t, _ in timers] == ["keepalive"], out
            assert 35 <= int(timers[0][1]) <= 40, out
        else:
            assert "keepalive" not in [t for t, _ in timers], out
    lp.kill()


def test_keepalive_bad_value_is_a_usage_error():
    p = run(["listen", "--keepalive=x", "0"])
    assert p.returncode == 64
    assert p.stderr.decode().startswith("tcpkit: listen: --keepalive")
