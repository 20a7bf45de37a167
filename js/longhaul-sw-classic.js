// longhaul's service-worker entry for classic workers; appended to the no-modules
// build, which defines the global `wasm_bindgen`.
//
//   // sw.js, registered with navigator.serviceWorker.register('/sw.js')
//   importScripts('/pkg/classic/longhaul-classic.js');
//   longhaul.install('/pkg/classic/longhaul_bg.wasm');
//   // or with a credentials hook, as in the module worker:
//   longhaul.install('/pkg/classic/longhaul_bg.wasm', { credentials: async (req) => ({ ... }) });
//
// install(wasm, options) must run while the worker script first evaluates (see
// longhaul-sw.js); classic workers have no import.meta.url, so the wasm is given: its
// URL (kept in Cache Storage for offline start-up), or any form install({ wasm }) of
// the module worker takes (js/install.js, appended by tools/build-pkg.sh).

// The SHA-256 of classic/longhaul_bg.wasm, written by tools/build-pkg.sh.
const LONGHAUL_WASM_SHA256 = '@LONGHAUL_WASM_SHA256@';

self.longhaul = {
  install(wasm, options = {}) {
    const { workerStart, workerHandle, workerSetCredentials } = wasm_bindgen;
    return longhaulInstall({ init: wasm_bindgen, workerStart, workerHandle, workerSetCredentials }, wasm, options);
  },
};
