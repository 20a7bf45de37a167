// Scenario 7: the classic (importScripts) worker: on a fresh profile the demo at
// `/?worker=classic` registers /sw-classic.js, and an 8 MiB download completes with
// the source bytes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

const SIZE = '8M';
const BYTES = 8 * h.MiB;

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

test('the classic worker downloads 8 MiB', { timeout: 90_000 }, async () => {
  const browser = await h.launchChromium();
  const lines = h.collectConsole(browser.context);
  try {
    await h.withConsole(lines, async () => {
      const page = await browser.context.newPage();
      await h.openDemo(page, server.origin, '?worker=classic');
      const reg = await page.evaluate(async () => {
        const r = await navigator.serviceWorker.getRegistration();
        return { script: r?.active?.scriptURL, status: document.querySelector('#status').textContent };
      });
      assert.equal(reg.script, `${server.origin}/sw-classic.js`, `the classic worker is the active one: ${JSON.stringify(reg)}`);
      assert.match(reg.status, /classic worker/, JSON.stringify(reg));

      const file = h.uniquePath('classic');
      const snap = await h.download(page, `${file}?size=${SIZE}&rate=16M`);
      const done = await h.waitCompleted(page, snap.id);
      assert.equal(done.bytesReceived, BYTES, JSON.stringify(done));
      assert.equal(done.bytesExpected, BYTES, JSON.stringify(done));
      const log = await server.log(file);
      assert.equal(log.length, 1, h.fmtLog(log));
      assert.ok(log[0].complete, h.fmtLog(log));
      const sw = await server.log('/sw-classic.js');
      assert.ok(sw.length >= 1, 'the classic worker script was fetched');
      assert.equal((await server.log('/sw.js')).length, 0, 'the module worker was never fetched');
      await h.assertSameBytes(assert, page, server, file, SIZE, snap.id);
    });
  } finally {
    await browser.dispose();
  }
});
