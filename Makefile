# longhaul: `make demo` and `make test` are all a newcomer needs; both install what
# is missing first (tools/setup.sh, idempotent).
SHELL := /bin/bash
PORT ?= 8080
TUS_PORT ?= 1080
TEST_PORT ?= 8091
export PATH := $(CURDIR)/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)
DEVSERVER := target/release/devserver

.PHONY: demo test bench soak setup build devserver test-lint test-native test-types test-browser test-e2e clean

setup:
	@bash tools/setup.sh

build: setup
	@bash tools/build-pkg.sh

devserver: setup
	@echo "==> building the devserver"
	@cargo build --release -q -p longhaul-devserver

## Build everything and serve the demo PWA and the devserver on 127.0.0.1:$(PORT),
## and a tus server for its uploads on 127.0.0.1:$(TUS_PORT).
demo: build devserver
	@echo "==> serving the demo and its tus server; open http://127.0.0.1:$(PORT)/$(if $(filter 1080,$(TUS_PORT)),,?tus=$(TUS_PORT)) (Ctrl-C stops it)"
	@TUS_PORT=$(TUS_PORT) node tools/tus-server.mjs & pid=$$!; trap "kill $$pid 2>/dev/null" EXIT INT TERM; \
	PORT=$(PORT) $(DEVSERVER) --root www --pkg pkg

## Every test: native, type check, browser (Chromium and Firefox), end to end.
test: build devserver test-lint test-native test-types test-browser test-e2e
	@echo "==> all tests passed"

test-lint:
	@echo "==> formatting and lints (native and wasm32)"
	cargo fmt --all --check
	cargo clippy -q --workspace --all-targets -- -D warnings
	cargo clippy -q --target wasm32-unknown-unknown --all-targets -- -D warnings

test-native:
	@echo "==> native tests (core and devserver)"
	cargo test --workspace

test-types:
	@echo "==> type-checking the TypeScript declarations"
	tsc -p tests/types

# The browser tests fetch from a devserver on TEST_PORT (CORS), started here.
test-browser:
	@echo "==> browser tests (wasm-pack, headless Chromium then Firefox)"
	@PORT=$(TEST_PORT) $(DEVSERVER) --root www --pkg pkg > target/devserver-test.log 2>&1 & pid=$$!; \
	trap "kill $$pid 2>/dev/null" EXIT; \
	for i in $$(seq 50); do grep -q "longhaul devserver" target/devserver-test.log && break; sleep 0.1; done; \
	WASM_BINDGEN_TEST_TIMEOUT=180 LONGHAUL_TEST_SERVER=http://127.0.0.1:$(TEST_PORT) wasm-pack --log-level warn test --headless --chrome && \
	WASM_BINDGEN_TEST_TIMEOUT=180 LONGHAUL_TEST_SERVER=http://127.0.0.1:$(TEST_PORT) wasm-pack --log-level warn test --headless --firefox

test-e2e:
	@echo "==> end-to-end tests (node --test, playwright-core and puppeteer-core)"
	node --test --test-concurrency=1 tests/e2e/

## Every performance figure (throughput, uploads, memory, bytes fetched twice, start-up,
## scale, Background Fetch, size), in headless Chromium and Firefox, as ratios against
## baselines measured in the same run (about 15 minutes).
bench: build devserver
	cargo run -q --release --example engine_scale
	node tests/bench/bench.mjs

## Soak: SIGKILL the whole browser at random moments (SOAK_KILLS, default 20, per
## browser per transfer; kill times seeded by SOAK_SEED, printed) through a throttled
## 96 MiB download and a 96 MiB tus upload, in headless Chromium and Firefox; each
## must end completed with the source's bytes (about 10 minutes; see tests/soak/soak.mjs).
soak: build devserver
	node tests/soak/soak.mjs

clean:
	rm -rf pkg target/pkg-classic
