// A new version of the service worker is deployed mid-download (another script URL,
// skipWaiting). Chromium activates it only once the old worker's events have ended,
// which longhaul's keep-alive holds until the transfer is done; should it activate
// earlier (the keep-alive bound ran out), the new worker steals the owner lock and the
// old one aborts and writes nothing more. Either way there is never a second writer:
// no two requests for the file overlap, and the bytes are intact.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

const SIZE = '64M';
const BYTES = 64 * h.MiB;

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

test('a worker update mid-download never gives the task two writers', { timeout: 150_000 }, async (t) => {
  const browser = await h.launchChromium();
  try {
    await h.withConsole(h.collectConsole(browser.context), async () => {
      const page = await browser.context.newPage();
      await h.openDemo(page, server.origin);
      const file = h.uniquePath('worker-update');
      const snap = await h.download(page, `${file}?size=${SIZE}&rate=8M`);
      await h.waitFraction(page, snap.id, 0.25, BYTES);

      // Deploy "version 2": another script URL for the same scope.
      await page.evaluate(() => navigator.serviceWorker.register('/sw.js?v=2', { type: 'module' }));
      const done = await h.waitCompleted(page, snap.id, { timeout: 90_000 });
      assert.equal(done.bytesReceived, BYTES, JSON.stringify(done));
      const active = await page.evaluate(async () => {
        const reg = await navigator.serviceWorker.getRegistration();
        const deadline = Date.now() + 30_000;
        while (!reg.active?.scriptURL.endsWith('?v=2') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        return reg.active?.scriptURL;
      });
      assert.ok(active?.endsWith('/sw.js?v=2'), `version 2 became active: ${active}`);

      const log = (await server.log(file)).filter((e) => e.method === 'GET');
      for (let i = 1; i < log.length; i++) {
        assert.equal(log[i - 1].complete === false || log[i - 1].bytes_sent + (h.rangeStart(log[i - 1].range) ?? 0) === BYTES, true, h.fmtLog(log));
      }
      if (log.length === 1) {
        assert.equal(log[0].complete, true, h.fmtLog(log));
        t.diagnostic('version 2 activated after the old worker finished the transfer');
      } else {
        assert.equal(log.length, 2, `one request per worker version:\n${h.fmtLog(log)}`);
        assert.equal(log[0].complete, false, `the old worker aborted its request:\n${h.fmtLog(log)}`);
        const n = h.rangeStart(log[1].range);
        assert.ok(n > 0 && log[1].status === 206, `the new worker resumed with a range:\n${h.fmtLog(log)}`);
        t.diagnostic(`handed over to version 2 at ${h.fmtMiB(n)}`);
      }
      await h.assertSameBytes(assert, page, server, file, SIZE, snap.id);
    });
  } finally {
    await browser.dispose();
  }
});
