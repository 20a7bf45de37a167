// Firefox on a fast link stores bytes as segment files in OPFS (`src/store/segments.rs`):
// each file closed before the record that names it commits with the offset. The
// browser is SIGKILLed while segments are being written, relaunched on its profile,
// and the download resumes from the committed offset with `Range`; the final bytes
// match the source by SHA-256, so no committed offset ever covered a file that was
// not stored.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

const SIZE = '192M';
const BYTES = 192 * h.MiB;

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

test('Firefox: segment files on a fast link survive a SIGKILL, and the resume is exact', { timeout: 240_000 }, async (t) => {
  const dir = await h.tempProfile('firefox-segments');
  let ff;
  try {
    ff = await h.launchFirefox(dir);
    const file = h.uniquePath('firefox-segments');
    let page = await ff.browser.newPage();
    await h.openDemo(page, server.origin);
    // 96 MiB/s: above the rate where commits become segment files (48 MiB/s), slow
    // enough to stop it half-way.
    const snap = await h.download(page, `${file}?size=${SIZE}&rate=96M`);
    const seen = await h.waitFraction(page, snap.id, 0.5, BYTES, { interval: 50 });
    const segments = await h.segmentCount(page, snap.id);
    ff.kill();
    t.diagnostic(`killed at ${h.fmtMiB(seen.bytesReceived)} seen, ${segments} segment records`);
    assert.ok(seen.state !== 'completed', 'killed before the end');
    assert.ok(segments >= 1, 'a fast link stores segment files');
    await h.sleep(500);

    ff = await h.launchFirefox(dir);
    page = await ff.browser.newPage();
    await h.openDemo(page, server.origin);
    const done = await h.waitCompleted(page, snap.id, { timeout: 150_000 });
    assert.equal(done.bytesReceived, BYTES, JSON.stringify(done));
    const log = (await server.log(file)).filter((e) => e.method === 'GET');
    assert.equal(log.length, 2, `one request before the kill, one after:\n${h.fmtLog(log)}`);
    const n = h.rangeStart(log[1].range);
    assert.ok(n !== null && n >= seen.bytesReceived, `resumed at N=${n} ≥ the ${seen.bytesReceived} bytes seen before the kill:\n${h.fmtLog(log)}`);
    assert.equal(log[1].status, 206, h.fmtLog(log));
    t.diagnostic(`resumed at ${h.fmtMiB(n)}`);
    await h.assertSameBytes(assert, page, server, file, SIZE, snap.id, 'Firefox');
  } finally {
    await ff?.browser.close().catch(() => {});
    await h.removeDir(dir);
  }
});
