# Makefile: a thin front for CMake + Ninja.  `make run`, `make test`.
BUILD      ?= build
TEST_BUILD ?= build-test
PREFIX     ?= /usr/local
CMAKE      ?= cmake
GENERATOR  ?= Ninja
CC         ?= cc
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
WERROR     ?= OFF
# The event loop's backend: auto (epoll on Linux), epoll or poll.
BACKEND    ?= auto
RUN_ARGS   ?= serve

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)

.PHONY: all deps deps-build deps-test deps-ci deps-pkg build run test stress \
	bench bench-full tls-audit install uninstall deb format format-check \
	examples clean fuzz-ci musl-check abi-check

all: build

# Missing Debian packages are installed (as root) or named with the sudo line
# to type (otherwise); scripts/deps holds the one list.  DEPS=skip leaves the
# system alone.
DEPS ?= check
deps: deps-test
deps-build deps-test deps-ci deps-pkg:
ifneq ($(DEPS),skip)
	@./scripts/deps $(@:deps-%=%)
endif

$(BUILD)/build.ninja: | deps-build
	$(CMAKE) -S . -B $(BUILD) -G $(GENERATOR) -DCMAKE_C_COMPILER=$(CC) \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) \
		-DTK_WERROR=$(WERROR) -DTK_BACKEND=$(BACKEND)

build: deps-build $(BUILD)/build.ninja
	$(CMAKE) --build $(BUILD) -j $(JOBS)

examples: build

# The main job: the default server (echo on loopback), until Ctrl-C.
run: build
	./$(BUILD)/tcpkit $(RUN_ARGS)

$(TEST_BUILD)/build.ninja: | deps-test
	$(CMAKE) -S . -B $(TEST_BUILD) -G $(GENERATOR) -DCMAKE_C_COMPILER=$(CC) \
		-DCMAKE_BUILD_TYPE=Debug -DTK_TESTS=ON -DTK_SANITIZE=ON \
		-DTK_WERROR=$(WERROR) -DTK_BACKEND=$(BACKEND)

# Every test: Criterion unit tests and pytest black-box tests, sanitized.
test: deps-test $(TEST_BUILD)/build.ninja
	$(CMAKE) --build $(TEST_BUILD) -j $(JOBS)
	cd $(TEST_BUILD) && { ctest --output-on-failure -j $(JOBS); \
		echo $$? > ctest.rc; } | tee ctest.out
	@# ctest hides a passing test's output: show every skip and its
	@# reason, then ctest's verdict again as the last line.
	@grep -h "^SKIPPED" $(TEST_BUILD)/Testing/Temporary/LastTest.log \
		| sed 's/^/skip: /' || true
	@grep -E "tests passed|tests failed" $(TEST_BUILD)/ctest.out | tail -n 1
	@exit $$(cat $(TEST_BUILD)/ctest.rc)

# Full-size reliability runs (10,000 slow readers, 100,000 connect-close
# cycles...) against the release build; writes docs/reliability.md.
stress: build
	/usr/bin/python3 tests/stress/run.py --tcpkit $(BUILD)/tcpkit \
		--out docs/reliability.md

# The comparison suite (bench/README.md): tcpkit serve against the reference
# epoll server and the usual peers; writes bench/results/.  Quick: < 3 min.
bench: build
	/usr/bin/python3 bench/run.py --tcpkit $(BUILD)/tcpkit \
		--ref $(BUILD)/bench_ref --mode quick --out bench/results

# Every peer, longer runs (< 20 min): the figures of docs/performance.md.
bench-full: build
	/usr/bin/python3 bench/run.py --tcpkit $(BUILD)/tcpkit \
		--ref $(BUILD)/bench_ref --mode full --out bench/results

# The shared library exports exactly abi/libtcpkit.symbols
# (scripts/abi-check LIB --update after a deliberate change).
abi-check: build
	./scripts/abi-check $(BUILD)/libtcpkit.so

# libtcpkit (both backends, TLS aside) compiled and linked against musl:
# no glibc-only call creeps in.
musl-check: deps-ci
	./scripts/musl-check build-musl

# Every libFuzzer harness of fuzz/ (clang), 25 s each on its seed corpus;
# fails on any crash or failed check (fuzz/README.md).  < 3 min.
fuzz-ci: deps-ci
	JOBS=$(JOBS) ./scripts/fuzz-ci

# sslscan and testssl.sh (Debian packages sslscan, testssl.sh) against
# `serve --tls`; fails on a finding of medium severity or worse that
# docs/tls.md does not explain.
tls-audit: build
	/usr/bin/python3 tests/tls/audit.py --tcpkit $(BUILD)/tcpkit \
		--doc docs/tls.md

# Into PREFIX (/usr/local), or staged under DESTDIR.  ldconfig is run when
# the library lands where the dynamic linker looks (cmake/ldconfig.cmake).
install: build
	$(CMAKE) -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	$(CMAKE) --build $(BUILD) -j $(JOBS)
	DESTDIR="$(DESTDIR)" $(CMAKE) --install $(BUILD)

# Removes what the installs from $(BUILD) wrote (under the DESTDIR they
# used), and nothing else.
uninstall:
	$(CMAKE) -DBUILD=$(BUILD) -P cmake/uninstall.cmake

# The Debian packages tcpkit, libtcpkit0 and libtcpkit-dev (debian/), into
# $(DEB_OUT), checked with lintian (errors fail).  Built from a copy of the
# tree, as dpkg-buildpackage writes beside the source and into debian/.
DEB_OUT ?= build-deb
deb: deps-pkg
	rm -rf $(DEB_OUT) && mkdir -p $(DEB_OUT)/src/tcpkit
	{ git ls-files -co --exclude-standard 2>/dev/null || \
		find . -path './build*' -prune -o -path ./.git -prune -o \
		-type f -print; } | tar -cf - --ignore-failed-read -T - | \
		tar -xf - -C $(DEB_OUT)/src/tcpkit
	cd $(DEB_OUT)/src/tcpkit && env -u MAKEFLAGS -u MAKELEVEL \
		dpkg-buildpackage -b -us -uc -j$(JOBS)
	mv $(DEB_OUT)/src/*.deb $(DEB_OUT)/
	lintian --fail-on error --info $(DEB_OUT)/*.deb
	@ls $(DEB_OUT)/*.deb

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf $(BUILD) $(TEST_BUILD)
