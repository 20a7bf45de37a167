// Scenario 5: two pages (tabs of one context) on the same session. A download started
// in page A shows in page B's tasks() and progress events; B pauses it and A sees the
// pause (a statechange event and task(id)); A resumes it; it completes and both pages
// read the source bytes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

const SIZE = '64M';
const BYTES = 64 * h.MiB;

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

/** Poll the events page `page` recorded for `id` until `pred(events)` holds. */
async function waitEvents(page, id, pred, what, timeout = 20_000) {
  const end = Date.now() + timeout;
  let evs = [];
  while (Date.now() < end) {
    evs = await h.events(page, id);
    if (pred(evs)) return evs;
    await h.sleep(100);
  }
  throw new Error(`timed out waiting for ${what}; events: ${JSON.stringify(evs.slice(-20))}`);
}

test('two pages share a session: events, pause from one, resume from the other', { timeout: 120_000 }, async (t) => {
  const browser = await h.launchChromium();
  const lines = h.collectConsole(browser.context);
  try {
    await h.withConsole(lines, async () => {
      const a = await browser.context.newPage();
      await h.openDemo(a, server.origin);
      const b = await browser.context.newPage();
      await h.openDemo(b, server.origin);
      await h.recordEvents(a);
      await h.recordEvents(b);

      const file = h.uniquePath('two-pages');
      const snap = await h.download(a, `${file}?size=${SIZE}&rate=10M`, { description: 'shared' });

      const listB = await h.tasks(b);
      const inB = listB.find((s) => s.id === snap.id);
      assert.ok(inB, `page B's tasks() lists the download started in A; got ${JSON.stringify(listB)}`);
      assert.equal(inB.url, snap.url);
      assert.equal(inB.description, 'shared');

      const progB = await waitEvents(b, snap.id, (e) => e.filter((x) => x.type === 'progress' && x.bytesReceived > 0).length >= 3,
        'three progress events in page B');
      const bytesB = progB.filter((x) => x.type === 'progress').map((x) => x.bytesReceived);
      assert.deepEqual(bytesB, [...bytesB].sort((x, y) => x - y), `progress in B never goes backwards: ${bytesB}`);

      await h.waitFraction(a, snap.id, 0.25, BYTES);
      const paused = await b.evaluate((id) => window.longhaulSession.pause(id), snap.id);
      assert.equal(paused.state, 'paused', `pause() resolves with the paused snapshot: ${JSON.stringify(paused)}`);

      const evA = await waitEvents(a, snap.id, (e) => e.some((x) => x.type === 'statechange' && x.state === 'paused'),
        'a statechange event to paused in page A');
      const pausedEvent = evA.find((x) => x.type === 'statechange' && x.state === 'paused');
      const inA = await h.task(a, snap.id);
      assert.equal(inA.state, 'paused', `page A's task(id) says paused: ${JSON.stringify(inA)}`);
      assert.equal(inA.bytesReceived, paused.bytesReceived, `A and B agree on the paused offset: ${JSON.stringify(inA)} vs ${JSON.stringify(paused)}`);
      assert.equal(pausedEvent.bytesReceived, paused.bytesReceived, `the event carries the paused offset: ${JSON.stringify(pausedEvent)}`);
      await a.waitForSelector(`li.task[data-id="${snap.id}"][data-state="paused"]`, { timeout: 10_000 });

      // Paused means paused: no progress and no new request for a while.
      const logPaused = await h.waitLog(server, file, (l) => l.length === 1 && !l[0].complete, { what: 'the request to be cut' });
      await h.sleep(1500);
      const stillA = await h.task(a, snap.id);
      assert.equal(stillA.state, 'paused', JSON.stringify(stillA));
      assert.equal(stillA.bytesReceived, paused.bytesReceived, `no bytes while paused: ${JSON.stringify(stillA)}`);
      const logStill = await server.log(file);
      assert.equal(logStill.length, 1, `no request while paused:\n${h.fmtLog(logStill)}`);
      assert.equal(logStill[0].bytes_sent, logPaused[0].bytes_sent, `the cut request stays cut:\n${h.fmtLog(logStill)}`);

      const resumed = await a.evaluate((id) => window.longhaulSession.resume(id), snap.id);
      assert.ok(['pending', 'running'].includes(resumed.state), `resume() resolves with a pending/running snapshot: ${JSON.stringify(resumed)}`);
      await waitEvents(b, snap.id, (e) => e.some((x) => x.type === 'statechange' && x.state === 'running' && x.t >= pausedEvent.t),
        'page B to see the task running again');

      const done = await h.waitCompleted(a, snap.id);
      assert.equal(done.bytesReceived, BYTES, JSON.stringify(done));
      await waitEvents(b, snap.id, (e) => e.some((x) => x.type === 'complete'), 'a complete event in page B');
      await waitEvents(a, snap.id, (e) => e.some((x) => x.type === 'complete'), 'a complete event in page A');

      const log = await server.log(file);
      assert.equal(log.length, 2, `one request before the pause, one after:\n${h.fmtLog(log)}`);
      assert.equal(h.rangeStart(log[1].range), paused.bytesReceived, `the resume asks from the paused offset:\n${h.fmtLog(log)}`);
      assert.equal(log[1].status, 206, h.fmtLog(log));
      t.diagnostic(`paused at ${h.fmtMiB(paused.bytesReceived)}; first request sent ${h.fmtMiB(log[0].bytes_sent)}`);

      const shaA = await h.assertSameBytes(assert, a, server, file, SIZE, snap.id, 'page A');
      const shaB = await h.assertSameBytes(assert, b, server, file, SIZE, snap.id, 'page B');
      assert.equal(shaA, shaB);
    });
  } finally {
    await browser.dispose();
  }
});
