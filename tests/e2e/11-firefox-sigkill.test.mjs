// Firefox ESR (puppeteer-core over WebDriver BiDi): the browser SIGKILLed
// mid-download and relaunched on the same profile; the next page load wakes the
// worker, which resumes with `Range` from the committed offset; the bytes are intact.
// Twice: on a slow link (chunk records, at most one chunk fetched twice), and on a
// fast one, where Firefox stores segment files (`src/store/segments.rs`: each file
// closed before the record that names it commits with the offset), killed while
// it writes them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

/**
 * Download `size` MiB at `rate`, SIGKILL Firefox once `fraction` of it was seen,
 * relaunch, and check the resume and the bytes. `beforeKill(page, id)` runs just
 * before the kill. Returns the resume offset, what was seen and the server's log.
 */
async function killAndResume(t, label, size, rate, fraction, beforeKill = async () => {}) {
  const bytes = size * h.MiB;
  const dir = await h.tempProfile(label);
  let ff;
  try {
    ff = await h.launchFirefox(dir);
    const file = h.uniquePath(label);
    let page = await ff.browser.newPage();
    await h.openDemo(page, server.origin);
    const snap = await h.download(page, `${file}?size=${size}M&rate=${rate}`);
    const seen = await h.waitFraction(page, snap.id, fraction, bytes, { interval: 50 });
    await beforeKill(page, snap.id);
    // Firefox asks for Range windows (`EngineConfig::fetch_window`): a transfer may
    // be several requests, each starting where the one before it ended.
    const sentAtKill = h.servedEnd(await server.log(file));
    ff.kill();
    assert.ok(seen.state !== 'completed', 'killed before the end');
    await h.sleep(500);
    const before = (await server.log(file)).filter((e) => e.method === 'GET').length;

    ff = await h.launchFirefox(dir);
    page = await ff.browser.newPage();
    await h.openDemo(page, server.origin);
    const after = await h.task(page, snap.id);
    assert.ok(after, 'the task survived the kill');
    const done = await h.waitCompleted(page, snap.id, { timeout: 150_000 });
    assert.equal(done.bytesReceived, bytes, JSON.stringify(done));

    const log = (await server.log(file)).filter((e) => e.method === 'GET');
    assert.ok(before >= 1 && log.length > before, `requests before the kill, and after:\n${h.fmtLog(log)}`);
    // Each request after the first starts where the one before it ended (windows),
    // except the resume, which starts at the committed offset.
    for (let i = 1; i < log.length; i++) {
      if (i === before) continue;
      assert.equal(h.rangeStart(log[i].range), h.rangeStart(log[i - 1].range) + log[i - 1].bytes_sent,
        `request ${i} goes on from the one before it:\n${h.fmtLog(log)}`);
    }
    const n = h.rangeStart(log[before].range);
    assert.ok(n !== null && n >= seen.bytesReceived, `resumed at N=${n} ≥ the ${seen.bytesReceived} bytes seen before the kill:\n${h.fmtLog(log)}`);
    for (const e of log.slice(before)) {
      assert.equal(e.status, 206, h.fmtLog(log));
      assert.match(e.if_range ?? '', new RegExp(`^"[0-9a-f]{16}-${bytes}"$`), h.fmtLog(log));
    }
    await h.assertSameBytes(assert, page, server, file, `${size}M`, snap.id, 'Firefox');
    return { n, sentAtKill };
  } finally {
    await ff?.browser.close().catch(() => {});
    await h.removeDir(dir);
  }
}

test('Firefox: a SIGKILLed browser resumes from the committed offset', { timeout: 180_000 }, async (t) => {
  const { n, sentAtKill } = await killAndResume(t, 'firefox-sigkill', 64, '4M', 0.3);
  const twice = sentAtKill - n;
  t.diagnostic(`Firefox: resumed at ${h.fmtMiB(n)}; sent before the kill minus N: ${h.fmtMiB(twice)}`);
  assert.ok(twice <= h.REFETCH_LIMIT, `at most one chunk fetched twice: ${twice}`);
});

test('Firefox: segment files on a fast link survive a SIGKILL, and the resume is exact', { timeout: 240_000 }, async (t) => {
  // 96 MiB/s: above the rate where commits become segment files (48 MiB/s), slow
  // enough to stop it half-way.
  let segments = 0;
  const { n } = await killAndResume(t, 'firefox-segments', 192, '96M', 0.5, async (page, id) => {
    segments = await h.segmentCount(page, id);
  });
  t.diagnostic(`Firefox: ${segments} segment records before the kill; resumed at ${h.fmtMiB(n)}`);
  assert.ok(segments >= 1, 'a fast link stores segment files');
});
