// Credentials (FAULTS 29): an `Authorization` header a page gives is sent but never
// written to IndexedDB unless the page passes `persistCredentials: true`; the app's
// worker script can supply credentials per attempt through `install({ credentials })`,
// so a request resumed after the worker stopped carries a fresh token, not a stale one.
// The devserver logs the `Authorization` header of every request.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

let server;
before(async () => { server = await h.startServer(); });
after(async () => { await server?.stop(); });

/** Every record and chunk key of the longhaul database, as one JSON string. */
async function databaseText(page) {
  return page.evaluate(() => new Promise((resolve, reject) => {
    const req = indexedDB.open('longhaul');
    req.onerror = () => reject(req.error);
    req.onsuccess = () => {
      const db = req.result;
      const tx = db.transaction(['sessions', 'tasks'], 'readonly');
      const out = {};
      for (const name of ['sessions', 'tasks']) {
        const all = tx.objectStore(name).getAll();
        all.onsuccess = () => { out[name] = all.result; };
      }
      tx.oncomplete = () => { db.close(); resolve(JSON.stringify(out)); };
      tx.onerror = () => reject(tx.error);
    };
  }));
}

async function stopWorkerAndReload(page, query) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('ServiceWorker.enable');
  await cdp.send('ServiceWorker.stopAllWorkers');
  await cdp.detach().catch(() => {});
  await page.goto(`${server.origin}/${query}`);
  await h.waitForSession(page);
}

test('credentials are sent but not stored, unless the page asks', { timeout: 150_000 }, async () => {
  const browser = await h.launchChromium();
  const lines = h.collectConsole(browser.context);
  try {
    await h.withConsole(lines, async () => {
      const page = await browser.context.newPage();
      await h.openDemo(page, server.origin);
      const secretFile = h.uniquePath('auth-secret');
      const keptFile = h.uniquePath('auth-kept');
      const secret = await h.download(page, `${secretFile}?size=16M&rate=4M`, {
        headers: { Authorization: 'Bearer page-secret-1', 'X-Api-Key': 'key-secret-2', 'X-Plain': 'plain-3' },
        sensitiveHeaders: ['X-Api-Key'],
      });
      const kept = await h.download(page, `${keptFile}?size=16M&rate=4M`, {
        headers: { Authorization: 'Bearer page-kept-4' },
        persistCredentials: true,
      });
      await h.waitFraction(page, secret.id, 0.2, 16 * h.MiB);
      await h.waitFraction(page, kept.id, 0.2, 16 * h.MiB);
      const first = (await server.log(secretFile))[0];
      assert.equal(first.authorization, 'Bearer page-secret-1', 'the first request carried the page\'s credentials');

      const text = await databaseText(page);
      assert.ok(!text.includes('page-secret-1'), 'Authorization is not in IndexedDB');
      assert.ok(!text.includes('key-secret-2'), 'a header named in sensitiveHeaders is not in IndexedDB');
      assert.ok(text.includes('plain-3'), 'other headers are stored');
      assert.ok(text.includes('page-kept-4'), 'persistCredentials: true stores them');

      await stopWorkerAndReload(page, '');
      const secretLog = await h.waitLog(server, secretFile, (l) => l.length >= 2, { what: 'the resumed request' });
      const keptLog = await h.waitLog(server, keptFile, (l) => l.length >= 2, { what: 'the resumed request' });
      assert.ok(h.rangeStart(secretLog[1].range) > 0, `resumed with a range:\n${h.fmtLog(secretLog)}`);
      assert.equal(secretLog[1].authorization, null,
        'after a restart, credentials that were not stored are not replayed (the worker hook supplies fresh ones)');
      assert.equal(keptLog[1].authorization, 'Bearer page-kept-4', 'stored credentials are sent again');
      for (const [file, snap] of [[secretFile, secret], [keptFile, kept]]) {
        await h.waitCompleted(page, snap.id);
        await h.assertSameBytes(assert, page, server, file, '16M', snap.id);
      }
    });
  } finally {
    await browser.dispose();
  }
});

test('the worker hook supplies fresh credentials on every attempt and after a restart', { timeout: 150_000 }, async () => {
  const browser = await h.launchChromium();
  const lines = h.collectConsole(browser.context);
  try {
    await h.withConsole(lines, async () => {
      const page = await browser.context.newPage();
      await h.openDemo(page, server.origin, '?worker=credentials');
      const file = h.uniquePath('auth-hook');
      // The first attempt breaks at 1.5 MiB: the retry must carry another token.
      const url = `${file}?size=16M&rate=4M&reset=${1.5 * h.MiB}&fault_times=1`;
      const snap = await h.download(page, url, { headers: { Authorization: 'Bearer from-the-page' } });
      await h.waitLog(server, file, (l) => l.length >= 2, { what: 'the retry after the reset' });
      await h.waitFraction(page, snap.id, 0.3, 16 * h.MiB);
      await stopWorkerAndReload(page, '?worker=credentials');
      const log = await h.waitLog(server, file, (l) => l.length >= 3, { what: 'the request after the restart' });
      const tokens = log.map((e) => e.authorization);
      const parsed = tokens.map((t) => /^Bearer demo-([a-z0-9]+)-(\d+)-attempt(\d+)-session-demo$/.exec(t ?? ''));
      assert.ok(parsed.every(Boolean), `every request carried a hook token: ${JSON.stringify(tokens)}`);
      assert.equal(new Set(tokens).size, tokens.length, `no token was used twice: ${JSON.stringify(tokens)}`);
      assert.equal(parsed[0][1], parsed[1][1], 'the retry came from the same worker life');
      assert.equal(parsed[1][3], '2', `the retry is attempt 2: ${tokens[1]}`);
      assert.notEqual(parsed[2][1], parsed[0][1], `after the restart a new worker life made the token: ${JSON.stringify(tokens)}`);
      assert.ok(h.rangeStart(log[2].range) > 0, `the restart resumed with a range:\n${h.fmtLog(log)}`);
      await h.waitCompleted(page, snap.id);
      await h.assertSameBytes(assert, page, server, url.split('?')[0], '16M', snap.id);
      const text = await databaseText(page);
      assert.ok(!text.includes('from-the-page') && !text.includes('demo-'), 'no credentials in IndexedDB');
    });
  } finally {
    await browser.dispose();
  }
});

test('a canceled tus upload is deleted with credentials from the hook for its session', { timeout: 120_000 }, async () => {
  const tus = await h.startTus();
  try {
    await h.inChromium(server.origin, '?worker=credentials', async (page) => {
      tus.faults.patchDelayMs = 300;
      await h.makeBody(page, 'c', h.uniquePath('up-cancel-auth'), '8M');
      const c = await h.upload(page, tus.endpoint, 'c', { chunkSize: h.MiB });
      await h.waitSent(page, c.id, 0.2, 8 * h.MiB);
      assert.equal(await page.evaluate((id) => window.longhaulSession.cancel(id), c.id), true);
      tus.faults.patchDelayMs = 0;
      let del;
      for (let i = 0; i < 100 && !(del = tus.log.find((e) => e.method === 'DELETE')); i++) await h.sleep(100);
      assert.ok(del, `a DELETE was sent: ${JSON.stringify(tus.log)}`);
      assert.match(del.authorization ?? '', /^Bearer demo-[a-z0-9]+-\d+-attempt1-session-demo$/,
        'the termination asked the hook with the real session and attempt');
    });
  } finally {
    await tus.stop();
  }
});
