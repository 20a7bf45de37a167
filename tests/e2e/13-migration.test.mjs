// Schema migration (FAULTS 22): a database written by schema version 1 (sessions,
// tasks, chunks; no `meta` store), with a download in flight at 4 MiB of 16, is
// upgraded by the current worker to version 2 while another page still holds a
// version-1 connection. That connection closes on `versionchange` (as longhaul's own
// connections do), the upgrade goes through, and the in-flight task resumes with a
// Range request from its committed offset and completes intact.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

const SIZE = '16M';
const AT = 4 * h.MiB;

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

test('a version-1 database with a task in flight is upgraded and the task completes', { timeout: 120_000 }, async () => {
  const browser = await h.launchChromium();
  const lines = h.collectConsole(browser.context);
  try {
    await h.withConsole(lines, async () => {
      const file = h.uniquePath('migration');
      const url = `${server.origin}${file}?size=${SIZE}&rate=4M`;
      // A page with no service worker yet writes the version-1 database by hand.
      const old = await browser.context.newPage();
      await old.goto(`${server.origin}/manifest.webmanifest`);
      const id = await old.evaluate(async ({ url, file, size, at }) => {
        const resp = await fetch(`${file}?size=${size}&e2e-verify=1`, { headers: { Range: `bytes=0-${at - 1}` } });
        const bytes = new Uint8Array(await resp.arrayBuffer());
        const etag = resp.headers.get('etag');
        const total = Number(resp.headers.get('content-range').split('/')[1]);
        const db = await new Promise((resolve, reject) => {
          const req = indexedDB.open('longhaul', 1);
          req.onupgradeneeded = () => {
            const d = req.result;
            d.createObjectStore('sessions', { keyPath: 'id' });
            d.createObjectStore('tasks', { keyPath: 'id' }).createIndex('session', 'session');
            d.createObjectStore('chunks');
          };
          req.onsuccess = () => resolve(req.result);
          req.onerror = () => reject(req.error);
        });
        // Like longhaul's connections: give way to an upgrade.
        db.onversionchange = () => { window.__versionchange = true; db.close(); };
        const now = Date.now();
        const id = 'v1-task-0001';
        // A task record exactly as schema version 1 wrote it.
        const record = {
          id, session: 'demo', kind: 'download',
          url: { href: url, host: new URL(url).host },
          headers: [], description: 'written by schema 1', state: 'running',
          bytes_received: at, bytes_expected: total, etag, last_modified: resp.headers.get('last-modified'),
          error: null, created_at: now - 1000, updated_at: now, attempts: 0, retry_at: null,
          max_bytes: null, wait_reason: null,
        };
        await new Promise((resolve, reject) => {
          const tx = db.transaction(['sessions', 'tasks', 'chunks'], 'readwrite');
          tx.objectStore('sessions').put({ id: 'demo', createdAt: now - 2000, config: { requestTimeout: 60000 } });
          tx.objectStore('tasks').put(record);
          for (let off = 0; off < at; off += 1 << 20) {
            tx.objectStore('chunks').put(bytes.slice(off, off + (1 << 20)), [id, off]);
          }
          tx.oncomplete = resolve;
          tx.onerror = () => reject(tx.error);
        });
        return id;
      }, { url, file, size: SIZE, at: AT });

      // The current longhaul starts: its worker opens version 2.
      const page = await browser.context.newPage();
      await h.openDemo(page, server.origin);
      const log = await h.waitLog(server, file, (l) => l.length >= 1, { what: 'the resumed request' });
      assert.equal(log[0].range, `bytes=${AT}-`, `the task resumed from its committed offset:\n${h.fmtLog(log)}`);
      assert.equal(log[0].status, 206, h.fmtLog(log));
      assert.equal(await old.evaluate(() => window.__versionchange === true), true,
        'the old connection was asked to close (versionchange)');
      const done = await h.waitCompleted(page, id);
      assert.equal(done.description, 'written by schema 1');
      await h.assertSameBytes(assert, page, server, file, SIZE, id);
      const schema = await page.evaluate(() => new Promise((resolve, reject) => {
        const req = indexedDB.open('longhaul');
        req.onsuccess = () => {
          const db = req.result;
          const out = { version: db.version, stores: [...db.objectStoreNames] };
          db.close();
          resolve(out);
        };
        req.onerror = () => reject(req.error);
      }));
      assert.equal(schema.version, 2, JSON.stringify(schema));
      assert.deepEqual(schema.stores.sort(), ['chunks', 'meta', 'sessions', 'tasks'], JSON.stringify(schema));
      const final = await server.log(file);
      assert.equal(final.length, 1, `one request, for the missing bytes only:\n${h.fmtLog(final)}`);
    });
  } finally {
    await browser.dispose();
  }
});
