"""The command line across every command: options matched exactly, a clean
exit on SIGINT/SIGTERM however the signal comes, and the same words and
exit codes for the same mistakes everywhere."""
import os
import re
import signal
import subprocess
import threading

import pytest

from conftest import LISTEN_RE, TCPKIT, check_sanitizer, run

# --- options are matched exactly ---------------------------------------------

# An unambiguous prefix of a real long option, per command: getopt_long()
# would take each one for the full option.
ABBREVIATIONS = [
    (["serve", "basic", "--allow", "-p", "0"], "--allow",
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
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
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
