"""Shell completion (contrib/completion): bash's and zsh's complete the
commands, each command's options as its --help lists them, the services of
serve, the modes of bench, and option values; run in the real shells with
the real tcpkit."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT, TCPKIT, run

BASH = os.path.join(ROOT, "contrib", "completion", "tcpkit.bash")
ZSH = os.path.join(ROOT, "contrib", "completion", "_tcpkit")

SERVICES = ["echo", "discard", "welcome", "basic", "line", "broker",
            "chat", "socks5"]
MODES = ["echo", "bulk", "rate", "greet", "idle"]


def help_text(cmd=None):
    p = run([cmd, "--help"] if cmd else ["help"])
    assert p.returncode == 0
    return p.stdout.decode()


def commands():
    block = help_text().split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    return [l.split()[0] for l in block.splitlines()]


def long_options(cmd):
    """Every --option of the command's help, where it names one (the start of
    an option line, or after a comma)."""
    text = help_text(cmd)
    return sorted(set(re.findall(r"(?m)(?:^\s+|, )(--\w[\w-]*)", text)))


def section_words(cmd, title):
    """The first word of each entry of a section such as "Services:"."""
    block = help_text(cmd).split(title + ":\n", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"(?m)^  (\w+)", block)


def bash_complete(*words):
    """COMPREPLY for the command line `tcpkit WORDS...` (the last word is the
    one being completed)."""
    script = ('source "$1"; shift; COMP_WORDS=("$@"); '
              'COMP_CWORD=$(($# - 1)); _tcpkit; '
              'printf "%s\\n" "${COMPREPLY[@]}"')
    p = subprocess.run(["bash", "--norc", "-c", script, "bash", BASH, TCPKIT]
                       + list(words), capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    return sorted(l for l in p.stdout.splitlines() if l)


def zsh_complete(*words):
    """What _tcpkit offers for `tcpkit WORDS...`, with compadd and _describe
    replaced by functions that print their candidates."""
    script = r'''
compadd() {
	local a
	while [[ $1 == -* ]]; do
		case $1 in
		-a) shift; for a in ${(P)1}; do print -r -- $a; done; return ;;
		--) shift; break ;;
		*) shift ;;
		esac
	done
	print -rl -- "$@"
}
_describe() { local a; for a in ${(P)4}; do print -r -- ${a%%:*}; done }
_files() { print -r -- '<files>' }
_default() { print -r -- '<default>' }
zf=$1; shift
words=("$@")
CURRENT=$#
PREFIX=${words[CURRENT]}
source $zf
'''
    p = subprocess.run(["zsh", "-f", "-c", script, "zsh", ZSH, TCPKIT]
                       + list(words), capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    return sorted(l for l in p.stdout.splitlines() if l)


def starting(words, prefix):
    return sorted(w for w in words if w.startswith(prefix))


def test_completion_files_parse():
    subprocess.run(["bash", "-n", BASH], check=True, timeout=30)
    if shutil.which("zsh"):
        subprocess.run(["zsh", "-n", ZSH], check=True, timeout=30)


def test_bash_commands():
    got = bash_complete("")
    assert got == sorted(commands() + ["--help", "--version"])
    assert bash_complete("se") == ["send", "serve"]


@pytest.mark.parametrize("cmd", ["resolve", "interfaces", "connect", "send",
                                 "get", "serve", "relay", "bench"])
def test_bash_every_long_option(cmd):
    got = bash_complete(cmd, "--")
    assert got == long_options(cmd)


def test_bash_services_modes_and_values():
    assert section_words("serve", "Services") == SERVICES
    assert section_words("bench", "Modes") == MODES
    assert bash_complete("serve", "") == sorted(SERVICES)
    # merge is bench's sub-command, beside its modes.
    assert bash_complete("bench", "") == sorted(MODES + ["merge"])
    assert bash_complete("serve", "--log-format", "") == \
        ["json", "logfmt", "text"]
    assert bash_complete("connect", "--tls-min", "") == ["1.2", "1.3"]
    assert bash_complete("relay", "--send-proxy", "") == ["v1", "v2"]
    assert bash_complete("relay", "--client-auth", "") == \
        ["optional", "required"]
    assert bash_complete("get", "--proxy", "so") == \
        ["socks4a://", "socks5://", "socks5h://"]
    assert bash_complete("help", "in") == ["interfaces"]


needs_zsh = pytest.mark.skipif(shutil.which("zsh") is None,
                               reason="zsh not installed (Debian package zsh)")


@needs_zsh
def test_zsh_commands_and_services():
    assert zsh_complete("") == sorted(commands())
    assert zsh_complete("serve", "") == sorted(SERVICES)
    assert zsh_complete("bench", "") == sorted(MODES + ["merge"])
    assert zsh_complete("serve", "--client-auth", "") == \
        ["optional", "required"]
    assert zsh_complete("get", "--cacert", "") == ["<files>"]


@needs_zsh
@pytest.mark.parametrize("cmd", ["resolve", "connect", "serve", "relay",
                                 "bench"])
def test_zsh_every_long_option(cmd):
    got = zsh_complete(cmd, "--")
    assert starting(got, "--") == long_options(cmd)


@pytest.mark.parametrize("opt", ["--allow-file", "--deny-file", "--hexdump",
                                 "-x", "--handoff"])
def test_bash_file_options_complete_files(opt, tmp_path):
    (tmp_path / "rules.txt").write_text("127.0.0.1\n")
    assert bash_complete("relay", opt, str(tmp_path / "ru")) == \
        [str(tmp_path / "rules.txt")]


@needs_zsh
@pytest.mark.parametrize("opt", ["--allow-file", "--deny-file", "--hexdump",
                                 "-x", "--handoff"])
def test_zsh_file_options_complete_files(opt):
    assert zsh_complete("relay", opt, "") == ["<files>"]


def test_bash_bench_merge_completes_files(tmp_path):
    (tmp_path / "gen1.json").write_text("{}\n")
    assert bash_complete("bench", "merge", str(tmp_path / "ge")) == \
        [str(tmp_path / "gen1.json")]
    assert bash_complete("bench", "merge", "a.json", str(tmp_path / "ge")) \
        == [str(tmp_path / "gen1.json")]
