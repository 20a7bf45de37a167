// Scenario 6: a paused task stays paused across a browser restart: pause, close the
// browser (persistent profile), relaunch, open the demo: still paused, same offset,
// no request for the file; resume: it completes from the paused offset with the
// source bytes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

const SIZE = '64M';
const BYTES = 64 * h.MiB;

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

test('a paused task stays paused across a browser restart, then resumes and completes', { timeout: 150_000 }, async (t) => {
  const dir = await h.tempProfile('pause');
  let browser;
  try {
    browser = await h.launchChromium(dir);
    const file = h.uniquePath('pause-persist');
    let snap;
    let paused;
    await h.withConsole(h.collectConsole(browser.context), async () => {
      const page = await browser.context.newPage();
      await h.openDemo(page, server.origin);
      snap = await h.download(page, `${file}?size=${SIZE}&rate=10M`);
      await h.waitFraction(page, snap.id, 0.3, BYTES);
      paused = await page.evaluate((id) => window.longhaulSession.pause(id), snap.id);
      assert.equal(paused.state, 'paused', JSON.stringify(paused));
      assert.ok(paused.bytesReceived > 0 && paused.bytesReceived < BYTES, JSON.stringify(paused));
      await h.waitLog(server, file, (l) => l.length === 1 && !l[0].complete, { what: 'the request to be cut by the pause' });
    });
    await browser.close();
    browser = undefined;
    const logClosed = await server.log(file);
    assert.equal(logClosed.length, 1, h.fmtLog(logClosed));

    browser = await h.launchChromium(dir);
    await h.withConsole(h.collectConsole(browser.context), async () => {
      const page = await browser.context.newPage();
      await h.openDemo(page, server.origin);
      const reopened = await h.task(page, snap.id);
      assert.ok(reopened, 'the task survived the restart');
      assert.equal(reopened.state, 'paused', `still paused after the restart: ${JSON.stringify(reopened)}`);
      assert.equal(reopened.bytesReceived, paused.bytesReceived, `same offset after the restart: ${JSON.stringify(reopened)} vs ${JSON.stringify(paused)}`);
      await page.waitForSelector(`li.task[data-id="${snap.id}"][data-state="paused"]`, { timeout: 10_000 });

      // The worker is running (the page load woke it); it must not touch the paused task.
      await h.sleep(3000);
      const still = await h.task(page, snap.id);
      assert.equal(still.state, 'paused', JSON.stringify(still));
      assert.equal(still.bytesReceived, paused.bytesReceived, JSON.stringify(still));
      const logPaused = await server.log(file);
      assert.equal(logPaused.length, 1, `no request for the file while paused:\n${h.fmtLog(logPaused)}`);
      assert.equal(logPaused[0].bytes_sent, logClosed[0].bytes_sent, h.fmtLog(logPaused));

      const resumed = await page.evaluate((id) => window.longhaulSession.resume(id), snap.id);
      assert.ok(['pending', 'running'].includes(resumed.state), JSON.stringify(resumed));
      const done = await h.waitCompleted(page, snap.id);
      assert.equal(done.bytesReceived, BYTES, JSON.stringify(done));

      const log = await server.log(file);
      assert.equal(log.length, 2, `one request before the pause, one after the resume:\n${h.fmtLog(log)}`);
      assert.equal(h.rangeStart(log[1].range), paused.bytesReceived, `the resume asks from the paused offset:\n${h.fmtLog(log)}`);
      assert.match(log[1].if_range ?? '', /^"[0-9a-f]{16}-67108864"$/, h.fmtLog(log));
      assert.equal(log[1].status, 206, h.fmtLog(log));
      t.diagnostic(`paused at ${h.fmtMiB(paused.bytesReceived)}; resumed with ${log[1].range}`);
      await h.assertSameBytes(assert, page, server, file, SIZE, snap.id);
    });
    await browser.close();
    browser = undefined;
  } finally {
    await browser?.close();
    await h.removeDir(dir);
  }
});
