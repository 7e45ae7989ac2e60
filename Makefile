# Thin wrapper over CMake. `make run` and `make test` are the two commands in the README.
BUILD      ?= build
BUILD_SAN  ?= build-asan
BUILD_REL  ?= build-rel
BUILD_HARD ?= build-hard
PREFIX     ?= /usr/local
DESTDIR    ?=
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
ARGS       ?=
BENCH_ARGS ?=

.PHONY: all deps deps-test build run test test-fast test-asan test-builds install clean bench \
	bench-quick

all: build

deps:
	@bash scripts/install-deps.sh

deps-test:
	@bash scripts/install-deps.sh --test

# Configuring every time is cheap and repairs a build directory left half-configured.
build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWERROR=ON >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# Starts the server on its embedded defaults (memory engine, port 8080, anonymous access).
run: build
	./$(BUILD)/switchboard $(ARGS)

# Every test (unit, integration, interop with Python websockets and Node ws), then
# all of them again on an AddressSanitizer + UndefinedBehaviorSanitizer build.
test: deps-test build
	$(MAKE) test-builds
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	$(MAKE) test-asan

test-fast: build
	cd $(BUILD) && ctest --output-on-failure -L unit

test-asan: deps-test
	cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON -DWERROR=ON
	cmake --build $(BUILD_SAN) -j $(JOBS)
	cd $(BUILD_SAN) && ctest --output-on-failure -j $(JOBS)

# Builds the server and the CLI (no tests) as a user or a packager would, with warnings
# as errors: Release (-O3 warns where -O2 does not) and Debian's hardening flags.
test-builds: deps
	cmake -S . -B $(BUILD_REL) -DCMAKE_BUILD_TYPE=Release -DWERROR=ON -DBUILD_TESTS=OFF >/dev/null
	cmake --build $(BUILD_REL) -j $(JOBS) --target switchboard switchboard-cli
	eval "$$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)" && \
	cmake -S . -B $(BUILD_HARD) -DCMAKE_BUILD_TYPE=None -DWERROR=ON -DBUILD_TESTS=OFF \
		-DCMAKE_C_FLAGS="$$CPPFLAGS $$CFLAGS" -DCMAKE_EXE_LINKER_FLAGS="$$LDFLAGS" >/dev/null
	cmake --build $(BUILD_HARD) -j $(JOBS) --target switchboard switchboard-cli

# Binaries, man pages, the systemd unit and the docs into $(DESTDIR)$(PREFIX).
install: build
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_REL) $(BUILD_HARD)

# Switchboard against nginx+nchan and a Node ws broadcast server (bench/README.md):
# installs the peers, builds the load generator, writes bench/results/latest.md.
bench: build
	bash scripts/install-bench-deps.sh
	cmake --build $(BUILD) --target loadgen -j $(JOBS)
	python3 bench/bench.py $(BENCH_ARGS)

bench-quick: build
	bash scripts/install-bench-deps.sh
	cmake --build $(BUILD) --target loadgen -j $(JOBS)
	python3 bench/bench.py --quick $(BENCH_ARGS)
