#!/usr/bin/env bash
# Install everything `make demo`, `make test` and `make bench` need, idempotently:
# a second run only checks and skips. Versions are pinned; nothing is downloaded
# from outside the package registries (crates.io, Debian, npm).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

WASM_PACK_VERSION=0.15.1
GECKODRIVER_VERSION=0.37.0
# The wasm-bindgen CLI must match the crate exactly: read the version from Cargo.lock.
BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)

step() { printf '==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  step "adding the Rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

cargo_tool() { # crate binary version [--locked]
  local crate=$1 bin=$2 version=$3 locked=${4:-}
  if ! "$bin" --version 2>/dev/null | grep -q " $version"; then
    step "installing $crate $version with cargo (takes 2-3 minutes on 2 cores)"
    cargo install "$crate" --version "=$version" $locked
  fi
}
cargo_tool wasm-pack wasm-pack "$WASM_PACK_VERSION" --locked
# No --locked: its lockfile pins a webpki-roots that the registry no longer has.
cargo_tool wasm-bindgen-cli wasm-bindgen "$BINDGEN_VERSION"
cargo_tool geckodriver geckodriver "$GECKODRIVER_VERSION" --locked

missing=()
# python3 reads wasm-pack.toml for tools/build-pkg.sh (tomllib, Python 3.11 and later).
for pair in chromium:chromium chromedriver:chromium-driver firefox-esr:firefox-esr python3:python3; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# npm packages (wasm-opt from binaryen, playwright-core, puppeteer-core, typescript),
# exactly as the lockfile says; never let a package download a browser.
export PUPPETEER_SKIP_DOWNLOAD=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
stamp=node_modules/.longhaul-lock
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  step "installing npm packages from package-lock.json"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
