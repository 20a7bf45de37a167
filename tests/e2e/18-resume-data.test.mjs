// Resume data: a download canceled with `{ produceResumeData: true }` keeps its bytes
// and gives a JSON-serializable value; after a page reload, `download(resumeData)`
// continues with `Range: bytes=<offset>-` and completes intact. Altered data, and data
// used a second time, are refused with `not-resumable`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

test('resume data continues a canceled download across a page reload', { timeout: 120_000 }, async () => {
  const browser = await h.launchChromium();
  const lines = h.collectConsole(browser.context);
  try {
    await h.withConsole(lines, async () => {
      const page = await browser.context.newPage();
      await h.openDemo(page, server.origin);
      const file = h.uniquePath('resume-data');
      const snap = await h.download(page, `${file}?size=16M&rate=4M`);
      await h.waitFraction(page, snap.id, 0.3, 16 * h.MiB);
      const data = await page.evaluate(async (id) => {
        const d = await window.longhaulSession.cancel(id, { produceResumeData: true });
        localStorage.setItem('resume', JSON.stringify(d));
        return d;
      }, snap.id);
      assert.equal(data.longhaulResumeData, 1, JSON.stringify(data));
      assert.ok(data.offset > 0, JSON.stringify(data));
      assert.equal((await h.task(page, snap.id)).state, 'canceled');

      await page.reload();
      await h.waitForSession(page);
      const tryData = (d) => page.evaluate(async (x) => {
        try { return { ok: true, snap: await window.longhaulSession.download(x) }; } catch (e) { return { ok: false, code: e.code }; }
      }, d);
      const forged = await tryData({ ...data, token: 'guessed' });
      assert.deepEqual(forged, { ok: false, code: 'not-resumable' }, 'altered resume data is refused');
      const stored = await page.evaluate(() => JSON.parse(localStorage.getItem('resume')));
      const revived = await tryData(stored);
      assert.ok(revived.ok, JSON.stringify(revived));
      assert.equal(revived.snap.id, snap.id, 'the same task goes on');
      const again = await tryData(stored);
      assert.deepEqual(again, { ok: false, code: 'not-resumable' }, 'resume data works once');

      await h.waitCompleted(page, snap.id);
      const log = await server.log(file);
      assert.equal(log.length, 2, h.fmtLog(log));
      assert.equal(log[1].range, `bytes=${data.offset}-`, `continued from the kept bytes:\n${h.fmtLog(log)}`);
      await h.assertSameBytes(assert, page, server, file, '16M', snap.id);
    });
  } finally {
    await browser.dispose();
  }
});
