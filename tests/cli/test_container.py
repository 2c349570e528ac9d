"""The Dockerfile, checked without a container runtime: two Debian 12 slim
stages, the build stage running the project's own scripts/deps and make
targets (the same make build CI runs), the runtime stage holding the
program and the packages its shared libraries come from, a numeric non-root
user, no port exposed; and what the build stage installs is where the
runtime stage copies it from.  docs/deploy.md's "In a container"."""
import os
import re
import shlex
import subprocess

import pytest

from tkhelpers import TCPKIT

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
BASE = "debian:bookworm-slim"


def instructions():
    """(stage index, INSTRUCTION, arguments) of the Dockerfile, continued
    lines joined, comments left out."""
    with open(os.path.join(ROOT, "Dockerfile")) as f:
        text = re.sub(r"\\\n", " ", f.read())
    out, stage = [], -1
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, args = line.partition(" ")
        if word == "FROM":
            stage += 1
        out.append((stage, word, args.strip()))
    return out


def stage(n, word):
    return [a for s, w, a in instructions() if s == n and w == word]


def test_two_pinned_debian_slim_stages():
    froms = [a for _, w, a in instructions() if w == "FROM"]
    assert froms == [BASE + " AS build", BASE]
    assert "latest" not in open(os.path.join(ROOT, "Dockerfile")).read()


def test_runtime_stage_non_root_no_port_entrypoint():
    users = stage(1, "USER")
    assert len(users) == 1 and re.fullmatch(r"\d+:\d+", users[0]), users
    uid = users[0].split(":")[0]
    assert uid != "0"
    # The user the image creates has that number.
    assert any("useradd" in r and "--uid %s " % uid in r
               for r in stage(1, "RUN"))
    assert stage(1, "ENTRYPOINT") == ['["tcpkit"]']
    assert stage(1, "CMD") == ['["help"]']
    assert not [a for _, w, a in instructions() if w == "EXPOSE"]
    # Only the program comes from the build stage.
    assert stage(1, "COPY") == [
        "--from=build /stage/usr/local/bin/tcpkit /usr/local/bin/tcpkit"]


def apt_installs(run):
    """The packages of each apt-get install in a RUN, with its flags."""
    out = []
    for cmd in re.split(r"&&|;", run):
        words = shlex.split(cmd)
        if words[:2] == ["apt-get", "install"]:
            out.append(words[2:])
    return out


def runtime_packages():
    pkgs = []
    for run in stage(1, "RUN"):
        for words in apt_installs(run):
            assert "--no-install-recommends" in words
            pkgs += [w for w in words if not w.startswith("-")]
        if "apt-get" in run:
            assert "rm -rf /var/lib/apt/lists/*" in run
    return pkgs


def test_every_install_without_recommends():
    assert sorted(runtime_packages()) == ["ca-certificates", "libssl3"]
    # The build stage installs through scripts/deps, which passes it too.
    assert any(r.startswith("./scripts/deps build") for r in stage(0, "RUN"))
    with open(os.path.join(ROOT, "scripts", "deps")) as f:
        deps = f.read()
    assert deps.count("install -y --no-install-recommends") == 2
    assert not re.search(r"\$apt install -y (?!--no-install-recommends)",
                         deps)


def make_commands():
    cmds = []
    for run in stage(0, "RUN"):
        for cmd in run.split("&&"):
            words = shlex.split(cmd)
            if words and words[0] == "make":
                cmds.append(words[1:])
    return cmds


def test_build_stage_runs_the_make_targets_ci_runs():
    cmds = make_commands()
    assert [c[0] for c in cmds] == ["build", "install"]
    assert "WERROR=ON" in cmds[0] and "DEPS=skip" in cmds[0]
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci = f.read()
    assert re.search(r"^make build BUILD=\S+ CC=gcc WERROR=ON$", ci, re.M)
    # Both are real targets taking these variables (a dry run: nothing is
    # built or installed).
    for c in cmds:
        p = subprocess.run(["make", "-n"] + c, cwd=ROOT, capture_output=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr


def test_install_puts_the_program_where_the_runtime_copies_it(tmp_path):
    """make install's layout, from this build: the runtime stage's COPY
    source exists and is the program."""
    build = os.path.dirname(TCPKIT)
    if not os.path.exists(os.path.join(build, "cmake_install.cmake")):
        pytest.skip("TCPKIT is not in a CMake build directory: %s" % build)
    env = dict(os.environ, DESTDIR=str(tmp_path / "stage"))
    p = subprocess.run(["cmake", "--install", build, "--prefix", "/usr/local",
                        "--component", "Unspecified"],
                       env=env, capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    prog = tmp_path / "stage" / "usr" / "local" / "bin" / "tcpkit"
    assert prog.is_file() and os.access(prog, os.X_OK)
    p = subprocess.run([str(prog), "version"], capture_output=True,
                       timeout=20)
    assert p.returncode == 0 and p.stdout.startswith(b"tcpkit ")


def essential_closure():
    """The packages a Debian base image holds for certain: the Essential
    ones and what they depend on directly."""
    p = subprocess.run(["dpkg-query", "-W", "-f",
                        "${Package}\t${Essential}\t${Pre-Depends}, "
                        "${Depends}\n"], capture_output=True, text=True,
                       timeout=60)
    have = set()
    for line in p.stdout.splitlines():
        name, essential, deps = line.split("\t")
        if essential == "yes":
            have.add(name)
            have.update(re.findall(r"(?:^|[,|]\s*)([a-z0-9][a-z0-9+.-]+)",
                                   deps))
    return have


@pytest.mark.skipif(not os.path.exists("/usr/bin/dpkg-query"),
                    reason="not a Debian system (dpkg-query)")
def test_runtime_has_every_shared_library_of_the_program():
    p = subprocess.run(["ldd", TCPKIT], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 0
    libs = re.findall(r"=> (/\S+)", p.stdout)
    runtime = set(runtime_packages()) | essential_closure()
    missing = []
    for lib in libs:
        # The sanitizers are the test build's, not the release's.
        if re.search(r"/lib(asan|ubsan|stdc\+\+|gcc_s)", lib):
            continue
        # dpkg knows a file by the path its package ships (/lib, not
        # /usr/lib, on a merged /usr): try both.
        for path in (lib, os.path.realpath(lib)):
            owner = subprocess.run(["dpkg", "-S", path], capture_output=True,
                                   text=True, timeout=20)
            if owner.returncode == 0:
                break
        pkg = owner.stdout.split(":")[0]
        if owner.returncode != 0 or pkg not in runtime:
            missing.append("%s (%s)" % (lib, pkg or "no package"))
    assert not missing, "the runtime stage lacks: %s" % ", ".join(missing)
