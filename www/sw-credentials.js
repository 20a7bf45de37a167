// The demo's module worker with a credentials hook: every request attempt asks the
// hook for headers, and they are never stored. A real app would return a fresh token
// from its auth library here; the demo makes one up per worker life and attempt, so
// the end-to-end tests can tell from the server's log which life and attempt sent it.
import { install } from '/pkg/longhaul-sw.js';

const life = Math.random().toString(36).slice(2, 10);
let n = 0;
install({
  credentials: ({ url, attempt, session }) => {
    if (!new URL(url).pathname.startsWith('/files/')) return undefined;
    n += 1;
    return { Authorization: `Bearer demo-${life}-${n}-attempt${attempt}-session-${encodeURIComponent(session)}` };
  },
});
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));
