"""Black-box tests of where `tcpkit serve` listens: -H (addresses, names,
wildcards, IPv6, duplicates, bad hosts), -p (explicit, 0, in use,
privileged, bad) and --backlog, each with its negative twin (exit code and
exact message)."""
import os
import shutil
import socket
import subprocess
import sys

import pytest

from servehelpers import (HINT, PROG, TIMEOUT, assert_usage, echo_roundtrip,
                          err_lines, start)
from tkhelpers import LISTEN_RE, TCPKIT, check_sanitizer, free_port, need, run


def fmt_addr(host, port):
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


def refused(port, host):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.settimeout(5)
        return s.connect_ex((host, port)) != 0


# ---------------------------------------------------------------------------
# -H: where to listen.


def test_host_ipv4_loopback_only(serve):
    srv = start(serve, "-H", "127.0.0.1")
    srv.err.wait_for("^try: ")
    listening = [l for l in err_lines(srv) if LISTEN_RE.search(l)]
    assert listening == ["listening on 127.0.0.1:%d" % srv.port]
    assert HINT in err_lines(srv)
    assert echo_roundtrip(srv.port) == b"ping\n"
    assert refused(srv.port, "::1")
    assert srv.stop() == 0


def test_host_ipv6_loopback_only(serve):
    srv = start(serve, "-H", "::1")
    srv.err.wait_for("^try: ")
    listening = [l for l in err_lines(srv) if LISTEN_RE.search(l)]
    assert listening == ["listening on [::1]:%d" % srv.port]
    assert HINT in err_lines(srv)
    assert "try: %s connect ::1 %d" % (PROG, srv.port) in err_lines(srv)
    assert echo_roundtrip(srv.port, "::1") == b"ping\n"
    assert refused(srv.port, "127.0.0.1")
    assert srv.stop() == 0


def test_host_ipv6_any_is_dual_stack(serve):
    srv = start(serve, "-H", "::")
    srv.err.wait_for("^try: ")
    listening = [l for l in err_lines(srv) if LISTEN_RE.search(l)]
    assert listening == ["listening on [::]:%d" % srv.port]
    assert HINT not in err_lines(srv)
    assert echo_roundtrip(srv.port, "127.0.0.1", b"over v4") == b"over v4"
    assert echo_roundtrip(srv.port, "::1", b"over v6") == b"over v6"
    assert srv.stop() == 0


def test_host_ipv4_any(serve):
    srv = start(serve, "-H", "0.0.0.0")
    srv.err.wait_for("^try: ")
    lines = err_lines(srv)
    assert [l for l in lines if LISTEN_RE.search(l)] == \
        ["listening on 0.0.0.0:%d" % srv.port]
    assert HINT not in lines
    assert not any(l.startswith("hint:") for l in lines)
    assert "try: %s connect 127.0.0.1 %d" % (PROG, srv.port) in lines
    assert echo_roundtrip(srv.port) == b"ping\n"
    assert srv.stop() == 0


def test_host_both_wildcards(serve):
    """"::" with 0.0.0.0 as well: "::" becomes IPv6-only so both bind."""
    srv = start(serve, "-H", "::", "-H", "0.0.0.0", listeners=2)
    assert srv.addrs == [("::", srv.port), ("0.0.0.0", srv.port)]
    assert echo_roundtrip(srv.port, "127.0.0.1") == b"ping\n"
    assert echo_roundtrip(srv.port, "::1") == b"ping\n"
    assert srv.stop() == 0


def test_host_localhost_follows_the_resolver(serve):
    want = []
    for fam, _, _, _, sa in socket.getaddrinfo("localhost", None, 0,
                                               socket.SOCK_STREAM,
                                               socket.IPPROTO_TCP):
        if sa[0] not in want:
            want.append(sa[0])
    srv = start(serve, "-H", "localhost", listeners=len(want))
    srv.err.wait_for("^try: ")
    assert [h for h, _ in srv.addrs] == want
    assert len({p for _, p in srv.addrs}) == 1
    assert HINT in err_lines(srv)
    for host in want:
        assert echo_roundtrip(srv.port, host) == b"ping\n"
    assert srv.stop() == 0


def test_host_repeated(serve):
    srv = start(serve, "-H", "127.0.0.1", "-H", "::1", listeners=2)
    assert srv.addrs == [("127.0.0.1", srv.port), ("::1", srv.port)]
    assert echo_roundtrip(srv.port, "127.0.0.1") == b"ping\n"
    assert echo_roundtrip(srv.port, "::1") == b"ping\n"
    assert srv.stop() == 0


def test_host_duplicates_listen_once(serve):
    srv = start(serve, "-H", "127.0.0.1", "-H", "127.0.0.1")
    srv.err.wait_for("^try: ")
    assert len([l for l in err_lines(srv) if LISTEN_RE.search(l)]) == 1
    assert srv.stop() == 0


def test_host_more_than_sixteen():
    args = []
    for _ in range(17):
        args += ["-H", "127.0.0.1"]
    assert_usage(args + ["-p", "0"], "at most 16 -H options")


@pytest.mark.parametrize("name", ["no-such-host.invalid",
                                  "bad.example.invalid"])
def test_host_unknown(name):
    p = run(["serve", "-H", name, "-p", "0"])
    assert p.returncode == 68
    assert p.stdout == b""
    assert p.stderr.decode() == "tcpkit: serve %s: host not found\n" % name


def test_host_unknown_after_a_good_one():
    """Every host is resolved before anything listens."""
    p = run(["serve", "-H", "127.0.0.1", "-H", "no-such-host.invalid",
             "-p", "0"])
    assert p.returncode == 68
    assert p.stderr.decode() == \
        "tcpkit: serve no-such-host.invalid: host not found\n"


@pytest.mark.parametrize("text", ["1::2::3", "::g", "fe80::1::", "[::1"])
def test_host_malformed_address(text):
    """Text with a colon can only be an IPv6 literal, never a host name: a
    bad one is a usage error ("malformed address", exit 64), not a name
    the resolver failed to find."""
    p = run(["serve", "-H", text, "-p", "0"])
    assert p.returncode == 64, p.stderr
    assert p.stdout == b""
    assert p.stderr.decode() == "tcpkit: serve %s: malformed address\n" % text


@pytest.mark.parametrize("addr", ["192.0.2.123", "198.51.100.7",
                                  "2001:db8::7"])
def test_host_address_not_available(addr):
    p = run(["serve", "-H", addr, "-p", "0"])
    assert p.returncode == 1
    assert p.stdout == b""
    assert p.stderr.decode() == (
        "tcpkit: listen %s: Cannot assign requested address: no interface "
        "has this address (see 'tcpkit interfaces')\n" % fmt_addr(addr, 0))


# ---------------------------------------------------------------------------
# -p: the port.


def test_port_explicit(serve):
    port = free_port()
    srv = start(serve, "-H", "127.0.0.1", "-p", str(port))
    assert srv.port == port
    assert echo_roundtrip(port) == b"ping\n"
    assert srv.stop() == 0


def test_port_explicit_long_form(serve):
    port = free_port()
    # Two words: tkhelpers' Server adds "-p 0" unless it sees "--port".
    srv = start(serve, "-H", "127.0.0.1", "--port", str(port))
    assert srv.port == port
    assert srv.stop() == 0


def test_port_zero_picks_a_free_port(serve):
    a = start(serve, "-H", "127.0.0.1", "-p", "0")
    b = start(serve, "-H", "127.0.0.1", "-p", "0")
    assert a.port != 0 and b.port != 0 and a.port != b.port
    assert echo_roundtrip(a.port, data=b"a") == b"a"
    assert echo_roundtrip(b.port, data=b"b") == b"b"
    assert a.stop() == 0 and b.stop() == 0


def in_use(host, port):
    return ("tcpkit: listen %s: Address already in use: another program "
            "holds this port; choose another with -p, or -p 0 for any free "
            "port\n" % fmt_addr(host, port))


def holder(host="127.0.0.1", reuseport=False):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family)
    if reuseport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((host, 0))
    s.listen(4)
    return s


@pytest.mark.parametrize("reuseport", [False, True])
def test_port_in_use(reuseport):
    """Held by a listener, with or without SO_REUSEPORT: tcpkit must not
    share another program's port."""
    with holder(reuseport=reuseport) as h:
        port = h.getsockname()[1]
        p = run(["serve", "-H", "127.0.0.1", "-p", str(port)])
        assert p.returncode == 1
        assert p.stdout == b""
        assert p.stderr.decode() == in_use("127.0.0.1", port)


def test_port_in_use_on_default_hosts():
    with holder() as h:
        port = h.getsockname()[1]
        p = run(["serve", "-p", str(port)])
        assert p.returncode == 1
        assert p.stderr.decode() == in_use("127.0.0.1", port)


def test_port_in_use_on_ipv6_loopback_only():
    """127.0.0.1 binds, [::1] does not: the error names [::1]."""
    with holder("::1") as h:
        port = h.getsockname()[1]
        p = run(["serve", "-p", str(port)])
        assert p.returncode == 1
        assert p.stderr.decode() == in_use("::1", port)


def test_port_in_use_by_a_tcpkit_server(serve):
    srv = start(serve, "-H", "127.0.0.1")
    p = run(["serve", "-H", "127.0.0.1", "-p", str(srv.port)])
    assert p.returncode == 1
    assert p.stderr.decode() == in_use("127.0.0.1", srv.port)
    assert echo_roundtrip(srv.port) == b"ping\n"
    assert srv.stop() == 0


@pytest.mark.parametrize("value,msg", [
    ("70000", "-p/--port 70000 is out of range (0-65535)"),  # port-ok
    ("65536", "-p/--port 65536 is out of range (0-65535)"),  # port-ok
    ("abc", "-p/--port needs a whole number, not 'abc'"),
    ("-1", "-p/--port needs a whole number, not '-1'"),
    ("+80", "-p/--port needs a whole number, not '+80'"),
    ("80x", "-p/--port needs a whole number, not '80x'"),
    ("", "-p/--port needs a whole number, not ''"),
    ("99999999999999999999999",
     "-p/--port 99999999999999999999999 is out of range (0-65535)"),
])
def test_port_bad(value, msg):
    assert_usage(["-p", value], msg)
    assert_usage(["--port=" + value], msg)


def unprivileged_prefix():
    """argv prefix that runs a program as an unprivileged user, or None."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv"):
        return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    if shutil.which("runuser"):
        return ["runuser", "-u", "nobody", "--"]
    return None


@pytest.mark.parametrize("port,svc", [
    (80, " (port 80 belongs to HTTP)"),
    (443, " (port 443 belongs to HTTPS)"),
    (22, " (port 22 belongs to SSH)"),
    (25, " (port 25 belongs to SMTP)"),
    (1023, ""),
])
def test_port_privileged(port, svc):
    prefix = unprivileged_prefix()
    if prefix is None:
        pytest.skip("running as root with neither setpriv nor runuser")
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            start_port = int(f.read())
    except OSError:
        start_port = 1024  # port-ok
    if port >= start_port:
        pytest.skip("ip_unprivileged_port_start is %d: port %d is open to "
                    "every user here" % (start_port, port))
    probe = subprocess.run(prefix + [sys.executable, "-c",
                                     "import socket,sys\n"
                                     "s=socket.socket()\n"
                                     "try:\n"
                                     " s.bind(('127.0.0.1',%d))\n"
                                     "except PermissionError:\n"
                                     " sys.exit(3)\n"
                                     "except OSError:\n"
                                     " sys.exit(4)\n" % port],
                           capture_output=True, timeout=TIMEOUT)
    if probe.returncode != 3:
        pytest.skip("the sandbox does not refuse port %d to an unprivileged "
                    "user (probe exit %d %r)" % (port, probe.returncode,
                                                 probe.stderr))
    p = subprocess.run(prefix + [TCPKIT, "serve", "-H", "127.0.0.1", "-p",
                                 str(port)],
                       capture_output=True, timeout=TIMEOUT,
                       stdin=subprocess.DEVNULL)
    check_sanitizer(p.stderr)
    assert p.returncode == 1, p.stderr
    assert p.stdout == b""
    assert p.stderr.decode() == (
        "tcpkit: listen 127.0.0.1:%d: Permission denied: ports below 1024 "
        "need root or CAP_NET_BIND_SERVICE%s; use a port above 1023\n"
        % (port, svc))


# ---------------------------------------------------------------------------
# --backlog.


def listen_queue(port):
    """The listen backlog the kernel holds for 127.0.0.1:port (ss Send-Q),
    the same on every worker's socket."""
    need("ss")
    p = subprocess.run(["ss", "-ltnH", "sport = :%d" % port],
                       capture_output=True, timeout=TIMEOUT)
    rows = [l.split() for l in p.stdout.decode().splitlines() if l.strip()]
    assert len(rows) >= 1, p.stdout
    assert len({r[2] for r in rows}) == 1, p.stdout
    return int(rows[0][2])


def somaxconn():
    with open("/proc/sys/net/core/somaxconn") as f:
        return int(f.read())


@pytest.mark.parametrize("value", ["1", "7", "65535", None])
def test_backlog_accepted(serve, value):
    if shutil.which("ss") is None:
        pytest.skip("ss is not installed")
    args = ["-H", "127.0.0.1"] + (["--backlog", value] if value else [])
    srv = start(serve, *args)
    want = min(int(value or 511), somaxconn())
    assert listen_queue(srv.port) == want
    assert echo_roundtrip(srv.port) == b"ping\n"
    assert srv.stop() == 0


@pytest.mark.parametrize("value,msg", [
    ("0", "--backlog must be between 1 and 65535, not 0"),
    ("65536", "--backlog must be between 1 and 65535, not 65536"),
    ("-5", "--backlog needs a whole number, not '-5'"),
    ("ten", "--backlog needs a whole number, not 'ten'"),
    ("", "--backlog needs a whole number, not ''"),
])
def test_backlog_bad(value, msg):
    assert_usage(["--backlog", value], msg)
    assert_usage(["--backlog=" + value], msg)
