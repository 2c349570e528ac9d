"""-o's durability on listen and get: synced (fsync) before the rename by
default, not with --no-sync; the file whole and the rename kept either way.
The system calls are watched with strace."""
import hashlib
import os
import socket
import subprocess

import pytest

from conftest import TCPKIT, check_sanitizer
from listenhelpers import Listen
from test_get import responder, url
from tkhelpers import LISTEN_RE, LineReader, need, run

TIMEOUT = 20
SYNC_CALLS = "fsync,fdatasync,sync_file_range,syncfs,sync,msync"
TRACED = SYNC_CALLS + ",rename,renameat,renameat2"


def blob(n):
    return os.urandom(n)


def strace_env():
    # LeakSanitizer stops the world with ptrace, which strace already holds.
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                           ":detect_leaks=0").lstrip(":")
    return env


def traced(log):
    """The system calls strace saw: (name, line) pairs."""
    calls = []
    for line in log.read_text().splitlines():
        name = line.split("(", 1)[0].split()[-1] if "(" in line else ""
        calls.append((name, line))
    return calls


def sync_calls(log):
    return [line for name, line in traced(log)
            if name in SYNC_CALLS.split(",")]


def renames(log, path):
    return [line for name, line in traced(log)
            if name.startswith("rename") and str(path) in line]


def strace(log):
    need("strace")
    return ["strace", "-f", "-qq", "-e", "trace=" + TRACED, "-o", str(log)]


def listen_traced(tmp_path, *args):
    """`tcpkit listen ARGS 127.0.0.1 0` under strace; (proc, port, err)."""
    log = tmp_path / "strace.log"
    p = subprocess.Popen(strace(log) + [TCPKIT, "listen"] + list(args) +
                         ["127.0.0.1", "0"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env=strace_env())
    err = LineReader(p.stderr)
    m = err.wait_for(LISTEN_RE.pattern)
    return p, int(m.group(2)), err, log


def send_and_close(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        s.settimeout(TIMEOUT)
        while s.recv(65536):
            pass


def files(directory):
    return sorted(n for n in os.listdir(directory) if n != "strace.log")


# --- listen -o ---------------------------------------------------------------

def test_listen_no_sync_file_whole(tmp_path):
    data = blob(8 << 20)
    out = tmp_path / "file"
    lp = Listen("--no-sync", "-o", str(out))
    try:
        send_and_close(lp.port, data)
        assert lp.wait() == 0
    finally:
        lp.kill()
    assert hashlib.sha256(out.read_bytes()).digest() == \
        hashlib.sha256(data).digest()
    assert files(tmp_path) == ["file"]  # the temporary file renamed


def test_listen_no_sync_cut_leaves_no_file(tmp_path):
    out = tmp_path / "file"
    lp = Listen("--no-sync", "-o", str(out))
    try:
        s = socket.create_connection(("127.0.0.1", lp.port), timeout=TIMEOUT)
        s.sendall(blob(1 << 20))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # a reset: the transfer is cut
        assert lp.wait() == 69
    finally:
        lp.kill()
    assert files(tmp_path) == []
    assert "not written" in lp.err.text()


@pytest.mark.parametrize("no_sync", [False, True])
def test_listen_syncs_before_rename_unless_no_sync(tmp_path, no_sync):
    out = tmp_path / "file"
    p, port, err, log = listen_traced(
        tmp_path, *(["--no-sync"] if no_sync else []), "-o", str(out))
    try:
        send_and_close(port, b"durable?\n" * 1000)
        assert p.wait(TIMEOUT) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err.join()
    check_sanitizer(err.text())
    assert out.read_bytes() == b"durable?\n" * 1000
    assert renames(log, out), log.read_text()
    syncs = sync_calls(log)
    if no_sync:
        assert syncs == [], syncs
    else:
        assert len(syncs) == 1 and syncs[0].split("(")[0].endswith("fsync"), \
            log.read_text()


def test_listen_no_sync_needs_output():
    p = run(["listen", "--no-sync", "0"])
    assert p.returncode == 64, p.stderr
    assert p.stderr.decode() == ("tcpkit: listen: --no-sync needs -o FILE "
                                 "(see 'tcpkit help listen')\n")


# --- get -o ------------------------------------------------------------------

def get_traced(tmp_path, *args):
    log = tmp_path / "strace.log"
    p = subprocess.run(strace(log) + [TCPKIT, "get"] + list(args),
                       capture_output=True, timeout=TIMEOUT,
                       env=strace_env())
    check_sanitizer(p.stderr)
    return p, log


@pytest.mark.parametrize("no_sync", [False, True])
def test_get_syncs_before_rename_unless_no_sync(pyserver, tmp_path, no_sync):
    body = blob(200000)
    srv = pyserver(responder(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"
                             % len(body) + body))
    out = tmp_path / "body"
    p, log = get_traced(tmp_path, *(["--no-sync"] if no_sync else []),
                        "-o", str(out), url(srv))
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    assert out.read_bytes() == body
    assert files(tmp_path) == ["body"]
    assert renames(log, out), log.read_text()
    syncs = sync_calls(log)
    if no_sync:
        assert syncs == [], syncs
    else:
        assert len(syncs) == 1, log.read_text()


def test_get_no_sync_needs_output():
    p = run(["get", "--no-sync", "http://127.0.0.1:1/"])
    assert p.returncode == 64, p.stderr
    assert p.stderr.decode() == ("tcpkit: get: --no-sync needs -o FILE "
                                 "(see 'tcpkit help get')\n")
