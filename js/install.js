// Shared by both worker shims: tools/build-pkg.sh appends this file, with
// js/warm-storage.js, to longhaul-sw.js (module workers) and to
// classic/longhaul-classic.js, and writes into each the SHA-256 of the wasm its glue
// was built with (LONGHAUL_WASM_SHA256, defined by the shim).
//
// Why JavaScript: before the wasm runs there is no Rust, and the platform wants the
// listeners added while the script first evaluates. Everything after the wasm is up
// is the wasm's (workerHandle).
//
// Start-up without the network. A worker that a page wakes while offline must start
// from what it has: its scripts are kept by the browser, its wasm is not. So the
// wasm is fetched once, at `install`, checked against the digest its glue was built
// with, and kept in Cache Storage under a name of this build and scope (an update
// never replaces what an older version, still running, starts from); `activate`
// deletes the caches of other builds of this scope. A worker that was installed by an
// older longhaul (no cache yet) keeps its wasm at its first start with the network.
// An app that has the wasm itself (a Workbox precache, a bundler's asset) hands it
// over: install({ wasm }) takes a URL, a Request, a Response or a promise of one, a
// WebAssembly.Module, bytes, or a function returning one of them (called at every
// start-up attempt, so a failed one can be tried again).
//
// A failed start-up is not kept: the next event tries again, and a page's command
// that arrives meanwhile is answered at once with `no-worker` and the cause.

/** The cache that keeps this build's wasm for this scope. */
function longhaulWasmCache() {
  const scope = self.registration?.scope ?? self.location.href;
  return `longhaul-wasm ${scope} ${LONGHAUL_WASM_SHA256}`;
}

async function longhaulSha256(bytes) {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Where the wasm comes from, as `{ load, keep }`: `load()` gives what the glue's
 * init takes, once per start-up attempt; `keep()` (URL sources only) makes sure
 * Cache Storage holds it.
 */
function longhaulWasmSource(wasm) {
  if (typeof wasm === 'function') {
    return { load: () => Promise.resolve(wasm()).then((w) => longhaulWasmSource(w).load()) };
  }
  if (typeof wasm === 'string' || wasm instanceof URL || wasm instanceof Request) {
    const url = new URL(wasm instanceof Request ? wasm.url : wasm, self.location.href).href;
    let kept = null; // this worker life's copy, shared by install and start-up
    const fetchAndKeep = async () => {
      let cache = null;
      try {
        cache = await caches.open(longhaulWasmCache());
        const hit = await cache.match(url);
        if (hit) return hit;
      } catch (e) {
        console.warn('longhaul: Cache Storage is not usable here; the wasm comes from the network', e);
      }
      const resp = await fetch(url, { cache: 'no-cache' });
      if (!resp.ok) throw new Error(`longhaul: ${url} answered HTTP ${resp.status}`);
      const bytes = await resp.arrayBuffer();
      const digest = await longhaulSha256(bytes);
      if (digest !== LONGHAUL_WASM_SHA256) {
        throw new Error(`longhaul: ${url} is not the wasm this longhaul-sw.js was built with `
          + `(SHA-256 ${digest}, expected ${LONGHAUL_WASM_SHA256}): serve the package's files together`);
      }
      const copy = new Response(bytes, { headers: { 'Content-Type': 'application/wasm' } });
      if (cache) await cache.put(url, copy.clone()).catch((e) => console.warn('longhaul: could not keep the wasm for offline start-up', e));
      return copy;
    };
    const keep = () => {
      kept ??= fetchAndKeep();
      kept.catch(() => { kept = null; });
      return kept;
    };
    return { load: () => keep().then((r) => r.clone()), keep };
  }
  if (wasm instanceof Response) {
    // Used for every attempt through a clone, so the original is never consumed.
    return { load: () => Promise.resolve(wasm.clone()) };
  }
  if (wasm && typeof wasm.then === 'function') {
    return { load: () => Promise.resolve(wasm).then((w) => longhaulWasmSource(w).load()) };
  }
  if (wasm instanceof WebAssembly.Module || wasm instanceof ArrayBuffer || ArrayBuffer.isView(wasm)) {
    return { load: () => Promise.resolve(wasm) };
  }
  throw new TypeError('longhaul: install({ wasm }) takes a URL, a Request, a Response or a promise of one, '
    + 'a WebAssembly.Module, bytes, or a function returning one of them');
}

/** Delete the caches that kept other builds' wasm for this scope (at `activate`). */
async function longhaulDropOtherWasm() {
  const mine = longhaulWasmCache();
  const prefix = mine.slice(0, mine.lastIndexOf(' ') + 1);
  for (const name of await caches.keys().catch(() => [])) {
    if (name.startsWith(prefix) && name !== mine) await caches.delete(name).catch(() => {});
  }
}

/** Answer a page's command at once when the start-up failed. */
function longhaulRefuse(e, cause) {
  const port = e.type === 'message' && e.data?.longhaul ? e.ports?.[0] : null;
  port?.postMessage({
    ok: false,
    error: {
      code: 'no-worker',
      message: `longhaul could not start in its service worker (${cause}); the next command tries again`,
    },
  });
}

/**
 * install() of both shims. `glue`: the wasm-bindgen glue's { init, workerStart,
 * workerHandle, workerSetCredentials }; `wasm`: where the wasm comes from (see the top).
 */
function longhaulInstall(glue, wasm, options) {
  const { credentials } = options ?? {};
  if (credentials !== undefined && typeof credentials !== 'function') {
    throw new TypeError('longhaul: install({ credentials }) takes a function returning headers');
  }
  const source = longhaulWasmSource(wasm);
  let ready = null;
  const start = () => {
    if (ready) return ready;
    // A worker waking up opens IndexedDB first thing, and after a browser relaunch a
    // cold open takes 100-160 ms in Chromium, longer than the wasm's compilation
    // (measured with stamps from the navigation to the resumed request): open it
    // now, while the wasm compiles, and hand the connection to the wasm, which adopts
    // it if it is at its version (js/warm-storage.js).
    const activated = self.serviceWorker?.state === 'activated';
    const warm = activated ? longhaulWarmStorage() : null;
    const attempt = source.load()
      .then((module_or_path) => glue.init({ module_or_path }))
      .then(() => glue.workerSetCredentials(credentials));
    ready = attempt;
    attempt.catch((e) => {
      console.error('longhaul: start-up failed; the next event tries again', e);
      if (ready === attempt) ready = null;
      warm?.then((db) => db?.close());
    });
    // An active worker that wakes up resumes its tasks at once; an installing one
    // (an update) must not touch them until it is activated.
    if (activated) {
      attempt.then(() => glue.workerStart(warm), () => {})
        .catch((e) => console.error('longhaul: the start-up could not resume the tasks', e));
    }
    return attempt;
  };
  const first = start();
  const handle = (e) => e.waitUntil(start().then(() => glue.workerHandle(e), (err) => longhaulRefuse(e, err)));
  if (source.keep) self.addEventListener('install', (e) => e.waitUntil(source.keep()));
  self.addEventListener('activate', (e) => {
    if (source.keep) e.waitUntil(longhaulDropOtherWasm());
    handle(e);
  });
  self.addEventListener('message', (e) => { if (e.data && e.data.longhaul) handle(e); });
  self.addEventListener('sync', handle);
  self.addEventListener('notificationclick', (e) => { if (e.notification?.data?.longhaul) handle(e); });
  self.addEventListener('fetch', (e) => { if (e.request.mode === 'navigate') handle(e); });
  return first;
}
