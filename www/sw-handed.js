// The demo's module worker for apps that keep longhaul's wasm themselves, as a
// Workbox precache would: the app caches the wasm at `install` in a cache of its own
// and hands it to longhaul at every start-up (`install({ wasm })` with a function).
import { install } from '/pkg/longhaul-sw.js';

const WASM = '/pkg/longhaul-worker_bg.wasm';
const APP_CACHE = 'demo-app-precache';

self.addEventListener('install', (e) => e.waitUntil(caches.open(APP_CACHE).then((c) => c.add(WASM))));
install({ wasm: () => caches.open(APP_CACHE).then((c) => c.match(WASM)).then((r) => r ?? fetch(WASM)) });
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));
