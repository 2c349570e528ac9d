"""Black-box tests of `tcpkit bench --json`'s histogram and start time and of
`tcpkit bench merge`: three generators run at once against one `tcpkit
serve echo` and are merged; the merge is checked against sums and
percentiles computed here from the three documents, merges of merges equal
the merge of all, and every refused input gives one line and its exit
code.  docs/deploy.md's multi-generator set-up, on loopback."""
import json
import math
import re
import signal
import subprocess
import time

import pytest

from tkhelpers import TCPKIT, Server, check_sanitizer, free_port, run

PCTS = {"p50": 50, "p90": 90, "p99": 99, "p99_9": 99.9, "p99_99": 99.99}
COUNTS = ["connections", "established", "open_at_end", "threads", "messages",
          "drained", "bytes_sent", "bytes_received"]


def merge(*args, input=None):
    return run(["bench", "merge"] + [str(a) for a in args], input=input)


def merge_json(*args, input=None):
    p = merge("--json", *args, input=input)
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    return json.loads(p.stdout)


def percentile(buckets, lo, hi, p):
    """The documented rule: nearest rank (ceil(p% x count), at least 1),
    the midpoint of the bucket holding it, clamped to [min, max]."""
    count = sum(b["count"] for b in buckets)
    rank = max(1, math.ceil(p / 100.0 * count))
    seen = 0
    for b in sorted(buckets, key=lambda b: b["index"]):
        seen += b["count"]
        if seen >= rank:
            mid = b["low"] + (b["high"] - b["low"]) // 2
            return min(max(mid, lo), hi)
    raise AssertionError("rank %d past the buckets" % rank)


def check_percentiles(doc):
    h = doc["histogram"]
    for name, p in PCTS.items():
        assert doc["latency_ns"][name] == percentile(h["buckets"], h["min"],
                                                     h["max"], p), name
    assert doc["latency_ns"]["min"] == h["min"]
    assert doc["latency_ns"]["max"] == h["max"]
    assert doc["latency_ns"]["count"] == h["count"]
    assert doc["latency_ns"]["mean"] == pytest.approx(h["sum"] / h["count"],
                                                      abs=0.06)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three generators started at once against one server, all told to
    begin at the same --start-at; their documents as (paths, docs)."""
    tmp = tmp_path_factory.mktemp("merge")
    srv = Server("echo", "-q")
    try:
        # Far enough ahead for three sanitized processes to connect on a
        # busy machine.
        at = time.time() + 3.0
        procs, paths = [], []
        for i in range(3):
            paths.append(tmp / ("gen%d.json" % i))
            procs.append(subprocess.Popen(
                [TCPKIT, "bench", "127.0.0.1", str(srv.port), "-c", "2",
                 "-n", str(200 + 100 * i), "--json", "--start-at",
                 "%.6f" % at],
                stdout=open(paths[-1], "wb"), stderr=subprocess.PIPE))
        for p in procs:
            _, err = p.communicate(timeout=60)
            check_sanitizer(err)
            assert p.returncode == 0, err
    finally:
        srv.stop()
    docs = [json.loads(p.read_text()) for p in paths]
    return paths, docs, at


def test_json_carries_histogram_and_start(runs):
    paths, docs, at = runs
    for doc in docs:
        assert doc["format_version"] == 1
        h = doc["histogram"]
        assert (h["scheme"], h["unit"], h["sub_bits"], h["max_bits"]) == \
            ("log-linear", "ns", 8, 42)
        assert h["count"] == doc["messages"] > 0
        assert sum(b["count"] for b in h["buckets"]) == h["count"]
        assert all(b["count"] > 0 and b["low"] <= b["high"]
                   for b in h["buckets"])
        # The summary's percentiles come from these very buckets.
        check_percentiles(doc)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z",
                            doc["start"])
        assert doc["end_unix"] - doc["start_unix"] == \
            pytest.approx(doc["measured_s"], abs=2e-6)
        # --start-at: none began before the time, all soon after it.
        assert at <= doc["start_unix"] < at + 3.0
        assert doc["generators"] == 1
        # Existing fields stay.
        for k in COUNTS + ["latency_ns", "errors", "series", "cpu"]:
            assert k in doc


def test_three_generators_merge_exactly(runs):
    paths, docs, _ = runs
    m = merge_json(*paths)
    for k in COUNTS:
        assert m[k] == sum(d[k] for d in docs), k
    assert m["errors"] == {k: sum(d["errors"][k] for d in docs)
                           for k in docs[0]["errors"]}
    assert m["generators"] == 3
    # The histogram is the bucket-wise sum of the three.
    want = {}
    for d in docs:
        for b in d["histogram"]["buckets"]:
            want[b["index"]] = want.get(b["index"], 0) + b["count"]
    got = {b["index"]: b["count"] for b in m["histogram"]["buckets"]}
    assert got == want
    h = m["histogram"]
    assert h["count"] == sum(d["histogram"]["count"] for d in docs)
    assert h["sum"] == sum(d["histogram"]["sum"] for d in docs)
    assert h["min"] == min(d["histogram"]["min"] for d in docs)
    assert h["max"] == max(d["histogram"]["max"] for d in docs)
    check_percentiles(m)
    # The span: earliest start to latest end; both rates.
    start = min(d["start_unix"] for d in docs)
    end = max(d["end_unix"] for d in docs)
    assert m["start_unix"] == start and m["end_unix"] == end
    assert m["start"] == min(d["start"] for d in docs)
    assert m["measured_s"] == pytest.approx(end - start, abs=2e-6)
    assert m["messages_per_s"] == pytest.approx(m["messages"] / (end - start),
                                                rel=1e-3)
    assert m["messages_per_s_sum"] == pytest.approx(
        sum(d["messages_per_s"] for d in docs), rel=1e-6)


def test_merge_of_merges_equals_merge_of_all(runs, tmp_path):
    paths, docs, _ = runs
    all3 = merge_json(*paths)
    ab = tmp_path / "ab.json"
    ab.write_bytes(merge("--json", paths[0], paths[1]).stdout)
    # The third from stdin.
    again = merge_json(ab, "-", input=paths[2].read_bytes())
    assert again.pop("messages_per_s_sum") == \
        pytest.approx(all3.pop("messages_per_s_sum"), abs=0.002)
    assert again == all3


def test_text_report_says_which_rate_is_which(runs):
    paths, docs, _ = runs
    p = merge(*paths)
    assert p.returncode == 0 and p.stderr == b""
    out = p.stdout.decode()
    total = sum(d["messages"] for d in docs)
    assert "generators:  3 runs merged, from %s to " % \
        min(d["start"] for d in docs) in out
    assert re.search(r"^messages:    %d \([\d.]+/s over the whole span; "
                     r"[\d.]+/s summed over the generators\)$" % total,
                     out, re.M), out
    assert "(from the send to the echo; %d samples)" % total in out


def edited(runs, tmp_path, name, change):
    doc = json.loads(runs[0][0].read_text())
    change(doc)
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def refused(p, path, why):
    assert p.returncode == 65, p.stderr
    assert p.stdout == b""
    line = p.stderr.decode()
    assert line.count("\n") == 1
    assert line.startswith("tcpkit: bench merge %s: " % path), line
    assert why in line, line


def test_malformed_file_is_refused(runs, tmp_path):
    good = runs[0][0]
    cut = tmp_path / "cut.json"
    text = good.read_bytes().rstrip(b"\n")[:-1]  # the closing brace
    cut.write_bytes(text)
    refused(merge(good, cut), cut,
            ": line 1, column %d: expected ',' or '}'" % (len(text) + 1))
    trailing = tmp_path / "trailing.json"
    trailing.write_text('{"format_version": 1,}')
    refused(merge(trailing), trailing, "line 1, column 22: expected a key")
    notbench = tmp_path / "list.json"
    notbench.write_text("[1, 2]")
    refused(merge(notbench), notbench, "not a JSON object")


def test_missing_file(runs, tmp_path):
    missing = tmp_path / "nope.json"
    p = merge(runs[0][0], missing)
    assert p.returncode == 66
    assert p.stdout == b""
    assert p.stderr == ("tcpkit: bench merge %s: No such file or directory\n"
                        % missing).encode()


def test_other_format_version_is_refused(runs, tmp_path):
    path = edited(runs, tmp_path, "v2.json",
                  lambda d: d.update(format_version=2))
    refused(merge(runs[0][0], path), path,
            "format version 2, this tcpkit reads version 1")


def test_other_bucket_scheme_is_refused(runs, tmp_path):
    path = edited(runs, tmp_path, "sub7.json",
                  lambda d: d["histogram"].update(sub_bits=7))
    refused(merge(path), path, "bucket scheme differs")
    # Bounds that are not those of the index.
    def shift(d):
        d["histogram"]["buckets"][0]["low"] += 1
    path = edited(runs, tmp_path, "bounds.json", shift)
    refused(merge(path), path, "not this tcpkit's bucket scheme")


def test_other_mode_is_refused_other_target_warned(runs, tmp_path):
    bulk = edited(runs, tmp_path, "bulk.json", lambda d: d.update(mode="bulk"))
    refused(merge(runs[0][1], bulk), bulk,
            "a bulk run, not echo as the first")
    other = edited(runs, tmp_path, "other.json",
                   lambda d: d.update(target="localhost:7"))  # port-ok
    p = merge("--json", runs[0][1], other)
    assert p.returncode == 0
    assert p.stderr.decode() == (
        "tcpkit: warning %s: target localhost:7 differs from the first's, "
        "%s (merged all the same)\n" % (other, runs[1][1]["target"]))
    assert json.loads(p.stdout)["generators"] == 2


def test_failed_run_document_is_refused(tmp_path):
    path = tmp_path / "failed.json"
    p = run(["bench", "127.0.0.1", str(free_port()), "-c", "1", "-t", "1",
             "--json"])
    assert p.returncode == 69
    path.write_bytes(p.stdout)
    refused(merge(path), path, "the run failed (")


def test_usage_errors():
    p = merge()
    assert p.returncode == 64
    assert p.stderr == b"tcpkit: bench: merge needs FILE... (the --json " \
        b"documents of the runs, - for stdin) (see 'tcpkit help bench')\n"
    p = merge("-", "-", input=b"")
    assert p.returncode == 64
    assert b"merge reads stdin (-) once only" in p.stderr


def test_failed_write_is_an_error(runs):
    with open("/dev/full", "wb") as full:
        p = subprocess.run([TCPKIT, "bench", "merge", str(runs[0][0])],
                           stdout=full, stderr=subprocess.PIPE, timeout=20)
    check_sanitizer(p.stderr)
    assert p.returncode == 1
    assert p.stderr == b"tcpkit: bench merge stdout: write failed: " \
        b"No space left on device\n"


@pytest.mark.parametrize("udp,fmt", [(False, ["--json"]), (False, []),
                                     (True, ["--json"])])
def test_bench_report_lost_to_a_failed_write_is_an_error(udp, fmt):
    """bench's own report (--json, text, -u) on a full stdout: one line and
    exit 1, as bench merge's, never a run that seems to have passed."""
    srv = Server("echo", "-q", *(["-u"] if udp else []))
    try:
        with open("/dev/full", "wb") as full:
            p = subprocess.run(
                [TCPKIT, "bench"] + (["-u"] if udp else []) +
                ["127.0.0.1", str(srv.port), "-c", "1", "-n", "3"] + fmt,
                stdout=full, stderr=subprocess.PIPE, timeout=20)
    finally:
        srv.stop()
    check_sanitizer(p.stderr)
    assert p.stderr == b"tcpkit: bench stdout: write failed: " \
        b"No space left on device\n"
    assert p.returncode == 1


@pytest.mark.parametrize("value,msg", [
    ("2026-02-30T10:00:00Z", "--start-at needs a time, RFC 3339 "
     "(2026-12-03T17:00:00Z) or Unix time, not '2026-02-30T10:00:00Z'"),
    ("2026-12-03 17:00:00", "--start-at needs a time, RFC 3339 "
     "(2026-12-03T17:00:00Z) or Unix time, not '2026-12-03 17:00:00'"),
    ("1.", "--start-at needs a time, RFC 3339 (2026-12-03T17:00:00Z) or "
     "Unix time, not '1.'"),
    ("4102444800", "--start-at 4102444800 is more than a day ahead"),
    # Past 2554 the nanoseconds overflow 64 bits: still far ahead, never
    # a time wrapped into the past that would start at once.
    ("18446744079", "--start-at 18446744079 is more than a day ahead"),
    ("99999999999", "--start-at 99999999999 is more than a day ahead"),
    ("2600-01-01T00:00:00Z",
     "--start-at 2600-01-01T00:00:00Z is more than a day ahead"),
])
def test_start_at_usage_errors(value, msg):
    p = run(["bench", "127.0.0.1", "7", "--start-at", value])  # port-ok
    assert p.returncode == 64
    assert p.stderr == ("tcpkit: bench: %s (see 'tcpkit help bench')\n"
                        % msg).encode()


def test_start_at_is_for_tcp():
    p = run(["bench", "-u", "127.0.0.1", "7", "--start-at", "1"])  # port-ok
    assert p.returncode == 64
    assert p.stderr == b"tcpkit: bench: -u/--udp: no --start-at (TCP modes " \
        b"only) (see 'tcpkit help bench')\n"


def test_start_at_offset_and_past_time(tmp_path):
    """An RFC 3339 time with an offset is the same instant in UTC; a time
    already past begins at once."""
    srv = Server("echo", "-q")
    try:
        at = int(time.time()) + 2
        offset = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at + 3600))
        p = run(["bench", "127.0.0.1", str(srv.port), "-c", "1", "-n", "5",
                 "--json", "--start-at", offset + ".25+01:00"])
        assert p.returncode == 0, p.stderr
        doc = json.loads(p.stdout)
        assert at + 0.25 <= doc["start_unix"] < at + 1.25
        t0 = time.time()
        p = run(["bench", "127.0.0.1", str(srv.port), "-c", "1", "-n", "5",
                 "--json", "--start-at", "1000000000"])
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["start_unix"] >= t0
    finally:
        srv.stop()


def test_run_stopped_before_start_at_has_no_window(tmp_path):
    """SIGINT while waiting for --start-at: the document says there was no
    window (start null), and bench merge refuses it."""
    srv = Server("echo")  # not quiet: it logs each connection
    bp = subprocess.Popen([TCPKIT, "bench", "127.0.0.1", str(srv.port),
                           "-c", "2", "--json", "--start-at",
                           "%.6f" % (time.time() + 60)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        srv.wait_connections(2)
        bp.send_signal(signal.SIGINT)
        out, err = bp.communicate(timeout=15)
    finally:
        if bp.poll() is None:
            bp.kill()
            bp.wait()
        srv.stop()
    check_sanitizer(err)
    doc = json.loads(out)
    assert doc["interrupted"] is True
    assert doc["start"] is None and doc["end_unix"] is None
    assert doc["messages"] == 0
    path = tmp_path / "stopped.json"
    path.write_bytes(out)
    refused(merge(path), path, "no measured window: the run was stopped "
            "before it began")


def test_udp_document_has_histogram_and_is_refused(tmp_path):
    srv = Server("echo", "-q", "-u")
    try:
        p = run(["bench", "-u", "127.0.0.1", str(srv.port), "-c", "1",
                 "-t", "1", "--json"])
    finally:
        srv.stop()
    assert p.returncode == 0, p.stderr
    # bench -u's document carries its histogram and window too.
    doc = json.loads(p.stdout)
    h = doc["histogram"]
    assert h["count"] == sum(b["count"] for b in h["buckets"]) > 0
    assert doc["latency_ns"]["p99"] == percentile(h["buckets"], h["min"],
                                                  h["max"], 99)
    assert doc["end_unix"] - doc["start_unix"] == \
        pytest.approx(doc["duration_ns"] / 1e9, abs=2e-6)
    path = tmp_path / "udp.json"
    path.write_bytes(p.stdout)
    refused(merge(path), path, "a UDP run (bench -u): bench merge reads "
            "TCP runs only")
