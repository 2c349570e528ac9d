# Makefile: a thin front for CMake + Ninja.  `make run`, `make test`.
BUILD      ?= build
TEST_BUILD ?= build-test
PREFIX     ?= /usr/local
CMAKE      ?= cmake
GENERATOR  ?= Ninja
CC         ?= cc
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
WERROR     ?= OFF
RUN_ARGS   ?= serve

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)

.PHONY: all build run test install format format-check examples clean

all: build

$(BUILD)/build.ninja:
	$(CMAKE) -S . -B $(BUILD) -G $(GENERATOR) -DCMAKE_C_COMPILER=$(CC) \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) \
		-DTK_WERROR=$(WERROR)

build: $(BUILD)/build.ninja
	$(CMAKE) --build $(BUILD) -j $(JOBS)

examples: build

# The main job: the default server (echo on loopback), until Ctrl-C.
run: build
	./$(BUILD)/tcpkit $(RUN_ARGS)

$(TEST_BUILD)/build.ninja:
	$(CMAKE) -S . -B $(TEST_BUILD) -G $(GENERATOR) -DCMAKE_C_COMPILER=$(CC) \
		-DCMAKE_BUILD_TYPE=Debug -DTK_TESTS=ON -DTK_SANITIZE=ON \
		-DTK_WERROR=$(WERROR)

# Every test: Criterion unit tests and pytest black-box tests, sanitized.
test: $(TEST_BUILD)/build.ninja
	$(CMAKE) --build $(TEST_BUILD) -j $(JOBS)
	cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS)

install: build
	$(CMAKE) -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	$(CMAKE) --build $(BUILD) -j $(JOBS)
	$(CMAKE) --install $(BUILD)

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf $(BUILD) $(TEST_BUILD)
