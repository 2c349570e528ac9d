"""catalogue.py: what the comparison suite runs: the servers (one table),
the scenarios and the modes."""
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.join(HERE, "peers")


def peer(script):
    return os.path.join(PEERS, script)


def on_path(prog, *args):
    """prog (found on PATH) and args, or None when it is not installed."""
    exe = shutil.which(prog)
    return [exe] + list(args) if exe else None


def tcpkit(cfg, *args):
    return [cfg.tcpkit, "serve", "echo", "-H", "127.0.0.1", "-p", "0",
            "-q"] + list(args)


# The servers.  argv(cfg, port) is the command line, or None when the
# program is missing; port is a free port for a server that cannot pick
# its own (fixed_port), else None: the server prints "listening on
# HOST:PORT".  tls: runs S8 only (every other server runs S1-S7 only);
# only: the scenarios it runs, if fewer; forking: a process per
# connection (S7 would mean 10,000 processes: not run); pinned: to the
# server's CPU.
SERVERS = {
    "ref": dict(
        label="reference (epoll, C)",
        argv=lambda cfg, port: [cfg.ref, "0"]),
    # splice(2) instead of a copy through user space: the bulk question.
    "ref-splice": dict(
        label="reference, splice (epoll, C)", only={"S5"},
        argv=lambda cfg, port: [cfg.ref_splice, "0"]),
    "tcpkit": dict(
        label="tcpkit serve -w 1",
        argv=lambda cfg, port: tcpkit(cfg, "-w", "1")),
    "tcpkit-w2": dict(
        label="tcpkit serve -w 2 (unpinned)", pinned=False,
        argv=lambda cfg, port: tcpkit(cfg, "-w", "2")),
    "py-threads": dict(
        label="Python threads",
        argv=lambda cfg, port: [sys.executable, peer("py_threads.py"), "0"]),
    "asyncio": dict(
        label="Python asyncio",
        argv=lambda cfg, port: [sys.executable, peer("py_asyncio.py"), "0"]),
    "node": dict(
        label="Node.js net",
        argv=lambda cfg, port: on_path("node", peer("node_net.js"), "0")),
    # Built from peers/go_echo.go at suite start (runner.build_helpers).
    "go": dict(
        label="Go io.Copy",
        argv=lambda cfg, port: [cfg.go_bin, "0"] if cfg.go_bin else None),
    "socat": dict(
        label="socat fork PIPE", fixed_port=True, forking=True,
        argv=lambda cfg, port: on_path(
            "socat", "TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr,"
            "backlog=4096" % port, "PIPE")),
    "ncat": dict(
        label="ncat -k -e cat", fixed_port=True, forking=True,
        argv=lambda cfg, port: on_path(
            "ncat", "-k", "-l", "-m", "20000", "127.0.0.1", str(port),
            "-e", "/bin/cat")),
    # openssl s_server is not one of the TLS servers: it serves one client
    # at a time and does not echo (it copies the client's data to stdout).
    "tcpkit-tls": dict(
        label="tcpkit serve --tls -w 1", tls=True,
        argv=lambda cfg, port: tcpkit(cfg, "-w", "1", "--tls", "--cert",
                                      cfg.cert, "--key", cfg.key)),
    "socat-tls": dict(
        label="socat OPENSSL-LISTEN fork PIPE", tls=True, fixed_port=True,
        forking=True,
        argv=lambda cfg, port: on_path(
            "socat", "OPENSSL-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr,"
            "backlog=4096,cert=%s,key=%s,verify=0" % (port, cfg.cert,
                                                      cfg.key), "PIPE")),
}

LABELS = {name: s["label"] for name, s in SERVERS.items()}
TLS_SERVERS = {name for name, s in SERVERS.items() if s.get("tls")}
FORKING = {name for name, s in SERVERS.items() if s.get("forking")}

# Scenarios: (name, title, bench arguments, what one operation is).
# {n4} and {n7} are the mode's connection counts for S4 and S7.
SCENARIOS = [
    ("S1", "latency: 1 connection, depth 1, 64 B",
     ["echo", "-c", "1", "-d", "1", "-s", "64"], "msg"),
    ("S2", "100 connections, depth 1, 64 B",
     ["echo", "-c", "100", "-d", "1", "-s", "64"], "msg"),
    ("S3", "100 connections, depth 16, 64 B",
     ["echo", "-c", "100", "-d", "16", "-s", "64"], "msg"),
    ("S4", "{n4} connections, depth 1, 64 B",
     ["echo", "-c", "{n4}", "-d", "1", "-s", "64"], "msg"),
    ("S5", "bulk: 10 connections, 64 KiB writes",
     ["bulk", "-c", "10", "-s", "64k"], "MB"),
    ("S6", "connection rate: 50 parallel, connect-line-close",
     ["rate", "-c", "50"], "conn"),
    ("S7", "memory: {n7} idle connections",
     ["idle", "-c", "{n7}"], "conn"),
    # S8: over TLS, against the TLS servers only.
    ("S8a", "TLS handshakes: 50 parallel, full handshake-line-close",
     ["rate", "-c", "50"], "conn"),
    ("S8b", "TLS echo: 100 connections, depth 1, 64 B",
     ["echo", "-c", "100", "-d", "1", "-s", "64"], "msg"),
]

MODES = {
    # duration of a measured run (s), repetitions, S4 and S7 sizes, servers
    "tiny": dict(t=0.3, reps=1, n4=100, n7=200, deadline=50,
                 servers=["ref", "tcpkit", "tcpkit-tls"]),
    "quick": dict(t=0.8, reps=3, n4=1000, n7=10000, deadline=170,
                  servers=["ref", "tcpkit", "go", "node", "asyncio",
                           "tcpkit-tls", "socat-tls"]),
    "full": dict(t=3.0, reps=3, n4=1000, n7=10000, deadline=1140,
                 servers=["ref", "ref-splice", "tcpkit", "tcpkit-w2",
                          "py-threads", "asyncio", "node", "go", "socat",
                          "ncat", "tcpkit-tls", "socat-tls"]),
}


def is_tls(scn):
    return scn.startswith("S8")


def runs_on(scn, name):
    """Whether scenario scn is run against server name."""
    only = SERVERS[name].get("only")
    if only is not None:
        return scn in only
    return is_tls(scn) == (name in TLS_SERVERS)


def base_of(scn):
    """The server ratios are taken against, besides the reference."""
    return "tcpkit-tls" if is_tls(scn) else "tcpkit"
