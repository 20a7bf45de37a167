// Scenario 3: every page is closed mid-download (the browser and its context stay
// up); a page opened later finds the task, which completes with the source bytes.
// Playwright keeps an attached worker alive, so the download may go on, or even
// finish, while no page is open: both are fine, the task must just be there.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

const SIZE = '64M';
const BYTES = 64 * h.MiB;

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

test('a download goes on after all pages closed; a later page finds it and it completes', { timeout: 120_000 }, async (t) => {
  const browser = await h.launchChromium();
  const lines = h.collectConsole(browser.context);
  try {
    await h.withConsole(lines, async () => {
      const first = await browser.context.newPage();
      await h.openDemo(first, server.origin);
      const file = h.uniquePath('pages-closed');
      const snap = await h.download(first, `${file}?size=${SIZE}&rate=12M`, { description: 'closed pages' });
      const seen = await h.waitFraction(first, snap.id, 0.3, BYTES);
      assert.equal(seen.state, 'running', JSON.stringify(seen));

      for (const p of browser.context.pages()) await p.close();
      assert.equal(browser.context.pages().length, 0, 'no page is open');
      await h.sleep(2000);

      const later = await browser.context.newPage();
      await h.openDemo(later, server.origin);
      const list = await h.tasks(later);
      const found = list.find((s) => s.id === snap.id);
      assert.ok(found, `the new page's tasks() lists the task; got ${JSON.stringify(list)}`);
      assert.equal(found.url, snap.url);
      assert.equal(found.description, 'closed pages');
      assert.ok(found.bytesReceived >= seen.bytesReceived,
        `no committed progress was lost: ${found.bytesReceived} < ${seen.bytesReceived}; ${JSON.stringify(found)}`);
      assert.ok(['running', 'completed'].includes(found.state), `running or already completed: ${JSON.stringify(found)}`);
      t.diagnostic(`when the new page opened: ${found.state}, ${h.fmtMiB(found.bytesReceived)}`);

      // The page renders it too.
      await later.waitForSelector(`li.task[data-id="${snap.id}"]`, { timeout: 10_000 });

      const done = await h.waitCompleted(later, snap.id);
      assert.equal(done.bytesReceived, BYTES, JSON.stringify(done));
      const log = await server.log(file);
      t.diagnostic(`requests for the file: ${log.map((e) => `${e.status} range=${e.range} sent=${e.bytes_sent}`).join('; ')}`);
      assert.ok(log.at(-1).complete, `the last request completed:\n${h.fmtLog(log)}`);
      for (const e of log.slice(1)) {
        assert.ok(h.rangeStart(e.range) > 0, `any later request resumes with a Range:\n${h.fmtLog(log)}`);
      }
      await h.assertSameBytes(assert, later, server, file, SIZE, snap.id);
    });
  } finally {
    await browser.dispose();
  }
});
