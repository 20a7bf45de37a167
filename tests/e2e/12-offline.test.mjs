// Offline mid-transfer (FAULTS 3): the page's `offline` event reaches the worker; the
// failure that follows leaves the task `waiting` for the network, spending no retry
// attempt (no request while offline, however long); the `online` event resumes it
// from the committed offset.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

const SIZE = '16M';
const BYTES = 16 * h.MiB;

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

test('an offline task waits without retrying and resumes when the network returns', { timeout: 120_000 }, async (t) => {
  const browser = await h.launchChromium();
  try {
    await h.withConsole(h.collectConsole(browser.context), async () => {
      const page = await browser.context.newPage();
      await h.openDemo(page, server.origin);
      const file = h.uniquePath('offline');
      // The connection drops 8 MiB in, once: the network "going away".
      const snap = await h.download(page, `${file}?size=${SIZE}&rate=4M&reset=${8 * h.MiB}&fault_times=1`);
      await h.waitFraction(page, snap.id, 0.1, BYTES);
      await browser.context.setOffline(true);

      const waiting = await h.waitTask(page, snap.id, (s) => s.state === 'waiting', { what: 'the task to wait', timeout: 30_000 });
      assert.equal(waiting.waitReason, 'offline', JSON.stringify(waiting));
      assert.equal(waiting.retryAt, null, JSON.stringify(waiting));
      await h.sleep(4000); // the default policy would have retried within ~1.2 s, then ~2.4 s
      const still = await h.task(page, snap.id);
      assert.equal(still.state, 'waiting', JSON.stringify(still));
      const during = (await server.log(file)).filter((e) => e.method === 'GET');
      assert.equal(during.length, 1, `no request while offline:\n${h.fmtLog(during)}`);

      await browser.context.setOffline(false);
      const done = await h.waitCompleted(page, snap.id);
      assert.equal(done.bytesReceived, BYTES, JSON.stringify(done));
      const log = (await server.log(file)).filter((e) => e.method === 'GET');
      assert.equal(log.length, 2, h.fmtLog(log));
      const n = h.rangeStart(log[1].range);
      assert.ok(n > 0 && log[1].status === 206, `resumed with a range:\n${h.fmtLog(log)}`);
      t.diagnostic(`waited offline at ${h.fmtMiB(waiting.bytesReceived)}; resumed at ${h.fmtMiB(n)}`);
      await h.assertSameBytes(assert, page, server, file, SIZE, snap.id);
    });
  } finally {
    await browser.dispose();
  }
});
