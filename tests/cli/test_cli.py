"""The command line across every command: options matched exactly, a clean
exit on SIGINT/SIGTERM however the signal comes, and the same words and
exit codes for the same mistakes everywhere."""
import json
import os
import re
import signal
import socket
import subprocess
import threading

import pytest

from tkhelpers import (LISTEN_RE, TCPKIT, LineReader, check_sanitizer, free_port,
                      run)

# --- options are matched exactly ---------------------------------------------

# An unambiguous prefix of a real long option, per command: getopt_long()
# would take each one for the full option.
ABBREVIATIONS = [
    (["serve", "basic", "--allow-rem", "-p", "0"], "--allow-rem",
     "--allow-remote-shutdown"),
    (["serve", "--work", "2", "-p", "0"], "--work", "--workers"),
    (["serve", "--log-form=json", "-p", "0"], "--log-form", "--log-format"),
    (["connect", "--verb", "127.0.0.1", "9"], "--verb", "--verbose"),
    (["send", "--connect-t", "1", "127.0.0.1", "9"], "--connect-t",
     "--connect-timeout"),
    (["get", "--incl", "http://127.0.0.1:9/"], "--incl", "--include"),
    (["bench", "--dur", "1", "127.0.0.1", "9"], "--dur", "--duration"),
    (["bench", "--insec", "--tls", "127.0.0.1", "9"], "--insec",
     "--insecure"),
    (["resolve", "--js", "localhost"], "--js", "--json"),
    (["interfaces", "--js"], "--js", "--json"),
]


@pytest.mark.parametrize("args,typed,full", ABBREVIATIONS,
                         ids=[" ".join(a[0][:2]) for a in ABBREVIATIONS])
def test_abbreviated_option_is_refused(args, typed, full):
    # A server that took the abbreviation would run until the timeout.
    p = run(args, timeout=10)
    err = p.stderr.decode()
    assert p.returncode == 64, err
    assert p.stdout == b""
    assert err.count("\n") == 1, err
    assert err.startswith("tcpkit: %s: unknown option '%s'" % (args[0], typed))
    assert "'%s' in full" % full in err


def test_full_option_name_still_works():
    p = run(["resolve", "--json", "localhost"])
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(b"{")


def test_option_value_that_looks_like_an_option_is_a_value():
    # "--message --json": the value is "--json", not an option to check.
    p = run(["bench", "rate", "--message", "--jso", "127.0.0.1", "0"])
    assert b"unknown option" not in p.stderr


# --- SIGINT/SIGTERM: exit 0 every time ---------------------------------------

def read_until(proc, pattern, head):
    """Read proc's stderr lines onto head until one matches pattern."""
    while not re.search(pattern, head.decode(errors="replace"), re.M):
        line = proc.stderr.readline()
        assert line, "no line matching %r: %r" % (pattern, head)
        head += line
    return head


def signal_when_listening(argv, sig, times, late=False):
    """Start argv, send sig times over as soon as "listening on" is read
    (before the server is idle in its loop: the race is widest there), or
    with late, once more after the "stopped" line, while tcpkit exits;
    return the exit code and stderr."""
    # LeakSanitizer's exit-time check stops the process with ptrace; a
    # signal landing in it (the point of these tests) can hang it for good
    # (about 1 run in 150 here, never without the sanitizer).  These tests
    # are about exit codes; leaks are checked everywhere else.
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                           ":detect_leaks=0").lstrip(":")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    # readline() has no deadline of its own: a hung server is killed.
    guard = threading.Timer(15, proc.kill)
    guard.start()
    try:
        head = read_until(proc, LISTEN_RE.pattern, b"")
        for _ in range(times):
            os.kill(proc.pid, sig)
        if late:
            # Not reaped before wait(): the pid is still ours.
            head = read_until(proc, r"^stopped \(", head)
            os.kill(proc.pid, sig)
        _, rest = proc.communicate(timeout=15)
    finally:
        guard.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = (head + rest).decode(errors="replace")
    check_sanitizer(err)
    return proc.returncode, err


def test_sigint_under_timeout_exits_0_every_time():
    # timeout(1) passes SIGINT on to its child and then to its process
    # group, the child included: two signals at once.  timeout exits with
    # its child's status (or dies of the child's signal: rc -2).
    codes = []
    for _ in range(40):
        # timeout exits with its child's status, or dies of its signal.
        rc, _ = signal_when_listening(
            ["timeout", "20", TCPKIT, "serve", "-p", "0"], signal.SIGINT, 1)
        codes.append(rc)
    assert codes == [0] * 40


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM],
                         ids=["SIGINT", "SIGTERM"])
def test_two_signals_at_once_exit_0(sig):
    codes = []
    for _ in range(20):
        rc, err = signal_when_listening([TCPKIT, "serve", "-p", "0"], sig, 2)
        codes.append(rc)
        if rc == 0:
            assert "stopped (%s)" % sig.name in err
    assert codes == [0] * 20


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM],
                         ids=["SIGINT", "SIGTERM"])
def test_signal_while_exiting_is_harmless(sig):
    # timeout(1)'s second signal may come after the first has stopped the
    # server, while it frees its loop: it must not turn exit 0 into 130.
    for _ in range(10):
        rc, err = signal_when_listening([TCPKIT, "serve", "-p", "0"], sig, 1,
                                        late=True)
        assert rc == 0, err


# --- the same words and exit codes for the same mistakes -----------------------

def usage(cmd, msg):
    return "tcpkit: %s: %s (see 'tcpkit help %s')\n" % (cmd, msg, cmd)


LONG_HOST = "a" * 300

# The same bad target given to every client command: (argv, stderr).
BAD_TARGETS = {
    "port 0": [
        (["connect", "127.0.0.1", "0"],
         usage("connect", "port 0 cannot be connected to (1-65535)")),
        (["send", "127.0.0.1:0", "x"],
         usage("send", "port 0 cannot be connected to (1-65535)")),
        (["bench", "127.0.0.1", "0"],
         usage("bench", "port 0 cannot be connected to (1-65535)")),
        (["bench", "127.0.0.1:0"],
         usage("bench", "port 0 cannot be connected to (1-65535)")),
        (["get", "http://127.0.0.1:0/"],
         "tcpkit: get http://127.0.0.1:0/: malformed URL: bad port '0'\n"),
    ],
    "port out of range": [
        (["connect", "127.0.0.1", "70000"],
         usage("connect", "port 70000 is out of range (1-65535)")),  # port-ok
        (["send", "127.0.0.1:70000", "x"],
         usage("send", "port 70000 is out of range (1-65535)")),  # port-ok
        (["bench", "127.0.0.1", "70000"],
         usage("bench", "port 70000 is out of range (1-65535)")),  # port-ok
        (["bench", "127.0.0.1:70000"],
         usage("bench", "port 70000 is out of range (1-65535)")),  # port-ok
        (["get", "http://127.0.0.1:70000/"],
         "tcpkit: get http://127.0.0.1:70000/: malformed URL: port 70000 "  # port-ok
         "is out of range (1-65535)\n"),
        (["serve", "-p", "70000"],
         usage("serve", "-p/--port 70000 is out of range (0-65535)")),  # port-ok
    ],
    "empty host": [
        (["connect", "", "7"],
         usage("connect", "missing HOST (the host name is empty)")),
        (["send", ":7", "x"],
         usage("send", "missing HOST (the host name is empty)")),
        (["bench", "", "7"],
         usage("bench", "missing HOST (the host name is empty)")),
        (["bench", ":7"],
         usage("bench", "missing HOST (the host name is empty)")),
        (["resolve", ""],
         usage("resolve", "missing HOST (the host name is empty)")),
        (["get", "http://:7/"],
         "tcpkit: get http://:7/: malformed URL: no host\n"),
        (["serve", "-H", ""], usage("serve", "-H needs an address or name")),
    ],
    "host too long": [
        (["connect", LONG_HOST, "7"],
         usage("connect", "host name too long (300 characters, at most "
               "253)")),
        (["send", LONG_HOST + ":7", "x"],
         usage("send", "host name too long (300 characters, at most 253)")),
        (["bench", LONG_HOST, "7"],
         usage("bench", "host name too long (300 characters, at most 253)")),
        (["bench", LONG_HOST + ":7"],
         usage("bench", "host name too long (300 characters, at most 253)")),
        (["resolve", LONG_HOST],
         usage("resolve", "host name too long (300 characters, at most "
               "253)")),
        (["get", "http://%s/" % LONG_HOST], None),
        (["serve", "-H", LONG_HOST], None),
    ],
}
CASES = [(kind, argv, err) for kind, cases in BAD_TARGETS.items()
         for argv, err in cases]


@pytest.mark.parametrize("kind,argv,err", CASES,
                         ids=["%s: %s" % (c[0], c[1][0]) for c in CASES])
def test_bad_target_is_a_usage_error_everywhere(kind, argv, err):
    p = run(argv, input=b"", timeout=10)
    text = p.stderr.decode()
    assert p.returncode == 64, text
    assert p.stdout == b""
    assert text.count("\n") == 1, text
    if err is not None:
        assert text == err


def test_missing_file_is_exit_66_everywhere(tmp_path):
    gone = str(tmp_path / "gone.pem")
    for argv in (["bench", "--message-file", gone, "127.0.0.1", "7"],
                 ["bench", "--tls", "--cacert", gone, "127.0.0.1", "7"],
                 ["connect", "--tls", "--cacert", gone, "127.0.0.1", "7"],
                 ["send", "--tls", "--cacert", gone, "127.0.0.1", "7"],
                 ["get", "--cacert", gone, "https://127.0.0.1:7/"],
                 ["serve", "--tls", "--cert", gone, "-p", "0"],
                 ["serve", "--tls", "--cert", gone, "--key", gone, "-p", "0"]):
        p = run(argv, input=b"", timeout=10)
        assert p.returncode == 66, (argv, p.stderr)
        assert p.stderr.decode().endswith(
            "%s: No such file or directory\n" % gone), (argv, p.stderr)
    # The list of exit codes says so.
    assert "66  an input file is missing" in run(["help"]).stdout.decode()


def test_line_service_is_listed():
    overview = run(["help"]).stdout.decode()
    assert "run a server: echo, discard, welcome, basic, line" in overview
    p = run(["serve", "nope"])
    assert p.returncode == 64
    assert p.stderr.decode() == usage(
        "serve", "unknown service 'nope' (echo, discard, welcome, basic, "
        "line, broker, chat, socks5)")


@pytest.mark.parametrize("opt", ["--help", "-h"])
def test_version_help(opt):
    p = run(["version", opt])
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().startswith("usage: tcpkit version\n")
    assert run(["help", "version"]).stdout == p.stdout


def test_version_argument_is_named():
    p = run(["version", "x"])
    assert (p.returncode, p.stderr.decode()) == \
        (64, usage("version", "unexpected argument 'x'"))


@pytest.mark.parametrize("args", [["nonsense", "127.0.0.1:7"],
                                  ["nonsense", "127.0.0.1", "7"]])
def test_bench_unknown_mode(args):
    p = run(["bench"] + args)
    assert (p.returncode, p.stderr.decode()) == \
        (64, usage("bench", "unknown mode 'nonsense' (echo, bulk, rate, "
                   "greet, idle)"))


def test_one_connection_is_singular(serve):
    srv = serve("echo", "-q")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(b"x")
        assert s.recv(1) == b"x"
    assert srv.stop() == 0
    assert re.search(r"^stopped \(SIGTERM\): 1 connection served, ",
                     srv.err.text(), re.M), srv.err.text()


def bench_json_failure(argv):
    p = run(["bench", "--json", "-t", "1"] + argv, timeout=30)
    doc = json.loads(p.stdout)
    assert doc["exit_code"] == p.returncode
    assert p.stderr.decode().count("\n") == 1
    return p, doc


def test_bench_json_when_refused():
    port = free_port()
    p, doc = bench_json_failure(["127.0.0.1", str(port)])
    assert p.returncode == 69
    assert doc == {"mode": "echo", "target": "127.0.0.1:%d" % port,
                   "error": "Connection refused (no connection could be "
                   "established)", "exit_code": 69}


def test_bench_json_when_host_unknown():
    p, doc = bench_json_failure(["no-such-host.invalid", "7"])
    assert p.returncode == 68
    assert doc["error"] == "host not found"


def test_bench_json_when_output_cannot_be_written(tmp_path):
    path = str(tmp_path / "missing" / "s.csv")
    p, doc = bench_json_failure(["--csv", path, "127.0.0.1", "7"])
    assert p.returncode == 1
    assert doc["error"] == "No such file or directory"


# --- --log-format: every line on stderr ----------------------------------------

LOGFMT_PAIR = r'[A-Za-z_][A-Za-z0-9_]*=(?:"(?:[^"\\]|\\.)*"|[^\s"=]+)'
LOGFMT_LINE = re.compile(r"^%s(?: %s)*$" % (LOGFMT_PAIR, LOGFMT_PAIR))


def parse_record(fmt, line):
    """One stderr line as a dict; fails the test if it is not a record."""
    if fmt == "json":
        doc = json.loads(line)
        assert isinstance(doc, dict), line
        return doc
    assert LOGFMT_LINE.match(line), line
    return {k: v.strip('"') for k, v in
            re.findall(r'([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|[^\s"=]+)', line)}


@pytest.mark.parametrize("fmt", ["json", "logfmt"])
def test_log_format_covers_every_stderr_line(fmt):
    # TLS (the self-signed fingerprint line), one worker and one connection
    # at most (a rejection): the lines a server writes as it runs.
    argv = [TCPKIT, "serve", "line", "--tls", "-H", "127.0.0.1", "-p", "0",
            "-w", "1", "--max-conns", "1", "--log-format", fmt]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = LineReader(proc.stderr)
    try:
        m = err.wait_for(r"listening.*127\.0\.0\.1:(\d+)")
        port = int(m.group(1))
        held = socket.create_connection(("127.0.0.1", port), timeout=10)
        extra = socket.create_connection(("127.0.0.1", port), timeout=10)
        err.wait_for(r"reject")
        extra.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        held.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err.join()
    check_sanitizer(err.text())
    records = [parse_record(fmt, line) for line in err.lines]
    events = [r["event"] for r in records]
    for want in ("tls_self_signed", "listening", "hint", "reject", "close",
                 "stats", "stopped"):
        assert want in events, (want, err.lines)
    assert all("ts" in r for r in records)
    listening = [r for r in records if r["event"] == "listening"]
    assert listening[0]["addr"] == "127.0.0.1:%d" % port
    stopped = [r for r in records if r["event"] == "stopped"]
    assert stopped[0]["msg"].startswith("stopped (SIGTERM): 1 connection "
                                        "served")


@pytest.mark.parametrize("fmt", ["json", "logfmt"])
def test_log_format_covers_usage_errors(fmt):
    p = run(["serve", "--bogus", "--log-format", fmt])
    assert p.returncode == 64
    lines = p.stderr.decode().splitlines()
    assert len(lines) == 1
    rec = parse_record(fmt, lines[0])
    assert rec["event"] == "error"
    assert "unknown option '--bogus'" in rec["msg"]


@pytest.mark.parametrize("fmt", ["json", "logfmt"])
def test_log_format_covers_errors(fmt):
    # A port another program holds: the listen error is a record too.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        p = run(["serve", "--log-format", fmt, "-H", "127.0.0.1", "-p",
                 str(port)])
    assert p.returncode == 1
    lines = p.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    rec = parse_record(fmt, lines[0])
    assert rec["event"] == "error"
    assert rec["msg"].startswith("tcpkit: listen 127.0.0.1:%d: " % port)


# --- one meaning per option letter -----------------------------------------------

def listed_commands():
    """Every command of `tcpkit help` but help and version: a new command
    is checked without anyone remembering to add it here."""
    text = run(["help"]).stdout.decode()
    block = text.split("Commands:\n")[1].split("\n\n")[0]
    names = [line.split()[0] for line in block.splitlines()]
    return [n for n in names if n not in ("help", "version")]


COMMANDS = listed_commands()


def letter_table():
    """The overview's table: {letter: {long name: [commands]}}."""
    text = run(["help"]).stdout.decode()
    block = text.split("Option letters")[1].split("\n\n")[0]
    table, letter = {}, None
    for line in block.splitlines()[1:]:
        m = re.match(r"^  (-\w)?\s+(--[\w-]+)\s+(.*)$", line)
        if m is None:
            continue
        letter = m.group(1) or letter
        table.setdefault(letter, {})[m.group(2)] = m.group(3)
    return table


def test_every_option_letter_is_in_the_table():
    table = letter_table()
    assert table, "no option letter table in 'tcpkit help'"
    for cmd in COMMANDS:
        helptext = run(["help", cmd]).stdout.decode()
        pairs = re.findall(r"^\s+(-\w), (--[\w-]+)", helptext, re.M)
        assert pairs, cmd
        for letter, name in pairs:
            where = table.get(letter, {}).get(name)
            assert where is not None, (cmd, letter, name)
            assert cmd in where or where == "every command", \
                (cmd, letter, name, where)


def test_a_long_name_means_one_thing():
    # Each long name sits under one letter only.
    seen = {}
    for letter, names in letter_table().items():
        for name in names:
            assert seen.setdefault(name, letter) == letter, name


def test_get_takes_idle_timeout_like_connect(pyserver):
    # The same long name as in connect and send: no data for D, exit 75.
    def stall(conn, srv):
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        conn.recv(1)  # until the client gives up

    srv = pyserver(stall)
    p = run(["get", "--idle-timeout", "300ms",
             "http://127.0.0.1:%d/" % srv.port])
    assert p.returncode == 75, p.stderr
    assert p.stdout == b"abc"


@pytest.mark.parametrize("cmd", ["connect", "send"])
def test_ipv4_long_name_in_clients(pyserver, cmd):
    def greet(conn, srv):
        conn.sendall(b"hi\n")

    srv = pyserver(greet)
    p = run([cmd, "--ipv4", "127.0.0.1", str(srv.port)], input=b"")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"hi\n"
