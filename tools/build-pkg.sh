#!/usr/bin/env bash
# Build the npm package into pkg/, one wasm module per side so that each ships only
# its own code (see the crate docs, "Features and size"):
# - pages: longhaul.js + longhaul_bg.wasm (ES module, feature `page`);
# - module workers: longhaul-worker.js + longhaul-worker_bg.wasm (feature `worker`),
#   loaded by the shim longhaul-sw.js;
# - classic workers: pkg/classic/ (no-modules, feature `worker`, with its shim).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
# Panic locations name source files: name dependencies' by crate, not by where this
# machine keeps them, so the package carries no path of the machine that built it.
CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export RUSTFLAGS="${RUSTFLAGS:-} --remap-path-prefix=$CARGO_HOME/registry/src= --remap-path-prefix=$PWD="
build() { # target, out dir, out name, feature
  wasm-pack --log-level warn build --release --target "$1" --out-dir "$2" --out-name "$3" --no-pack \
    -- --no-default-features --features "$4"
}
echo "==> building the page module (release, --target web, feature page)"
build web pkg longhaul page
test -f pkg/longhaul_bg.wasm
echo "==> building the worker module (release, --target web, feature worker)"
rm -rf target/pkg-worker
build web target/pkg-worker longhaul-worker worker
cp target/pkg-worker/longhaul-worker.js target/pkg-worker/longhaul-worker.d.ts \
  target/pkg-worker/longhaul-worker_bg.wasm target/pkg-worker/longhaul-worker_bg.wasm.d.ts pkg/
echo "==> building the classic-worker variant (--target no-modules, feature worker)"
rm -rf target/pkg-classic
build no-modules target/pkg-classic longhaul worker
mkdir -p pkg/classic
# Each shim carries the digest of the wasm its glue was built with: the worker checks
# the wasm it keeps for offline start-up against it (js/install.js).
shim() { # wasm, out, files...
  local wasm=$1 out=$2 digest
  shift 2
  digest=$(sha256sum "$wasm" | cut -d' ' -f1)
  cat "$@" | sed "s/@LONGHAUL_WASM_SHA256@/$digest/" > "$out"
  grep -q "'$digest'" "$out"
}
cp target/pkg-classic/longhaul_bg.wasm pkg/classic/longhaul_bg.wasm
shim pkg/classic/longhaul_bg.wasm pkg/classic/longhaul-classic.js \
  target/pkg-classic/longhaul.js js/longhaul-sw-classic.js js/install.js js/warm-storage.js
shim pkg/longhaul-worker_bg.wasm pkg/longhaul-sw.js js/longhaul-sw.js js/install.js js/warm-storage.js
cp js/longhaul-sw.d.ts pkg/longhaul-sw.d.ts
cp js/package.json pkg/package.json
cp README.md pkg/README.md
echo "==> pkg/ ready: $(wc -c < pkg/longhaul_bg.wasm) bytes of page wasm, $(wc -c < pkg/longhaul-worker_bg.wasm) bytes of worker wasm"
