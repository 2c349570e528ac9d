"""serve --allow/--deny/--allow-file/--deny-file: clients bound to
127.0.0.2 and 127.0.0.3 (loopback holds all of 127/8) and ::1; a refused
client is closed before a byte is read or sent and logged "denied"."""
import json
import socket

import pytest

from tkhelpers import recv_all, run

TIMEOUT = 10


def client(port, src, host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.bind((src, 0))
    s.connect((host, port))
    return s


def echoed(port, src, host="127.0.0.1"):
    """What the server sends back to one line from src (b"" if refused)."""
    with client(port, src, host) as s:
        try:
            s.sendall(b"ping\n")
            s.shutdown(socket.SHUT_WR)
            return recv_all(s, TIMEOUT)
        except (ConnectionResetError, BrokenPipeError):
            return b""


def refused_silently(port, src, host="127.0.0.1"):
    """Connect from src without sending: the server must close at once and
    send nothing (no busy line, no TLS handshake)."""
    with client(port, src, host) as s:
        try:
            return s.recv(4096) == b""
        except ConnectionResetError:
            return True


def have_ipv6():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_allow_admits_listed_and_refuses_others(serve):
    srv = serve("-H", "127.0.0.1", "-w", "1", "--allow", "127.0.0.2")
    assert echoed(srv.port, "127.0.0.2") == b"ping\n"
    assert refused_silently(srv.port, "127.0.0.3")
    m = srv.err.wait_for(r"^denied 127\.0\.0\.3:(\d+) at \[.*\]: address "
                         r"not allowed$", TIMEOUT)
    assert int(m.group(1)) > 0
    assert srv.stop() == 0
    assert "denied 127.0.0.2" not in srv.err.text()
    assert "connection from 127.0.0.3" not in srv.err.text()


def test_without_a_list_both_are_served(serve):
    """The negative twin: the same clients, no list, both served."""
    srv = serve("-H", "127.0.0.1", "-w", "1")
    assert echoed(srv.port, "127.0.0.2") == b"ping\n"
    assert echoed(srv.port, "127.0.0.3") == b"ping\n"
    assert srv.stop() == 0
    assert "denied" not in srv.err.text()


def test_deny_wins_over_allow_and_is_counted(serve):
    srv = serve("-H", "127.0.0.1", "-w", "2", "--log-format", "json",
                "--allow", "127.0.0.0/8", "--deny", "127.0.0.3/32")
    assert echoed(srv.port, "127.0.0.2") == b"ping\n"
    assert refused_silently(srv.port, "127.0.0.3")
    assert refused_silently(srv.port, "127.0.0.3")
    srv.err.wait_for(r'"event":"deny".*"peer":"127\.0\.0\.3:\d+",'
                     r'"reason":"address not allowed"', TIMEOUT)
    assert srv.stop() == 0
    recs = [json.loads(l) for l in srv.err.lines if l.startswith("{")]
    exit_rec = [r for r in recs if r.get("event") == "stats"
                and r["when"] == "exit"]
    assert len(exit_rec) == 1
    assert exit_rec[0]["denied"] == 2
    assert exit_rec[0]["accepted"] == 1
    assert exit_rec[0]["rejected"] == 0


def test_deny_only_lets_the_rest_in(serve):
    srv = serve("-H", "127.0.0.1", "-w", "1", "--deny", "127.0.0.3")
    assert echoed(srv.port, "127.0.0.2") == b"ping\n"
    assert echoed(srv.port, "127.0.0.1") == b"ping\n"
    assert refused_silently(srv.port, "127.0.0.3")


def test_tls_client_refused_before_the_handshake(serve):
    srv = serve("-H", "127.0.0.1", "-w", "1", "--tls", "--deny",
                "127.0.0.3")
    assert refused_silently(srv.port, "127.0.0.3")
    srv.err.wait_for(r"^denied 127\.0\.0\.3:\d+ ", TIMEOUT)
    assert srv.stop() == 0
    assert "handshake" not in srv.err.text()


def test_rule_files_with_comments(serve, tmp_path):
    allow = tmp_path / "allow.txt"
    allow.write_text("# who may connect\n\n  127.0.0.0/24   # lab\n"
                     "::1/128\n")
    deny = tmp_path / "deny.txt"
    deny.write_text("127.0.0.3 # not this one\n")
    srv = serve("-H", "127.0.0.1", "-w", "1", "--allow-file", str(allow),
                "--deny-file", str(deny))
    assert echoed(srv.port, "127.0.0.2") == b"ping\n"
    assert refused_silently(srv.port, "127.0.0.3")
    srv.err.wait_for(r"^denied 127\.0\.0\.3:\d+ ", TIMEOUT)


def test_empty_allow_file_refuses_everyone(serve, tmp_path):
    allow = tmp_path / "allow.txt"
    allow.write_text("# nobody yet\n")
    srv = serve("-H", "127.0.0.1", "-w", "1", "--allow-file", str(allow))
    assert refused_silently(srv.port, "127.0.0.1")


@pytest.mark.skipif(not have_ipv6(), reason="no IPv6 loopback")
def test_ipv6_rules(serve):
    srv = serve("-H", "127.0.0.1", "-H", "::1", "-w", "1", "--allow",
                "::1/128", listeners=2)
    port = srv.port
    assert echoed(port, "::1", "::1") == b"ping\n"
    assert refused_silently(port, "127.0.0.1")
    srv.err.wait_for(r"^denied 127\.0\.0\.1:\d+ ", TIMEOUT)
    assert srv.stop() == 0
    srv = serve("-H", "127.0.0.1", "-H", "::1", "-w", "1", "--deny", "::1",
                listeners=2)
    assert refused_silently(srv.port, "::1", "::1")
    srv.err.wait_for(r"^denied \[::1\]:\d+ ", TIMEOUT)
    assert echoed(srv.port, "127.0.0.1") == b"ping\n"


def usage(msg):
    return "tcpkit: serve: %s (see 'tcpkit help serve')\n" % msg


@pytest.mark.parametrize("opt,rule,why", [
    ("--allow", "10.0.0.0/33", "prefix longer than 32"),  # addr-ok: parse
    ("--deny", "::/129", "prefix longer than 128"),
    ("--allow", "localhost", "not an IP address"),
    ("--deny", "10.0.0.0/", "no prefix after '/'"),  # addr-ok: parse
    ("--allow", "fe80::1%lo", "a scope (%) is not allowed"),
])
def test_bad_rule_is_a_usage_error(opt, rule, why):
    p = run(["serve", "-p", "0", opt, rule])
    assert p.returncode == 64, p.stderr
    assert p.stderr.decode() == usage("%s '%s': %s" % (opt, rule, why))


def test_bad_line_names_file_and_line(tmp_path):
    f = tmp_path / "deny.txt"
    f.write_text("# ok\n127.0.0.3\n\n10.0.0.0/33\n")  # addr-ok: parse
    p = run(["serve", "-p", "0", "--deny-file", str(f)])
    assert p.returncode == 64, p.stderr
    assert p.stderr.decode() == usage(
        "--deny-file %s:4: '10.0.0.0/33': prefix longer than 32" % f)  # addr-ok


def test_missing_file_is_exit_66(tmp_path):
    f = tmp_path / "nope.txt"
    p = run(["serve", "-p", "0", "--allow-file", str(f)])
    assert p.returncode == 66, p.stderr
    assert p.stderr.decode() == (
        "tcpkit: serve --allow-file %s: No such file or directory\n" % f)


def test_option_names_are_exact():
    p = run(["serve", "-p", "0", "--allo", "127.0.0.1"])
    assert p.returncode == 64
    assert p.stderr.decode() == usage("unknown option '--allo'")


@pytest.mark.skipif(not have_ipv6(), reason="no IPv6 loopback")
def test_ipv4_clients_of_a_dual_stack_listener_match_ipv4_rules(serve):
    """On "::" an IPv4 client arrives as ::ffff:127.0.0.x: the IPv4 rules
    still apply to it."""
    srv = serve("-H", "::", "-w", "1", "--allow", "127.0.0.2")
    assert echoed(srv.port, "127.0.0.2") == b"ping\n"
    assert refused_silently(srv.port, "127.0.0.3")
    srv.err.wait_for(r"^denied 127\.0\.0\.3:\d+ ", TIMEOUT)
