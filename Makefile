# Thin wrapper: every target installs what is missing (Debian packages), configures and builds with CMake.
#   make run    - build and start build/ferry on :9091
#   make test   - build, run every test (release build, then the unit tests under ASan+UBSan and TSan)
#   make unit   - the edit-build-test loop: build the release tree (build/), run its unit tests only (seconds)
#   make format - clang-format (14, .clang-format) our C/C++ files in place; make format-check changes nothing
#                 and fails on any difference (.ci/run runs it)
#   make bench  - build and run the micro-benchmarks (method and figures: docs/benchmarks.md)
#   make bench-compare - Ferry vs the reference Pushgateway at 1k-1M series (~10 min; SIZES=1000,10000 for a
#                 quick run); tables in BENCH_OUT, plots in BENCH_IMG (docs/benchmarks.md)
#   make fuzz   - build the libFuzzer targets with clang and run each for FUZZ_SECONDS (default 30)
#   make dist   - the release tarball build/dist/ferry-<version>.linux-<arch>.tar.gz and its sha256sums.txt
#   make deb    - the Debian package of build/ (build/deb/ferry_<version>_<arch>.deb, no second build), then lintian;
#                 from source instead: dpkg-buildpackage -us -uc -b (debian/rules)
SHELL := /bin/bash
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 30
CMAKE_GEN := -G Ninja
RUN_ARGS ?= --web.listen-address=:9091
BENCH_OUT ?= build/bench-compare
BENCH_IMG ?= docs/img

.PHONY: all deps deps-test build build-asan build-tsan run test test-release test-asan test-tsan unit bench bench-compare fuzz \
        format format-check clean dist deb

all: build

deps:
	@scripts/install-deps.sh build

deps-test:
	@scripts/install-deps.sh test

build: deps
	@cmake -S . -B build $(CMAKE_GEN) -DFY_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j $(JOBS)

build-asan: deps
	@cmake -S . -B build-asan $(CMAKE_GEN) -DFY_WERROR=ON -DCMAKE_BUILD_TYPE=Debug -DFY_SANITIZE=address,undefined -DFY_BUILD_BENCH=OFF >/dev/null
	@cmake --build build-asan -j $(JOBS)

build-tsan: deps
	@cmake -S . -B build-tsan $(CMAKE_GEN) -DFY_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFY_SANITIZE=thread -DFY_BUILD_BENCH=OFF -DFY_BUILD_SERVER=OFF >/dev/null
	@cmake --build build-tsan -j $(JOBS)

run: build
	exec build/ferry $(RUN_ARGS)

test: deps-test
	@$(MAKE) --no-print-directory test-release
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory test-tsan

test-release: build
	cd build && ctest --output-on-failure -j $(JOBS)

# No deps-test: the unit tests need only what the build needs.
unit: build
	cd build && ctest --output-on-failure -j $(JOBS) -L unit

test-asan: build-asan
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS) -L unit
	@# The process-level suites against an ASan+UBSan build of ferry (leak checking off: h2o keeps per-thread
	@# buffers until exit); any sanitizer report aborts the server and fails the suite.
	cd build-asan && ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) -L integration

test-tsan: build-tsan
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ctest --output-on-failure -j $(JOBS) -L stress

bench: build
	@scripts/run-bench.sh build

# Knobs (environment): SIZES=1000,10000,100000,1000000 RUNS=3 DURATION=10 CONNS=32 REF_WRK_MAX=10000 NOCHECK=1.
bench-compare: build
	@scripts/install-deps.sh bench
	bench/compare/compare.py --build build --out $(BENCH_OUT) --img $(BENCH_IMG)

fuzz: deps-test
	@cmake -S . -B build-fuzz $(CMAKE_GEN) -DFY_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DFY_FUZZ=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS)
	@scripts/run-fuzz.sh build-fuzz $(FUZZ_SECONDS)

dist: build
	@scripts/dist.sh build build/dist

deb: build
	@scripts/install-deps.sh package
	@scripts/deb.sh build build/deb
	lintian --fail-on error,warning --display-info build/deb/ferry_*.changes

format:
	@scripts/install-deps.sh format
	@scripts/format.sh fix

format-check:
	@scripts/install-deps.sh format
	@scripts/format.sh check

clean:
	rm -rf build build-asan build-tsan build-fuzz
