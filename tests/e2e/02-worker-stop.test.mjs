// Scenario 2: the service worker is stopped mid-download (CDP
// ServiceWorker.stopAllWorkers); a page reload starts it again and the task resumes
// with `Range: bytes=N-` from its committed offset, re-fetching at most one commit
// unit (1 MiB) plus slack.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

const SIZE = '64M';
const BYTES = 64 * h.MiB;

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

test('a stopped worker resumes from its committed offset after a reload', { timeout: 120_000 }, async (t) => {
  const browser = await h.launchChromium();
  const lines = h.collectConsole(browser.context);
  try {
    await h.withConsole(lines, async () => {
      const page = await browser.context.newPage();
      await h.openDemo(page, server.origin);
      const file = h.uniquePath('worker-stop');
      const snap = await h.download(page, `${file}?size=${SIZE}&rate=12M`);
      const before = await h.waitFraction(page, snap.id, 0.3, BYTES);
      assert.equal(before.state, 'running', `still running at 30%: ${JSON.stringify(before)}`);

      const cdp = await page.context().newCDPSession(page);
      await cdp.send('ServiceWorker.enable');
      await cdp.send('ServiceWorker.stopAllWorkers');

      // The worker is gone: its request must stop growing, unfinished.
      await h.sleep(300);
      const logStopped = await h.waitLog(server, file, (l) => l.length === 1 && !l[0].complete, { what: 'the first request to be cut' });
      await h.sleep(700);
      const logStill = await server.log(file);
      assert.equal(logStill.length, 1, `no new request while the worker is stopped:\n${h.fmtLog(logStill)}`);
      assert.equal(logStill[0].bytes_sent, logStopped[0].bytes_sent,
        `the first request stopped when the worker stopped:\n${h.fmtLog(logStill)}`);
      const firstSent = logStill[0].bytes_sent;
      assert.ok(firstSent < BYTES, `the download was interrupted mid-way:\n${h.fmtLog(logStill)}`);

      // The committed offset, read from IndexedDB by the page (no message to the worker).
      const rec = await h.storedRecord(page, snap.id);
      const committed = h.committedOf(rec);
      assert.ok(committed >= before.bytesReceived,
        `the stored offset ${committed} is at least what was seen before the stop (${before.bytesReceived}); record ${JSON.stringify(rec)}`);
      t.diagnostic(`stopped at: committed ${h.fmtMiB(committed)}, server had sent ${h.fmtMiB(firstSent)}`);

      await page.reload();
      await h.waitForSession(page);
      const after = await h.task(page, snap.id);
      assert.ok(after, 'the task still exists after the reload');

      const log = await h.waitLog(server, file, (l) => l.length >= 2, { what: 'a second request for the file' });
      const resumed = log[1];
      const n = h.rangeStart(resumed.range);
      const detail = `snapshot after reload ${JSON.stringify(after)}; committed at stop ${committed}; log:\n${h.fmtLog(log)}`;
      assert.ok(n !== null && n > 0, `the second request asks for bytes=N- with N > 0; ${detail}`);
      assert.equal(n, committed, `the resume starts exactly at the committed offset; ${detail}`);
      assert.ok(n <= after.bytesReceived, `N ≤ bytesReceived observed after the stop; ${detail}`);
      assert.match(resumed.if_range ?? '', /^"[0-9a-f]{16}-67108864"$/, `If-Range carries the strong ETag; ${detail}`);
      assert.equal(resumed.status, 206, detail);

      const twice = firstSent - n;
      t.diagnostic(`bytes fetched twice (bytes_sent of the first request - N): ${h.fmtMiB(twice)}`);
      console.log(`[worker-stop] bytes fetched twice: ${twice} (${(twice / h.MiB).toFixed(3)} MiB), N=${n}, first bytes_sent=${firstSent}`);
      assert.ok(twice >= 0, `the first request covered N; ${detail}`);
      assert.ok(twice <= h.REFETCH_LIMIT, `at most 1 MiB + 256 KiB fetched twice, got ${twice}; ${detail}`);

      const done = await h.waitCompleted(page, snap.id);
      assert.equal(done.bytesReceived, BYTES, JSON.stringify(done));
      const final = await server.log(file);
      assert.equal(final.length, 2, `exactly two requests:\n${h.fmtLog(final)}`);
      assert.equal(final[1].bytes_sent, BYTES - n, `the resumed request served the rest:\n${h.fmtLog(final)}`);
      await h.assertSameBytes(assert, page, server, file, SIZE, snap.id);
    });
  } finally {
    await browser.dispose();
  }
});
