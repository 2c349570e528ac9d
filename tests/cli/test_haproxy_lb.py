"""tcpkit serve behind HAProxy, as in docs/deploy.md "Behind a load
balancer": three instances on port 0 in TCP mode, round robin, health
checks and send-proxy-v2; `tcpkit bench` runs through HAProxy while one
instance is drained (out of HAProxy's rotation, then SIGTERM) and a
fourth is added through HAProxy's runtime API (`add server` on its admin
socket).  Zero failed or corrupted messages; every instance logs the real
client (the bench, on 127.0.0.1), never HAProxy (127.0.0.2)."""
import json
import re
import threading
import time

from haproxyhelpers import haproxy  # noqa: F401
from tkhelpers import TCPKIT, run

TIMEOUT = 20
BENCH_RUNS = 100  # at most, and
BENCH_SECONDS = 90  # at most: the loop stops on the first bound reached
CONNS, COUNT = 8, 50

# The worked example of docs/deploy.md, with the test's ports: HAProxy
# connects from 127.0.0.2, the one address the instances trust.
CONFIG = """frontend fe
    bind fd@{fd}
    default_backend be
backend be
    balance roundrobin
    source 127.0.0.2
    default-server send-proxy-v2 check inter 200ms check-send-proxy
    server s1 127.0.0.1:{p1}
    server s2 127.0.0.1:{p2}
    server s3 127.0.0.1:{p3}
"""
# What `add server` takes: dynamic servers inherit no default-server.
ADD = ("add server be/s4 127.0.0.1:%d send-proxy-v2 check inter 200ms "
       "check-send-proxy")
CLIENT_RE = r"^connection from 127\.0\.0\.1:\d+ at "


def instance(serve):
    return serve("echo", "-H", "127.0.0.1", "--proxy-protocol-from",
                 "127.0.0.2")


def sessions(h, name):
    """HAProxy's current sessions on be/name (show stat's scur)."""
    for line in h.command("show stat").splitlines():
        f = line.split(",")
        if len(f) > 4 and f[0] == "be" and f[1] == name:
            return int(f[4])
    return None


class BenchLoop(threading.Thread):
    """`tcpkit bench echo` through HAProxy, run after run (each a fixed
    count of messages, checked), until told to stop."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop_after = threading.Event()
        self.runs = []

    def run(self):
        t0 = time.monotonic()
        while (len(self.runs) < BENCH_RUNS and
               time.monotonic() - t0 < BENCH_SECONDS):
            p = run(["bench", "echo", "127.0.0.1", str(self.port), "-c",
                     str(CONNS), "-n", str(COUNT), "-t", "20s", "--json"],
                    timeout=60)
            self.runs.append((p.returncode, p.stdout, p.stderr))
            if self.stop_after.is_set():
                return


def test_bench_through_haproxy_while_draining_and_adding(serve, haproxy):
    s = {n: instance(serve) for n in ("s1", "s2", "s3")}
    h = haproxy(CONFIG, p1=s["s1"].port, p2=s["s2"].port, p3=s["s3"].port)
    for n in s:
        h.wait_state("be", n, 2)
    bench = BenchLoop(h.port)
    bench.start()
    try:
        for n in s:
            s[n].err.wait_for(CLIENT_RE, TIMEOUT)
        # Drain s2: out of the rotation first (its sessions finish), then
        # SIGTERM, which drains what is left and exits.
        h.command("set server be/s2 state drain")
        deadline = time.monotonic() + TIMEOUT
        while sessions(h, "s2") != 0:
            assert time.monotonic() < deadline, h.command("show stat")
            time.sleep(0.05)  # sleep-ok: polls HAProxy's counter, bounded
        assert s["s2"].stop() == 0
        h.wait_state("be", "s2", 0)
        # Add s4 at run time.
        s4 = instance(serve)
        assert "New server registered" in h.command(ADD % s4.port)
        h.command("enable server be/s4")
        h.command("enable health be/s4")
        h.wait_state("be", "s4", 2)
        s4.err.wait_for(CLIENT_RE, TIMEOUT)
        n_before = len(bench.runs)
    finally:
        bench.stop_after.set()
        bench.join(BENCH_SECONDS + 60)
    assert not bench.is_alive()
    assert len(bench.runs) > n_before >= 1
    for rc, out, err in bench.runs:
        assert rc == 0, err
        r = json.loads(out)
        assert r["errors"]["total"] == 0, r["first_errors"]
        assert r["messages"] == CONNS * COUNT
        assert r["bytes_received"] == r["bytes_sent"]
    s["s4"] = s4
    for n, srv in s.items():
        text = srv.err.text() if n == "s2" else None
        if n != "s2":
            assert srv.stop() == 0
            text = srv.err.text()
        opened = re.findall(r"^connection from (\S+) at ", text, re.M)
        clients = [a for a in opened if a.startswith("127.0.0.1:")]
        # Every connection is the bench's (its address, from the PROXY
        # header) or a health check (LOCAL: HAProxy's own address).
        assert clients, (n, text)
        assert all(a.startswith(("127.0.0.1:", "127.0.0.2:"))
                   for a in opened), (n, opened)
        assert "refused" not in text, (n, text)
        print(n, len(clients), "client connections,",
              len(opened) - len(clients), "health checks")
    print(len(bench.runs), "bench runs")
