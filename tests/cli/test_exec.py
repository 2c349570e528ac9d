"""tcpkit listen --exec/--sh-exec (a program per connection) and connect
--exec/--sh-exec: stdio, environment, exit lines, reaping, --max-conns,
--stderr-to-peer, and ncat/socat/nc as the other side."""
import os
import re
import select
import signal
import socket
import subprocess
import time

import pytest

from listenhelpers import children, connect, listen, recv_all  # noqa: F401
import hashlib

from tkhelpers import TCPKIT, check_sanitizer, nc_listening, need, run


def readable(s, timeout):
    return bool(select.select([s], [], [], timeout)[0])


EXIT_RE = r"^127\.0\.0\.1:(\d+): pid (\d+) %s after \d+(\.\d+)?m?s$"


def test_exec_cat_echoes_and_the_exit_is_logged(listen):
    lp = listen("--exec", "cat")
    s = connect(lp.port)
    s.sendall(b"echo me\n")
    s.shutdown(socket.SHUT_WR)
    assert recv_all(s) == b"echo me\n"
    port = s.getsockname()[1]
    s.close()
    assert lp.wait() == 0  # without -k: done when the program is
    m = lp.err.wait_for(EXIT_RE % "exit 0")
    assert int(m.group(1)) == port


def test_exec_arguments_split_as_ncat_does(listen):
    lp = listen("--exec", "printf '%s|%s|%s' \"two words\" it\\'s ''")
    s = connect(lp.port)
    assert recv_all(s) == b"two words|it's|"
    s.close()
    assert lp.wait() == 0


def test_sh_exec_environment(listen):
    lp = listen("--sh-exec", 'echo "$TCPKIT_PEER_ADDR $TCPKIT_PEER_PORT '
                '$TCPKIT_LOCAL_ADDR $TCPKIT_LOCAL_PORT"')
    s = connect(lp.port)
    got = recv_all(s).decode()
    assert got == "127.0.0.1 %d 127.0.0.1 %d\n" % (s.getsockname()[1],
                                                    lp.port)
    s.close()
    assert lp.wait() == 0


def test_exit_status_and_signal_logged(listen):
    lp = listen("-k", "--sh-exec", "read how; [ $how = kill ] && kill $$; "
                "exit 7")
    a = connect(lp.port)
    a.sendall(b"exit\n")
    assert recv_all(a) == b""
    lp.err.wait_for(EXIT_RE % "exit 7")
    b = connect(lp.port)
    b.sendall(b"kill\n")
    assert recv_all(b) == b""
    lp.err.wait_for(EXIT_RE % r"killed by signal 15 \(Terminated\)")
    a.close()
    b.close()
    assert lp.stop() == 0


def test_status_of_a_program_reaped_elsewhere_is_unknown(listen):
    """Started with SIGCHLD ignored (inherited), tcpkit's children are
    reaped by the kernel: their status is not known, and the exit line says
    so instead of a clean "exit 0"."""
    old = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        lp = listen("--sh-exec", "exit 3")
    finally:
        signal.signal(signal.SIGCHLD, old)
    s = connect(lp.port)
    assert recv_all(s) == b""
    s.close()
    assert lp.wait() == 0
    lp.err.wait_for(EXIT_RE % "ended, status unknown")
    assert "exit 0" not in lp.err.text()


def test_twenty_concurrent_and_no_zombie(listen):
    lp = listen("-k", "--sh-exec", "read line; echo \"$line $$\"")
    socks = [connect(lp.port) for _ in range(20)]
    for i, s in enumerate(socks):
        s.sendall(b"client %d\n" % i)
    pids = set()
    for i, s in enumerate(socks):
        m = re.match(rb"client %d (\d+)\n$" % i, recv_all(s))
        assert m, "client %d got no answer" % i
        pids.add(int(m.group(1)))
        s.close()
    assert len(pids) == 20  # a process each, all at once
    deadline = time.monotonic() + 20
    while lp.err.text().count(" exit 0 after ") < 20:
        assert time.monotonic() < deadline, lp.err.text()
        lp.err.wait_for("exit 0", timeout=1)
    # Reaped: not even a zombie is left among the server's children.
    assert children(lp.pid) == []
    assert lp.stop() == 0


def test_program_gets_default_signals_and_no_other_fds(listen):
    """A program starts with no signal blocked or ignored, whatever
    tcpkit's loop does with them, and without the fds tcpkit inherited
    (not close-on-exec)."""
    r, w = os.pipe()
    try:
        lp = listen("-k", "--sh-exec",
                    "case $1 in '') ls /proc/$$/fd; exit;; esac",
                    pass_fds=(w,))
    finally:
        os.close(r)
        os.close(w)
    s = connect(lp.port)
    # The shell's own fds: 0, 1 and 2 (a dash has no others).
    assert recv_all(s).split() == [b"0", b"1", b"2"]
    s.close()
    lp.err.wait_for(EXIT_RE % "exit 0")
    lp.stop()

    # Nothing blocked (the loop blocks SIGINT and SIGTERM for its
    # signalfd), nothing ignored (SIGPIPE is, in tcpkit).
    lp = listen("--exec", "grep -E '^Sig(Blk|Ign)' /proc/self/status")
    s = connect(lp.port)
    f = recv_all(s).split()
    assert f[0::2] == [b"SigBlk:", b"SigIgn:"]
    assert int(f[1], 16) == 0
    # glibc's posix_spawn leaves its own two signals (32 and 33, which
    # it reserves) ignored; every other one is at its default.
    assert int(f[3], 16) & ~0x180000000 == 0, f[3]
    s.close()
    assert lp.wait() == 0


def test_max_conns_makes_the_next_wait(listen):
    lp = listen("-k", "--max-conns", "2", "--sh-exec",
                "echo start; cat > /dev/null")
    a, b, c = (connect(lp.port) for _ in range(3))
    for s in (a, b):
        s.settimeout(10)
        assert s.recv(100) == b"start\n"
    # The third is accepted but runs nothing while two run.
    assert not readable(c, 0.5)
    assert len(children(lp.pid)) == 2
    a.shutdown(socket.SHUT_WR)
    assert recv_all(a) == b""
    c.settimeout(10)
    assert c.recv(100) == b"start\n"
    for s in (a, b, c):
        s.close()
    assert lp.stop() == 0


def test_stderr_stays_ours_or_goes_to_the_peer(listen):
    lp = listen("--sh-exec", "echo to-stderr >&2; echo to-stdout")
    s = connect(lp.port)
    assert recv_all(s) == b"to-stdout\n"
    s.close()
    assert lp.wait() == 0
    assert "to-stderr" in lp.err.text()

    lp = listen("--stderr-to-peer", "--sh-exec",
                "echo to-stderr >&2; echo to-stdout")
    s = connect(lp.port)
    assert recv_all(s) == b"to-stderr\nto-stdout\n"
    s.close()
    assert lp.wait() == 0
    assert "to-stderr" not in lp.err.text()


def test_stop_terminates_running_programs(listen):
    lp = listen("-k", "--sh-exec", "echo up; exec sleep 60")
    s = connect(lp.port)
    s.settimeout(10)
    assert s.recv(10) == b"up\n"
    kids = children(lp.pid)
    assert len(kids) == 1
    t0 = time.monotonic()
    assert lp.stop() == 0
    assert time.monotonic() - t0 < 5
    assert not os.path.exists("/proc/%d" % kids[0])
    assert recv_all(s) == b""
    s.close()


def test_missing_program_exits_66():
    p = run(["listen", "--exec", "tcpkit-no-such-program", "127.0.0.1",
             "0"])
    assert p.returncode == 66
    assert p.stderr.decode() == ("tcpkit: listen --exec: "
                                 "tcpkit-no-such-program: program not "
                                 "found in PATH\n")


def test_program_that_cannot_run_exits_69(listen, tmp_path):
    prog = tmp_path / "not-executable-by-anyone"
    prog.write_text("#!/bin/sh\n")
    prog.chmod(0o644)
    os.symlink("/nonexistent-interpreter", tmp_path / "dangling")
    (tmp_path / "badinterp").write_text("#!/nonexistent-interpreter\n")
    (tmp_path / "badinterp").chmod(0o755)
    lp = listen("--exec", str(tmp_path / "badinterp"))
    s = connect(lp.port)
    assert recv_all(s) == b""  # FIN, no program
    s.close()
    assert lp.wait() == 69
    assert re.search(r"^tcpkit: listen %s: cannot run for 127\.0\.0\.1:\d+: "
                     r"No such file or directory$"
                     % re.escape(str(tmp_path / "badinterp")),
                     lp.err.text(), re.M), lp.err.text()


def test_tls_exec_subject_and_bulk_through_the_pump(listen, certs,
                                                   tmp_path):
    """With TLS the program talks plain text through a socketpair: the
    client's verified subject is in its environment, and 20 MB go there
    and back byte-exact with the half-close carried both ways."""
    lp = listen("--tls", "--cert", certs["srv"], "--key", certs["srv_key"],
                "--client-ca", certs["ca"], "--sh-exec",
                'echo "subject=$TCPKIT_TLS_CLIENT_SUBJECT"; exec cat')
    src = tmp_path / "src"
    src.write_bytes(os.urandom(1 << 20) * 20)
    with open(src, "rb") as f:
        p = subprocess.run([TCPKIT, "connect", "--tls", "--cacert",
                            certs["ca"], "--cert", certs["client"], "--key",
                            certs["client_key"], "127.0.0.1", str(lp.port)],
                           stdin=f, capture_output=True, timeout=120)
    check_sanitizer(p.stderr)
    assert p.returncode == 0, p.stderr
    head = b"subject=CN=tcpkit client\n"
    assert p.stdout[:len(head)] == head
    assert hashlib.sha256(p.stdout[len(head):]).digest() == \
        hashlib.sha256(src.read_bytes()).digest()
    assert lp.wait() == 0
    lp.err.wait_for(EXIT_RE % "exit 0")


def test_tls_exec_without_client_certificate_has_no_subject(listen):
    need("openssl")
    lp = listen("--tls", "--sh-exec",
                'echo "[${TCPKIT_TLS_CLIENT_SUBJECT-unset}]"')
    c = subprocess.run(["openssl", "s_client", "-quiet", "-connect",
                        "127.0.0.1:%d" % lp.port], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=20)
    assert c.stdout == b"[unset]\n"
    assert lp.wait() == 0


@pytest.mark.parametrize("args,why", [
    (["--exec", "cat 'unclosed", "0"], "--exec: "),
    (["--exec", "cat", "--sh-exec", "cat", "0"], "--exec and --sh-exec"),
    (["--exec", "cat", "--recv-only", "0"], "--recv-only and --exec"),
    (["--exec", "", "0"], "--exec needs a PROG"),
])
def test_exec_usage_errors(args, why):
    p = run(["listen"] + args)
    assert p.returncode == 64, p.stderr
    assert why in p.stderr.decode()


# --- interop -----------------------------------------------------------------

def test_ncat_and_socat_as_clients_of_listen(listen):
    for prog in ("ncat", "socat"):
        need(prog)
        lp = listen(stdin=subprocess.PIPE)
        argv = (["ncat", "127.0.0.1", str(lp.port)] if prog == "ncat"
                else ["socat", "-", "TCP:127.0.0.1:%d" % lp.port])
        c = subprocess.Popen(argv, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        c.stdin.write(b"hello from %s\n" % prog.encode())
        c.stdin.close()  # the client half-closes...
        c.stdin = None  # (for communicate())
        lp.out.wait_for("^hello from %s$" % prog)
        lp.proc.stdin.write(b"hello from listen\n")
        lp.proc.stdin.close()  # ...and so do we: both directions done
        out, err = c.communicate(timeout=20)
        assert lp.wait() == 0, (prog, lp.err.text())
        assert c.returncode == 0, err
        assert out == b"hello from listen\n"


def test_ncat_and_socat_as_clients_of_listen_exec(listen):
    for prog in ("ncat", "socat"):
        need(prog)
        lp = listen("--exec", "cat")
        argv = (["ncat", "127.0.0.1", str(lp.port)] if prog == "ncat"
                else ["socat", "-", "TCP:127.0.0.1:%d" % lp.port])
        c = subprocess.run(argv, input=b"echo through %s\n" % prog.encode(),
                           capture_output=True, timeout=20)
        assert c.returncode == 0, c.stderr
        assert c.stdout == b"echo through %s\n" % prog.encode()
        assert lp.wait() == 0


def test_connect_exec_with_nc_listening():
    nc, port = nc_listening()
    try:
        nc.stdin.write(b"ping\n")
        nc.stdin.close()
        nc.stdin = None  # (for communicate())
        p = run(["connect", "--sh-exec", 'read l; echo "got $l"; exit 5',
                 "127.0.0.1", str(port)])
        # The program's exit status is connect's.
        assert p.returncode == 5, p.stderr
        assert p.stdout == b""  # the program had the connection
        out, _ = nc.communicate(timeout=20)
        assert out == b"got ping\n"
    finally:
        nc.kill()
        nc.wait()


def test_connect_exec_program_killed_is_128_plus_signal(listen):
    lp = listen("--exec", "cat")
    p = run(["connect", "--sh-exec", "kill -9 $$", "127.0.0.1",
             str(lp.port)])
    assert p.returncode == 128 + 9
    assert lp.wait() == 0


def test_connect_exec_cannot_run_exits_69(listen):
    lp = listen("--exec", "cat")
    p = run(["connect", "--exec", "tcpkit-no-such-program", "127.0.0.1",
             str(lp.port)])
    assert p.returncode == 69
    assert p.stderr.decode() == ("tcpkit: connect tcpkit-no-such-program: "
                                 "cannot run: No such file or directory\n")
    assert lp.wait() == 0


@pytest.mark.parametrize("args,why", [
    (["--exec", "cat 'unclosed"], "--exec: "),
    (["--exec", "cat", "--recv-only"], "--exec and --sh-exec take none"),
    (["--sh-exec", "cat", "--tls"], "--tls with --exec is not supported"),
])
def test_connect_exec_usage_errors(args, why):
    p = run(["connect"] + args + ["127.0.0.1", "9"])
    assert p.returncode == 64, p.stderr
    assert why in p.stderr.decode()


def test_tls_exec_output_survives_a_program_that_stops_reading(listen,
                                                                 certs,
                                                                 tmp_path):
    """A program that writes its answer and exits without reading its
    input: the client's bytes it never read make our end of its socketpair
    fail with EPIPE, and everything it wrote still reaches the client."""
    size = 3 << 20
    lp = listen("--tls", "--cert", certs["srv"], "--key", certs["srv_key"],
                "--sh-exec", "exec head -c %d /dev/zero" % size)
    src = tmp_path / "src"
    src.write_bytes(b"x" * (16 << 20))
    with open(src, "rb") as f:
        p = subprocess.run([TCPKIT, "connect", "--tls", "--cacert",
                            certs["ca"], "127.0.0.1", str(lp.port)],
                           stdin=f, capture_output=True, timeout=60)
    check_sanitizer(p.stderr)
    assert len(p.stdout) == size, p.stderr
    assert p.stdout == b"\0" * size
    assert lp.wait() == 0
    lp.err.wait_for(EXIT_RE % "exit 0")
