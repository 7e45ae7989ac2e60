# Thin wrapper over CMake. `make run` and `make test` are the two commands in the README.
BUILD      ?= build
BUILD_SAN  ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
ARGS       ?=
BENCH_ARGS ?=

.PHONY: all deps deps-test build run test test-fast test-asan clean bench bench-quick

all: build

deps:
	@bash scripts/install-deps.sh

deps-test:
	@bash scripts/install-deps.sh --test

# Configuring every time is cheap and repairs a build directory left half-configured.
build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# Starts the server on its embedded defaults (memory engine, port 8080, anonymous access).
run: build
	./$(BUILD)/switchboard $(ARGS)

# Every test (unit, integration, interop with Python websockets and Node ws), then
# all of them again on an AddressSanitizer + UndefinedBehaviorSanitizer build.
test: deps-test build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	$(MAKE) test-asan

test-fast: build
	cd $(BUILD) && ctest --output-on-failure -L unit

test-asan: deps-test
	cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON
	cmake --build $(BUILD_SAN) -j $(JOBS)
	cd $(BUILD_SAN) && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD) $(BUILD_SAN)

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
