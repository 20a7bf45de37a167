// A new version of the service worker is deployed mid-download (another script URL,
// skipWaiting). Chromium activates it only once the old worker's events have ended,
// which longhaul's keep-alive holds until the transfer is done; should it activate
// earlier (the keep-alive bound ran out), the new worker steals the owner lock and the
// old one aborts and writes nothing more. Either way there is never a second writer:
// no two requests for the file overlap, and the bytes are intact.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

const SIZE = '64M';
const BYTES = 64 * h.MiB;

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

test('a worker update mid-download never gives the task two writers', { timeout: 200_000 }, async (t) => {
  const browser = await h.launchChromium();
  try {
    await h.withConsole(h.collectConsole(browser.context), async () => {
      const page = await browser.context.newPage();
      await h.openDemo(page, server.origin);
      const file = h.uniquePath('worker-update');
      await h.recordEvents(page);
      const snap = await h.download(page, `${file}?size=${SIZE}&rate=8M`);
      await h.waitFraction(page, snap.id, 0.25, BYTES);

      // Deploy "version 2": another script URL for the same scope, and note when
      // it changes state (a failure then says where it stopped).
      await page.evaluate(async () => {
        const t0 = Date.now();
        window.__v2 = [];
        const reg = await navigator.serviceWorker.register('/sw.js?v=2', { type: 'module' });
        const sw = reg.installing ?? reg.waiting ?? reg.active;
        const note = () => window.__v2.push(`${sw?.state} at ${Date.now() - t0} ms`);
        note();
        sw?.addEventListener('statechange', note);
      });
      // Wait for the end on the events, not by asking the worker: a command that
      // reaches the old worker while it stops for the switch starts it again, and a
      // restarted worker that DevTools (Playwright) is attached to never idles, so
      // Chromium would keep version 2 waiting for its 5-minute limit.
      const done = await h.waitEvent(page, snap.id, 'complete', { timeout: 90_000 });
      assert.equal(done.bytesReceived, BYTES, JSON.stringify(done));
      const active = await page.evaluate(async () => {
        const reg = await navigator.serviceWorker.getRegistration();
        const deadline = Date.now() + 60_000;
        while (!reg.active?.scriptURL.endsWith('?v=2') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        const who = (w) => w && `${w.scriptURL.replace(location.origin, '')} ${w.state}`;
        return {
          url: reg.active?.scriptURL,
          states: `active ${who(reg.active)}, waiting ${who(reg.waiting)}, installing ${who(reg.installing)}; version 2: ${window.__v2.join(', ')}`,
        };
      });
      assert.ok(active.url?.endsWith('/sw.js?v=2'), `version 2 became active within 60 s of the end: ${active.states}`);

      const log = (await server.log(file)).filter((e) => e.method === 'GET');
      for (let i = 1; i < log.length; i++) {
        assert.equal(log[i - 1].complete === false || log[i - 1].bytes_sent + (h.rangeStart(log[i - 1].range) ?? 0) === BYTES, true, h.fmtLog(log));
      }
      if (log.length === 1) {
        assert.equal(log[0].complete, true, h.fmtLog(log));
        t.diagnostic('version 2 activated after the old worker finished the transfer');
      } else {
        assert.equal(log.length, 2, `one request per worker version:\n${h.fmtLog(log)}`);
        assert.equal(log[0].complete, false, `the old worker aborted its request:\n${h.fmtLog(log)}`);
        const n = h.rangeStart(log[1].range);
        assert.ok(n > 0 && log[1].status === 206, `the new worker resumed with a range:\n${h.fmtLog(log)}`);
        t.diagnostic(`handed over to version 2 at ${h.fmtMiB(n)}`);
      }
      await h.assertSameBytes(assert, page, server, file, SIZE, snap.id);
    });
  } finally {
    await browser.dispose();
  }
});

// Commands sent while an update replaces the worker are all answered. Chromium
// drops a message posted to the old worker as it stops for the switch; the page
// then sends the command again to the new worker instead of waiting out its 30 s
// timeout. Each round (a fresh browser) starts a 1-second download, deploys an
// update (it waits for the download: an event of the old worker is in flight) and
// asks for the task list every 100 ms across the switch. A command that instead starts the old
// worker again keeps it (DevTools attached: it never idles) and the update
// waiting; that round is counted, not failed.
test('commands sent across a worker update are all answered', { timeout: 200_000 }, async (t) => {
  const rounds = [];
  for (let round = 0; round < 8; round++) {
    const browser = await h.launchChromium();
    try {
      await h.withConsole(h.collectConsole(browser.context), async () => {
        const page = await browser.context.newPage();
        await h.openDemo(page, server.origin);
        await h.download(page, `${h.uniquePath('update-commands')}?size=2M&rate=2M`);
        rounds.push(await page.evaluate(async () => {
          const s = window.longhaulSession;
          const reg = await navigator.serviceWorker.getRegistration();
          const times = [];
          const calls = [];
          const t0 = performance.now();
          let switchedAt = null;
          await navigator.serviceWorker.register('/sw.js?v=2', { type: 'module' });
          while (performance.now() - t0 < 8_000 && (switchedAt === null || performance.now() - switchedAt < 1_000)) {
            const start = performance.now();
            const to = `${reg.active?.scriptURL.slice(-5)} ${reg.active?.state} at ${Math.round(start - t0)}`;
            calls.push(s.tasks().then(() => times.push(performance.now() - start), (e) => times.push(`error: ${e.message} (sent to ${to} ms)`)));
            await new Promise((r) => setTimeout(r, 25));
            if (switchedAt === null && reg.active?.scriptURL.endsWith('?v=2')) switchedAt = performance.now();
          }
          await Promise.all(calls);
          return {
            switched: switchedAt !== null,
            sent: calls.length,
            slow: times.filter((x) => typeof x !== 'number' || x > 5_000),
            max: Math.max(...times.filter((x) => typeof x === 'number')),
          };
        }));
      });
    } finally {
      await browser.dispose();
    }
  }
  for (const r of rounds) assert.deepEqual(r.slow, [], `every command answered within 5 s: ${JSON.stringify(rounds)}`);
  assert.ok(rounds.some((r) => r.switched), `at least one round switched workers: ${JSON.stringify(rounds)}`);
  t.diagnostic(rounds.map((r) => `${r.switched ? 'switched' : 'kept the old worker'}: ${r.sent} commands, slowest ${Math.round(r.max)} ms`).join('; '));
});
