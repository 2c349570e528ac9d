"""The man pages and the program's help agree, mechanically: every command
has its page, every option of `tcpkit CMD --help` is in that page with the
same letter, no page documents an option the program lacks, and the pages
render cleanly (man -l, mandoc -T lint).  docs/man/*.scd are the sources; the
build renders them with scdoc into BUILD/man/."""
import glob
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT, TCPKIT, run

MAN_SRC = os.path.join(ROOT, "docs", "man")
# An option spec in a help text: "-p, --port PORT", "--cert FILE, --key FILE",
# "-4, -6"; the argument is upper case or a literal like sha256:HEX, 1.2|1.3
# or 'NAME: VALUE'.
ARG = r"(?:[A-Z][A-Z0-9_]*|sha256:HEX|[\w.]+\|[\w.|]+|'[A-Z]+: [A-Z]+')"
# An optional value is bracketed: "--keepalive[=IDLE,INTVL,CNT]".
OPT = r"--?\w[\w-]*(?:\[=[A-Z,]+\])?(?: " + ARG + ")?"
SPEC = re.compile(r"^\s+(" + OPT + r"(?:, " + OPT + r")*,?)(?:\s{2,}.*)?$")
BOLD_OPT = re.compile(r"\*(--?\w[\w-]*)\*")


def overview():
    p = run(["help"])
    assert p.returncode == 0
    return p.stdout.decode()


def commands():
    """(name, summary) of each command `tcpkit help` lists."""
    text = overview()
    block = text.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    return [tuple(re.match(r"  (\S+)\s+(.*)", l).groups())
            for l in block.splitlines()]


PAGED = [c for c, _ in commands() if c not in ("help", "version")]


def help_specs(cmd):
    """The option specs of `tcpkit CMD --help`, one list per entry."""
    p = run([cmd, "--help"])
    assert p.returncode == 0
    specs, cont = [], None
    for line in p.stdout.decode().splitlines():
        m = SPEC.match(line)
        if not m:
            cont = None
            continue
        opts = [re.split(r"[ \[]", o)[0]
                for o in m.group(1).rstrip(",").split(", ")]
        if cont is not None:
            cont.extend(opts)
        else:
            specs.append(opts)
        cont = specs[-1] if m.group(1).endswith(",") else None
    return specs


def page_source(name):
    with open(os.path.join(MAN_SRC, name + ".scd")) as f:
        return f.read()


@pytest.mark.parametrize("cmd", PAGED)
def test_every_help_option_is_in_the_man_page(cmd):
    src = page_source("tcpkit-%s.1" % cmd)
    specs = help_specs(cmd)
    assert specs, "no options found in `tcpkit %s --help`" % cmd
    missing = []
    for opts in specs:
        for o in opts:
            if "*%s*" % o not in src:
                missing.append(o)
        # The same letter for the same long option: "*-p*, *--port*".
        for short, long in zip(opts, opts[1:]):
            if re.fullmatch(r"-\w", short) and long.startswith("--") and \
                    not re.search(r"\*%s\*, \*%s\*" % (re.escape(short),
                                                       re.escape(long)), src):
                missing.append("'%s, %s' together" % (short, long))
    assert not missing, "tcpkit-%s.1.scd lacks: %s" % (cmd, ", ".join(missing))


@pytest.mark.parametrize("cmd", PAGED)
def test_man_page_has_no_option_the_program_lacks(cmd):
    known = {o for opts in help_specs(cmd) for o in opts}
    documented = set(BOLD_OPT.findall(page_source("tcpkit-%s.1" % cmd)))
    extra = sorted(documented - known)
    assert not extra, "tcpkit-%s.1.scd documents %s, which `tcpkit %s " \
        "--help` does not list" % (cmd, ", ".join(extra), cmd)


@pytest.mark.parametrize("cmd,summary", [c for c in commands()
                                         if c[0] in PAGED])
def test_man_page_name_line_is_the_help_summary(cmd, summary):
    src = page_source("tcpkit-%s.1" % cmd)
    assert "\ntcpkit-%s - %s\n" % (cmd, summary) in src


def test_tcpkit_1_lists_every_command_and_exit_code():
    src = page_source("tcpkit.1")
    for cmd, _ in commands():
        assert re.search(r"^\*%s\*" % cmd, src, re.M), cmd
    for cmd in PAGED:
        assert "*tcpkit-%s*(1)" % cmd in src, cmd
    codes = re.findall(r"^  (\d+) ", overview().split("Exit codes:\n")[1],
                       re.M)
    assert codes
    for code in codes:
        assert re.search(r"^\*%s\*$" % code, src, re.M), code
    for o in ("--help", "--version"):
        assert "*%s*" % o in src


def test_every_page_source_is_a_command_or_the_library():
    pages = sorted(os.path.basename(p)[:-4]
                   for p in glob.glob(os.path.join(MAN_SRC, "*.scd")))
    want = sorted(["tcpkit.1", "libtcpkit.3"] +
                  ["tcpkit-%s.1" % c for c in PAGED])
    assert pages == want


def rendered_pages():
    """The pages the build made (next to the tcpkit binary)."""
    d = os.path.join(os.path.dirname(TCPKIT), "man")
    pages = sorted(p for p in glob.glob(os.path.join(d, "*.[0-9]")))
    sources = glob.glob(os.path.join(MAN_SRC, "*.scd"))
    assert sources, "no man page sources in " + MAN_SRC
    assert len(pages) == len(sources), \
        "the build did not render every page into %s (scdoc missing?)" % d
    return pages


def test_pages_render_with_man():
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    for page in rendered_pages():
        p = subprocess.run(["man", "--warnings", "-l", page],
                           capture_output=True, text=True, timeout=30,
                           env=env)
        assert p.returncode == 0 and p.stderr == "", (page, p.stderr)
        assert "NAME" in p.stdout and "SYNOPSIS" in p.stdout, page


@pytest.mark.skipif(shutil.which("mandoc") is None,
                    reason="mandoc not installed (Debian package mandoc)")
def test_pages_are_mandoc_lint_clean():
    for page in rendered_pages():
        p = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", page],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and p.stdout + p.stderr == "", \
            (page, p.stdout + p.stderr)
