"""UNIX stream sockets: `tcpkit serve -H unix:PATH` (its file: mode,
stale and live files, removal), `connect`/`send unix:PATH` and
`tls://HOST:PORT`, interop with socat and nc -U, and the errors."""
import os
import pwd
import re
import socket
import stat
import subprocess
import tempfile
import threading

import pytest

from tkhelpers import TCPKIT, check_sanitizer, need, recv_all, run
from tlshelpers import FP_RE

TIMEOUT = 15


def usage(cmd, msg):
    return "tcpkit: %s: %s (see 'tcpkit help %s')\n" % (cmd, msg, cmd)


def unix_echo(path, data, abstract=False):
    """One client: send data, half-close, return everything read back."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(TIMEOUT)
        s.connect("\0" + path if abstract else path)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        return recv_all(s)


@pytest.fixture
def sock(tmp_path):
    return str(tmp_path / "echo.sock")


def test_connect_and_send_echo(serve, sock):
    srv = serve("-H", "unix:" + sock, "-w", "1")
    assert srv.addrs == [("unix:" + sock, None)]
    srv.err.wait_for("^try: %s connect unix:%s$" % (re.escape(TCPKIT),
                                                   re.escape(sock)))
    p = run(["connect", "unix:" + sock], input=b"hello\nunix\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"hello\nunix\n"
    p = run(["send", "unix:" + sock, "a message"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"a message"
    # The log names the (unnamed) UNIX client as such.
    srv.err.wait_for(r"^closed unix: at ")


def test_two_workers_fifty_connections(serve, sock):
    srv = serve("-H", "unix:" + sock, "-w", "2", "-q")
    results = {}

    def client(i):
        results[i] = unix_echo(sock, b"client %d\n" % i * 100)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert all(results.get(i) == b"client %d\n" % i * 100 for i in range(50))
    assert srv.stop() == 0
    assert "stopped (SIGTERM): 50 connections served" in srv.err.text()


def test_stale_file_replaced(serve, sock):
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(sock)
    dead.listen(1)
    dead.close()  # a server gone without removing its file
    assert stat.S_ISSOCK(os.stat(sock).st_mode)
    serve("-H", "unix:" + sock, "-w", "1")
    assert unix_echo(sock, b"replaced\n") == b"replaced\n"


def test_live_socket_refused(serve, sock):
    serve("-H", "unix:" + sock, "-w", "1")
    p = run(["serve", "-H", "unix:" + sock], timeout=TIMEOUT)
    assert p.returncode == 1
    assert p.stderr.decode() == (
        "tcpkit: listen unix:%s: in use: a server is listening on this "
        "socket\n" % sock)
    # The first server still has its file and still serves.
    assert unix_echo(sock, b"still here\n") == b"still here\n"


def test_regular_file_kept(sock):
    with open(sock, "w") as f:
        f.write("precious")
    p = run(["serve", "-H", "unix:" + sock], timeout=TIMEOUT)
    assert p.returncode == 1
    assert p.stderr.decode() == (
        "tcpkit: listen unix:%s: not a socket: the file is left alone; "
        "choose another path\n" % sock)
    with open(sock) as f:
        assert f.read() == "precious"


@pytest.mark.parametrize("mode", ["0600", "0660", "666"])
def test_mode(serve, sock, mode):
    serve("-H", "unix:" + sock, "-w", "1", "--mode", mode)
    st = os.stat(sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == int(mode, 8)
    assert unix_echo(sock, b"m\n") == b"m\n"


def test_owner_and_group(serve, sock):
    if os.geteuid() != 0:
        pytest.skip("chown to another user needs root")
    nobody = pwd.getpwnam("nobody")
    serve("-H", "unix:" + sock, "-w", "1", "--mode", "0660", "--owner",
          "nobody", "--group", str(nobody.pw_gid))
    st = os.stat(sock)
    assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid)
    assert stat.S_IMODE(st.st_mode) == 0o660


def test_owner_refused_without_root(tmp_path):
    """Giving the file away needs root: as root, the test runs tcpkit as
    nobody (setpriv) in a directory nobody may write to."""
    argv = [TCPKIT]
    path = str(tmp_path / "s.sock")
    if os.geteuid() == 0:
        need("setpriv")
        # tmp_path's parents are root's alone: a directory of our own.
        d = tempfile.mkdtemp(prefix="tk-unix-")
        os.chmod(d, 0o777)
        path = os.path.join(d, "s.sock")
        argv = ["setpriv", "--reuid=nobody", "--regid=nogroup",
                "--clear-groups", TCPKIT]
    try:
        p = subprocess.run(argv + ["serve", "-H", "unix:" + path, "--owner",
                                   "0"], capture_output=True,
                           timeout=TIMEOUT)
        check_sanitizer(p.stderr)
        assert p.returncode == 1, p.stderr
        assert p.stderr.decode() == (
            "tcpkit: listen unix:%s: --owner: Operation not permitted (an "
            "owner needs root; a group, one of yours)\n" % path)
        assert not os.path.exists(path)
    finally:
        if os.geteuid() == 0:
            os.rmdir(os.path.dirname(path))


def test_file_removed_on_sigterm(serve, sock):
    srv = serve("-H", "unix:" + sock, "-w", "2")
    assert os.path.exists(sock)
    assert srv.stop() == 0
    assert not os.path.exists(sock)


def test_newer_servers_file_not_removed(serve, sock):
    old = serve("-H", "unix:" + sock, "-w", "1")
    os.unlink(sock)
    new = serve("-H", "unix:" + sock, "-w", "1")
    ino = os.stat(sock).st_ino
    assert old.stop() == 0
    assert os.stat(sock).st_ino == ino
    assert unix_echo(sock, b"new\n") == b"new\n"
    assert new.stop() == 0
    assert not os.path.exists(sock)


def test_abstract_name(serve):
    name = "tcpkit-test-%d" % os.getpid()
    before = set(os.listdir("."))
    srv = serve("-H", "unix:@" + name, "-w", "1")
    assert srv.addrs == [("unix:@" + name, None)]
    assert unix_echo(name, b"abstract\n", abstract=True) == b"abstract\n"
    p = run(["send", "unix:@" + name, "hi"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"hi"
    assert srv.stop() == 0
    # No file anywhere it could have been made: the working directory.
    assert set(os.listdir(".")) == before


def test_tcp_and_unix_together(serve, sock):
    srv = serve("-H", "127.0.0.1", "-H", "unix:" + sock, "-p", "0", "-w",
                "1", listeners=2)
    port = [p for h, p in srv.addrs if p is not None][0]
    p = run(["send", "127.0.0.1", str(port), "tcp"])
    assert p.stdout == b"tcp", p.stderr
    assert unix_echo(sock, b"unix\n") == b"unix\n"


def test_socat_peer(serve, sock):
    need("socat")
    serve("-H", "unix:" + sock, "-w", "1")
    p = subprocess.run(["socat", "-t", "5", "-", "UNIX-CONNECT:" + sock],
                       input=b"via socat\n", capture_output=True,
                       timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"via socat\n"


def test_socat_server(tmp_path):
    """tcpkit connect to a socat UNIX-LISTEN server (the other way)."""
    need("socat")
    path = str(tmp_path / "socat.sock")
    srv = subprocess.Popen(["socat", "UNIX-LISTEN:" + path, "EXEC:cat"],
                           stderr=subprocess.PIPE)
    try:
        p = None
        for _ in range(200):  # bounded: socat creates the file at once
            if os.path.exists(path):
                p = run(["connect", "unix:" + path], input=b"to socat\n")
                break
            try:
                srv.wait(0.05)
            except subprocess.TimeoutExpired:
                pass
        assert p is not None and p.returncode == 0, p and p.stderr
        assert p.stdout == b"to socat\n"
    finally:
        srv.kill()
        srv.wait()


def test_nc_peer(serve, sock):
    need("nc")
    serve("-H", "unix:" + sock, "-w", "1")
    p = subprocess.run(["nc", "-N", "-U", sock], input=b"via nc\n",
                       capture_output=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"via nc\n"


def test_tls_over_unix_and_tls_url(serve, sock):
    srv = serve("--tls", "-H", "unix:" + sock, "-w", "1")
    pin = "sha256:" + srv.err.wait_for(FP_RE.pattern).group(1)
    p = run(["send", "--tls", "--pin", pin, "unix:" + sock, "sealed"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"sealed"
    # Without a name or a pin there is nothing to check the peer against.
    p = run(["send", "--tls", "unix:" + sock, "x"])
    assert p.returncode == 64
    assert "a UNIX socket's peer has no address to check" in \
        p.stderr.decode()
    # tls://HOST:PORT is --tls with HOST:PORT.
    tcp = serve("--tls", "-w", "1", listeners=2)
    pin = "sha256:" + tcp.err.wait_for(FP_RE.pattern).group(1)
    p = run(["send", "--pin", pin, "tls://127.0.0.1:%d" % tcp.port, "url"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"url"


def test_connect_missing_socket(tmp_path):
    path = str(tmp_path / "nobody.sock")
    p = run(["connect", "unix:" + path], input=b"")
    assert p.returncode == 69
    assert p.stderr.decode() == (
        "tcpkit: connect unix:%s: No such file or directory\n" % path)


def test_connect_dead_socket(sock):
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(sock)
    dead.close()
    p = run(["send", "unix:" + sock, "x"])
    assert p.returncode == 69
    assert p.stderr.decode() == (
        "tcpkit: send unix:%s: Connection refused\n" % sock)


LONG = "/tmp/" + "x" * 103  # 108 bytes: one too many


@pytest.mark.parametrize("args,msg", [
    (["-H", "unix:" + LONG],
     "-H unix:%s: unix: path longer than 107 bytes" % LONG),
    (["-H", "unix:/tmp/a.sock", "--mode", "999"],
     "--mode is octal permission bits (0660, 600), not '999'"),
    (["-H", "unix:/tmp/a.sock", "--mode", "17777"],
     "--mode is octal permission bits (0660, 600), not '17777'"),
    (["-H", "unix:/tmp/a.sock", "--mode", ""],
     "--mode is octal permission bits (0660, 600), not ''"),
    (["-H", "unix:@name", "--mode", "0600"],
     "--mode: an abstract unix:@NAME has no file, no mode and no owner"),
    (["--mode", "0600"],
     "--mode is for a UNIX socket's file: give -H unix:/PATH"),
    (["-H", "127.0.0.1", "--group", "0"],
     "--group is for a UNIX socket's file: give -H unix:/PATH"),
    (["-H", "unix:/tmp/a.sock", "--owner", "no-such-user-xyz"],
     "--owner 'no-such-user-xyz': no such user"),
    (["-H", "unix:/tmp/a.sock", "-p", "7000"],
     "-p/--port is for TCP: a UNIX socket has no port"),
    (["-H", "unix:"], "-H unix:: unix: missing path"),
    (["-H", "unix:/tmp/a.sock", "--allow", "127.0.0.1"],
     "--allow/--deny need a TCP address: UNIX peers have no address to "
     "check"),
])
def test_serve_usage_errors(args, msg):
    p = run(["serve"] + args)
    assert p.returncode == 64, p.stderr
    err = p.stderr.decode()
    assert err.startswith("tcpkit: serve: " + msg), err
    assert err.endswith(" (see 'tcpkit help serve')\n"), err
    assert err.count("\n") == 1


@pytest.mark.parametrize("args,msg", [
    (["connect", "unix:" + LONG],
     usage("connect", "unix: path longer than 107 bytes")),
    (["connect", "-4", "unix:/tmp/a.sock"],
     usage("connect", "unix:/tmp/a.sock is a UNIX socket: -4, -6, "
           "-s/--source and -p/--source-port are for TCP")),
    (["send", "-s", "127.0.0.1", "unix:/tmp/a.sock", "m"],
     usage("send", "unix:/tmp/a.sock is a UNIX socket: -4, -6, "
           "-s/--source and -p/--source-port are for TCP")),
    (["connect", "-p", "5555", "unix:/tmp/a.sock"],
     usage("connect", "unix:/tmp/a.sock is a UNIX socket: -4, -6, "
           "-s/--source and -p/--source-port are for TCP")),
    (["connect", "tls://nohostport"],
     usage("connect", "'nohostport': missing port (HOST:PORT)")),
])
def test_client_usage_errors(args, msg):
    p = run(args, input=b"")
    assert p.returncode == 64, p.stderr
    assert p.stderr.decode() == msg


def test_bench_over_unix(serve, sock):
    serve("-H", "unix:" + sock, "-w", "1", "-q")
    p = run(["bench", "echo", "unix:" + sock, "-c", "4", "-n", "200"],
            timeout=60)
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert "target:      unix:%s\n" % sock in out, out
    assert "messages:    800 " in out, out
    assert "errors:      0 " in out, out


def test_completion_of_owner_and_group():
    from test_completion import bash_complete
    assert "root" in bash_complete("serve", "--owner", "roo")
    assert "root" in bash_complete("serve", "--group", "roo")
    assert "--mode" in bash_complete("serve", "--mo")


@pytest.mark.parametrize("fmt", ["json", "logfmt"])
def test_listening_record(serve, sock, fmt):
    srv = serve("-H", "unix:" + sock, "-w", "1", "--log-format", fmt)
    assert srv.addrs == [("unix:" + sock, None)]
    line = srv.err.wait_for("listening on").string
    if fmt == "json":
        assert '"addr":"unix:%s"' % sock in line, line
    else:
        assert ' addr=unix:%s ' % sock in line, line


def test_serve_in_missing_directory(tmp_path):
    path = str(tmp_path / "no-such-dir" / "s.sock")
    p = run(["serve", "-H", "unix:" + path], timeout=TIMEOUT)
    assert p.returncode == 1
    assert p.stderr.decode() == (
        "tcpkit: listen unix:%s: No such file or directory\n" % path)
