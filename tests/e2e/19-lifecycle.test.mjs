// Session lifecycle: finishTasksAndInvalidate (no new tasks, `finish` once the tasks
// end, no longer listed by identifiers()), `finish` delivered once to a page that
// opens later when none was open, and invalidateAndCancel (every task and byte gone).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

/** Run `body` (with `B` = BackgroundSession, `arg`) in the page. */
const inPage = (page, body, arg) => page.evaluate(async ([src, a]) => {
  const { BackgroundSession: B } = await import('/pkg/longhaul.js');
  // eslint-disable-next-line no-new-func
  return new Function('B', 'arg', `return (async () => { ${src} })();`)(B, a);
}, [body, arg]);

test('finishTasksAndInvalidate, a pending finish, invalidateAndCancel', { timeout: 150_000 }, async () => {
  const browser = await h.launchChromium();
  const lines = h.collectConsole(browser.context);
  try {
    await h.withConsole(lines, async () => {
      const page = await browser.context.newPage();
      await h.openDemo(page, server.origin);

      // 1. finishTasksAndInvalidate.
      const fileA = h.uniquePath('life-a');
      const a = await inPage(page, `
        const s = await B.open('life-a');
        window.__lifeA = s;
        window.__finishA = 0;
        s.addEventListener('finish', () => { window.__finishA += 1; });
        const t = await s.download(arg, {});
        await s.finishTasksAndInvalidate();
        let refused = null;
        try { await s.download(arg + '&again=1'); } catch (e) { refused = e.code; }
        return { id: t.id, refused, ids: await B.identifiers() };
      `, `${fileA}?size=4M&rate=4M`);
      assert.equal(a.refused, 'invalid-state', JSON.stringify(a));
      assert.ok(!a.ids.includes('life-a'), `an invalidated session is not listed: ${JSON.stringify(a.ids)}`);
      for (let i = 0; i < 200 && !(await page.evaluate(() => window.__finishA)); i++) await h.sleep(100);
      assert.equal(await page.evaluate(() => window.__finishA), 1, 'one finish event when the last task ended');
      const doneA = await inPage(page, 'return window.__lifeA.task(arg);', a.id);
      assert.equal(doneA.state, 'completed', 'its task ran to its end');

      // 2. A session that finishes while no page is open gets `finish` once, later.
      const fileB = h.uniquePath('life-b');
      const b = await inPage(page, "const s = await B.open('life-b'); const t = await s.download(arg); s.close(); return t;", `${fileB}?size=2M&rate=2M`);
      for (const p of browser.context.pages()) await p.close();
      await h.waitLog(server, fileB, (l) => l.length === 1 && l[0].complete, { what: 'the download to finish with no page open' });
      await h.sleep(1000);
      const later = await browser.context.newPage();
      await h.openDemo(later, server.origin);
      const got = await inPage(later, `
        const s = await B.open('life-b');
        let n = 0;
        s.addEventListener('finish', () => { n += 1; });
        await new Promise((r) => setTimeout(r, 500));
        const t = await s.task(arg);
        const s2 = await B.open('life-b');
        let m = 0;
        s2.addEventListener('finish', () => { m += 1; });
        await new Promise((r) => setTimeout(r, 500));
        return { n, m, state: t.state };
      `, b.id);
      assert.deepEqual(got, { n: 1, m: 0, state: 'completed' }, 'finish is delivered once, to the first page that opens the session');

      // 3. invalidateAndCancel.
      const fileC = h.uniquePath('life-c');
      const c = await inPage(later, "window.__lifeC = await B.open('life-c'); return window.__lifeC.download(arg);", `${fileC}?size=16M&rate=2M`);
      await h.waitLog(server, fileC, (l) => l.length === 1 && l[0].bytes_sent > h.MiB, { what: 'the download to be under way' });
      const after = await inPage(later, `
        await window.__lifeC.invalidateAndCancel();
        const s = await B.open('life-c');
        return { tasks: await s.tasks(), ids: await B.identifiers() };
      `);
      assert.deepEqual(after.tasks, [], 'every task is gone');
      assert.equal(await h.chunkCount(later, c.id), 0, 'every byte is freed');
      assert.ok(after.ids.includes('life-c'), 'opening it again made it a new, empty session');
    });
  } finally {
    await browser.dispose();
  }
});

test('a session whose storage vanished (site data cleared) is reported, not silently recreated', { timeout: 90_000 }, async () => {
  const browser = await h.launchChromium();
  try {
    const page = await browser.context.newPage();
    await h.openDemo(page, server.origin);
    const before = await inPage(page, `
      const first = await B.open('vanishing');
      const again = await B.open('vanishing', undefined, { mustExist: true });
      return { firstNew: first.isNew, againNew: again.isNew };
    `);
    assert.deepEqual(before, { firstNew: true, againNew: false });
    // The user clears the site's data: storage and the service worker are gone.
    const cdp = await browser.context.newCDPSession(page);
    await cdp.send('Storage.clearDataForOrigin', { origin: server.origin, storageTypes: 'all' });
    await page.reload();
    await h.waitForSession(page);
    const after = await inPage(page, `
      let lost = null;
      try { await B.open('vanishing', undefined, { mustExist: true }); } catch (e) { lost = e.code; }
      const fresh = await B.open('vanishing');
      return { lost, freshNew: fresh.isNew };
    `);
    assert.deepEqual(after, { lost: 'not-found', freshNew: true }, JSON.stringify(after));
  } finally {
    await browser.dispose();
  }
});
