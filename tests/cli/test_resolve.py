"""Black-box tests of `tcpkit resolve`: names, literals, family filters,
unknown hosts, JSON, usage errors."""
import json
import socket

from tkhelpers import run

UNKNOWN = "no-such-host.invalid"


def lines(p):
    """stdout as a list of (host, family, address) triples."""
    out = []
    for line in p.stdout.decode().splitlines():
        fields = line.split()
        assert len(fields) == 3, line
        out.append(tuple(fields))
    return out


def system_addresses(host, family=socket.AF_UNSPEC):
    """What the system resolver says, in its order, without duplicates."""
    seen = []
    for fam, _, _, _, sa in socket.getaddrinfo(host, None, family,
                                               socket.SOCK_STREAM,
                                               socket.IPPROTO_TCP):
        entry = ("IPv4" if fam == socket.AF_INET else "IPv6", sa[0])
        if entry not in seen:
            seen.append(entry)
    return seen


def test_localhost():
    p = run(["resolve", "localhost"])
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    got = lines(p)
    assert ("localhost", "IPv4", "127.0.0.1") in got
    assert [(f, a) for _, f, a in got] == system_addresses("localhost")


def test_ipv4_literal():
    p = run(["resolve", "127.0.0.1"])
    assert p.returncode == 0, p.stderr
    assert lines(p) == [("127.0.0.1", "IPv4", "127.0.0.1")]


def test_ipv6_literal():
    p = run(["resolve", "::1"])
    assert p.returncode == 0, p.stderr
    assert lines(p) == [("::1", "IPv6", "::1")]


def test_ipv6_literal_with_zone():
    p = run(["resolve", "fe80::1%lo"])
    assert p.returncode == 0, p.stderr
    assert lines(p) == [("fe80::1%lo", "IPv6", "fe80::1%lo")]


def test_several_hosts_in_order():
    p = run(["resolve", "127.0.0.1", "::1", "localhost", "127.0.0.2"])
    assert p.returncode == 0, p.stderr
    got = lines(p)
    assert [h for h, _, _ in got][:2] == ["127.0.0.1", "::1"]
    assert got[-1] == ("127.0.0.2", "IPv4", "127.0.0.2")
    assert ("localhost", "IPv4", "127.0.0.1") in got


def test_columns_aligned():
    p = run(["resolve", "127.0.0.1", "::1"])
    out = p.stdout.decode().splitlines()
    assert out == ["127.0.0.1  IPv4  127.0.0.1", "::1        IPv6  ::1"]


def test_ipv4_only():
    for opt in ("-4", "--ipv4"):
        p = run(["resolve", opt, "localhost", "127.0.0.1"])
        assert p.returncode == 0, p.stderr
        got = lines(p)
        assert got and all(f == "IPv4" for _, f, _ in got)


def test_ipv6_only():
    for opt in ("-6", "--ipv6"):
        p = run(["resolve", opt, "::1"])
        assert p.returncode == 0, p.stderr
        assert lines(p) == [("::1", "IPv6", "::1")]


def test_ipv6_only_on_ipv4_literal():
    p = run(["resolve", "-6", "127.0.0.1"])
    assert p.returncode == 68
    assert p.stdout == b""
    assert p.stderr.decode() == ("tcpkit: resolve 127.0.0.1: host has no "
                                 "address of the requested family\n")


def test_ipv4_only_on_ipv6_literal():
    p = run(["resolve", "-4", "::1"])
    assert p.returncode == 68
    assert p.stderr.decode() == ("tcpkit: resolve ::1: host has no "
                                 "address of the requested family\n")


def test_ipv6_only_localhost_matches_system():
    """localhost has ::1 on some systems and not on others: tcpkit agrees
    with the system resolver either way."""
    try:
        want = system_addresses("localhost", socket.AF_INET6)
    except socket.gaierror:
        want = []
    p = run(["resolve", "-6", "localhost"])
    if want:
        assert p.returncode == 0, p.stderr
        assert [(f, a) for _, f, a in lines(p)] == want
    else:
        assert p.returncode == 68
        assert p.stderr.decode() == (
            "tcpkit: resolve localhost: host has no address of the "
            "requested family\n")


def test_unknown_host():
    p = run(["resolve", UNKNOWN])
    assert p.returncode == 68
    assert p.stdout == b""
    assert p.stderr.decode() == "tcpkit: resolve %s: host not found\n" % UNKNOWN


def test_unknown_host_with_family():
    p = run(["resolve", "-4", UNKNOWN])
    assert p.returncode == 68
    assert p.stderr.decode() == "tcpkit: resolve %s: host not found\n" % UNKNOWN


def test_good_and_bad_hosts_keep_going():
    p = run(["resolve", "127.0.0.1", UNKNOWN, "::1", "also-unknown.invalid"])
    assert p.returncode == 68
    assert lines(p) == [("127.0.0.1", "IPv4", "127.0.0.1"),
                        ("::1", "IPv6", "::1")]
    assert p.stderr.decode().splitlines() == [
        "tcpkit: resolve %s: host not found" % UNKNOWN,
        "tcpkit: resolve also-unknown.invalid: host not found",
    ]


def test_first_failure_decides_exit_code():
    p = run(["resolve", "-6", "127.0.0.1", UNKNOWN])
    assert p.returncode == 68
    assert len(p.stderr.decode().splitlines()) == 2


def test_json():
    p = run(["resolve", "--json", "localhost", "::1"])
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert [h["host"] for h in doc["hosts"]] == ["localhost", "::1"]
    local = doc["hosts"][0]
    assert "error" not in local
    assert {"family": "ipv4", "address": "127.0.0.1"} in local["addresses"]
    assert [(a["family"], a["address"]) for a in local["addresses"]] == [
        (f.lower(), a) for f, a in system_addresses("localhost")]
    assert doc["hosts"][1] == {"host": "::1", "addresses": [
        {"family": "ipv6", "address": "::1"}]}
    assert p.stdout.count(b"\n") == 1, "one document on one line"


def test_json_matches_text():
    hosts = ["localhost", "127.0.0.1", "::1"]
    text = run(["resolve"] + hosts)
    doc = json.loads(run(["resolve", "--json"] + hosts).stdout)
    names = {"ipv4": "IPv4", "ipv6": "IPv6"}
    from_json = [(h["host"], names[a["family"]], a["address"])
                 for h in doc["hosts"] for a in h["addresses"]]
    assert from_json == lines(text)


def test_json_with_failures():
    p = run(["resolve", "--json", UNKNOWN, "127.0.0.1", "-6"])
    assert p.returncode == 68
    doc = json.loads(p.stdout)
    assert doc == {"hosts": [
        {"host": UNKNOWN, "error": "host not found"},
        {"host": "127.0.0.1",
         "error": "host has no address of the requested family"},
    ]}
    assert p.stderr.decode().splitlines() == [
        "tcpkit: resolve %s: host not found" % UNKNOWN,
        "tcpkit: resolve 127.0.0.1: host has no address of the requested "
        "family",
    ]


def test_json_escapes_host():
    host = 'a"b\\c.invalid'
    p = run(["resolve", "--json", host])
    assert p.returncode == 68
    doc = json.loads(p.stdout)
    assert doc["hosts"][0]["host"] == host


def test_help():
    for args in (["resolve", "--help"], ["resolve", "-h"], ["help", "resolve"]):
        p = run(args)
        assert p.returncode == 0
        out = p.stdout.decode()
        assert out.startswith("usage: tcpkit resolve [-4 | -6] [--json] HOST...")
        for word in ("--ipv4", "--ipv6", "--json", "--help", "68", "64",
                     "Examples"):
            assert word in out, word
        assert p.stderr == b""


def usage_error(args, message):
    p = run(["resolve"] + args)
    assert p.returncode == 64
    assert p.stdout == b""
    assert p.stderr.decode() == (
        "tcpkit: resolve: %s (see 'tcpkit help resolve')\n" % message)


def test_no_host():
    usage_error([], "missing HOST")
    usage_error(["--json", "-4"], "missing HOST")


def test_empty_host():
    usage_error(["localhost", ""], "missing HOST (the host name is empty)")


def test_ipv4_and_ipv6_together():
    usage_error(["-4", "-6", "localhost"], "-4 and -6 cannot be used together")
    usage_error(["-46", "localhost"], "-4 and -6 cannot be used together")
    usage_error(["--ipv6", "--ipv4"], "-4 and -6 cannot be used together")


def test_unknown_option():
    usage_error(["--frobnicate", "localhost"], "unknown option '--frobnicate'")
    usage_error(["-x", "localhost"], "unknown option '-x'")
    usage_error(["--json=yes", "localhost"], "option '--json' takes no value")
    usage_error(["--frob=1", "localhost"], "unknown option '--frob'")


def test_usage_errors_come_before_lookups():
    """A bad option anywhere stops everything: no host is looked up."""
    p = run(["resolve", "127.0.0.1", "-4", "-6"])
    assert p.returncode == 64
    assert p.stdout == b""


def test_double_dash_ends_options():
    p = run(["resolve", "--", "-4"])
    assert p.returncode == 68
    assert p.stderr.decode() == "tcpkit: resolve -4: host not found\n"
