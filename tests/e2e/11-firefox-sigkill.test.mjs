// Firefox ESR (puppeteer-core over WebDriver BiDi): the browser SIGKILLed
// mid-download and relaunched on the same profile; the next page load wakes the
// worker, which resumes with `Range` from the committed offset; the bytes are intact.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

const SIZE = '64M';
const BYTES = 64 * h.MiB;

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

test('Firefox: a SIGKILLed browser resumes from the committed offset', { timeout: 180_000 }, async (t) => {
  const dir = await h.tempProfile('firefox-kill');
  let ff;
  try {
    ff = await h.launchFirefox(dir);
    const file = h.uniquePath('firefox-sigkill');
    let page = await ff.browser.newPage();
    await h.openDemo(page, server.origin);
    const snap = await h.download(page, `${file}?size=${SIZE}&rate=4M`);
    const seen = await h.waitFraction(page, snap.id, 0.3, BYTES);
    const sentAtKill = (await server.log(file))[0]?.bytes_sent ?? 0;
    ff.kill();
    await h.sleep(500);

    ff = await h.launchFirefox(dir);
    page = await ff.browser.newPage();
    await h.openDemo(page, server.origin);
    const after = await h.task(page, snap.id);
    assert.ok(after, 'the task survived the kill');
    const done = await h.waitCompleted(page, snap.id, { timeout: 120_000 });
    assert.equal(done.bytesReceived, BYTES, JSON.stringify(done));

    const log = (await server.log(file)).filter((e) => e.method === 'GET');
    assert.equal(log.length, 2, `one request before the kill, one after:\n${h.fmtLog(log)}`);
    const n = h.rangeStart(log[1].range);
    assert.ok(n !== null && n >= seen.bytesReceived, `resumed at N=${n} ≥ the ${seen.bytesReceived} bytes seen before the kill:\n${h.fmtLog(log)}`);
    assert.equal(log[1].status, 206, h.fmtLog(log));
    assert.match(log[1].if_range ?? '', /^"[0-9a-f]{16}-67108864"$/, h.fmtLog(log));
    const twice = sentAtKill - n;
    t.diagnostic(`Firefox: resumed at ${h.fmtMiB(n)}; sent before the kill minus N: ${h.fmtMiB(twice)}`);
    assert.ok(twice <= h.REFETCH_LIMIT, `at most one chunk fetched twice: ${twice}`);
    await h.assertSameBytes(assert, page, server, file, SIZE, snap.id, 'Firefox');
  } finally {
    await ff?.browser.close().catch(() => {});
    await h.removeDir(dir);
  }
});
