"""Black-box tests of `tcpkit bench --tls` against `tcpkit serve echo --tls`
(its ephemeral self-signed certificate, pinned): exact echo counts over TLS
with one context shared by several threads, `rate --tls` measuring full
handshakes per second, a wrong pin counted in the "tls" error class with
its reason once on stderr and exit 76, plain TCP against a TLS server ending
in resets without hanging, and the usage errors of the TLS options."""
import json

from tkhelpers import run
from tlshelpers import FP_RE, cert_fp

PROTO = 76
BAD_PIN = "sha256:" + "0" * 64


def tls_echo(serve):
    """A TLS echo server; returns (server, "sha256:HEX" of its cert)."""
    srv = serve("echo", "--tls", "-H", "127.0.0.1")
    return srv, "sha256:" + srv.err.wait_for(FP_RE.pattern).group(1)


def bench(*args, timeout=15):
    return run(["bench"] + [str(a) for a in args], timeout=timeout)


def bench_json(*args, timeout=15):
    p = bench(*args, "--json", timeout=timeout)
    try:
        doc = json.loads(p.stdout)
    except ValueError:
        raise AssertionError("not JSON: %r; stderr %r" % (p.stdout, p.stderr))
    return p, doc


def usage(msg):
    return ("tcpkit: bench: %s (see 'tcpkit help bench')\n" % msg).encode()


def test_echo_exact_counts_over_tls(serve):
    srv, pin = tls_echo(serve)
    p, doc = bench_json("echo", "127.0.0.1", srv.port, "--tls", "--pin", pin,
                        "-c", 4, "--threads", 2, "-d", 4, "-s", 300,
                        "-n", 250, "-t", 8)
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    assert doc["tls"] is True
    assert doc["established"] == 4
    assert doc["messages"] == 4 * 250
    assert doc["bytes_received"] == doc["bytes_sent"] == 4 * 250 * 300
    assert doc["errors"]["total"] == 0
    assert doc["errors"]["tls"] == 0
    assert doc["first_errors"] == {}


def test_echo_summary_says_tls(serve):
    srv, pin = tls_echo(serve)
    p = bench("127.0.0.1:%d" % srv.port, "--tls", "--pin", pin, "-c", 2,
              "-n", 20)
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert "target:      127.0.0.1:%d over TLS\n" % srv.port in out
    assert "errors:      0 (connect 0, reset 0, timeout 0, mismatch 0, " \
        "protocol 0, tls 0)\n" in out


def test_tls_url_is_the_same_as_tls(serve):
    """The endpoint syntax: tls://HOST:PORT is HOST PORT --tls."""
    srv, pin = tls_echo(serve)
    p, doc = bench_json("echo", "tls://127.0.0.1:%d" % srv.port, "--pin",
                        pin, "-c", 2, "-n", 20)
    assert p.returncode == 0, p.stderr
    assert doc["tls"] is True
    assert doc["messages"] == 2 * 20
    assert bench("echo", "tls://127.0.0.1", "-n", 1).stderr == usage(
        "'127.0.0.1': missing port (HOST:PORT)")


def test_rate_measures_handshakes(serve):
    srv, pin = tls_echo(serve)
    p, doc = bench_json("rate", "127.0.0.1", srv.port, "--tls", "--pin", pin,
                        "-c", 4, "-t", 1)
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    assert doc["tls"] is True
    assert doc["connections_per_s"] > 0
    assert doc["messages"] > 0
    assert doc["errors"]["total"] == 0
    # Exact with -n: every operation is a connection with its handshake.
    p, doc = bench_json("rate", "127.0.0.1", srv.port, "--tls", "--pin", pin,
                        "-c", 3, "-n", 10, "-t", 8)
    assert p.returncode == 0, p.stderr
    assert doc["established"] == doc["messages"] == 30
    assert doc["errors"]["total"] == 0
    p = bench("rate", "127.0.0.1", srv.port, "--tls", "--pin", pin, "-c", 2,
              "-n", 3)
    assert p.returncode == 0, p.stderr
    assert ("target:      127.0.0.1:%d over TLS (a full handshake per "
            "connection)\n" % srv.port) in p.stdout.decode()


def test_wrong_pin_counts_tls_errors(serve):
    srv, pin = tls_echo(serve)
    why = "certificate pin mismatch (the peer's certificate is %s)" % pin
    p, doc = bench_json("127.0.0.1", srv.port, "--tls", "--pin", BAD_PIN,
                        "-c", 3, "-t", 2)
    assert p.returncode == PROTO
    assert doc["tls"] is True
    assert doc["established"] == 0
    assert doc["errors"]["tls"] == doc["errors"]["total"] == 3
    assert doc["first_errors"] == {"tls": why}
    assert p.stderr.decode() == (
        "tcpkit: bench 127.0.0.1:%d: 3 TLS handshake failures (first: %s)\n"
        % (srv.port, why))
    # rate: every client's first handshake fails, the run stops there.
    p, doc = bench_json("rate", "127.0.0.1", srv.port, "--tls", "--pin",
                        BAD_PIN, "-c", 2, "-t", 2)
    assert p.returncode == PROTO
    assert doc["errors"]["tls"] >= 2
    assert doc["errors"]["tls"] == doc["errors"]["total"]
    assert doc["messages"] == 0
    assert p.stderr.decode() == (
        "tcpkit: bench 127.0.0.1:%d: %d TLS handshake failures (first: %s)\n"
        % (srv.port, doc["errors"]["tls"], why))


def test_untrusted_issuer_gives_the_whole_pin(serve, certs):
    """A certificate from a CA bench does not know: the first error's
    advice names the whole pin (it was cut at 160 bytes), in the document
    and on stderr, and that pin is then taken."""
    srv = serve("echo", "--tls", "--cert", certs["srv"], "--key",
                certs["srv_key"], "-H", "127.0.0.1")
    pin = "sha256:" + cert_fp(certs["srv"])
    p, doc = bench_json("127.0.0.1", srv.port, "--tls", "-c", 1, "-t", 2)
    assert p.returncode == PROTO
    why = doc["first_errors"]["tls"]
    assert why.endswith("; if you trust it: --pin " + pin), why
    assert "(first: %s)\n" % why in p.stderr.decode()
    p, doc = bench_json("127.0.0.1", srv.port, "--tls", "--pin", pin,
                        "-c", 1, "-n", 5)
    assert p.returncode == 0, p.stderr
    assert doc["errors"]["total"] == 0


def test_plain_tcp_against_tls_server_fails_fast(serve):
    srv, _ = tls_echo(serve)
    p, doc = bench_json("127.0.0.1", srv.port, "-c", 2, "-t", 2, timeout=10)
    assert p.returncode == 0, p.stderr
    assert doc["tls"] is False
    assert doc["messages"] == 0
    assert doc["errors"]["reset"] + doc["errors"]["protocol"] == 2
    assert doc["errors"]["tls"] == 0
    p, doc = bench_json("rate", "127.0.0.1", srv.port, "-c", 2, "-t", 1,
                        timeout=10)
    assert p.returncode == 0, p.stderr
    assert doc["messages"] == 0
    assert doc["errors"]["reset"] + doc["errors"]["protocol"] > 0
    assert doc["errors"]["reset"] + doc["errors"]["protocol"] == \
        doc["errors"]["total"]
    # Without --tls the text summary has no tls class.
    p = bench("127.0.0.1", srv.port, "-c", 1, "-t", 1, timeout=10)
    assert "protocol 0)\n" in p.stdout.decode()
    assert "over TLS" not in p.stdout.decode()


def test_tls_usage_errors(serve):
    p = bench("127.0.0.1", 1, "--pin", BAD_PIN)
    assert p.returncode == 64
    assert p.stderr == usage("--pin needs --tls")
    p = bench("127.0.0.1", 1, "--tls", "--insecure", "--pin", BAD_PIN)
    assert p.returncode == 64
    assert p.stderr == usage("--insecure excludes --pin")
    p = bench("127.0.0.1", 1, "--tls", "--tls-min", "1.1")
    assert p.returncode == 64
    assert p.stderr == usage("--tls-min is 1.2 or 1.3, not '1.1'")
    p = bench("127.0.0.1", 1, "--tls", "--cacert", "/nonexistent/ca.pem")
    assert p.returncode == 66
    assert p.stderr == b"tcpkit: bench --cacert /nonexistent/ca.pem: " \
        b"No such file or directory\n"


def test_help_mentions_tls():
    p = run(["bench", "--help"])
    assert p.returncode == 0
    out = p.stdout.decode()
    assert "      --tls " in out
    assert "--pin sha256:HEX" in out
    assert "tls (with --tls" in out
