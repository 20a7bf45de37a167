// Quota (FAULTS 19): when the browser refuses to store more (`QuotaExceededError`),
// the chunk's transaction aborts and the task fails with a typed `quota` error; the
// committed offset still covers only stored bytes, other tasks and their bytes are
// untouched, and canceling the failed task frees its room for the next download. An
// upload whose body does not fit is refused with `quota`, leaving nothing stored.
//
// The quota is made small with Firefox's `dom.quotaManager.temporaryStorage.fixedLimit`
// (20 MiB in all, which gives one origin a 10 MiB group limit). Chromium has no such
// switch: CDP `Storage.overrideQuotaForOrigin` answers but changed neither
// `navigator.storage.estimate()` nor what IndexedDB accepts in Chromium 156.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

test('Firefox: a full quota fails the task typed and touches nothing else', { timeout: 180_000 }, async (t) => {
  const ff = await h.launchFirefox(undefined, { prefs: { 'dom.quotaManager.temporaryStorage.fixedLimit': 20 * 1024 } });
  try {
    const page = await ff.browser.newPage();
    await h.openDemo(page, server.origin, '', 60_000);
    const small = h.uniquePath('quota-neighbour');
    const a = await h.download(page, `${small}?size=2M`);
    await h.waitCompleted(page, a.id);

    const big = h.uniquePath('quota-big');
    const b = await h.download(page, `${big}?size=32M&rate=16M`);
    const failed = await h.waitTask(page, b.id, (s) => s.state === 'failed',
      { what: 'the quota failure', timeout: 90_000 }).catch(async (e) => {
      throw new Error(`${e.message}; estimate ${JSON.stringify(await page.evaluate(async () => navigator.storage.estimate()))}`);
    });
    t.diagnostic(`failed at ${failed.bytesReceived} bytes: ${failed.error?.message}`);
    assert.equal(failed.error?.code, 'quota', JSON.stringify(failed));
    assert.ok(failed.bytesReceived < 32 * h.MiB, JSON.stringify(failed));
    const record = await h.storedRecord(page, b.id);
    assert.equal(h.committedOf(record), failed.bytesReceived, 'the stored offset is what was committed');

    // The neighbour is untouched.
    assert.equal((await h.task(page, a.id)).state, 'completed');
    await h.assertSameBytes(assert, page, server, small, '2M', a.id);

    // An upload whose body does not fit is refused with `quota`, and nothing of its
    // copy is left behind.
    const countChunks = () => h.chunkCount(page);
    const chunksBefore = await countChunks();
    const tasksBefore = (await h.tasks(page)).length;
    await h.makeBody(page, 'big', h.uniquePath('quota-upload'), '16M');
    const refused = await page.evaluate(async (url) => {
      try {
        await window.longhaulSession.upload(url, window.__bodies.big, { protocol: 'put' });
        return { ok: true };
      } catch (e) {
        return { ok: false, code: e.code, message: e.message };
      }
    }, `${server.origin}/sink/quota-upload.bin`);
    assert.deepEqual([refused.ok, refused.code], [false, 'quota'], JSON.stringify(refused));
    assert.equal(await countChunks(), chunksBefore, 'nothing of the refused upload is stored');
    assert.equal((await h.tasks(page)).length, tasksBefore, 'and no task was made');

    // Canceling the failed task frees its bytes: a new download fits again.
    assert.equal(await page.evaluate((id) => window.longhaulSession.cancel(id), b.id), true);
    const next = h.uniquePath('quota-after');
    const c = await h.download(page, `${next}?size=4M`);
    await h.waitCompleted(page, c.id);
    await h.assertSameBytes(assert, page, server, next, '4M', c.id);
  } finally {
    await ff.dispose();
  }
});
