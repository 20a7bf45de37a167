// longhaul's service-worker entry for module workers.
//
//   // sw.js, registered with navigator.serviceWorker.register('/sw.js', { type: 'module' })
//   import { install } from '/pkg/longhaul-sw.js';
//   install();
//   // or, with fresh credentials for every request attempt (never stored):
//   install({ credentials: async ({ url, taskId, session, attempt }) => ({ Authorization: `Bearer ${await token()}` }) });
//
// install() must run while the worker script first evaluates: it adds longhaul's
// listeners synchronously (the platform requires it) and starts the wasm in the
// background; every handler waits for that start-up before it runs. It loads the
// worker's own build (longhaul-worker.js), not the pages' longhaul.js.
import init, { workerStart, workerHandle, workerSetCredentials } from './longhaul-worker.js';

export function install(options = {}) {
  const { credentials } = options ?? {};
  if (credentials !== undefined && typeof credentials !== 'function') {
    throw new TypeError('longhaul: install({ credentials }) takes a function returning headers');
  }
  // A worker waking up opens IndexedDB first thing, and after a browser relaunch a
  // cold open takes 100-160 ms in Chromium, longer than the wasm's compilation
  // (measured with stamps from the navigation to the resumed request): open it now,
  // while the wasm compiles, and hand the connection to the wasm, which adopts it if
  // it is at its version (js/warm-storage.js).
  const activated = self.serviceWorker?.state === 'activated';
  const warm = activated ? longhaulWarmStorage() : null;
  const ready = init({ module_or_path: new URL('./longhaul-worker_bg.wasm', import.meta.url) })
    .then(() => workerSetCredentials(credentials));
  ready.catch((e) => console.error('longhaul: start-up failed', e));
  // An active worker that wakes up resumes its tasks at once; an installing one (an
  // update) must not touch them until it is activated.
  if (activated) ready.then(() => workerStart(warm));
  const handle = (e) => e.waitUntil(ready.then(() => workerHandle(e)));
  self.addEventListener('message', (e) => { if (e.data && e.data.longhaul) handle(e); });
  self.addEventListener('sync', handle);
  self.addEventListener('activate', handle);
  self.addEventListener('notificationclick', (e) => { if (e.notification?.data?.longhaul) handle(e); });
  self.addEventListener('fetch', (e) => { if (e.request.mode === 'navigate') handle(e); });
  return ready;
}

// longhaulWarmStorage() is appended from js/warm-storage.js by tools/build-pkg.sh.
