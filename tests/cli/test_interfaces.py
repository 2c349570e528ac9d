"""Black-box tests of `tcpkit interfaces`: text and JSON listings, checked
against each other and against iproute2's `ip -j addr`."""
import json
import re
import shutil
import subprocess

import pytest

from tkhelpers import run

HEADER_RE = re.compile(
    r"^(\S+)\s+(UP|DOWN|UP,NO-CARRIER)\s+mtu (\d+|\?)(?:\s+([0-9a-f:]{17}))?$")
ADDR_RE = re.compile(r"^    (inet6?) (\S+)/(\d+)$")


def parse_text(out):
    """The text listing as [(name, state, mtu, mac, [(fam, addr, prefix)])]."""
    ifaces = []
    for line in out.decode().splitlines():
        m = HEADER_RE.match(line)
        if m:
            ifaces.append((m.group(1), m.group(2), m.group(3),
                           m.group(4) or "", []))
            continue
        m = ADDR_RE.match(line)
        assert m and ifaces, "unexpected line %r" % line
        ifaces[-1][4].append((m.group(1), m.group(2), int(m.group(3))))
    return ifaces


def listing(*args):
    p = run(["interfaces"] + list(args))
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    return p


def ip_addr():
    """iproute2's view: {name: {index, mtu, up, mac, addrs}}."""
    if shutil.which("ip") is None:
        pytest.skip("iproute2 is not installed")
    out = subprocess.run(["ip", "-j", "addr"], capture_output=True,
                         check=True, timeout=20).stdout
    links = {}
    for link in json.loads(out):
        mac = link.get("address", "")
        if link.get("link_type") not in ("ether", "loopback") or \
                mac == "00:00:00:00:00:00":
            mac = ""
        links[link["ifname"]] = {
            "index": link["ifindex"],
            "mtu": link["mtu"],
            "up": "UP" in link["flags"],
            "loopback": "LOOPBACK" in link["flags"],
            "mac": mac,
            "addrs": sorted(
                ("ipv4" if a["family"] == "inet" else "ipv6", a["local"],
                 a["prefixlen"])
                for a in link.get("addr_info", [])
                if a["family"] in ("inet", "inet6")),
        }
    return links


def test_loopback_listed():
    ifaces = parse_text(listing().stdout)
    lo = [i for i in ifaces if i[0] == "lo"]
    assert len(lo) == 1
    name, state, mtu, mac, addrs = lo[0]
    assert state == "UP"
    assert mac == ""
    assert int(mtu) > 0
    assert ("inet", "127.0.0.1", 8) in addrs
    # ::1 is there unless IPv6 is off; the kernel says which.
    try:
        with open("/proc/net/if_inet6") as f:
            has_v6_lo = any(l.split()[0] == "0" * 31 + "1" for l in f)
    except FileNotFoundError:
        has_v6_lo = False
    assert (("inet6", "::1", 128) in addrs) == has_v6_lo


def test_loopback_lines_exact():
    out = listing().stdout.decode().splitlines()
    assert "    inet 127.0.0.1/8" in out
    header = [l for l in out if l.startswith("lo ")]
    assert len(header) == 1
    assert re.match(r"^lo\s+UP\s+mtu \d+$", header[0]), header[0]


def test_json_valid_and_like_text():
    doc = json.loads(listing("--json").stdout)
    text = parse_text(listing().stdout)
    assert [i["name"] for i in doc["interfaces"]] == [t[0] for t in text]
    for j, (name, state, mtu, mac, addrs) in zip(doc["interfaces"], text):
        assert set(j) == {"name", "index", "up", "running", "loopback",
                          "mtu", "mac", "addresses"}
        want_state = ("DOWN" if not j["up"] else
                      "UP" if j["running"] else "UP,NO-CARRIER")
        assert state == want_state, name
        assert mtu == (str(j["mtu"]) if j["mtu"] is not None else "?")
        assert mac == j["mac"]
        fam = {"ipv4": "inet", "ipv6": "inet6"}
        assert addrs == [(fam[a["family"]], a["address"], a["prefix"])
                         for a in j["addresses"]]
    lo = [i for i in doc["interfaces"] if i["name"] == "lo"][0]
    assert lo["loopback"] and lo["up"] and lo["running"]
    assert lo["mac"] == ""
    assert {"family": "ipv4", "address": "127.0.0.1", "prefix": 8} in \
        lo["addresses"]


def test_json_one_line():
    out = listing("--json").stdout
    assert out.count(b"\n") == 1 and out.endswith(b"}\n")


def test_index_order():
    doc = json.loads(listing("--json").stdout)
    indices = [i["index"] for i in doc["interfaces"]]
    assert indices == sorted(indices)
    assert len(set(indices)) == len(indices)


def test_matches_ip_addr():
    ip = ip_addr()
    doc = json.loads(listing("--json").stdout)
    ours = {i["name"]: i for i in doc["interfaces"]}
    assert set(ours) == set(ip)
    for name, want in ip.items():
        got = ours[name]
        assert got["index"] == want["index"], name
        assert got["mtu"] == want["mtu"], name
        assert got["up"] == want["up"], name
        assert got["loopback"] == want["loopback"], name
        assert got["mac"] == want["mac"], name
        assert sorted((a["family"], a["address"], a["prefix"])
                      for a in got["addresses"]) == want["addrs"], name


def test_ipv4_only():
    ip = ip_addr()
    for opt in ("-4", "--ipv4"):
        ifaces = parse_text(listing(opt).stdout)
        assert ifaces
        for name, _, _, _, addrs in ifaces:
            assert addrs, "%s listed without an IPv4 address" % name
            assert all(f == "inet" for f, _, _ in addrs)
        with_v4 = {n for n, l in ip.items()
                   if any(a[0] == "ipv4" for a in l["addrs"])}
        assert {i[0] for i in ifaces} == with_v4


def test_ipv6_only():
    ip = ip_addr()
    doc = json.loads(listing("-6", "--json").stdout)
    with_v6 = {n for n, l in ip.items()
               if any(a[0] == "ipv6" for a in l["addrs"])}
    assert {i["name"] for i in doc["interfaces"]} == with_v6
    for i in doc["interfaces"]:
        assert i["addresses"]
        assert all(a["family"] == "ipv6" for a in i["addresses"])
        assert sorted((a["family"], a["address"], a["prefix"])
                      for a in i["addresses"]) == \
            [a for a in ip[i["name"]]["addrs"] if a[0] == "ipv6"]


def test_link_local_without_zone():
    for i in json.loads(listing("--json").stdout)["interfaces"]:
        for a in i["addresses"]:
            assert "%" not in a["address"]


def test_help():
    for args in (["interfaces", "--help"], ["interfaces", "-h"],
                 ["help", "interfaces"]):
        p = run(args)
        assert p.returncode == 0
        out = p.stdout.decode()
        assert out.startswith("usage: tcpkit interfaces [-4 | -6] [--json]")
        for word in ("--ipv4", "--ipv6", "--json", "UP,NO-CARRIER", "DOWN",
                     "Examples", "64"):
            assert word in out, word


def usage_error(args, message):
    p = run(["interfaces"] + args)
    assert p.returncode == 64
    assert p.stdout == b""
    assert p.stderr.decode() == (
        "tcpkit: interfaces: %s (see 'tcpkit help interfaces')\n" % message)


def test_ipv4_and_ipv6_together():
    usage_error(["-4", "-6"], "-4 and -6 cannot be used together")
    usage_error(["--json", "--ipv6", "--ipv4"],
                "-4 and -6 cannot be used together")


def test_unexpected_argument():
    usage_error(["eth0"], "unexpected argument 'eth0'")


def test_unknown_option():
    usage_error(["--all"], "unknown option '--all'")
    usage_error(["-a"], "unknown option '-a'")
    usage_error(["--json=1"], "option '--json' takes no value")
    usage_error(["--ipv4=yes"], "option '--ipv4' takes no value")
