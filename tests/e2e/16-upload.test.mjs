// Background uploads (tus through the npm @tus/server, and a plain PUT to the
// devserver's sink). Each test ends with the server's stored bytes' SHA-256 equal to
// the source's (the devserver's generated file, handed to `session.upload` as a Blob).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './helpers.mjs';

let server;
let tus;
before(async () => { server = await h.startServer(); tus = await h.startTus(); });
after(async () => { await tus?.stop(); await server?.stop(); });

const idOf = (entry) => entry.path.split('/').pop();
const requestsFor = (uploadId) => tus.log.filter((e) => e.path === `/files/${uploadId}` && e.method !== 'OPTIONS');
const fmt = (entries) => JSON.stringify(entries.map(({ method, uploadOffset, status }) => ({ method, uploadOffset, status })));

async function assertServerBytes(uploadId, filePath, size) {
  const got = await tus.sha256(uploadId);
  const want = await h.sourceSha(server.origin, filePath, size);
  assert.equal(got.length, want.length, `the server stored ${got.length} bytes, the source has ${want.length}`);
  assert.equal(got.sha, want.sha, 'SHA-256 of the server\'s bytes equals the source\'s');
}

/** The ids of the uploads created after the first `n`. */
const createdSince = (n) => tus.created().slice(n);

test('a 64 MiB tus upload completes, and its local copy is freed', { timeout: 150_000 }, async (t) => {
  const browser = await h.launchChromium();
  const lines = h.collectConsole(browser.context);
  try {
    await h.withConsole(lines, async () => {
      const page = await browser.context.newPage();
      await h.openDemo(page, server.origin);
      const file = h.uniquePath('up64');
      await h.makeBody(page, 'a', file, '64M');
      const before = tus.created().length;
      const started = Date.now();
      const snap = await h.upload(page, tus.endpoint, 'a', { metadata: { filename: 'up64.bin' } });
      t.diagnostic(`upload() resolved after ${Date.now() - started} ms (the body was copied into storage)`);
      assert.equal(snap.kind, 'upload');
      assert.equal(snap.bytesExpected, 64 * h.MiB);
      const done = await h.waitTask(page, snap.id, (s) => s.state === 'completed', { what: 'completion', timeout: 120_000 });
      assert.equal(done.bytesSent, 64 * h.MiB);
      const [id] = createdSince(before);
      const reqs = requestsFor(id);
      assert.equal(reqs.filter((e) => e.method === 'PATCH').length, 8, `8 PATCHes of 8 MiB: ${fmt(reqs)}`);
      await assertServerBytes(id, file, '64M');
      const chunks = await h.chunkCount(page, snap.id);
      assert.equal(chunks, 0, 'the stored copy is freed once the server has every byte');
    });
  } finally {
    await browser.dispose();
  }
});

test('a tus upload resumes from the server\'s offset after a worker stop and after all pages closed', { timeout: 150_000 }, async () => {
  const browser = await h.launchChromium();
  const lines = h.collectConsole(browser.context);
  tus.faults.patchDelayMs = 150;
  try {
    await h.withConsole(lines, async () => {
      const page = await browser.context.newPage();
      await h.openDemo(page, server.origin);
      const file = h.uniquePath('up-stop');
      const SIZE = 24 * h.MiB;
      await h.makeBody(page, 'a', file, '24M');
      const before = tus.created().length;
      const snap = await h.upload(page, tus.endpoint, 'a', { chunkSize: h.MiB });
      await h.waitSent(page, snap.id, 0.25, SIZE);
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('ServiceWorker.enable');
      const mark = tus.log.length;
      await cdp.send('ServiceWorker.stopAllWorkers');
      await page.reload();
      await h.waitForSession(page);
      const [id] = createdSince(before);
      const after = await h.waitTask(page, snap.id, (s) => s.bytesSent >= 0.5 * SIZE, { what: '50% sent after the stop' });
      const since = tus.log.slice(mark).filter((e) => e.path === `/files/${id}` && e.method !== 'OPTIONS');
      const firstAfter = since.find((e) => e.method !== 'PATCH' || e.status !== 0);
      assert.equal(since.find((e) => e.method === 'HEAD')?.method, 'HEAD', `the restarted worker asked the server's offset: ${fmt(since)}`);
      assert.ok(firstAfter, fmt(since));
      assert.equal(tus.created().length, before + 1, 'the same upload went on; no new one was created');

      // Close every page: the worker goes on (Playwright keeps it alive; see the README).
      for (const p of browser.context.pages()) await p.close();
      await h.sleep(1500);
      const later = await browser.context.newPage();
      await h.openDemo(later, server.origin);
      const found = (await h.tasks(later)).find((s) => s.id === snap.id);
      assert.ok(found && found.bytesSent >= after.bytesSent, `progress kept: ${JSON.stringify(found)}`);
      await h.waitTask(later, snap.id, (s) => s.state === 'completed', { what: 'completion', timeout: 90_000 });
      await assertServerBytes(id, file, '24M');
    });
  } finally {
    tus.faults.patchDelayMs = 0;
    await browser.dispose();
  }
});

test('a tus upload resumes after a browser SIGKILL and relaunch', { timeout: 180_000 }, async () => {
  const dir = await h.tempProfile('up-sigkill');
  let browser;
  // Slower than the other tests: pages of a browser driven over CDP answer slowly,
  // and on a loaded machine the 30% mark must still be seen well before the end
  // (24 PATCHes of 800 ms: about 19 s in all).
  tus.faults.patchDelayMs = 800;
  try {
    browser = await h.spawnChromium(dir);
    const page = await browser.context.newPage();
    await h.openDemo(page, server.origin);
    const file = h.uniquePath('up-kill');
    const SIZE = 24 * h.MiB;
    await h.makeBody(page, 'a', file, '24M');
    const before = tus.created().length;
    const snap = await h.upload(page, tus.endpoint, 'a', { chunkSize: h.MiB });
    const seen = await h.waitSent(page, snap.id, 0.3, SIZE);
    assert.equal(seen.state, 'running', `still running at 30%: ${JSON.stringify(seen)}`);
    await browser.kill();
    browser = undefined;
    const [id] = createdSince(before);
    const mark = tus.log.length;
    browser = await h.spawnChromium(dir);
    const again = await browser.context.newPage();
    await h.openDemo(again, server.origin);
    await h.waitTask(again, snap.id, (s) => s.state === 'completed', { what: 'completion after the relaunch', timeout: 120_000 });
    const since = tus.log.slice(mark).filter((e) => e.path === `/files/${id}` && e.method !== 'OPTIONS');
    assert.equal(since[0]?.method, 'HEAD', `the relaunched worker asked the server's offset first: ${fmt(since)}; all: ${JSON.stringify(tus.log.slice(-12))}; id ${id}`);
    assert.ok(Number(since.find((e) => e.method === 'PATCH')?.uploadOffset) >= 0.3 * SIZE - h.MiB,
      `and went on from there: ${fmt(since)}`);
    assert.equal(tus.created().length, before + 1, 'no new upload was created');
    await assertServerBytes(id, file, '24M');
  } finally {
    tus.faults.patchDelayMs = 0;
    if (browser) await browser.kill();
    await h.removeDir(dir);
  }
});

test('a 409 is recovered, a forgotten upload is created anew, cancel terminates', { timeout: 150_000 }, async () => {
  const browser = await h.launchChromium();
  const lines = h.collectConsole(browser.context);
  try {
    await h.withConsole(lines, async () => {
      const page = await browser.context.newPage();
      await h.openDemo(page, server.origin);
      const SIZE = 8 * h.MiB;

      // 409: the next PATCH is refused; the worker asks the offset and goes on.
      tus.faults.conflictNext = 1;
      const f1 = h.uniquePath('up-409');
      await h.makeBody(page, 'a', f1, '8M');
      let n = tus.created().length;
      const a = await h.upload(page, tus.endpoint, 'a', { chunkSize: 2 * h.MiB });
      await h.waitTask(page, a.id, (s) => s.state === 'completed', { what: 'completion after a 409' });
      const [idA] = createdSince(n);
      const reqs = requestsFor(idA);
      const at409 = reqs.findIndex((e) => e.status === 409);
      assert.ok(at409 >= 0 && reqs[at409 + 1]?.method === 'HEAD', `a HEAD followed the 409: ${fmt(reqs)}`);
      await assertServerBytes(idA, f1, '8M');

      // 404: the server lost the upload mid-way; a new upload is created and completes.
      tus.faults.patchDelayMs = 200;
      const f2 = h.uniquePath('up-404');
      await h.makeBody(page, 'b', f2, '8M');
      n = tus.created().length;
      const b = await h.upload(page, tus.endpoint, 'b', { chunkSize: h.MiB });
      await h.waitSent(page, b.id, 0.25, SIZE);
      const [lost] = createdSince(n);
      await tus.forget(lost);
      await h.waitTask(page, b.id, (s) => s.state === 'completed', { what: 'completion after the server forgot the upload' });
      tus.faults.patchDelayMs = 0;
      const ids = createdSince(n);
      assert.equal(ids.length, 2, `a second upload was created: ${JSON.stringify(ids)}`);
      assert.ok(requestsFor(lost).some((e) => e.status === 404 || e.status === 410), `the lost upload answered 404 or 410: ${fmt(requestsFor(lost))}`);
      await assertServerBytes(ids[1], f2, '8M');

      // Cancel: the server's upload is terminated (DELETE) and the local copy freed.
      tus.faults.patchDelayMs = 300;
      const f3 = h.uniquePath('up-cancel');
      await h.makeBody(page, 'c', f3, '8M');
      n = tus.created().length;
      const c = await h.upload(page, tus.endpoint, 'c', { chunkSize: h.MiB });
      await h.waitSent(page, c.id, 0.2, SIZE);
      assert.equal(await page.evaluate((id) => window.longhaulSession.cancel(id), c.id), true);
      tus.faults.patchDelayMs = 0;
      const [idC] = createdSince(n);
      const del = requestsFor(idC).find((e) => e.method === 'DELETE');
      assert.ok(del && del.status === 204, `the upload was terminated: ${fmt(requestsFor(idC))}`);
      const left = await h.chunkCount(page, c.id);
      assert.equal(left, 0, 'the local copy is freed');
    });
  } finally {
    tus.faults.patchDelayMs = 0;
    tus.faults.conflictNext = 0;
    await browser.dispose();
  }
});

test('a plain PUT interrupted mid-way restarts and completes', { timeout: 120_000 }, async () => {
  const browser = await h.launchChromium();
  const lines = h.collectConsole(browser.context);
  try {
    await h.withConsole(lines, async () => {
      const page = await browser.context.newPage();
      await h.openDemo(page, server.origin);
      const file = h.uniquePath('put-src');
      await h.makeBody(page, 'a', file, '8M');
      const name = `put-${Date.now().toString(36)}.bin`;
      const sink = `/sink/${name}`;
      const snap = await h.upload(page, `${sink}?reset=${3 * h.MiB}&fault_times=1`, 'a', { protocol: 'put' });
      const done = await h.waitTask(page, snap.id, (s) => s.state === 'completed', { what: 'completion' });
      assert.equal(done.bytesSent, 8 * h.MiB);
      const log = await server.log(sink);
      const puts = log.filter((e) => e.method === 'PUT');
      assert.equal(puts.length, 2, `one PUT cut by the reset, one whole: ${h.fmtLog(log)}`);
      assert.equal(puts[0].status, 0, 'the first was dropped');
      const r = await fetch(`${server.origin}${sink}`);
      const { createHash } = await import('node:crypto');
      const got = createHash('sha256').update(Buffer.from(await r.arrayBuffer())).digest('hex');
      const want = await h.sourceSha(server.origin, file, '8M');
      assert.equal(got, want.sha, 'the sink holds the source\'s bytes');
    });
  } finally {
    await browser.dispose();
  }
});

test('Firefox: a tus upload completes', { timeout: 120_000 }, async () => {
  const ff = await h.launchFirefox();
  try {
    const page = await ff.browser.newPage();
    await h.openDemo(page, server.origin, '', 60_000);
    const file = h.uniquePath('up-firefox');
    await h.makeBody(page, 'a', file, '16M');
    const before = tus.created().length;
    const snap = await h.upload(page, tus.endpoint, 'a', { chunkSize: 4 * h.MiB });
    const done = await h.waitTask(page, snap.id, (s) => s.state === 'completed', { what: 'completion', timeout: 90_000 });
    assert.equal(done.bytesSent, 16 * h.MiB);
    const [id] = createdSince(before);
    assert.equal(requestsFor(id).filter((e) => e.method === 'PATCH').length, 4, fmt(requestsFor(id)));
    await assertServerBytes(id, file, '16M');
  } finally {
    await ff.dispose();
  }
});

test('a tus server that offers checksums gets Upload-Checksum on every PATCH; a 460 is sent again', { timeout: 120_000 }, async () => {
  const sums = await h.startTus({ checksum: true });
  try {
    await h.inChromium(server.origin, '', async (page) => {
      const file = h.uniquePath('up-checksum');
      await h.makeBody(page, 'k', file, '6M');
      sums.faults.mismatchNext = 1;
      // 1.5 MiB PATCHes: each body spans stored chunks.
      const snap = await h.upload(page, sums.endpoint, 'k', { chunkSize: 1.5 * h.MiB });
      await h.waitTask(page, snap.id, (s) => s.state === 'completed', { what: 'completion' });
      const [id] = sums.created();
      const patches = sums.log.filter((e) => e.method === 'PATCH');
      const fmtP = JSON.stringify(patches.map(({ uploadOffset, checksum, checksumMatched, status }) => ({ uploadOffset, checksum, checksumMatched, status })));
      assert.ok(patches.length >= 5, `four PATCHes and the one sent again: ${fmtP}`);
      assert.ok(patches.every((e) => /^sha256 [A-Za-z0-9+/]{43}=$/.test(e.checksum ?? '') && e.checksumMatched), `every PATCH carried its body's SHA-256: ${fmtP}`);
      assert.equal(patches[0].status, 460, fmtP);
      assert.equal(patches[1].uploadOffset, patches[0].uploadOffset, `the refused PATCH was sent again from the same offset: ${fmtP}`);
      const options = sums.log.filter((e) => e.method === 'OPTIONS' && e.path === '/files');
      assert.ok(options.length >= 1, 'the extensions were asked for');
      const got = await sums.sha256(id);
      const want = await h.sourceSha(server.origin, file, '6M');
      assert.deepEqual(got, want, 'the server stored the source\'s bytes');
    });
  } finally {
    await sums.stop();
  }
});

test('a tus server without the checksum extension gets no Upload-Checksum', { timeout: 90_000 }, async () => {
  await h.inChromium(server.origin, '', async (page) => {
    const file = h.uniquePath('up-no-checksum');
    await h.makeBody(page, 'n', file, '2M');
    const n = tus.created().length;
    const snap = await h.upload(page, tus.endpoint, 'n', { chunkSize: h.MiB });
    await h.waitTask(page, snap.id, (s) => s.state === 'completed', { what: 'completion' });
    const [id] = createdSince(n);
    const patches = requestsFor(id).filter((e) => e.method === 'PATCH');
    assert.ok(patches.length >= 2 && patches.every((e) => e.checksum === null), fmt(patches));
    await assertServerBytes(id, file, '2M');
  });
});
