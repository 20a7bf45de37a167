// A corrupt task record (FAULTS 21): the worker, starting up, marks that task alone
// failed with a `storage` error and frees its bytes; the other tasks go on and complete.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

const SIZE = '16M';

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

test('a corrupt task record fails that task alone', { timeout: 120_000 }, async () => {
  const browser = await h.launchChromium();
  try {
    await h.withConsole(h.collectConsole(browser.context), async () => {
      const page = await browser.context.newPage();
      await h.openDemo(page, server.origin);
      const file = h.uniquePath('corrupt-neighbour');
      const good = await h.download(page, `${file}?size=${SIZE}&rate=4M`);
      await h.waitFraction(page, good.id, 0.2, 16 * h.MiB);

      // Corrupt a record behind the worker's back: right id and session, nonsense
      // elsewhere, plus a stray chunk that must be freed.
      await page.evaluate(() => new Promise((resolve, reject) => {
        const req = indexedDB.open('longhaul');
        req.onsuccess = () => {
          const db = req.result;
          const tx = db.transaction(['tasks', 'chunks'], 'readwrite');
          tx.objectStore('tasks').put({ id: 'corrupt-1', session: 'demo', url: { href: 'http://x.test/f' }, state: 'exploded', bytes_received: 'many' });
          tx.objectStore('chunks').put(new Uint8Array(10), ['corrupt-1', 0]);
          tx.oncomplete = () => { db.close(); resolve(); };
          tx.onerror = () => reject(tx.error);
        };
        req.onerror = () => reject(req.error);
      }));

      // A new worker life reads every record again.
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('ServiceWorker.enable');
      await cdp.send('ServiceWorker.stopAllWorkers');
      await page.reload();
      await h.waitForSession(page);

      const bad = await h.task(page, 'corrupt-1');
      assert.ok(bad, 'the corrupt task is listed');
      assert.equal(bad.state, 'failed', JSON.stringify(bad));
      assert.equal(bad.error?.code, 'storage', JSON.stringify(bad));
      assert.equal(bad.bytesReceived, 0, JSON.stringify(bad));
      const chunks = await h.chunkCount(page, 'corrupt-1');
      assert.equal(chunks, 0, 'its bytes were freed');

      const done = await h.waitCompleted(page, good.id);
      assert.equal(done.state, 'completed', JSON.stringify(done));
      await h.assertSameBytes(assert, page, server, file, SIZE, good.id);
      await page.evaluate(() => window.longhaulSession.remove('corrupt-1'));
      assert.equal(await h.task(page, 'corrupt-1'), null, 'a failed corrupt task can be removed');
    });
  } finally {
    await browser.dispose();
  }
});
