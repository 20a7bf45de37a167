#!/usr/bin/env bash
# Build the npm package into pkg/: the ES-module build (pages and module workers),
# the no-modules build for classic workers in pkg/classic/, and the worker shims.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
echo "==> building the wasm package (release, --target web)"
wasm-pack --log-level warn build --release --target web --out-dir pkg --out-name longhaul --no-pack
test -f pkg/longhaul_bg.wasm
echo "==> building the classic-worker variant (--target no-modules)"
rm -rf target/pkg-classic
wasm-pack --log-level warn build --release --target no-modules --out-dir target/pkg-classic --out-name longhaul --no-pack
mkdir -p pkg/classic
cat target/pkg-classic/longhaul.js js/longhaul-sw-classic.js > pkg/classic/longhaul-classic.js
cp target/pkg-classic/longhaul_bg.wasm pkg/classic/longhaul_bg.wasm
cp js/longhaul-sw.js pkg/longhaul-sw.js
cp js/longhaul-sw.d.ts pkg/longhaul-sw.d.ts
cp js/package.json pkg/package.json
cp README.md pkg/README.md
echo "==> pkg/ ready: $(wc -c < pkg/longhaul_bg.wasm) bytes of wasm"
