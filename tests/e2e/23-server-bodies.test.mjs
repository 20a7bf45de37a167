// Bodies that do not match their heads (core::http, "A body that does not match its
// head" and "A body of unknown length that ends"), through real browsers and the
// devserver's `overlong`, `chunked` and `end_early` switches: no byte past a declared
// end is ever counted, an overlong 206 is distrusted and asked again, a chunked 200
// that ends cleanly is confirmed by a Range request from its end. The final bytes are
// compared by SHA-256; the devserver's log shows what was asked again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

/** Record every snapshot the session's events carry, with both counts. */
async function recordCounts(page) {
  await page.evaluate(() => {
    window.__counts = [];
    for (const type of ['progress', 'statechange', 'complete']) {
      window.longhaulSession.addEventListener(type, (e) => {
        const { id, state, bytesReceived, bytesExpected } = e.detail;
        window.__counts.push({ id, state, bytesReceived, bytesExpected });
      });
    }
  });
}

async function assertNeverPastTheEnd(page, id, bytes) {
  const seen = await page.evaluate((i) => window.__counts.filter((c) => c.id === i), id);
  assert.ok(seen.length > 0, 'events were seen');
  const over = seen.filter((c) => c.bytesReceived > bytes || (c.bytesExpected != null && c.bytesReceived > c.bytesExpected));
  assert.deepEqual(over, [], 'no snapshot counted a byte past the end');
}

async function scenarios(page, browser, t) {
  await recordCounts(page);
  const etag = /^"[0-9a-f]{16}-\d+"$/;

  // A 206 whose body (and Content-Length) carries 64 KiB past its Content-Range.
  const over = h.uniquePath(`overlong-${browser}`);
  const overUrl = `${over}?size=8M&rate=8M&reset=${3 * h.MiB}&overlong=64K&fault_times=2`;
  const a = await h.download(page, overUrl);
  const doneA = await h.waitCompleted(page, a.id);
  assert.equal(doneA.bytesReceived, 8 * h.MiB, JSON.stringify(doneA));
  await assertNeverPastTheEnd(page, a.id, 8 * h.MiB);
  const logA = await server.log(over);
  const at = logA.findIndex((e) => (e.fault ?? '').includes('overlong'));
  assert.ok(at >= 0 && logA.length > at + 1, `an overlong answer was asked again:\n${h.fmtLog(logA)}`);
  t.diagnostic(`${browser}, overlong: ${logA.map((e) => `${e.range ?? 'whole'} ${e.status} ${e.fault ?? ''}`).join('; ')}`);
  await h.assertSameBytes(assert, page, server, over, '8M', a.id, browser);

  // A chunked body that ends cleanly 3 MiB in.
  const early = h.uniquePath(`end-early-${browser}`);
  const b = await h.download(page, `${early}?size=8M&chunked=1&end_early=${3 * h.MiB}&fault_times=1`);
  const doneB = await h.waitCompleted(page, b.id);
  assert.equal(doneB.bytesReceived, 8 * h.MiB, JSON.stringify(doneB));
  const logB = await server.log(early);
  assert.equal(logB.length, 2, h.fmtLog(logB));
  assert.equal(logB[0].bytes_sent, 3 * h.MiB, h.fmtLog(logB));
  assert.equal(h.rangeStart(logB[1].range), 3 * h.MiB, `the rest was asked from the clean end:\n${h.fmtLog(logB)}`);
  assert.match(logB[1].if_range ?? '', etag, h.fmtLog(logB));
  await h.assertSameBytes(assert, page, server, early, '8M', b.id, browser);

  // A whole chunked body: where the length was never given (a 200, Chromium), one
  // Range request from its end confirms it with a 416.
  const whole = h.uniquePath(`chunked-${browser}`);
  const c = await h.download(page, `${whole}?size=4M&chunked=1`);
  const doneC = await h.waitCompleted(page, c.id);
  assert.equal(doneC.bytesReceived, 4 * h.MiB, JSON.stringify(doneC));
  const logC = await server.log(whole);
  if (logC[0].status === 200) {
    assert.equal(logC.length, 2, h.fmtLog(logC));
    assert.equal(logC[1].range, `bytes=${4 * h.MiB}-`, h.fmtLog(logC));
    assert.match(logC[1].if_range ?? '', etag, h.fmtLog(logC));
    assert.equal(logC[1].status, 416, h.fmtLog(logC));
  } else {
    assert.equal(logC.length, 1, `a 206 gives the length: nothing to confirm\n${h.fmtLog(logC)}`);
  }
  await h.assertSameBytes(assert, page, server, whole, '4M', c.id, browser);
}

test('Chromium: bodies that do not match their heads', { timeout: 120_000 }, (t) =>
  h.inChromium(server.origin, '', (page) => scenarios(page, 'chromium', t)));

test('Firefox: bodies that do not match their heads', { timeout: 150_000 }, (t) =>
  h.inFirefox(server.origin, '', (page) => scenarios(page, 'firefox', t)));
