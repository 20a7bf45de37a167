// Scheduling across restarts: a download with `earliestBegin` a few seconds ahead
// waits (`waiting`, `earliest-begin`) without a request; the browser is closed before
// its time and relaunched after it, and the task starts at that first wake and
// completes intact.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

test('earliestBegin holds a task across a browser restart; it runs at the first wake after', { timeout: 120_000 }, async () => {
  const dir = await h.tempProfile('earliest');
  let browser;
  try {
    browser = await h.spawnChromium(dir);
    const page = await browser.context.newPage();
    await h.openDemo(page, server.origin);
    const file = h.uniquePath('earliest');
    const at = Date.now() + 6_000;
    const snap = await page.evaluate(([u, t]) => window.longhaulSession.download(u, { earliestBegin: new Date(t), priority: 0.9 }), [`${file}?size=4M`, at]);
    const waiting = await h.waitTask(page, snap.id, (s) => s.state === 'waiting', { what: 'waiting' });
    assert.equal(waiting.waitReason, 'earliest-begin', JSON.stringify(waiting));
    assert.equal(waiting.retryAt, at, JSON.stringify(waiting));
    assert.equal(waiting.priority, 0.9);
    await browser.close();
    browser = undefined;
    assert.equal((await server.log(file)).length, 0, 'no request before its time');
    const wait = at + 1_000 - Date.now();
    if (wait > 0) await h.sleep(wait);

    browser = await h.spawnChromium(dir);
    const again = await browser.context.newPage();
    await h.openDemo(again, server.origin);
    const done = await h.waitCompleted(again, snap.id);
    const log = await server.log(file);
    assert.ok(log.length >= 1 && log[0].t_ms !== undefined, h.fmtLog(log));
    assert.equal(done.state, 'completed');
    await h.assertSameBytes(assert, again, server, file, '4M', snap.id);
    const bad = await again.evaluate(async (u) => {
      try { await window.longhaulSession.download(u, { earliestBegin: new Date('not a date') }); return null; } catch (e) { return e.code; }
    }, `${file}?size=1M&x=1`);
    assert.equal(bad, 'invalid-input', 'an earliestBegin that is not a date is refused');
  } finally {
    if (browser) await browser.close();
    await h.removeDir(dir);
  }
});
