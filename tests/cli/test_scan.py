"""tcpkit scan: ports reported open, closed and filtered against loopback
listeners the tests make (closed: a port held bound but not listening;
filtered: a listener whose accept queue is full), banners, --open, --json,
ranges and CIDR blocks, usage errors, and the same open set as nmap -sT in a
network namespace of its own."""
import json
import os
import pty
import select
import shutil
import socket
import subprocess
import sys
import threading

import pytest

from conftest import TCPKIT, check_sanitizer, need, run

LINE_FIELDS = ("address", "port", "state", "service")


def listener(host="127.0.0.1", family=socket.AF_INET):
    s = socket.socket(family)
    s.bind((host, 0))
    s.listen(16)
    return s


def refusing(host="127.0.0.1", port=0):
    """A port held for the test, bound but not listening: connects to it
    are refused, and nobody else can take it meanwhile."""
    s = socket.socket()
    s.bind((host, port))
    return s


def hold_range(n, host="127.0.0.1"):
    """n consecutive ports of host, each held by a socket bound but not
    listening (refused, and no other program can listen there): a range a
    scan may probe without touching anyone else's listener.  Below the
    ephemeral range."""
    base = 20000 + (os.getpid() % 97) * 97
    while base + n < 32000:
        held = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                held.append(s)
                s.bind((host, port))
            return held
        except OSError:
            for s in held:
                s.close()
            base += n
    pytest.fail("no %d free consecutive ports on %s" % (n, host))


def parse_lines(stdout):
    """{port: (address, state, service, banner or None)} from text output."""
    out = {}
    for line in stdout.decode().splitlines():
        f = line.split(None, 4)
        assert len(f) >= 4, line
        port, proto = f[1].split("/")
        assert proto == "tcp", line
        out[(f[0], int(port))] = (f[2], f[3], f[4] if len(f) > 4 else None)
    return out


def test_open_closed_and_summary():
    lst, ref = listener(), refusing()
    po, pc = lst.getsockname()[1], ref.getsockname()[1]
    try:
        p = run(["scan", "127.0.0.1", "%d,%d" % (po, pc)])
    finally:
        lst.close()
        ref.close()
    assert p.returncode == 0, p.stderr
    res = parse_lines(p.stdout)
    assert res[("127.0.0.1", po)][0] == "open"
    assert res[("127.0.0.1", pc)][0] == "closed"
    assert len(res) == 2
    err = p.stderr.decode()
    assert "scanned 1 host, 2 ports in" in err
    assert "1 open, 1 closed, 0 filtered" in err
    # Piped: no progress line (no carriage return) on stderr.
    assert "\r" not in err


def test_everything_closed_still_exits_0():
    ref = refusing()
    try:
        p = run(["scan", "127.0.0.1", str(ref.getsockname()[1])])
    finally:
        ref.close()
    assert p.returncode == 0
    assert b" closed " in p.stdout


def named_refusing_port():
    """A refusing port that /etc/services names, for the service column."""
    for port in (5432, 6379, 8080, 3306, 5900, 11211, 27017, 9418):
        try:
            name = socket.getservbyport(port, "tcp")
        except OSError:
            continue
        try:
            return refusing(port=port), name
        except OSError:
            continue
    pytest.skip("no port named in /etc/services could be bound")


def test_service_name_from_etc_services():
    ref, name = named_refusing_port()
    port = ref.getsockname()[1]
    try:
        p = run(["scan", "127.0.0.1", str(port)])
        pj = run(["scan", "--json", "127.0.0.1", str(port)])
    finally:
        ref.close()
    assert parse_lines(p.stdout)[("127.0.0.1", port)][:2] == ("closed",
                                                              name)
    doc = json.loads(pj.stdout)
    assert doc["results"][0]["service"] == name


def test_filtered_port_times_out(blackhole):
    p = run(["scan", "-w", "300ms", "--retries", "1", "--json",
             "127.0.0.1", str(blackhole)])
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    (r,) = doc["results"]
    assert r["state"] == "filtered", r
    assert r["tries"] == 2
    assert r["error"] == "connect timed out"
    assert doc["summary"]["filtered"] == 1


def greeter(greeting):
    """A listener that sends greeting to each client, then waits for it to
    go; served by a thread until the test closes the socket."""
    lst = listener()

    def loop():
        while True:
            try:
                c, _ = lst.accept()
            except OSError:
                return
            try:
                c.sendall(greeting)
                c.settimeout(5)
                c.recv(1)
            except OSError:
                pass
            c.close()

    threading.Thread(target=loop, daemon=True).start()
    return lst


def test_banner_is_read_and_printed_safely():
    g = greeter(b"SSH-2.0-tk\x01\"x\"\r\nsecond line\r\n")
    port = g.getsockname()[1]
    try:
        p = run(["scan", "--banner", "127.0.0.1", str(port)])
        pj = run(["scan", "--banner", "--json", "127.0.0.1", str(port)])
    finally:
        g.close()
    assert p.returncode == 0, p.stderr
    state, _, banner = parse_lines(p.stdout)[("127.0.0.1", port)]
    assert state == "open"
    # Quoted, control bytes and quotes as \xHH, the first line only.
    assert banner == '"SSH-2.0-tk\\x01\\x22x\\x22"'
    r = json.loads(pj.stdout)["results"][0]
    assert r["banner"] == 'SSH-2.0-tk\x01"x"'


def test_banner_bounded_in_bytes():
    g = greeter(b"A" * 5000)
    port = g.getsockname()[1]
    try:
        p = run(["scan", "--banner", "--json", "127.0.0.1", str(port)])
    finally:
        g.close()
    assert json.loads(p.stdout)["results"][0]["banner"] == "A" * 256


def test_open_shows_only_open_ports_over_a_range():
    held = hold_range(10)
    held[5].listen(16)
    lo, po = held[0].getsockname()[1], held[5].getsockname()[1]
    try:
        p = run(["scan", "--open", "127.0.0.1", "%d-%d" % (lo, lo + 9)])
        pall = run(["scan", "127.0.0.1", "%d-%d" % (lo, lo + 9)])
    finally:
        for s in held:
            s.close()
    res = parse_lines(p.stdout)
    assert list(res) == [("127.0.0.1", po)]
    assert res[("127.0.0.1", po)][0] == "open"
    # Without --open: every port of the range, once.
    assert sorted(port for _, port in parse_lines(pall.stdout)) == \
        list(range(lo, lo + 10))
    assert "scanned 1 host, 10 ports" in pall.stderr.decode()


def test_json_document():
    lst, ref = listener(), refusing()
    po, pc = lst.getsockname()[1], ref.getsockname()[1]
    try:
        p = run(["scan", "--json", "127.0.0.1", "%d,%d" % (po, pc)])
    finally:
        lst.close()
        ref.close()
    assert p.returncode == 0
    doc = json.loads(p.stdout)
    by_port = {r["port"]: r for r in doc["results"]}
    assert by_port[po]["state"] == "open"
    assert by_port[po]["host"] == "127.0.0.1"
    assert by_port[po]["address"] == "127.0.0.1"
    assert "error" not in by_port[po]
    assert by_port[pc]["state"] == "closed"
    assert by_port[pc]["error"] == "Connection refused"
    s = doc["summary"]
    assert (s["hosts"], s["ports"], s["open"], s["closed"], s["filtered"]) \
        == (1, 2, 1, 1, 0)
    # The summary is the document's; stderr stays quiet.
    assert p.stderr == b""


def test_cidr_block_every_address():
    lst = listener("127.0.0.1")
    port = lst.getsockname()[1]
    try:
        p = run(["scan", "--json", "-w", "500ms", "--retries", "0",
                 "127.0.0.0/30", str(port)])
    finally:
        lst.close()
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    got = {r["address"]: r["state"] for r in doc["results"]}
    assert sorted(got) == ["127.0.0.0", "127.0.0.1", "127.0.0.2",
                           "127.0.0.3"]
    assert got["127.0.0.1"] == "open"
    assert got["127.0.0.2"] != "open" and got["127.0.0.3"] != "open"
    assert all(r["host"] == "127.0.0.0/30" for r in doc["results"])
    assert doc["summary"]["hosts"] == 4


def test_ports_option_and_several_hosts():
    lst = listener("127.0.0.1")
    port = lst.getsockname()[1]
    try:
        p = run(["scan", "--open", "-p", str(port), "127.0.0.1",
                 "localhost"])
    finally:
        lst.close()
    assert p.returncode == 0, p.stderr
    res = parse_lines(p.stdout)
    assert ("127.0.0.1", port) in res
    assert "scanned 2 hosts, 1 port in" in p.stderr.decode()


def test_ipv6_loopback():
    try:
        lst = listener("::1", socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback")
    port = lst.getsockname()[1]
    try:
        p = run(["scan", "::1", str(port)])
    finally:
        lst.close()
    assert parse_lines(p.stdout)[("::1", port)][0] == "open"


@pytest.mark.parametrize("args,why", [
    (["127.0.0.1", "22,80000"], "port '80000' out of range (1-65535)"),
    (["127.0.0.1", "90-80"], "range '90-80' runs backwards"),
    (["127.0.0.1", "22,,80"], "empty item in port list '22,,80'"),
    (["127.0.0.1", "ssh"], "'ssh' is not a port or a range"),
    (["127.0.0.0/33", "80"], "prefix '/33' out of range (0-32)"),
    (["localhost/24", "80"], "'localhost': a CIDR block needs an IP address"),
    # addr-ok: refused at parsing, nothing is sent
    (["10.0.0.0/8", "80"],  # addr-ok
     "block '10.0.0.0/8' has 16777216 addresses, more than 65536"),  # addr-ok
    (["2001:db8::/64", "80"], "has 2^64 addresses, more than 65536"),
    (["127.0.0.1"], "missing PORTS (or HOST)"),
    ([], "missing HOST and PORTS"),
    (["-p", "80"], "missing HOST"),
    (["-c", "0", "127.0.0.1", "80"], "-c must be between 1 and 10000"),
    (["-c", "10001", "127.0.0.1", "80"], "-c must be between 1 and 10000"),
    (["--retries", "11", "127.0.0.1", "80"], "--retries must be between"),
    (["--rate", "0", "127.0.0.1", "80"], "--rate must be between"),
    (["-w", "0", "127.0.0.1", "80"], "--connect-timeout"),
])
def test_usage_errors(args, why):
    # Nothing is scanned: a refused block never sends a packet.
    p = run(["scan"] + args)
    assert p.returncode == 64, (p.returncode, p.stderr)
    err = p.stderr.decode()
    assert err.startswith("tcpkit: scan: "), err
    assert why in err, err
    assert len(err.splitlines()) == 1
    assert p.stdout == b""


def test_unknown_host_scans_nothing():
    lst = listener()
    port = lst.getsockname()[1]
    lst.settimeout(0)
    try:
        p = run(["scan", "127.0.0.1", "no-such-host.invalid", str(port)])
        # The known host was not probed either: nothing to accept.
        with pytest.raises(BlockingIOError):
            lst.accept()
    finally:
        lst.close()
    assert p.returncode == 68, p.stderr
    assert p.stderr.decode() == \
        "tcpkit: scan no-such-host.invalid: host not found\n"
    assert p.stdout == b""


def test_progress_line_on_a_terminal_only():
    held = hold_range(30)
    held[0].listen(16)
    port = held[0].getsockname()[1]
    master, slave = pty.openpty()
    try:
        # Enough ports for a few ticks (every 250 ms) at -c 1 and --rate.
        proc = subprocess.Popen(
            [TCPKIT, "scan", "-c", "1", "--rate", "40", "127.0.0.1",
             "%d-%d" % (port, port + 29)],
            stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        err = b""
        while True:
            r, _, _ = select.select([master], [], [], 20)
            assert r, "no output from scan on the terminal"
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            err += chunk
        out = proc.stdout.read()
        assert proc.wait(20) == 0
    finally:
        os.close(master)
        for s in held:
            s.close()
    check_sanitizer(err)
    text = err.decode()
    assert "ports, " in text and "/s" in text, text
    assert "\r\x1b[K" in text
    # The summary comes after the progress line was cleared.
    assert text.rstrip().splitlines()[-1].split("\x1b[K")[-1].startswith(
        "scanned 1 host")
    assert b"open" in out


NS_SCRIPT = r"""
import json, socket, subprocess, sys, time
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
tcpkit = sys.argv[1]
held = []
for _ in range(30):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    held.append(s)
ours = sorted(s.getsockname()[1] for s in held)
t0 = time.monotonic()
tk = subprocess.run([tcpkit, "scan", "--open", "-c", "500", "--json",
                     "127.0.0.1", "-"], capture_output=True, timeout=240)
t1 = time.monotonic()
nm = subprocess.run(["nmap", "-sT", "-p-", "-T5", "-Pn", "-n", "-oG", "-",
                     "127.0.0.1"], capture_output=True, timeout=240)
t2 = time.monotonic()
print(json.dumps({"ours": ours, "tk_rc": tk.returncode,
                  "tk": tk.stdout.decode(), "tk_err": tk.stderr.decode(),
                  "nmap": nm.stdout.decode(), "tk_s": t1 - t0,
                  "nmap_s": t2 - t1}))
"""


def in_own_netns(args, timeout):
    """Run args in a new network namespace (only its own loopback, so no
    other program's listeners), or skip if one cannot be made."""
    need("ip")
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed (Debian package util-linux)")
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("cannot make a network namespace here: %s" %
                    probe.stderr.decode().strip())
    return subprocess.run(["unshare", "-rn"] + args, capture_output=True,
                          timeout=timeout)


def test_full_scan_same_open_set_as_nmap():
    need("nmap")
    p = in_own_netns([sys.executable, "-c", NS_SCRIPT, TCPKIT], 600)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    check_sanitizer(res["tk_err"])
    assert res["tk_rc"] == 0, res["tk_err"]
    doc = json.loads(res["tk"])
    tk_open = sorted(r["port"] for r in doc["results"])
    nm_open = sorted(int(x.split("/")[0]) for x in
                     res["nmap"].split("Ports: ")[1].split("\t")[0]
                     .split(", ") if "/open/" in x)
    assert tk_open == res["ours"]
    assert nm_open == res["ours"]
    s = doc["summary"]
    assert s["ports"] == 65535 and s["open"] == 30
    assert s["closed"] == 65535 - 30 and s["filtered"] == 0


def test_stdout_write_failure_is_reported():
    # Nothing is lost in silence: a full disk is an error, exit 1.
    ref = refusing()
    try:
        with open("/dev/full", "wb") as full:
            p = subprocess.run([TCPKIT, "scan", "127.0.0.1",
                                str(ref.getsockname()[1])],
                               stdout=full, stderr=subprocess.PIPE,
                               timeout=20)
    finally:
        ref.close()
    check_sanitizer(p.stderr)
    assert p.returncode == 1
    assert p.stderr.decode() == \
        "tcpkit: scan stdout: No space left on device\n"
