"""Helpers shared by the client commands' tests (connect, send, bench):
their messages, Python peers, reading with deadlines, and a tcpkit process
whose output is drained by threads."""
import queue
import socket
import subprocess
import threading
import time

from tkhelpers import TCPKIT, check_sanitizer


def usage(msg, cmd="connect"):
    """The exact stderr of a usage error."""
    return ("tcpkit: %s: %s (see 'tcpkit help %s')\n"
            % (cmd, msg, cmd)).encode()


def err_line(where, why, cmd="connect"):
    """The exact stderr of a runtime error: `tcpkit: CMD WHERE: WHY`."""
    return ("tcpkit: %s %s: %s\n" % (cmd, where, why)).encode()


def recv_exactly(conn, n, timeout=20):
    """Read n bytes from conn (fewer only at EOF), bounded."""
    conn.settimeout(timeout)
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def recv_to_eof(conn, timeout=20):
    conn.settimeout(timeout)
    buf = bytearray()
    while True:
        chunk = conn.recv(1 << 20)
        if not chunk:
            return bytes(buf)
        buf += chunk


def sees_nothing(conn, wait=1.0):
    """True when neither data nor EOF arrives within wait seconds: the way
    to observe that a FIN was NOT sent."""
    conn.settimeout(wait)
    try:
        data = conn.recv(1)
    except socket.timeout:
        return True
    return ("got", data)


def peer(pyserver, fn, **kw):
    """A Python server running fn(conn) for one client; .result() returns
    what fn returned (or re-raises what it raised), with a deadline."""
    q = queue.Queue()

    def handler(conn, srv):
        try:
            q.put((True, fn(conn)))
        except BaseException as e:
            q.put((False, e))
            raise

    srv = pyserver(handler, **kw)

    def result(timeout=20):
        try:
            ok, value = q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("the peer did not finish in %ss" % timeout)
        if not ok:
            raise AssertionError("the peer failed: %r" % (value,))
        return value

    srv.result = result
    return srv


class Proc:
    """A tcpkit process whose stdout and stderr are drained by threads, so
    the test can keep its stdin open and still wait with a deadline."""

    def __init__(self, args, stdin=subprocess.PIPE, stdout=subprocess.PIPE):
        self.p = subprocess.Popen([TCPKIT] + list(args), stdin=stdin,
                                  stdout=stdout, stderr=subprocess.PIPE)
        self.out = bytearray()
        self.err = bytearray()
        self.threads = []
        for pipe, buf in ((self.p.stdout, self.out),
                          (self.p.stderr, self.err)):
            if pipe is None:
                continue
            t = threading.Thread(target=self._pump, args=(pipe, buf),
                                 daemon=True)
            t.start()
            self.threads.append(t)

    @staticmethod
    def _pump(pipe, buf):
        for chunk in iter(lambda: pipe.read1(65536), b""):
            buf += chunk

    def write(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def close_stdin(self):
        self.p.stdin.close()

    def wait(self, timeout=20):
        """Wait for the exit; returns (rc, stdout, stderr)."""
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("tcpkit did not exit within %ss; stderr %r"
                                 % (timeout, bytes(self.err)))
        for t in self.threads:
            t.join(10)
        check_sanitizer(bytes(self.err))
        return rc, bytes(self.out), bytes(self.err)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(10)
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass


def trickle_forever(c):
    """Two bytes every 50ms until tcpkit goes away (bounded: 400 sends,
    20s): a peer that keeps an idle timeout quiet for ever."""
    for _ in range(400):
        try:
            c.sendall(b"x\n")
        except OSError:
            return "gone"
        time.sleep(0.05)  # sleep-ok: pacing the trickle
    return "still there"
