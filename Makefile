# Thin wrapper over CMake. `make run` and `make test` are the two commands in the README.
BUILD      ?= build
BUILD_SAN  ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
ARGS       ?=

.PHONY: all deps deps-test build run test test-fast test-asan clean

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
