// longhaul's service-worker entry for classic workers; appended to the no-modules
// build, which defines the global `wasm_bindgen`.
//
//   // sw.js, registered with navigator.serviceWorker.register('/sw.js')
//   importScripts('/pkg/classic/longhaul-classic.js');
//   longhaul.install('/pkg/classic/longhaul_bg.wasm');
//   // or with a credentials hook, as in the module worker:
//   longhaul.install('/pkg/classic/longhaul_bg.wasm', { credentials: async (req) => ({ ... }) });
//
// install(wasmUrl, options) must run while the worker script first evaluates (see
// longhaul-sw.js); classic workers have no import.meta.url, so the wasm's URL is given.
self.longhaul = {
  install(wasmUrl, options = {}) {
    const { credentials } = options ?? {};
    if (credentials !== undefined && typeof credentials !== 'function') {
      throw new TypeError('longhaul: install(url, { credentials }) takes a function returning headers');
    }
    // As in longhaul-sw.js: open the database while the wasm compiles, as it is, and
    // hand the connection to the wasm.
    const activated = self.serviceWorker?.state === 'activated';
    const warm = activated ? longhaulWarmStorage() : null; // js/warm-storage.js, appended
    const ready = wasm_bindgen({ module_or_path: wasmUrl })
      .then(() => wasm_bindgen.workerSetCredentials(credentials));
    ready.catch((e) => console.error('longhaul: start-up failed', e));
    // An active worker that wakes up resumes its tasks at once; an installing one (an
    // update) must not touch them until it is activated.
    if (activated) ready.then(() => wasm_bindgen.workerStart(warm));
    const handle = (e) => e.waitUntil(ready.then(() => wasm_bindgen.workerHandle(e)));
    self.addEventListener('message', (e) => { if (e.data && e.data.longhaul) handle(e); });
    self.addEventListener('sync', handle);
    self.addEventListener('activate', handle);
    self.addEventListener('notificationclick', (e) => { if (e.notification?.data?.longhaul) handle(e); });
    self.addEventListener('fetch', (e) => { if (e.request.mode === 'navigate') handle(e); });
    return ready;
  },
};
