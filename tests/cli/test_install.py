"""make install, as a user of the library meets it: into a private prefix and
staged under DESTDIR, then a program built out of tree against the installed
copy with pkg-config and with CMake's find_package(tcpkit), and run; make
uninstall then removes exactly what was installed.  (Installing into
/usr/local itself, where ldconfig must run, is tests/pkg/ci.sh's: CI only.)"""
import os
import shutil
import subprocess

import pytest

from conftest import ROOT

EXAMPLE = os.path.join(ROOT, "examples", "resolve.c")
TIMEOUT = 300

CONSUMER_CMAKE = """\
cmake_minimum_required(VERSION 3.18)
project(consumer C)
find_package(tcpkit 0.1 REQUIRED)
add_executable(resolve_shared {src})
target_link_libraries(resolve_shared PRIVATE tcpkit::tcpkit)
add_executable(resolve_static {src})
target_link_libraries(resolve_static PRIVATE tcpkit::tcpkit_static)
"""

# What an install must hold, relative to the prefix.
INSTALLED = [
    "bin/tcpkit",
    "include/tcpkit.h",
    "include/tcpkit/acl.h",
    "lib/libtcpkit.so.0",
    "lib/libtcpkit.a",
    "lib/pkgconfig/tcpkit.pc",
    "lib/cmake/tcpkit/tcpkitConfig.cmake",
    "share/man/man1/tcpkit.1",
    "share/man/man1/tcpkit-serve.1",
    "share/man/man3/libtcpkit.3",
    "share/bash-completion/completions/tcpkit",
    "share/zsh/site-functions/_tcpkit",
]


def clean_env(**extra):
    """The environment without the outer make's jobserver, which a make
    started from a test must not inherit."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env.update(extra)
    return env


def sh(args, cwd=None, env=None):
    p = subprocess.run(args, cwd=cwd, env=env or clean_env(),
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 0, "%s: exit %d\n%s\n%s" % (
        " ".join(args), p.returncode, p.stdout, p.stderr)
    return p


def make(target, build, **vars):
    args = ["make", "-C", ROOT, target, "BUILD=" + build, "DEPS=skip",
            "JOBS=2"] + ["%s=%s" % kv for kv in vars.items()]
    return sh(args)


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """One release build for the module's installs."""
    return str(tmp_path_factory.mktemp("build"))


def tree(top):
    """Every path under top, relative, directories with a trailing /."""
    out = set()
    for d, dirs, files in os.walk(top):
        rel = os.path.relpath(d, top)
        for n in dirs:
            out.add(os.path.normpath(os.path.join(rel, n)) + "/")
        for n in files:
            out.add(os.path.normpath(os.path.join(rel, n)))
    return out


def run_resolver(exe, env=None):
    p = subprocess.run([exe, "localhost"], capture_output=True, text=True,
                       timeout=30, env=env)
    assert p.returncode == 0, p.stderr
    assert "127.0.0.1" in p.stdout, p.stdout


def build_consumers(tmp, pc_env, cmake_prefix, libdir):
    """The pkg-config consumer and the CMake one, built and run."""
    exe = os.path.join(tmp, "resolve_pc")
    cflags = sh(["pkg-config", "--cflags", "--libs", "tcpkit"],
                env=pc_env).stdout.split()
    sh(["cc", "-o", exe, EXAMPLE] + cflags)
    run_env = clean_env(LD_LIBRARY_PATH=libdir)
    run_resolver(exe, run_env)
    # The shared library, not a copy linked in.
    ldd = sh(["ldd", exe], env=run_env).stdout
    assert os.path.join(libdir, "libtcpkit.so.0") in ldd, ldd

    src = os.path.join(tmp, "consumer")
    os.mkdir(src)
    with open(os.path.join(src, "CMakeLists.txt"), "w") as f:
        f.write(CONSUMER_CMAKE.format(src=EXAMPLE))
    cbuild = os.path.join(tmp, "consumer-build")
    sh(["cmake", "-S", src, "-B", cbuild, "-G", "Ninja",
        "-DCMAKE_PREFIX_PATH=" + cmake_prefix])
    sh(["cmake", "--build", cbuild])
    run_resolver(os.path.join(cbuild, "resolve_shared"), run_env)
    run_resolver(os.path.join(cbuild, "resolve_static"))


def test_prefix_install_consumers_and_uninstall(build, tmp_path):
    prefix = str(tmp_path / "prefix")
    # Someone else's files in the prefix, which uninstall must leave.
    theirs = ["share/man/man1/other.1", "lib/libother.so.1", "bin/other"]
    for t in theirs:
        os.makedirs(os.path.dirname(os.path.join(prefix, t)), exist_ok=True)
        open(os.path.join(prefix, t), "w").close()
    before = tree(prefix)

    p = make("install", build, PREFIX=prefix)
    # A private prefix is not where ld.so looks: its cache is left alone.
    assert "ldconfig" not in p.stdout + p.stderr
    for rel in INSTALLED:
        assert os.path.exists(os.path.join(prefix, rel)), rel
    v = sh([os.path.join(prefix, "bin", "tcpkit"), "--version"]).stdout
    assert v.startswith("tcpkit 0.1.0\n"), v

    build_consumers(str(tmp_path),
                    clean_env(PKG_CONFIG_PATH=os.path.join(
                        prefix, "lib", "pkgconfig")),
                    prefix, os.path.join(prefix, "lib"))

    make("uninstall", build)
    assert tree(prefix) == before


def test_destdir_install_is_relocatable_and_uninstalls(build, tmp_path):
    dest = str(tmp_path / "stage")
    os.mkdir(dest)
    p = make("install", build, PREFIX="/usr/local", DESTDIR=dest)
    # Staged files are not where they will run: no ldconfig.
    assert "ldconfig" not in p.stdout + p.stderr
    prefix = dest + "/usr/local"
    for rel in INSTALLED:
        assert os.path.exists(os.path.join(prefix, rel)), rel

    # pkg-config through its sysroot, CMake's files from wherever they are.
    build_consumers(str(tmp_path),
                    clean_env(PKG_CONFIG_PATH=prefix + "/lib/pkgconfig",
                              PKG_CONFIG_SYSROOT_DIR=dest),
                    prefix, prefix + "/lib")

    # Removed from where it was staged, DESTDIR given again or not.
    make("uninstall", build)
    assert tree(dest) == set()


@pytest.mark.skipif(shutil.which("ldconfig") is None
                    and not os.path.exists("/sbin/ldconfig"),
                    reason="no ldconfig")
def test_uninstall_without_install_says_so(tmp_path):
    b = str(tmp_path / "b")
    os.mkdir(b)
    p = subprocess.run(["make", "-C", ROOT, "uninstall", "BUILD=" + b,
                        "DEPS=skip"], capture_output=True, text=True,
                       timeout=60, env=clean_env())
    assert p.returncode != 0
    assert "nothing was installed" in p.stderr.replace("\n", " ")
