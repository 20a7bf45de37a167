// longhaul's service-worker entry for module workers.
//
//   // sw.js, registered with navigator.serviceWorker.register('/sw.js', { type: 'module' })
//   import { install } from '/pkg/longhaul-sw.js';
//   install();
//   // or, with fresh credentials for every request attempt (never stored):
//   install({ credentials: async ({ url, taskId, session, attempt }) => ({ Authorization: `Bearer ${await token()}` }) });
//   // or with the wasm the app keeps itself (a bundler's asset, a Workbox precache):
//   install({ wasm: () => matchPrecache(wasmUrl) });
//
// install() must run while the worker script first evaluates: it adds longhaul's
// listeners synchronously (the platform requires it) and starts the wasm in the
// background; every handler waits for that start-up before it runs. It loads the
// worker's own build (longhaul-worker.js), not the pages' longhaul.js, and keeps its
// wasm in Cache Storage at `install`, so that the worker starts without the network
// (js/install.js, appended by tools/build-pkg.sh, says how).
import init, { workerStart, workerHandle, workerSetCredentials } from './longhaul-worker.js';

// The SHA-256 of longhaul-worker_bg.wasm, written by tools/build-pkg.sh.
const LONGHAUL_WASM_SHA256 = '@LONGHAUL_WASM_SHA256@';

export function install(options = {}) {
  const wasm = options?.wasm ?? new URL('./longhaul-worker_bg.wasm', import.meta.url);
  return longhaulInstall({ init, workerStart, workerHandle, workerSetCredentials }, wasm, options);
}
