"""Smoke test of the comparison suite (bench/run.py) in its tiny mode: only
the reference epoll server, tcpkit serve and tcpkit serve --tls (S8),
short runs, every scenario;
the Markdown table and the SVG chart are written with both servers in
them.  Bounded: the suite has its own 50 s deadline."""
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

from tkhelpers import ROOT, TCPKIT

SUITE = os.path.join(ROOT, "bench", "run.py")


def suite(*args, timeout=90):
    return subprocess.run([sys.executable, SUITE, "--tcpkit", TCPKIT]
                          + list(args), capture_output=True, timeout=timeout)


def test_tiny_run_writes_table_and_chart(tmp_path):
    p = suite("--mode", "tiny", "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    md = (tmp_path / "results.md").read_text()
    assert "Incomplete" not in md
    rows = {}
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 14:
            rows[cells[0]] = cells
    assert set(rows) >= {"server", "reference (epoll, C)",
                         "tcpkit serve -w 1"}, md
    for name in ("reference (epoll, C)", "tcpkit serve -w 1"):
        r = rows[name]
        # S1 p50, S2..S6 throughput and CPU, S7 bytes: all measured
        assert re.fullmatch(r"\d+ us", r[1]), r
        for i in (3, 5, 7, 9, 11):
            assert re.fullmatch(r"\d+", r[i]) and int(r[i]) > 0, r
        assert re.fullmatch(r"-?\d+ B", r[13]), r
    assert "## Targets" in md
    assert "Issue" not in md
    # S8, over TLS: tcpkit serve --tls, handshakes/s and echo msg/s
    tls = [line for line in md.splitlines()
           if line.startswith("| tcpkit serve --tls -w 1 |")]
    assert tls, md
    cells = [c.strip() for c in tls[0].strip("|").split("|")]
    assert len(cells) == 5, cells
    for i in (1, 3):
        assert re.fullmatch(r"\d+", cells[i]) and int(cells[i]) > 0, cells
    # The SVG is well-formed and names both servers.
    svg = (tmp_path / "results.svg").read_text()
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert "tcpkit serve -w 1" in svg and "reference (epoll, C)" in svg
    assert (tmp_path / "results.json").exists()


def test_unknown_server_is_a_usage_error(tmp_path):
    p = suite("--servers", "ref,bogus", "--out", str(tmp_path), timeout=30)
    assert p.returncode == 2
    assert p.stderr.decode().endswith("error: unknown server 'bogus'\n")
    assert not (tmp_path / "results.md").exists()
