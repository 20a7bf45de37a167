// The demo's service worker: a module worker that loads longhaul. An app's own
// worker adds its caching, push handling and so on around these lines.
import { install } from '/pkg/longhaul-sw.js';

install();
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));
