# toolwarden — the README's commands.
#   make        build build/toolwarden (Release, warnings as errors)
#   make test   install what is missing, build, run every test (unit + end-to-end)
#   make package  the release tarball and .deb in build/dist (docs/install.md)
#   make install PREFIX=/usr/local  the binary, man page and completions
#   make demo   run toolwarden in front of the bundled demo server with a sample policy
#   make bench  run the benchmarks (docs/benchmarks.md)
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)

.PHONY: all build configure test test-asan test-tsan deps demo bench bench-compare clean format \
	fuzz fuzz-build fuzz-ci package install

# `make` on a fresh machine installs the build dependencies first (apt; a no-op when present).
all:
	@./scripts/install-deps.sh --no-npm
	@$(MAKE) --no-print-directory build

configure:
	@test -f $(BUILD_DIR)/build.ninja || cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

deps:
	./scripts/install-deps.sh

package: build
	./scripts/package.sh $(BUILD_DIR)

PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD_DIR) --prefix $(PREFIX) --component runtime

# The package test (tests/package) installs what make package built into a minimal Debian.
test: deps build package
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 300

# Every test again against an ASan + UBSan build (any report fails the run). CI runs it too.
# Only what the tests run is built (not the benchmarks).
test-asan: deps
	@test -f build-asan/build.ninja || cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTW_SANITIZE=ON
	cmake --build build-asan -j $(JOBS) --target unit_tests toolwarden
	cd build-asan && UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
	  ctest --output-on-failure -j $(JOBS) --timeout 300

# The unit tests against a ThreadSanitizer build (any report fails the run). CI runs it too.
# tsan.supp names the one report that is not ours (libstdc++ 12's atomic<shared_ptr>). Only the
# unit tests are built, at -O1 with line tables: a report needs no more, and it builds in half
# the time of -O2 -g.
test-tsan: deps
	@test -f build-tsan/build.ninja || cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DTW_SANITIZE_THREAD=ON
	cmake --build build-tsan -j $(JOBS) --target unit_tests
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tsan.supp \
	  ctest -L unit --output-on-failure -j $(JOBS) --timeout 300

# libFuzzer targets (clang, ASan + UBSan) beside the code they fuzz; docs/security.md.
fuzz-build: deps
	@test -f build-fuzz/build.ninja || CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTW_FUZZ=ON
	cmake --build build-fuzz -j $(JOBS)

# Each target for FUZZ_SECONDS (default 10 minutes; FUZZ_FORKS processes each, all at once).
FUZZ_SECONDS ?= 600
FUZZ_FORKS ?= 1
fuzz: fuzz-build
	scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_FORKS)

# The bounded pass CI runs: 15 seconds a target.
fuzz-ci: fuzz-build
	scripts/fuzz.sh 15 1

demo:
	@./scripts/install-deps.sh --no-npm >/dev/null
	@$(MAKE) --no-print-directory build >/dev/null
	@./scripts/demo.sh

# Micro-benchmarks of the policy engine and counters (docs/benchmarks.md).
bench: build
	$(BUILD_DIR)/bench/policy_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
	$(BUILD_DIR)/src/catalog/catalog_eval
	$(BUILD_DIR)/src/catalog/catalog_eval --tuning
	$(BUILD_DIR)/bench/console_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true

# The side-by-side gateway benchmark (bench/README.md): direct, nginx, mcp-proxy, supergateway
# and toolwarden on the same fast upstream. Needs nginx (installed by scripts/install-deps.sh
# --bench) and the bridges (npm, into bench/node). ~5 minutes.
bench-compare: build
	./scripts/install-deps.sh --bench
	bench/compare.sh --rounds 3 --duration 3

clean:
	rm -rf $(BUILD_DIR) build-asan build-tsan build-fuzz

format:
	clang-format -i $$(git ls-files 'src/*.cc' 'src/*.h')
