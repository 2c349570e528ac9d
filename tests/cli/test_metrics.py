"""--metrics of serve, listen and relay: the Prometheus text at /metrics
after known traffic (exact numbers), promtool's check, the HTTP endpoint's
bounds (method, request size, slow requests, connection count), and the
status page at / in a real headless browser (chromium)."""
import os
import re
import shutil
import socket
import subprocess
import time
from html.parser import HTMLParser

import pytest

from listenhelpers import listen  # noqa: F401 (fixture)
from relayhelpers import echo_handler, relay, target  # noqa: F401
from tkhelpers import TCPKIT, check_sanitizer, need, run

TIMEOUT = 15
METRICS_RE = r"metrics on (\S+):(\d+)"
# Five clients, each sends its payload and reads the echo: 150 bytes.
PAYLOADS = [bytes([65 + i]) * (10 * (i + 1)) for i in range(5)]
TOTAL = sum(len(p) for p in PAYLOADS)
SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"')


def metrics_port(reader):
    return int(reader.wait_for(METRICS_RE, timeout=TIMEOUT).group(2))


def wait_count(reader, pattern, n, timeout=TIMEOUT):
    """Wait until n lines of reader match pattern (bounded)."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    with reader.cond:
        while True:
            got = sum(1 for line in reader.lines if rx.search(line))
            if got >= n:
                return got
            left = deadline - time.monotonic()
            assert left > 0 and not reader.closed, \
                "%d of %d lines matching %r; got %r" % (
                    got, n, pattern, reader.lines)
            reader.cond.wait(left)


def http(port, request, timeout=TIMEOUT):
    """Send request bytes; everything until the server closes, and how it
    closed ("eof" or "reset")."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    data, how = b"", "eof"
    try:
        s.sendall(request)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        how = "reset"
    finally:
        s.close()
    return data, how


def response(data):
    """(status code, headers dict (lower-case names), body)."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    code = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return code, headers, body


def get(port, path):
    data, _ = http(port, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    code, headers, body = response(data)
    assert code == 200, data[:300]
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    return headers, body.decode()


def unescape(v):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n"
                  else m.group(1), v)


def parse(text):
    """[(name, {labels}, value)] of a Prometheus text page."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        assert m, "not a sample line: %r" % line
        labels = {k: unescape(v) for k, v in LABEL_RE.findall(m.group(2) or "")}
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def total(samples, name, **labels):
    """The sum over workers (what sum without (worker) gives)."""
    found = [v for n, lab, v in samples if n == name and
             all(lab.get(k) == want for k, want in labels.items())]
    assert found, "no sample %s %r" % (name, labels)
    return sum(found)


def scrape(port):
    headers, text = get(port, "/metrics")
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    return text, parse(text)


def promtool_check(text):
    need("promtool")
    p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=60)
    assert p.returncode == 0 and p.stdout + p.stderr == b"", (
        p.returncode, p.stdout, p.stderr)


def echo_clients(port):
    for p in PAYLOADS:
        with socket.create_connection(("127.0.0.1", port),
                                      timeout=TIMEOUT) as s:
            s.sendall(p)
            got = b""
            while len(got) < len(p):
                chunk = s.recv(65536)
                assert chunk, "echo cut after %r" % got
                got += chunk
            assert got == p
            s.shutdown(socket.SHUT_WR)
            assert s.recv(1) == b""


def check_common(samples, workers, sent, answered):
    """The numbers five clients of TOTAL bytes leave, whatever the
    command."""
    assert total(samples, "tcpkit_workers") == workers
    worker_labels = {lab["worker"] for n, lab, _ in samples
                     if n == "tcpkit_connections_accepted_total"}
    assert worker_labels == {str(k) for k in range(workers)}
    assert total(samples, "tcpkit_connections_accepted_total") == 5
    assert total(samples, "tcpkit_connections_closed_total") == 5
    assert total(samples, "tcpkit_connections_open") == 0
    for reason in ("max_conns", "denied"):
        assert total(samples, "tcpkit_connections_rejected_total",
                     reason=reason) == 0
    for kind in ("reset", "timeout", "line", "other"):
        assert total(samples, "tcpkit_connection_errors_total",
                     kind=kind) == 0
    assert total(samples, "tcpkit_tls_handshake_failures_total") == 0
    assert total(samples, "tcpkit_received_bytes_total") == TOTAL
    assert total(samples, "tcpkit_sent_bytes_total") == sent
    name = "tcpkit_response_latency_seconds"
    assert total(samples, name + "_count") == answered
    assert total(samples, name + "_bucket", le="+Inf") == answered
    if answered:
        assert 0 < total(samples, name + "_sum") < TIMEOUT * answered
    # Cumulative buckets: never decreasing, per worker.
    for k in range(workers):
        b = [v for n, lab, v in samples
             if n == name + "_bucket" and lab["worker"] == str(k)]
        assert b == sorted(b) and len(b) == 18


def start_serve(serve, relay, pyserver):
    srv = serve("-w", "2", "--metrics", "0", "echo")
    return srv, srv.err, r"^closed "


def start_relay(serve, relay, pyserver):
    t = pyserver(echo_handler)
    r = relay("-w", "2", "--metrics", "0", "127.0.0.1:0", target(t.port),
              workers=False)
    return r, r.err, r"^relay \S+ -> "


@pytest.mark.parametrize("start", [start_serve, start_relay],
                         ids=["serve", "relay"])
def test_metrics_exact_after_traffic(serve, relay, pyserver, start):
    """serve's echo, and relay to an echoing target: for relay, in is the
    clients' bytes and out the target's answers relayed back, each timed
    from the client's bytes (the round trip through the target)."""
    srv, err, closed = start(serve, relay, pyserver)
    port = metrics_port(err)
    echo_clients(srv.port)
    # The counters move before the end is logged.
    wait_count(err, closed, 5)
    text, samples = scrape(port)
    check_common(samples, 2, TOTAL, 5)
    assert total(samples, "tcpkit_listener_accepted_total",
                 listener="127.0.0.1:%d" % srv.port) == 5
    promtool_check(text)
    assert srv.stop() == 0


def test_listen_metrics_exact_after_traffic(listen):
    lp = listen("-k", "--recv-only", "--metrics", "0")
    port = metrics_port(lp.err)
    for p in PAYLOADS:
        with socket.create_connection(("127.0.0.1", lp.port),
                                      timeout=TIMEOUT) as s:
            s.sendall(p)
            s.shutdown(socket.SHUT_WR)
            assert s.recv(1) == b""
    # listen logs no close: scrape until the last close is counted.
    deadline = time.monotonic() + TIMEOUT
    while True:
        text, samples = scrape(port)
        if total(samples, "tcpkit_connections_closed_total") == 5:
            break
        assert time.monotonic() < deadline, text
        time.sleep(0.02)  # sleep-ok: re-scrape until the count settles
    # Nothing is sent back (--recv-only), so nothing is an answer.
    check_common(samples, 1, 0, 0)
    promtool_check(text)
    assert lp.stop() == 0
    assert lp.out.text() == b"".join(PAYLOADS).decode()


def test_metrics_endpoint_bounds(serve):
    srv = serve("-w", "2", "--metrics", "0", "echo")
    port = metrics_port(srv.err)

    data, how = http(port, b"POST /metrics HTTP/1.1\r\nContent-Length: 0"
                     b"\r\n\r\n")
    code, headers, _ = response(data)
    assert (code, headers["allow"], headers["connection"]) == \
        (405, "GET", "close")
    data, _ = http(port, b"GET /nope HTTP/1.1\r\n\r\n")
    assert response(data)[0] == 404
    data, _ = http(port, b"HELLO\r\n\r\n")
    assert response(data)[0] == 400
    # Over 4 KiB: the request line, or the header fields.
    data, _ = http(port, b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n")
    assert response(data)[0] == 414
    data, _ = http(port, b"GET / HTTP/1.1\r\nX: " + b"b" * 10000 +
                   b"\r\n\r\n")
    assert response(data)[0] == 431

    # A request that never ends is cut at the deadline (5s), not held.
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    s.sendall(b"GET /metrics HTTP/1.1\r\n")
    start = time.monotonic()
    try:
        assert s.recv(4096) == b""
    except ConnectionResetError:
        pass
    took = time.monotonic() - start
    s.close()
    assert 3 < took < 10, took

    # 16 connections at most: the 17th is closed at once, unanswered.
    held = [socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
            for _ in range(16)]
    try:
        data, _ = http(port, b"GET /metrics HTTP/1.1\r\n\r\n")
        assert data == b""
        # The held ones are served: a full request each gets its answer.
        for s in held[:2]:
            s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
            assert s.recv(12) == b"HTTP/1.1 200"
    finally:
        for s in held:
            s.close()
    # Freed slots serve again (once the server has read the closes), and
    # the data path never noticed.
    deadline = time.monotonic() + TIMEOUT
    while True:
        data, _ = http(port, b"GET /metrics HTTP/1.1\r\n\r\n")
        if data:
            break
        assert time.monotonic() < deadline, "no slot freed"
        time.sleep(0.02)  # sleep-ok: retry until the closes are read
    samples = parse(response(data)[2].decode())
    assert total(samples, "tcpkit_connections_accepted_total") == 0
    echo_clients(srv.port)
    assert srv.stop() == 0


def test_metrics_usage_errors():
    for args, msg in [
            (["serve", "--metrics", "99999"], "port '99999' out of range"),
            (["serve", "--metrics", "unix:/tmp/x"], "not taken here"),
            (["serve", "-u", "--metrics", "0"], "--metrics"),
            (["listen", "-u", "--metrics", "0", "0"], "--metrics"),
            (["relay", "--metrics", "0", "udp://127.0.0.1:0",
              "udp://127.0.0.1:9"], "--metrics")]:  # port-ok: never used
        p = run(args)
        assert p.returncode == 64, (args, p.stderr)
        assert msg in p.stderr.decode(), (args, p.stderr)


class Cells(HTMLParser):
    """The status page's counter cells: {(data-k, data-w): text}, and the
    listener cells {(data-listener, data-w): text}."""

    def __init__(self):
        super().__init__()
        self.cells, self.listeners, self.tags = {}, {}, []
        self._cur = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "td" and ("data-k" in a or "data-listener" in a):
            self._cur = a
            self._text = ""

    def handle_data(self, data):
        if self._cur is not None:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cur is not None:
            a = self._cur
            if "data-k" in a:
                self.cells[(a["data-k"], a["data-w"])] = self._text
            else:
                self.listeners[(a["data-listener"], a["data-w"])] = self._text
            self._cur = None


def chromium(args, url, timeout=90):
    base = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
            "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync",
            "--disable-default-apps", "--disable-extensions",
            "--no-proxy-server", "--virtual-time-budget=5000"]
    p = subprocess.run(base + args + [url], capture_output=True,
                       timeout=timeout)
    assert p.returncode == 0, p.stderr.decode(errors="replace")[-2000:]
    return p.stdout.decode()


def test_status_page_in_chromium(serve, tmp_path):
    need("chromium")
    # A listener whose name is markup: the page must show it as text.
    sock = str(tmp_path / "<i>a\\b&amp;.sock")
    srv = serve("-w", "2", "--metrics", "0", "-p", "0", "-H", "127.0.0.1",
                "-H", "unix:" + sock, "echo", listeners=2)
    port = metrics_port(srv.err)
    srv.port = [p for _, p in srv.addrs if p is not None][0]
    # As tcpkit writes it (a backslash as \x5c), in the label escaped.
    unix = [a for a, p in srv.addrs if p is None][0]
    echo_clients(srv.port)
    wait_count(srv.err, r"^closed ", 5)
    text, samples = scrape(port)
    promtool_check(text)
    assert total(samples, "tcpkit_listener_accepted_total",
                 listener=unix) == 0

    url = "http://127.0.0.1:%d/" % port
    profile = str(tmp_path / "chromium-profile")
    dom = chromium(["--user-data-dir=" + profile, "--dump-dom"], url)
    page = Cells()
    page.feed(dom)
    assert 'data-loaded="1"' in dom, dom[-2000:]
    want = {
        "open": "tcpkit_connections_open",
        "accepted": "tcpkit_connections_accepted_total",
        "closed": "tcpkit_connections_closed_total",
        "bytes_in": "tcpkit_received_bytes_total",
        "bytes_out": "tcpkit_sent_bytes_total",
        "tls_failures": "tcpkit_tls_handshake_failures_total",
    }
    for key, name in want.items():
        for k in range(2):
            assert page.cells[(key, str(k))] == "%d" % total(
                samples, name, worker=str(k)), (key, k)
        assert page.cells[(key, "total")] == "%d" % total(samples, name)
    assert page.cells[("rejected", "total")] == "%d" % total(
        samples, "tcpkit_connections_rejected_total", reason="max_conns")
    assert page.cells[("denied", "total")] == "%d" % total(
        samples, "tcpkit_connections_rejected_total", reason="denied")
    assert page.cells[("accepted", "total")] == "5"
    assert page.listeners[("127.0.0.1:%d" % srv.port, "total")] == "5"
    # The markup in the path stayed text: no <i> element anywhere.
    assert page.listeners[(unix, "total")] == "0"
    assert "i" not in page.tags

    outdir = os.path.join(os.path.dirname(TCPKIT), "test-output",
                          "test_metrics")
    os.makedirs(outdir, exist_ok=True)
    shot = os.path.join(outdir, "status-page.png")
    if os.path.exists(shot):
        os.unlink(shot)
    chromium(["--user-data-dir=" + profile, "--screenshot=" + shot,
              "--window-size=1280,720"], url)
    with open(shot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    print("status page screenshot: %s" % shot)
    shutil.rmtree(profile, ignore_errors=True)
    assert srv.stop() == 0
    check_sanitizer(srv.err.text())



def denied_client(port):
    with socket.create_connection(("127.0.0.1", port),
                                  timeout=TIMEOUT) as s:
        assert s.recv(1) == b""


def busy_client(port, then):
    """One client held, the next turned away; then() runs meanwhile."""
    with socket.create_connection(("127.0.0.1", port),
                                  timeout=TIMEOUT) as held:
        held.sendall(b"hi\n")
        assert held.recv(3) == b"hi\n"
        with socket.create_connection(("127.0.0.1", port),
                                      timeout=TIMEOUT) as s:
            assert b"busy" in s.recv(100)
        return then()


def plain_to_tls_client(port):
    with socket.create_connection(("127.0.0.1", port),
                                  timeout=TIMEOUT) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        try:
            while s.recv(4096):
                pass
        except ConnectionResetError:
            pass


# (server options, client, the log line after the count, what it counts)
REFUSALS = {
    "denied": (["--deny", "127.0.0.1", "echo"], denied_client, "^denied ",
               {("tcpkit_connections_rejected_total", ("reason", "denied")):
                1, ("tcpkit_connections_accepted_total", None): 0}),
    "max_conns": (["--max-conns", "1", "line"], busy_client, "^rejected ",
                  {("tcpkit_connections_rejected_total",
                    ("reason", "max_conns")): 1,
                   ("tcpkit_connections_open", None): 1}),
    "tls": (["--tls", "echo"], plain_to_tls_client, "^closed ",
            {("tcpkit_tls_handshake_failures_total", None): 1,
             ("tcpkit_connections_closed_total", None): 1,
             ("tcpkit_connection_errors_total", ("kind", "other")): 1}),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusals_and_tls_failures_counted(serve, case):
    args, client, logged, want = REFUSALS[case]
    srv = serve("-w", "1", "--metrics", "0", "-H", "127.0.0.1", *args)
    port = metrics_port(srv.err)

    def counted():
        wait_count(srv.err, logged, 1)
        return scrape(port)

    if client is busy_client:
        text, samples = busy_client(srv.port, counted)
    else:
        client(srv.port)
        text, samples = counted()
    for (name, label), value in want.items():
        labels = dict([label]) if label else {}
        assert total(samples, name, **labels) == value, (name, label)
    promtool_check(text)
    assert srv.stop() == 0


def test_metrics_port_in_use_fails_at_start():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        where = "127.0.0.1:%d" % taken.getsockname()[1]
        p = run(["serve", "-p", "0", "--metrics", where])
    assert p.returncode == 1
    assert p.stderr.decode().splitlines()[-1] == \
        "tcpkit: metrics %s: Address already in use" % where
