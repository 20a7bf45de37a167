#!/usr/bin/env bash
# Build the npm package into pkg/, one wasm module per side so that each ships only
# its own code (see the crate docs, "Features and size"):
# - pages: longhaul.js + longhaul_bg.wasm (ES module, feature `page`);
# - module workers: longhaul-worker.js + longhaul-worker_bg.wasm (feature `worker`),
#   loaded by the shim longhaul-sw.js;
# - classic workers: pkg/classic/ (no-modules, feature `worker`, with its shim).
# The builds are declared in wasm-pack.toml (read with Python's tomllib).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
# Panic locations name source files: name dependencies' by crate, not by where this
# machine keeps them, so the package carries no path of the machine that built it.
CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export RUSTFLAGS="${RUSTFLAGS:-} --remap-path-prefix=$CARGO_HOME/registry/src= --remap-path-prefix=$PWD="
# Each shim carries the digest of the wasm its glue was built with: the worker checks
# the wasm it keeps for offline start-up against it (js/install.js).
shim() { # wasm, out, files...
  local wasm=$1 out=$2 digest
  shift 2
  digest=$(sha256sum "$wasm" | cut -d' ' -f1)
  cat "$@" | sed "s/@LONGHAUL_WASM_SHA256@/$digest/" > "$out"
  grep -q "'$digest'" "$out"
}
# The builds, as wasm-pack.toml declares them: one tab-separated line each.
builds=$(python3 - <<'PY'
import tomllib
with open("wasm-pack.toml", "rb") as f:
    builds = tomllib.load(f)["build"]
for b in builds:
    shim = b.get("shim", {})
    print("\t".join([
        b["name"], b["target"], ",".join(b["features"]), b["out-dir"], b["out-name"],
        " ".join(b.get("copy", [])), b.get("copy-to", ""),
        shim.get("out", ""), shim.get("wasm", ""), " ".join(shim.get("parts", [])),
    ]))
PY
)
while IFS=$'\t' read -r name target features out_dir out_name copy copy_to shim_out shim_wasm shim_parts; do
  echo "==> building the $name module (release, --target $target, features $features)"
  [ "$out_dir" = pkg ] || rm -rf "$out_dir"
  wasm-pack --log-level warn build --release --target "$target" --out-dir "$out_dir" \
    --out-name "$out_name" --no-pack -- --no-default-features --features "$features"
  test -f "$out_dir/${out_name}_bg.wasm"
  if [ -n "$copy" ]; then
    mkdir -p "$copy_to"
    for f in $copy; do cp "$out_dir/$f" "$copy_to/"; done
  fi
  # shellcheck disable=SC2086 # the parts are a list
  if [ -n "$shim_out" ]; then shim "$shim_wasm" "$shim_out" $shim_parts; fi
done <<< "$builds"
cp js/longhaul-sw.d.ts pkg/longhaul-sw.d.ts
cp js/package.json pkg/package.json
cp README.md pkg/README.md
echo "==> pkg/ ready: $(wc -c < pkg/longhaul_bg.wasm) bytes of page wasm, $(wc -c < pkg/longhaul-worker_bg.wasm) bytes of worker wasm"
