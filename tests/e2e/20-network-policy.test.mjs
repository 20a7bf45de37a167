// Network policy: a discretionary session's download waits (`discretionary`) while
// the page reports a cellular network, and runs once the page reports Wi-Fi. The
// page's `navigator.connection` is replaced by a stand-in the test controls (the real
// one follows the machine's network, which a test cannot switch).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

test('a discretionary task waits for a good network, then runs', { timeout: 120_000 }, async () => {
  const browser = await h.launchChromium();
  const lines = h.collectConsole(browser.context);
  try {
    await browser.context.addInitScript(() => {
      const c = new EventTarget();
      Object.assign(c, { type: 'cellular', saveData: false, effectiveType: '4g' });
      Object.defineProperty(Navigator.prototype, 'connection', { get: () => c, configurable: true });
      window.__connection = c;
    });
    await h.withConsole(lines, async () => {
      const page = await browser.context.newPage();
      await h.openDemo(page, server.origin);
      const file = h.uniquePath('discretionary');
      const snap = await page.evaluate(async (u) => {
        const { BackgroundSession: B } = await import('/pkg/longhaul.js');
        window.__d = await B.open('net-d', { discretionary: true });
        return window.__d.download(u);
      }, `${file}?size=4M`);
      const task = () => page.evaluate((id) => window.__d.task(id), snap.id);
      let s = await task();
      for (let i = 0; i < 50 && s.state !== 'waiting'; i++) { await h.sleep(100); s = await task(); }
      assert.equal(s.state, 'waiting', JSON.stringify(s));
      assert.equal(s.waitReason, 'discretionary', JSON.stringify(s));
      await h.sleep(1500);
      assert.equal((await server.log(file)).length, 0, 'nothing fetched on a cellular network');

      await page.evaluate(() => {
        window.__connection.type = 'wifi';
        window.__connection.dispatchEvent(new Event('change'));
      });
      for (let i = 0; i < 300 && s.state !== 'completed'; i++) { await h.sleep(100); s = await task(); }
      assert.equal(s.state, 'completed', JSON.stringify(s));
      const got = await page.evaluate(async (id) => {
        const buf = await (await window.__d.blob(id)).arrayBuffer();
        const d = await crypto.subtle.digest('SHA-256', buf);
        return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, '0')).join('');
      }, snap.id);
      assert.equal(got, (await h.sourceSha(server.origin, file, '4M')).sha);
    });
  } finally {
    await browser.dispose();
  }
});
