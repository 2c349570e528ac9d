#!/usr/bin/env bash
# tests/pkg/ci.sh: CI only, as root on a throwaway machine: the installs that
# change the system.  1. `make install` into /usr/local: ldconfig has run, a
# program built with `pkg-config --libs tcpkit` runs without LD_LIBRARY_PATH,
# the man pages are found; `make uninstall` takes all of it away.  2. `make
# deb`: the three packages install with apt-get, `tcpkit --version` and a
# serve + connect round trip on loopback work, pkg-config and CMake find the
# -dev package; then they are removed.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
work=$(mktemp -d)
server=""

cleanup() {
	[ -n "$server" ] && kill "$server" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

fail() {
	echo "tests/pkg/ci.sh: FAIL: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || fail "must run as root (it installs into /usr)"
# Never clobber a copy someone installed by hand.
if [ -e /usr/local/lib/libtcpkit.so.0 ] ||
	dpkg-query -W tcpkit libtcpkit0 libtcpkit-dev >/dev/null 2>&1; then
	fail "tcpkit is already installed on this machine; not touching it"
fi

# The consumer the issue speaks of: an example, built out of tree.
consumer() { # NAME PKG_CONFIG_ARGS...
	local exe=$work/$1
	shift
	# shellcheck disable=SC2046
	cc -o "$exe" examples/resolve.c $(pkg-config "$@" --cflags --libs tcpkit)
	"$exe" localhost | grep -q 127.0.0.1 || fail "$exe localhost"
	echo "ok: $exe runs"
}

echo "== make install into /usr/local"
make install BUILD=build-ci-install JOBS=2 DEPS=skip
ldconfig -p | grep -q 'libtcpkit\.so\.0 ' || fail "ld.so cache lacks libtcpkit"
consumer pc-local
man -w tcpkit-serve | grep -q '^/usr/local/' || fail "man tcpkit-serve"
/usr/local/bin/tcpkit --version
make uninstall BUILD=build-ci-install
for f in /usr/local/lib/libtcpkit.so.0 /usr/local/bin/tcpkit \
	/usr/local/lib/cmake/tcpkit /usr/local/share/man/man1/tcpkit.1; do
	[ ! -e "$f" ] || fail "$f left after make uninstall"
done
! ldconfig -p | grep -q libtcpkit || fail "ld.so cache still has libtcpkit"
echo "ok: make install / uninstall"

echo "== make deb"
make deb DEB_OUT=build-ci-deb JOBS=2 DEPS=skip
apt-get install -y -q ./build-ci-deb/tcpkit_*.deb \
	./build-ci-deb/libtcpkit0_*.deb ./build-ci-deb/libtcpkit-dev_*.deb
[ "$(command -v tcpkit)" = /usr/bin/tcpkit ] || fail "tcpkit not in /usr/bin"
tcpkit --version
man -w tcpkit-serve | grep -q '^/usr/share/' || fail "man tcpkit-serve"

# Round trip through the packaged program: echo on a free loopback port,
# its address read from the "listening on" line, with a bounded wait.
exec 3< <(exec tcpkit serve -H 127.0.0.1 -p 0 -q 2>&1)
server=$!
port=""
while IFS= read -r -t 10 -u 3 line; do
	case $line in
	"listening on 127.0.0.1:"*)
		port=${line##*:}
		break
		;;
	esac
done
[ -n "$port" ] || fail "tcpkit serve printed no 'listening on' line"
got=$(printf 'hello, package\n' | timeout 20 tcpkit connect 127.0.0.1 "$port")
[ "$got" = "hello, package" ] || fail "round trip gave '$got'"
kill "$server"
server=""
echo "ok: serve + connect on 127.0.0.1:$port"

consumer pc-deb
mkdir "$work/cm"
cat >"$work/cm/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.18)
project(consumer C)
find_package(tcpkit 0.1 REQUIRED)
add_executable(resolve $root/examples/resolve.c)
target_link_libraries(resolve PRIVATE tcpkit::tcpkit)
CMAKE
cmake -S "$work/cm" -B "$work/cm/build" -G Ninja >/dev/null
cmake --build "$work/cm/build" >/dev/null
"$work/cm/build/resolve" localhost | grep -q 127.0.0.1 || fail "cmake consumer"
echo "ok: find_package(tcpkit) against the -dev package"

apt-get remove -y -q --purge tcpkit libtcpkit0 libtcpkit-dev
! dpkg-query -W -f='${Status}\n' tcpkit libtcpkit0 libtcpkit-dev 2>/dev/null |
	grep -q ' installed' || fail "packages still installed"
[ ! -e /usr/bin/tcpkit ] || fail "/usr/bin/tcpkit left after removal"
echo "ok: packages built, installed, run and removed"
