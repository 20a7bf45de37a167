// Quota (FAULTS 19): when the browser refuses to store more (`QuotaExceededError`,
// provoked with CDP Storage.overrideQuotaForOrigin in Chromium), the transaction
// aborts and the task fails with a typed `quota` error; what it had committed is kept
// (nothing is half-written), other tasks and their bytes are untouched, and once
// there is room again `resume` continues from the committed offset and completes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

test('a full quota fails the task typed and touches nothing else', { timeout: 150_000 }, async (t) => {
  const browser = await h.launchChromium();
  const lines = h.collectConsole(browser.context);
  try {
    await h.withConsole(lines, async () => {
      const page = await browser.context.newPage();
      await h.openDemo(page, server.origin);
      const small = h.uniquePath('quota-neighbour');
      const a = await h.download(page, `${small}?size=2M`);
      await h.waitCompleted(page, a.id);

      const usage = await page.evaluate(async () => (await navigator.storage.estimate()).usage);
      const cdp = await browser.context.newCDPSession(page);
      const quota = usage + 8 * h.MiB;
      await cdp.send('Storage.overrideQuotaForOrigin', { origin: server.origin, quotaSize: quota });
      t.diagnostic(`usage ${usage} bytes; quota set to ${quota}`);

      const big = h.uniquePath('quota-big');
      const b = await h.download(page, `${big}?size=32M&rate=16M`);
      const failed = await h.waitTask(page, b.id, (s) => s.state === 'failed',
        { what: 'the quota failure', timeout: 60_000 }).catch(async (e) => {
        throw new Error(`${e.message}; estimate ${JSON.stringify(await page.evaluate(() => navigator.storage.estimate()))}`);
      });
      assert.equal(failed.error?.code, 'quota', JSON.stringify(failed));
      assert.ok(failed.bytesReceived < 32 * h.MiB, JSON.stringify(failed));
      const record = await h.storedRecord(page, b.id);
      assert.equal(h.committedOf(record), failed.bytesReceived, 'the stored offset is what was committed');

      // The neighbour is untouched.
      assert.equal((await h.task(page, a.id)).state, 'completed');
      await h.assertSameBytes(assert, page, server, small, '2M', a.id);

      // Room again: resume continues from the committed offset.
      await cdp.send('Storage.overrideQuotaForOrigin', { origin: server.origin });
      await page.evaluate((id) => window.longhaulSession.resume(id), b.id);
      const done = await h.waitCompleted(page, b.id);
      assert.equal(done.bytesReceived, 32 * h.MiB);
      const log = await server.log(big);
      const last = log[log.length - 1];
      if (failed.bytesReceived > 0) {
        assert.equal(h.rangeStart(last.range), failed.bytesReceived, `resumed from the committed offset:\n${h.fmtLog(log)}`);
      }
      await h.assertSameBytes(assert, page, server, big, '32M', b.id);
    });
  } finally {
    await browser.dispose();
  }
});
