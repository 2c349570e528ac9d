"""tcpkit relay's -x/--hexdump, --allow/--deny/--allow-file/--deny-file and
--keepalive, against Python targets and clients bound to 127.0.0.2 and
127.0.0.3 (loopback holds all of 127/8), with each option's negative twin."""
import json
import re
import socket
import ssl
import subprocess
import time

import pytest

from relayhelpers import (TIMEOUT, closed_or_reset, echo_handler,  # noqa: F401
                          relay, target)
from tkhelpers import need, recv_all, recv_until, run

# "> TIME LABEL sent N bytes at offset OFF" (the label: the client)
HEADER = re.compile(r"^([<>]) \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} (.+) "
                    r"(sent|received) (\d+) bytes? at offset (\d+)$")
LINE = re.compile(r"^  ([0-9a-f]{8})  ((?:[0-9a-f]{2} | {3}){8} "
                  r"(?:[0-9a-f]{2} | {3}){8}) \|(.{1,16})\|$")
PAYLOAD = b"hello, relay\n" + bytes(range(256)) + b"\xff" * 40


def parse_dump(text, strict=True):
    """{label: {">": bytes, "<": bytes}} as the dump tells them, each
    chunk's offset and each line's offset checked against what came before
    for that client and direction.  strict=False skips lines that are not
    the dump's (the relay's log, when the dump is stderr)."""
    streams = {}
    cur = None
    for line in text.splitlines():
        m = HEADER.match(line)
        if m:
            label, length, off = m.group(2), int(m.group(4)), int(m.group(5))
            assert (m.group(1) == ">") == (m.group(3) == "sent"), line
            cur = streams.setdefault(label, {">": b"", "<": b""})
            d = m.group(1)
            assert off == len(cur[d]), line
            want_end = off + length
            continue
        m = LINE.match(line)
        if not m:
            assert not strict, "unexpected dump line %r" % line
            cur = None
            continue
        assert cur is not None, "a dump line without its header: %r" % line
        assert int(m.group(1), 16) == len(cur[d]), line
        chunk = bytes.fromhex(m.group(2).replace(" ", ""))
        ascii = "".join(chr(b) if 0x20 <= b < 0x7f else "." for b in chunk)
        assert m.group(3) == ascii, line
        cur[d] += chunk
        assert len(cur[d]) <= want_end, line
    return streams


def wait_lines(reader, pattern, n):
    """Wait until n lines match pattern."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + TIMEOUT
    with reader.cond:
        while True:
            found = [l for l in reader.lines if rx.search(l)]
            left = deadline - time.monotonic()
            if len(found) >= n or reader.closed or left <= 0:
                assert len(found) >= n, reader.lines
                return found
            reader.cond.wait(left)


def addr(sock):
    return "%s:%d" % sock.getsockname()


def exchange(c, data):
    """Send data, read its echo."""
    c.sendall(data)
    got = recv_until(c, lambda d: len(d) >= len(data))
    assert got == data, "the bytes relayed are unchanged"


# --- -x/--hexdump -------------------------------------------------------------

def test_hexdump_shows_both_directions_unchanged(relay, pyserver, tmp_path):
    srv = pyserver(echo_handler)
    dump = tmp_path / "dump.txt"
    r = relay("-x", dump, "--log-format", "json", "127.0.0.1:0",
              target(srv.port))
    with r.connect() as c:
        me = addr(c)
        exchange(c, PAYLOAD)
        exchange(c, b"second chunk")
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b""
    rec = json.loads(r.log(r'^\{.*"event":"relay"').string)
    assert (rec["bytes_up"], rec["bytes_down"]) == (len(PAYLOAD) + 12,) * 2
    # A tap takes the bytes through user space: -x costs the splice.
    assert rec["spliced"] is False
    assert r.stop() == 0
    text = dump.read_text()
    assert parse_dump(text) == {me: {">": PAYLOAD + b"second chunk",
                                     "<": PAYLOAD + b"second chunk"}}
    assert re.search(r"^  00000000  68 65 6c 6c 6f 2c 20 72  65 6c 61 79 0a "
                     r"00 01 02  \|hello, relay\.\.\.\.\|$", text, re.M), text
    # The second chunk's header carries its offset in the stream.
    assert re.search(r"^> .* %s sent 12 bytes at offset %d$"
                     % (re.escape(me), len(PAYLOAD)), text, re.M), text


def test_without_hexdump_nothing_is_dumped_and_it_splices(relay, pyserver):
    """The negative twin: the same relay without -x writes no trace and
    keeps the zero-copy path."""
    srv = pyserver(echo_handler)
    r = relay("--log-format", "json", "127.0.0.1:0", target(srv.port))
    with r.connect() as c:
        exchange(c, PAYLOAD)
    rec = json.loads(r.log(r'^\{.*"event":"relay"').string)
    assert rec["spliced"] is True
    assert r.stop() == 0
    assert not any(HEADER.match(l) for l in r.err.lines), r.err.text()


def test_hexdump_labels_each_of_two_clients_at_once(relay, pyserver,
                                                    tmp_path):
    srv = pyserver(echo_handler)
    dump = tmp_path / "dump.txt"
    r = relay("-w", "2", "-x", dump, "127.0.0.1:0", target(srv.port),
              workers=False)
    with r.connect() as c1, r.connect() as c2:
        # Interleaved: both relays are open while the other one talks.
        exchange(c1, b"one: first\n")
        exchange(c2, b"two: first\n")
        exchange(c1, b"one: second\n")
        exchange(c2, b"two: second\n")
        a1, a2 = addr(c1), addr(c2)
    assert r.stop() == 0
    streams = parse_dump(dump.read_text())
    assert streams == {
        a1: {">": b"one: first\none: second\n",
             "<": b"one: first\none: second\n"},
        a2: {">": b"two: first\ntwo: second\n",
             "<": b"two: first\ntwo: second\n"},
    }


def test_hexdump_dash_is_stderr(relay, pyserver):
    srv = pyserver(echo_handler)
    r = relay("-x", "-", "127.0.0.1:0", target(srv.port))
    with r.connect() as c:
        me = addr(c)
        exchange(c, b"abc")
    r.log()
    assert r.stop() == 0
    assert parse_dump(r.err.text(), strict=False) == \
        {me: {">": b"abc", "<": b"abc"}}


@pytest.mark.parametrize("fmt", ["json", "logfmt"])
def test_hexdump_to_stderr_with_records_is_a_usage_error(fmt):
    """stderr is all records with --log-format json or logfmt: a dump
    there would break them."""
    p = run(["relay", "--log-format", fmt, "-x", "-", "127.0.0.1:0",
             "127.0.0.1:9"])
    assert p.returncode == 64, p.stderr
    want = ("-x - would mix the dump into the %s records on stderr: give "
            "-x a FILE" % fmt)
    assert want in p.stderr.decode(), p.stderr


def test_hexdump_from_a_unix_listen_numbers_the_clients(relay, pyserver,
                                                         tmp_path):
    srv = pyserver(echo_handler)
    sock = tmp_path / "r.sock"
    r = relay("-x", "-", "unix:%s" % sock, target(srv.port))
    with r.connect() as c:
        exchange(c, b"abc")
    r.log()
    assert r.stop() == 0
    assert parse_dump(r.err.text(), strict=False) == \
        {"unix:%s client 1" % sock: {">": b"abc", "<": b"abc"}}


def test_hexdump_of_a_tls_listen_shows_the_plain_bytes(relay, pyserver,
                                                       certs, tmp_path):
    """TLS termination: the dump has what the client meant, not records."""
    srv = pyserver(echo_handler)
    dump = tmp_path / "dump.txt"
    r = relay("-x", dump, "--cert", certs["srv"], "--key", certs["srv_key"],
              "tls://127.0.0.1:0", target(srv.port))
    ctx = ssl.create_default_context(cafile=certs["ca"])
    raw = socket.create_connection(("127.0.0.1", r.port), timeout=TIMEOUT)
    with ctx.wrap_socket(raw, server_hostname="localhost") as c:
        me = addr(c)
        exchange(c, b"secret request")
    assert r.stop() == 0
    assert parse_dump(dump.read_text()) == \
        {me: {">": b"secret request", "<": b"secret request"}}


def test_hexdump_in_a_missing_directory_is_exit_73(tmp_path):
    path = tmp_path / "no" / "dump.txt"
    p = run(["relay", "-x", str(path), "127.0.0.1:0", "127.0.0.1:9"])
    assert p.returncode == 73, p.stderr
    assert p.stderr.decode() == (
        "tcpkit: relay --hexdump %s: No such file or directory\n" % path)


def test_hexdump_write_failure_resets_the_relay_and_exits_74(relay,
                                                             pyserver):
    """A relay that cannot be recorded is not relayed: the target gets
    nothing, the client is cut; the error is told once, however many
    relays hit it, and the exit status says it."""
    got = []

    def handler(conn, srv):
        try:
            got.append(recv_all(conn))
        except ConnectionResetError:
            got.append(b"reset")

    srv = pyserver(handler)
    r = relay("-x", "/dev/full", "127.0.0.1:0", target(srv.port))
    for _ in range(2):
        with r.connect() as c:
            c.sendall(b"not to be lost in silence")
            assert closed_or_reset(c) == (b"", "reset")
    wait_lines(r.err, r"^relay \S+ -> \S+ after .*\(No space left on "
               r"device\)$", 2)
    srv.wait_handlers(2)
    assert all(g in (b"", b"reset") for g in got), got
    assert r.stop() == 74
    errors = [l for l in r.err.lines if l.startswith("tcpkit:")]
    assert errors == ["tcpkit: relay --hexdump /dev/full: No space left on "
                      "device"], r.err.text()


# --- --allow/--deny/--allow-file/--deny-file ----------------------------------

def bound_client(port, src):
    s = socket.socket()
    s.settimeout(TIMEOUT)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def relayed(port, src):
    """What comes back through the relay to an echo target for one line
    sent from src (b"" if refused)."""
    with bound_client(port, src) as s:
        try:
            s.sendall(b"ping\n")
            s.shutdown(socket.SHUT_WR)
            return recv_all(s, TIMEOUT)
        except (ConnectionResetError, BrokenPipeError):
            return b""


def refused_silently(port, src):
    """Connect from src without sending: the relay must close at once and
    send nothing."""
    with bound_client(port, src) as s:
        data, _ = closed_or_reset(s)
        return data == b""


def counting_echo():
    peers = []

    def handler(conn, srv):
        peers.append(conn.getpeername())
        echo_handler(conn, srv)
    return handler, peers


@pytest.mark.parametrize("opts", [
    ["--allow", "127.0.0.2"],
    ["--deny", "127.0.0.3/32"],
    ["--allow", "127.0.0.0/30", "--deny", "127.0.0.3"],
])
def test_allowed_client_relayed_denied_closed_and_logged(relay, pyserver,
                                                         opts):
    handler, peers = counting_echo()
    srv = pyserver(handler)
    r = relay(*opts, "127.0.0.1:0", target(srv.port))
    assert relayed(r.port, "127.0.0.2") == b"ping\n"
    assert refused_silently(r.port, "127.0.0.3")
    m = r.log(r"^denied 127\.0\.0\.3:(\d+) at \[.*\]: address not allowed$")
    assert int(m.group(1)) > 0
    # The denied client never reached the target.
    assert r.log().group(1).startswith("127.0.0.2:")
    assert len(peers) == 1
    assert r.stop() == 0


def test_allow_and_deny_files(relay, pyserver, tmp_path):
    allow = tmp_path / "allow.txt"
    allow.write_text("# the office\n127.0.0.0/29\n")
    deny = tmp_path / "deny.txt"
    deny.write_text("127.0.0.3  # not this one\n")
    srv = pyserver(echo_handler)
    r = relay("--allow-file", allow, "--deny-file", deny, "127.0.0.1:0",
              target(srv.port))
    assert relayed(r.port, "127.0.0.2") == b"ping\n"
    assert refused_silently(r.port, "127.0.0.3")
    assert refused_silently(r.port, "127.0.0.9")
    r.log(r"^denied 127\.0\.0\.3:\d+ ")
    r.log(r"^denied 127\.0\.0\.9:\d+ ")
    assert r.stop() == 0


def test_without_lists_every_client_is_relayed(relay, pyserver):
    """The negative twin: no list, 127.0.0.3 is relayed like any other."""
    srv = pyserver(echo_handler)
    r = relay("127.0.0.1:0", target(srv.port))
    assert relayed(r.port, "127.0.0.3") == b"ping\n"
    assert r.stop() == 0
    assert "denied" not in r.err.text()


def usage(msg):
    return "tcpkit: relay: %s (see 'tcpkit help relay')\n" % msg


@pytest.mark.parametrize("opt,rule,why", [
    ("--allow", "10.0.0.0/33", "prefix longer than 32"),  # addr-ok: parse
    ("--deny", "localhost", "not an IP address"),
])
def test_bad_rule_is_a_usage_error(opt, rule, why):
    p = run(["relay", opt, rule, "127.0.0.1:0", "127.0.0.1:9"])
    assert p.returncode == 64, p.stderr
    assert p.stderr.decode() == usage("%s '%s': %s" % (opt, rule, why))


def test_bad_line_names_file_and_line(tmp_path):
    f = tmp_path / "deny.txt"
    f.write_text("127.0.0.3\n10.0.0.0/33\n")  # addr-ok: parse
    p = run(["relay", "--deny-file", str(f), "127.0.0.1:0", "127.0.0.1:9"])
    assert p.returncode == 64, p.stderr
    assert p.stderr.decode() == usage(
        "--deny-file %s:2: '10.0.0.0/33': prefix longer than 32" % f)  # addr-ok


def test_missing_list_file_is_exit_66(tmp_path):
    f = tmp_path / "nope.txt"
    p = run(["relay", "--allow-file", str(f), "127.0.0.1:0", "127.0.0.1:9"])
    assert p.returncode == 66, p.stderr
    assert p.stderr.decode() == (
        "tcpkit: relay --allow-file %s: No such file or directory\n" % f)


@pytest.mark.parametrize("opt", ["--allow", "--deny"])
def test_lists_with_a_unix_listen_are_a_usage_error(opt, tmp_path):
    sock = tmp_path / "r.sock"
    p = run(["relay", opt, "127.0.0.2", "unix:%s" % sock, "127.0.0.1:9"])
    assert p.returncode == 64, p.stderr
    assert p.stderr.decode() == usage(
        "%s needs a TCP LISTEN: UNIX peers have no address to check" % opt)
    assert not sock.exists()


def test_list_option_names_are_exact():
    p = run(["relay", "--allo", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:9"])
    assert p.returncode == 64
    assert p.stderr.decode() == usage("unknown option '--allo'")


# --- --keepalive --------------------------------------------------------------

def ss_timers(filt):
    """ss's timer fields of the established TCP sockets matching filt."""
    p = subprocess.run(["ss", "-tnoH", "state", "established", filt],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    return re.findall(r"timer:\((\w+),", p.stdout), p.stdout


def wait_ss(filt):
    """ss's view of the one socket matching filt, once it is there."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        timers, out = ss_timers(filt)
        if out.strip() or time.monotonic() > deadline:
            return timers, out
        time.sleep(0.02)  # sleep-ok: polling ss under a deadline


def keepalive_secs(out):
    m = re.search(r"timer:\(keepalive,(\d+)(?:\.\d+)?(ms|sec|min)", out)
    assert m and m.group(2) == "sec", out
    return int(m.group(1))


def recording_echo(conn, srv):
    srv.received.append(conn.getpeername())
    echo_handler(conn, srv)


def test_keepalive_on_both_sides(relay, pyserver):
    need("ss")
    srv = pyserver(recording_echo)
    r = relay("--keepalive=40,5,3", "127.0.0.1:0", target(srv.port))
    with r.connect() as c:
        exchange(c, b"x")
        # The relay's accepted client socket, and its socket to the target.
        for filt in ("( sport = :%d )" % r.port,
                     "( dport = :%d and sport = :%d )"
                     % (srv.port, relay_side_port(srv))):
            timers, out = wait_ss(filt)
            assert timers == ["keepalive"], out
            assert 35 <= keepalive_secs(out) <= 40, out


def relay_side_port(srv):
    """The source port of the relay's connection to the target, as the
    target saw it."""
    deadline = time.monotonic() + TIMEOUT
    while not srv.received and time.monotonic() < deadline:
        time.sleep(0.01)  # sleep-ok: polling the peer under a deadline
    return srv.received[0][1]


def test_no_keepalive_without_the_option(relay, pyserver):
    """The negative twin: neither side's socket has the timer."""
    need("ss")
    srv = pyserver(recording_echo)
    r = relay("127.0.0.1:0", target(srv.port))
    with r.connect() as c:
        exchange(c, b"x")
        for filt in ("( sport = :%d )" % r.port,
                     "( dport = :%d and sport = :%d )"
                     % (srv.port, relay_side_port(srv))):
            timers, out = wait_ss(filt)
            assert out.strip(), "no socket found for %s" % filt
            assert "keepalive" not in timers, out


def test_keepalive_with_unix_sockets_is_ignored(relay, tmp_path):
    """UNIX sockets have no keepalive: a unix: TARGET and LISTEN relay as
    they would without it."""
    path = tmp_path / "echo.sock"
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(str(path))
    ls.listen(4)
    try:
        r = relay("--keepalive", "unix:%s" % (tmp_path / "r.sock"),
                  "unix:%s" % path)
        with r.connect() as c:
            c.sendall(b"over unix")
            conn, _ = ls.accept()
            with conn:
                conn.settimeout(TIMEOUT)
                assert recv_until(conn, lambda d: len(d) >= 9) == \
                    b"over unix"
                conn.sendall(b"and back")
                assert recv_until(c, lambda d: len(d) >= 8) == b"and back"
        assert r.stop() == 0
        assert "tcpkit:" not in r.err.text()
    finally:
        ls.close()


@pytest.mark.parametrize("arg,msg", [
    ("--keepalive=0", "--keepalive IDLE is a number from 1 to 32767, "
     "not '0'"),
    ("--keepalive=30,x", "--keepalive INTVL is a number from 1 to 32767, "
     "not 'x'"),
    ("--keepalive=1,2,3,4", "--keepalive takes at most three values, "
     "IDLE,INTVL,CNT, not '1,2,3,4'"),
])
def test_keepalive_bad_values(arg, msg):
    p = run(["relay", arg, "127.0.0.1:0", "127.0.0.1:9"])
    assert p.returncode == 64, p.stderr
    assert p.stderr.decode() == usage(msg)
