// Scenario 1: a 64 MiB download completes and its stored bytes equal the source's,
// in Chromium (playwright-core) and in Firefox ESR (puppeteer-core over WebDriver BiDi).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

const SIZE = '64M';
const BYTES = 64 * h.MiB;

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

test('Chromium: a 64 MiB download completes with the source bytes', { timeout: 120_000 }, async (t) => {
  const browser = await h.launchChromium();
  const lines = h.collectConsole(browser.context);
  try {
    await h.withConsole(lines, async () => {
      const page = await browser.context.newPage();
      await h.openDemo(page, server.origin);
      const file = h.uniquePath('complete-chromium');
      const started = Date.now();
      const snap = await h.download(page, `${file}?size=${SIZE}&rate=32M`, { description: 'e2e complete' });
      assert.equal(snap.kind, 'download');
      assert.equal(snap.session, 'demo');
      assert.equal(snap.description, 'e2e complete');
      assert.ok(['pending', 'running'].includes(snap.state), `a new task is pending or running: ${JSON.stringify(snap)}`);

      const done = await h.waitCompleted(page, snap.id);
      t.diagnostic(`Chromium: 64 MiB in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      assert.equal(done.bytesReceived, BYTES, JSON.stringify(done));
      assert.equal(done.bytesExpected, BYTES, JSON.stringify(done));
      assert.equal(done.error, null, JSON.stringify(done));

      const log = await server.log(file);
      assert.equal(log.length, 1, `one uninterrupted request:\n${h.fmtLog(log)}`);
      assert.equal(log[0].status, 200, h.fmtLog(log));
      assert.equal(log[0].complete, true, h.fmtLog(log));

      // The page renders the task as completed.
      await page.waitForSelector(`li.task[data-id="${snap.id}"][data-state="completed"]`, { timeout: 10_000 });

      await h.assertSameBytes(assert, page, server, file, SIZE, snap.id);
    });
  } finally {
    await browser.dispose();
  }
});

test('Firefox: a 64 MiB download completes with the source bytes', { timeout: 150_000 }, async (t) => {
  const ff = await h.launchFirefox();
  try {
    const page = await ff.browser.newPage();
    const lines = [];
    page.on('console', (m) => lines.push(`[page ${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => lines.push(`[pageerror] ${e.message}`));
    await h.withConsole(lines, async () => {
      await h.openDemo(page, server.origin, '', 60_000);
      const file = h.uniquePath('complete-firefox');
      const started = Date.now();
      // 100 ms before every response head, as over a long link.
      const snap = await h.download(page, `${file}?size=${SIZE}&rate=32M&latency=100`);
      const done = await h.waitCompleted(page, snap.id, { timeout: 120_000 });
      t.diagnostic(`Firefox: 64 MiB in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      assert.equal(done.bytesReceived, BYTES, JSON.stringify(done));
      assert.equal(done.bytesExpected, BYTES, JSON.stringify(done));
      // Firefox asks for 16 MiB Range windows (`EngineConfig::fetch_window`), so
      // that it never holds more of the response than that: the first without
      // If-Range, each next one from where the last ended, with the first's ETag.
      const log = await server.log(file);
      const WINDOW = 16 * h.MiB;
      assert.equal(log.length, BYTES / WINDOW, `one request per window:\n${h.fmtLog(log)}`);
      log.forEach((e, i) => {
        assert.equal(e.range, `bytes=${i * WINDOW}-${(i + 1) * WINDOW - 1}`, h.fmtLog(log));
        assert.equal(e.status, 206, h.fmtLog(log));
        assert.equal(e.complete, true, h.fmtLog(log));
        assert.equal(e.bytes_sent, WINDOW, h.fmtLog(log));
        if (i === 0) assert.equal(e.if_range ?? null, null, h.fmtLog(log));
        else assert.match(e.if_range ?? '', new RegExp(`^"[0-9a-f]{16}-${BYTES}"$`), h.fmtLog(log));
      });
      // Each next window is asked for about two round trips ahead of a window's end
      // (`core::http::ask_ahead`; 200 ms and more here), so its request reaches the
      // server while the one before is still being sent: no round trip stops the
      // transfer between them. Asked for only at a window's end, none would.
      const ahead = log.slice(1).filter((e, i) => e.t_ms < log[i].end_ms).length;
      t.diagnostic(`Firefox: ${ahead} of ${log.length - 1} windows asked for before the one before had been sent`);
      assert.ok(ahead >= 1, `no window was asked for ahead:\n${JSON.stringify(log.map(({ t_ms, end_ms, range }) => ({ t_ms, end_ms, range })))}`);
      await h.assertSameBytes(assert, page, server, file, SIZE, snap.id, 'Firefox');
    });
  } finally {
    await ff.dispose();
  }
});
