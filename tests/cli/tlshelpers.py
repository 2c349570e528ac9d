"""Helpers shared by the TLS tests (test_tls.py, test_tls_interop.py,
test_bench_tls.py): their messages and exit code, and tcpkit serve --tls
with the test certificates."""
import re
import subprocess
import time


TIMEOUT = 15
PROTO = 76
FP_RE = re.compile(r"^tls: self-signed certificate sha256:([0-9a-f]{64})$")


def closed_line(srv, timeout=TIMEOUT, start=0):
    """The server's log line for the next connection to end."""
    m = srv.err.wait_for(r"^closed \S+ at \[.*\] after \S+: (\d+) bytes in, "
                         r"(\d+) bytes out \((.*)\)$", timeout=timeout,
                         start=start)
    return int(m.group(1)), int(m.group(2)), m.group(3)


def lines(srv):
    with srv.err.cond:
        return len(srv.err.lines)


def tls_serve(serve, certs, *args, cert="srv"):
    extra = ["--cert", certs[cert], "--key", certs[cert + "_key"]] \
        if cert else []
    return serve("--tls", *extra, "-w", "1", *args, listeners=2)


def cert_fp(path):
    """The SHA-256 of a PEM certificate, lower-case hex without colons."""
    out = subprocess.run(["openssl", "x509", "-in", path, "-noout",
                          "-fingerprint", "-sha256"], capture_output=True,
                         text=True, check=True).stdout
    return out.split("=")[1].strip().replace(":", "").lower()


# An untrusted certificate's failure suggests the pin that would accept it.
PIN_HINT = "; if you trust it: --pin sha256:{fp}"


def s_server(certs, *args):
    """An openssl s_server on port 0; returns (process, port)."""
    s = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:0",
                          "-cert", certs["srv"], "-key", certs["srv_key"],
                          "-naccept", "1"] + list(args),
                         # Its stdin stays open: at EOF it would hang up.
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        line = s.stdout.readline()
        if line.startswith(b"ACCEPT"):
            return s, int(line.split(b":")[-1])
        if not line:
            break
    s.kill()
    raise AssertionError("s_server did not start")


MSG_RE = re.compile(r"^(<<<|>>>) [^,]+, (\w+) \[length [0-9a-f]+\]"
                    r"(?:, (.*))?$")
HEX_RE = re.compile(r"^    [0-9a-f]{2}( [0-9a-f]{2})*$")
ALERT_PROTOCOL_VERSION = 70


def msg_records(text):
    """The messages an openssl -msg trace shows: (direction, content type,
    bytes); ">>>" is what that tool sent, "<<<" what it received."""
    out = []
    dump = False  # in the hex dump under a message
    for line in text.splitlines():
        m = MSG_RE.match(line)
        if m:
            out.append((m.group(1), m.group(2), bytearray()))
            dump = True
        elif dump and HEX_RE.match(line):
            out[-1][2].extend(bytes.fromhex(line.strip()))
        else:
            dump = False
    return [r for r in out if r[1] != "RecordHeader"]


def recv_exact(s, n):
    got = b""
    while len(got) < n:
        d = s.recv(n - len(got))
        assert d, "EOF after %r" % got
        got += d
    return got
