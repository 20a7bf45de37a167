// The same worker as a classic script (importScripts), for apps that cannot use
// module workers. Only one longhaul worker may run per origin: register one or the other.
importScripts('/pkg/classic/longhaul-classic.js');
longhaul.install('/pkg/classic/longhaul_bg.wasm');
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));
