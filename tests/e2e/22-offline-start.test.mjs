// A worker that cannot reach the network still starts (its wasm was kept at
// `install`, or handed over by the app with `install({ wasm })`), and a start-up that
// failed is tried again at the next event, its commands answered at once with a
// typed error meanwhile (js/install.js). Chromium: Playwright's offline mode covers
// the service worker's fetches, and CDP stops the worker. puppeteer's Firefox
// (WebDriver BiDi) has neither: there the browser is relaunched on its profile (a new
// worker) and the wasm is taken off the server, which then has no other copy.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, rm } from 'node:fs/promises';
import path from 'node:path';
import * as h from './helpers.mjs';

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

/** Run a command from the page: its value, or `{ code, message }` if it rejected, and the time it took. */
async function command(page, op) {
  return page.evaluate(async (o) => {
    const t0 = performance.now();
    const out = await window.longhaulSession[o]().then((v) => ({ ok: true, v }), (e) => ({ ok: false, code: e.code, message: e.message }));
    return { ...out, ms: performance.now() - t0 };
  }, op);
}

for (const kind of ['module', 'classic', 'handed']) {
  test(`a stopped ${kind} worker starts without the network`, { timeout: 90_000 }, () =>
    h.inChromium(server.origin, `?worker=${kind}`, async (page, context, lines) => {
      const file = h.uniquePath(`offline-start-${kind}`);
      const snap = await h.download(page, `${file}?size=1M`);
      await h.waitCompleted(page, snap.id);
      await context.setOffline(true);
      const workers = await h.stopWorkers(page);
      const got = await command(page, 'tasks');
      assert.ok(workers.started(), 'the stopped worker started again for the command');
      await workers.detach();
      assert.ok(got.ok, `tasks() answered offline: ${JSON.stringify(got)}`);
      assert.ok(got.v.some((t) => t.id === snap.id && t.state === 'completed'), JSON.stringify(got));
      assert.ok(!lines.some((l) => l.includes('start-up failed')), 'the start-up did not fail');
      await context.setOffline(false);
    }));
}

test('a failed start-up answers commands at once and is tried again at the next one', { timeout: 90_000 }, (t) =>
  h.inChromium(server.origin, '', async (page, context) => {
    // Nowhere to get the wasm from: no network, and the kept copy gone.
    await context.setOffline(true);
    await (await h.stopWorkers(page)).detach();
    const dropped = await page.evaluate(async () => {
      const names = (await caches.keys()).filter((k) => k.startsWith('longhaul-wasm '));
      for (const k of names) await caches.delete(k);
      return names;
    });
    assert.equal(dropped.length, 1, `one cache kept the wasm: ${JSON.stringify(dropped)}`);
    const refused = await command(page, 'tasks');
    assert.equal(refused.ok, false, JSON.stringify(refused));
    assert.equal(refused.code, 'no-worker', JSON.stringify(refused));
    assert.match(refused.message, /could not start/, refused.message);
    assert.ok(refused.ms < 10_000, `answered at once (${refused.ms} ms), not after the page's 30 s timeout`);
    await context.setOffline(false);
    const again = await command(page, 'tasks');
    assert.ok(again.ok, `the next command started the worker: ${JSON.stringify(again)}`);
    t.diagnostic(`refused in ${refused.ms.toFixed(0)} ms: ${refused.message}`);
  }));

test('Firefox: a new worker starts from its kept wasm when the server has none', { timeout: 120_000 }, async () => {
  // A copy of the package, served by a devserver of its own, so the wasm can go.
  const pkg = await h.tempProfile('pkg-copy');
  await cp(path.join(h.ROOT, 'pkg'), pkg, { recursive: true });
  const own = await h.startServer({ pkg });
  const dir = await h.tempProfile('firefox-offline-start');
  try {
    let ff = await h.launchFirefox(dir);
    let page = await ff.browser.newPage();
    await h.openDemo(page, own.origin, '', 60_000);
    const file = h.uniquePath('kept-wasm-firefox');
    const snap = await h.download(page, `${file}?size=1M`);
    await h.waitCompleted(page, snap.id);
    await ff.browser.close();
    await rm(path.join(pkg, 'longhaul-worker_bg.wasm'));
    const before = (await own.log('/pkg/longhaul-worker_bg.wasm')).length;
    ff = await h.launchFirefox(dir);
    const lines = [];
    try {
      page = await ff.browser.newPage();
      page.on('console', (m) => lines.push(`[page ${m.type()}] ${m.text()}`));
      await h.withConsole(lines, async () => {
        await h.openDemo(page, own.origin, '', 60_000);
        const list = await h.tasks(page);
        assert.ok(list.some((t) => t.id === snap.id && t.state === 'completed'), JSON.stringify(list));
        const after = await own.log('/pkg/longhaul-worker_bg.wasm');
        assert.equal(after.length, before, `the new worker asked the server for no wasm: ${JSON.stringify(after.slice(before))}`);
      });
    } finally {
      await ff.browser.close().catch(() => {});
    }
  } finally {
    await own.stop();
    await h.removeDir(dir);
    await h.removeDir(pkg);
  }
});
