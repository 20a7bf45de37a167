// Baseline service worker for the longhaul benchmark (tests/bench/bench.mjs).
//
// Plain JavaScript, no longhaul: it measures how fast a service worker on this
// machine can pull a response body off the network when it does nothing with
// the bytes. Registered by /bench/index.html with scope /bench/, so it controls
// only the bench page; the longhaul worker keeps scope /.
//
// Protocol: the page posts {op: 'raw', url} with a MessagePort; the worker
// fetches url, reads the whole body with a reader, counts and drops the bytes,
// and answers on the port with {bytes, ms} (or {error}).

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

/** Fetch `url` and read its body to the end, timing it inside the worker. */
async function readAndDiscard(url) {
  const t0 = performance.now();
  const response = await fetch(url, { cache: 'no-store' });
  if (!response.ok) throw new Error(`HTTP ${response.status} for ${url}`);
  const reader = response.body.getReader();
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength; // count, then let the chunk go
  }
  return { bytes, ms: performance.now() - t0 };
}

self.addEventListener('message', (event) => {
  const { op, url } = event.data || {};
  const port = event.ports[0];
  if (op !== 'raw' || !port) return;
  // waitUntil keeps the worker alive for the whole read.
  event.waitUntil(
    readAndDiscard(url).then(
      (result) => port.postMessage(result),
      (err) => port.postMessage({ error: String(err && err.message || err) }),
    ),
  );
});
