// Scenario 4: the whole browser is SIGKILLed mid-download and relaunched on the same
// profile. Opening the demo page wakes the worker, which resumes with
// `Range: bytes=N-` (+ `If-Range`) from the committed offset N, re-fetching at most
// one commit unit plus slack, and completes with the source bytes.
//
// Chromium is spawned by the test (its own process group, `--remote-debugging-port=0`)
// and driven over CDP, so that the test can SIGKILL every process of it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

const SIZE = '64M';
const BYTES = 64 * h.MiB;
const RATE = 8 * h.MiB;

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

test('after a SIGKILL of the browser the task resumes from its committed offset', { timeout: 150_000 }, async (t) => {
  const dir = await h.tempProfile('sigkill');
  let browser;
  try {
    browser = await h.spawnChromium(dir);
    const page = await browser.context.newPage();
    await h.openDemo(page, server.origin);
    const file = h.uniquePath('sigkill');
    const snap = await h.download(page, `${file}?size=${SIZE}&rate=${RATE}`);
    const seen = await h.waitFraction(page, snap.id, 0.3, BYTES);
    assert.equal(seen.state, 'running', JSON.stringify(seen));

    // What the server had handed over when the signal went out, read just before it:
    // the bytes the browser could have received. After the signal the server goes on
    // writing into the dying processes' socket buffers until the kernel closes them
    // (tens of ms of process teardown: at 8 MiB/s, 0.1 to 1 MiB more was measured here),
    // bytes no browser code ever read; the first request's final bytes_sent includes them.
    const preKill = (await server.log(file))[0];
    process.kill(-browser.pid, 'SIGKILL');
    const postKill = (await server.log(file))[0];
    await browser.kill();
    browser = undefined;
    const cut = await h.waitLog(server, file, (l) => l.length === 1 && !l[0].complete, { what: 'the first request to end cut' });
    await h.sleep(500);
    const firstSent = (await server.log(file))[0].bytes_sent;
    assert.ok(firstSent < BYTES, `the download was interrupted mid-way:\n${h.fmtLog(cut)}`);

    browser = await h.spawnChromium(dir);
    const lines = h.collectConsole(browser.context);
    await h.withConsole(lines, async () => {
      // Before any page of the origin runs: read the committed offset from IndexedDB
      // in a page whose navigation bypasses the service worker (so it does not start it).
      const peek = await h.openBypassingWorker(browser.context, server.origin);
      const rec = await h.storedRecord(peek.page, snap.id);
      await peek.close();
      assert.ok(rec, 'the task record survived the SIGKILL');
      const committed = h.committedOf(rec);
      assert.ok(committed >= seen.bytesReceived && committed < BYTES,
        `the committed offset ${committed} is at least what was seen before the kill (${seen.bytesReceived}); record ${JSON.stringify(rec)}`);
      assert.equal(rec.state, 'running', `stored as running: ${JSON.stringify(rec)}`);
      const quiet = await server.log(file);
      assert.equal(quiet.length, 1, `no worker ran before a page of the origin was opened:\n${h.fmtLog(quiet)}`);

      const page2 = await browser.context.newPage();
      await h.openDemo(page2, server.origin);
      const after = await h.task(page2, snap.id);
      assert.ok(after, 'the task is found after the relaunch');

      const log = await h.waitLog(server, file, (l) => l.length >= 2, { what: 'the resumed request' });
      const resumed = log[1];
      const n = h.rangeStart(resumed.range);
      const detail = `seen before the kill ${JSON.stringify(seen)}; stored record ${JSON.stringify(rec)}; ` +
        `after the relaunch ${JSON.stringify(after)}; log:\n${h.fmtLog(log)}`;
      assert.ok(n !== null && n > 0, `the resumed request asks for bytes=N- with N > 0; ${detail}`);
      assert.equal(n, committed, `the resume starts exactly at the committed offset; ${detail}`);
      assert.ok(n <= after.bytesReceived, `N ≤ bytesReceived observed after the relaunch; ${detail}`);
      assert.match(resumed.if_range ?? '', /^"[0-9a-f]{16}-67108864"$/, `If-Range carries the strong ETag; ${detail}`);
      assert.equal(resumed.status, 206, detail);

      const twice = preKill.bytes_sent - n;
      const twicePost = postKill.bytes_sent - n;
      const twiceFinal = firstSent - n;
      t.diagnostic(`bytes fetched twice (bytes_sent of the first request just before the kill - N): ${h.fmtMiB(twice)}; N = ${n}`);
      t.diagnostic(`the same read just after the kill: ${h.fmtMiB(twicePost)}; by the final bytes_sent: ${h.fmtMiB(twiceFinal)}`);
      console.log(`[sigkill] bytes fetched twice: ${twice} (${(twice / h.MiB).toFixed(3)} MiB) by bytes_sent just before the kill; ` +
        `${twicePost} (${(twicePost / h.MiB).toFixed(3)} MiB) just after; ${twiceFinal} (${(twiceFinal / h.MiB).toFixed(3)} MiB) final; N=${n}`);
      // N can pass the reading taken just before the kill: between that reading and
      // the signal the server writes on and the browser may commit (seen: 16 KiB).
      // The reading taken after the kill bounds it.
      assert.ok(twicePost >= 0, `N was within what the first request had sent by the kill; ${detail}`);
      assert.ok(twice <= h.REFETCH_LIMIT,
        `at most 1 MiB + 256 KiB fetched twice, got ${twice} (bytes_sent just before the kill ${preKill.bytes_sent}); ${detail}`);

      const done = await h.waitCompleted(page2, snap.id);
      assert.equal(done.bytesReceived, BYTES, JSON.stringify(done));
      const final = await server.log(file);
      assert.equal(final.length, 2, `exactly two requests:\n${h.fmtLog(final)}`);
      assert.equal(final[1].bytes_sent, BYTES - n, `the resumed request served the rest:\n${h.fmtLog(final)}`);
      await h.assertSameBytes(assert, page2, server, file, SIZE, snap.id);
    });
    await browser.close();
    browser = undefined;
  } finally {
    if (browser) await browser.kill();
    await h.removeDir(dir);
  }
});
