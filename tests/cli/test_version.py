"""tcpkit version and --version: the version, the OpenSSL the program was
built with and the one it runs with, and the event backend."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import TCPKIT, run


def expected_openssl():
    """What the system's openssl says of itself, e.g. "OpenSSL 3.0.19 27 Jan
    2026": the same libcrypto tcpkit loads."""
    p = subprocess.run(["openssl", "version"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 0
    # "OpenSSL 3.0.19 27 Jan 2026 (Library: OpenSSL 3.0.19 27 Jan 2026)":
    # the library's is the one in brackets.
    m = re.search(r"\(Library: (.*)\)", p.stdout)
    return m.group(1) if m else p.stdout.strip()


@pytest.mark.parametrize("args", [["version"], ["--version"]])
def test_version_lines(args):
    p = run(args)
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    lines = p.stdout.decode().splitlines()
    assert re.fullmatch(r"tcpkit \d+\.\d+\.\d+", lines[0]), lines
    assert lines[1].startswith("OpenSSL (built with): OpenSSL 3."), lines
    assert lines[2].startswith("OpenSSL (running): OpenSSL 3."), lines
    # The backend this build chose (ctest says which; run by hand, either).
    want = os.environ.get("TCPKIT_BACKEND")
    assert lines[3] in (["event backend: " + want] if want else
                        ["event backend: epoll", "event backend: poll"]), lines
    assert len(lines) == 4, lines


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")
def test_version_names_the_running_openssl():
    out = run(["--version"]).stdout.decode()
    assert "OpenSSL (running): %s\n" % expected_openssl() in out, out


def test_version_help_and_usage():
    p = run(["version", "--help"])
    assert p.returncode == 0
    assert p.stdout.decode().startswith("usage: tcpkit version\n")
    assert b"OpenSSL" in p.stdout
    p = run(["version", "extra"])
    assert p.returncode == 64
    assert p.stderr.decode() == ("tcpkit: version: unexpected argument "
                                 "'extra' (see 'tcpkit help version')\n")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_version_reports_a_failed_write():
    with open("/dev/full", "wb") as full:
        p = subprocess.run([TCPKIT, "--version"], stdout=full,
                           stderr=subprocess.PIPE, timeout=20)
    assert p.returncode == 1
    assert p.stderr.decode() == ("tcpkit: version stdout: No space left on "
                                 "device\n")


def test_version_is_written_once():
    """The program's version, the header's and the Debian changelog's are
    the same: the build takes it from include/tcpkit.h, and a release that
    moves one must move the changelog too."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    version = run(["version"]).stdout.decode().splitlines()[0].split()[1]
    with open(os.path.join(root, "include", "tcpkit.h")) as f:
        nums = dict(re.findall(r"^#define TK_VERSION_(MAJOR|MINOR|PATCH)\s+"
                               r"(\d+)$", f.read(), re.M))
    assert version == "%s.%s.%s" % (nums["MAJOR"], nums["MINOR"],
                                    nums["PATCH"])
    with open(os.path.join(root, "debian", "changelog")) as f:
        m = re.match(r"tcpkit \(([^)-]+)", f.readline())
    assert m and m.group(1) == version, m
