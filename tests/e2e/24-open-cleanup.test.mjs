// A failed `open()` and a session dropped without `close()` leave no listener behind
// (client.rs, `Inner::teardown`): before, their `online`/`offline` listeners outlived
// the closures they called, and the network's return threw "closure invoked
// recursively or after being dropped" on the page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

/** Page errors and console errors of `page` (Playwright and puppeteer pages alike). */
function errorsOf(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  return errors;
}

async function scenario(page) {
  const errors = errorsOf(page);
  const out = await page.evaluate(async () => {
    const { BackgroundSession } = await import('/pkg/longhaul.js');
    const failed = await BackgroundSession.open('never-opened-' + Math.random(), undefined, { mustExist: true })
      .then(() => null, (e) => e.code);
    const dropped = await BackgroundSession.open('dropped-session');
    dropped.free(); // as `using` does, or the collector in time
    for (const type of ['online', 'offline', 'online']) window.dispatchEvent(new Event(type));
    await new Promise((r) => setTimeout(r, 500));
    return { failed };
  });
  assert.equal(out.failed, 'not-found', JSON.stringify(out));
  assert.deepEqual(errors.filter((e) => /closure|dropped/.test(e)), [], 'no listener outlived its session');
}

test('Chromium: a failed open and a dropped session leave no listener behind', { timeout: 60_000 }, () =>
  h.inChromium(server.origin, '', scenario));

test('Firefox: a failed open and a dropped session leave no listener behind', { timeout: 90_000 }, () =>
  h.inFirefox(server.origin, '', scenario));
