// Notifications: in a session with `notifications: true` and the permission granted
// (Playwright grants it through CDP), a task that ends while no page is open shows a
// notification; one that ends while a page is open does not.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

const notifications = (page) => page.evaluate(async () => {
  const reg = await navigator.serviceWorker.ready;
  return (await reg.getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag }));
});

test('a task that ends with no page open shows a notification', { timeout: 120_000 }, async () => {
  const browser = await h.launchChromium();
  const lines = h.collectConsole(browser.context);
  try {
    await h.withConsole(lines, async () => {
      const page = await browser.context.newPage();
      await h.openDemo(page, server.origin);
      await browser.context.grantPermissions(['notifications'], { origin: server.origin });
      const quick = h.uniquePath('notify-open');
      const slow = h.uniquePath('notify-closed');
      const ids = await page.evaluate(async ([a, b]) => {
        const { BackgroundSession: B } = await import('/pkg/longhaul.js');
        const s = await B.open('notify', { notifications: true });
        const t1 = await s.download(a, { description: 'with a page open' });
        await new Promise((resolve) => {
          s.addEventListener('complete', (e) => { if (e.detail.id === t1.id) resolve(); });
        });
        const t2 = await s.download(b, { description: 'with no page open' });
        return [t1.id, t2.id];
      }, [`${quick}?size=256K`, `${slow}?size=4M&rate=2M`]);
      assert.deepEqual(await notifications(page), [], 'no notification while a page is open');
      for (const p of browser.context.pages()) await p.close();
      await h.waitLog(server, slow, (l) => l.length === 1 && l[0].complete, { what: 'the download to end with no page open' });
      await h.sleep(1500);
      const later = await browser.context.newPage();
      await h.openDemo(later, server.origin);
      const shown = await notifications(later);
      assert.deepEqual(shown, [{ title: 'Download complete', body: 'with no page open', tag: `longhaul:${ids[1]}` }], JSON.stringify(shown));
    });
  } finally {
    await browser.dispose();
  }
});
