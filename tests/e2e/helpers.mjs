// Shared helpers of longhaul's end-to-end tests (run with `node --test tests/e2e/`).
//
// - the devserver: start one per test file on a free port, read its request log;
// - browsers: Chromium through playwright-core (launched by Playwright, or spawned by
//   us and attached over CDP for SIGKILL tests), Firefox ESR through puppeteer-core;
//   every profile is a fresh temp dir, removed afterwards;
// - the demo page: wait for `window.longhaulSession`, poll task snapshots, record
//   session events, hash a completed download's bytes in the page.
//
// Page helpers only use `page.evaluate(fn, arg)` and `page.goto(url)`, which
// Playwright and Puppeteer pages both have, so they work for both.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CHROMIUM = '/usr/bin/chromium';
export const FIREFOX = '/usr/bin/firefox-esr';
export const KiB = 1024;
export const MiB = 1024 * 1024;
/** The bound on bytes fetched twice after an interruption: one commit unit plus slack. */
export const REFETCH_LIMIT = MiB + 256 * KiB;

/** Flags Chromium needs on this machine (see shared/design/TOOLCHAIN.md). */
export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-dev-shm-usage',
];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** `promise`, or `fallback` after `ms`; the timer does not keep node alive. */
function within(promise, ms, fallback) {
  let timer;
  const t = new Promise((r) => { timer = setTimeout(() => r(fallback), ms); });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

/** A query parameter the devserver ignores, marking the tests' own reference fetches. */
const VERIFY_PARAM = 'e2e-verify=1';

/** A unique file path for one test, so log entries never mix. */
export function uniquePath(label) {
  return `/files/${label}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}.bin`;
}

// ---------------------------------------------------------------- devserver

/**
 * Start `target/release/devserver` on a free port (building it if missing).
 * Returns `{ origin, log(path), stop() }`.
 */
export async function startServer({ pkg = 'pkg' } = {}) {
  const bin = path.join(ROOT, 'target/release/devserver');
  const { existsSync } = await import('node:fs');
  if (!existsSync(bin)) {
    await run('cargo', ['build', '--release', '-p', 'longhaul-devserver']);
  }
  if (!existsSync(path.join(ROOT, 'pkg/longhaul-worker_bg.wasm'))) {
    await run('./tools/build-pkg.sh', []);
  }
  const proc = spawn(bin, ['--root', 'www', '--pkg', pkg], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const origin = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`devserver did not start in 20 s; stderr: ${stderr}`)), 20_000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /longhaul devserver: (http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`devserver exited (${code}): ${stderr}`)); });
  });
  proc.stdout.resume();
  return {
    origin,
    /** Log entries for exactly `p` (a path), oldest first, without the tests' own reference fetches. */
    async log(p) {
      const r = await fetch(`${origin}/__log?path=${encodeURIComponent(p)}`);
      if (!r.ok) throw new Error(`GET /__log answered ${r.status}`);
      const all = await r.json();
      return all.filter((e) => e.path === p && !(e.query || '').includes(VERIFY_PARAM));
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await within(exited, 5000);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    },
  };
}

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: ROOT, stdio: 'inherit' });
    p.on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${c}`))));
  });
}

/** Log entries, shortened for assertion messages. */
export function fmtLog(entries) {
  return JSON.stringify(
    entries.map(({ seq, t_ms, conn, method, query, range, if_range, status, bytes_sent, complete }) =>
      ({ seq, t_ms, conn, method, query, range, if_range, status, bytes_sent, complete })),
    null, 1);
}

/** SHA-256 (hex) of the source file, fetched by node from the devserver (unthrottled). */
export async function sourceSha(origin, filePath, size) {
  const r = await fetch(`${origin}${filePath}?size=${size}&${VERIFY_PARAM}`);
  if (r.status !== 200) throw new Error(`fetching the source answered ${r.status}`);
  const h = createHash('sha256');
  let n = 0;
  for await (const chunk of r.body) { h.update(chunk); n += chunk.length; }
  return { sha: h.digest('hex'), length: n };
}

// ---------------------------------------------------------------- browsers

export async function tempProfile(label = 'profile') {
  return mkdtemp(path.join(tmpdir(), `longhaul-e2e-${label}-`));
}

export async function removeDir(dir) {
  if (dir) await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
}

/**
 * Launch Chromium through Playwright with a persistent profile in `dir` (a fresh
 * temp dir if not given). Returns `{ context, dir, close(), dispose() }`: `close()`
 * ends the browser and keeps the profile, `dispose()` also removes a dir we created.
 */
export async function launchChromium(dir) {
  const { chromium } = await import('playwright-core');
  const own = !dir;
  dir ??= await tempProfile('chromium');
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    timeout: 60_000,
  });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await context.close().catch(() => {});
  };
  return {
    context,
    dir,
    close,
    async dispose() {
      await close();
      if (own) await removeDir(dir);
    },
  };
}

/**
 * A killed Chromium leaves its `/tmp/org.chromium.Chromium.*` directory (the
 * profile's `SingletonSocket` symlink points into it); remove it.
 */
async function removeSingletonDir(profile) {
  try {
    const target = await readlink(path.join(profile, 'SingletonSocket'));
    const d = path.dirname(target);
    if (path.dirname(d) === tmpdir() && path.basename(d).startsWith('org.chromium.Chromium.')) await removeDir(d);
  } catch {}
}

/**
 * Spawn Chromium ourselves (its own process group) on profile `dir` with remote
 * debugging, and attach Playwright over CDP. Returns `{ browser, context, pid,
 * kill() (SIGKILL of the whole group), close() (graceful) }`.
 */
export async function spawnChromium(dir) {
  const { chromium } = await import('playwright-core');
  const proc = spawn(CHROMIUM, [
    '--headless=new', ...CHROMIUM_FLAGS,
    `--user-data-dir=${dir}`, '--remote-debugging-port=0', 'about:blank',
  ], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const wsUrl = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Chromium printed no DevTools URL in 30 s; stderr:\n${stderr}`)), 30_000);
    proc.stderr.on('data', (d) => {
      stderr += d;
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(stderr);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on('exit', (code, sig) => { clearTimeout(timer); reject(new Error(`Chromium exited (${code ?? sig}); stderr:\n${stderr}`)); });
  });
  proc.stderr.resume();
  const exited = new Promise((r) => proc.once('exit', r));
  const groupAlive = () => { try { process.kill(-proc.pid, 0); return true; } catch { return false; } };
  let browser;
  try {
    browser = await chromium.connectOverCDP(wsUrl, { timeout: 30_000 });
  } catch (e) {
    try { process.kill(-proc.pid, 'SIGKILL'); } catch {}
    throw e;
  }
  const context = browser.contexts()[0];
  return {
    browser,
    context,
    pid: proc.pid,
    /** SIGKILL the whole process group and wait until every process of it is gone. */
    async kill() {
      try { process.kill(-proc.pid, 'SIGKILL'); } catch {}
      await exited;
      for (let i = 0; i < 100 && groupAlive(); i++) await sleep(50);
      await browser.close().catch(() => {});
      await removeSingletonDir(dir);
    },
    /** Close the browser gracefully (CDP Browser.close), then make sure the group is gone. */
    async close() {
      // (Playwright's browser.close() only disconnects from a browser it connected to.)
      try {
        const cdp = await browser.newBrowserCDPSession();
        await cdp.send('Browser.close');
      } catch {}
      await browser.close().catch(() => {});
      const done = await within(exited.then(() => true), 10_000, false);
      if (!done) { try { process.kill(-proc.pid, 'SIGKILL'); } catch {} await exited; }
      for (let i = 0; i < 100 && groupAlive(); i++) await sleep(50);
    },
  };
}

/**
 * Launch Firefox ESR through puppeteer-core (WebDriver BiDi) on a fresh temp
 * profile (or `dir`), with extra `prefs` if given. Returns `{ browser, dir, dispose() }`.
 */
export async function launchFirefox(dir, { prefs } = {}) {
  const { default: puppeteer } = await import('puppeteer-core');
  const own = !dir;
  dir ??= await tempProfile('firefox');
  // A killed Firefox leaves its profile lock behind; a relaunch would refuse the profile.
  for (const f of ['lock', '.parentlock']) await rm(path.join(dir, f), { force: true }).catch(() => {});
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    userDataDir: dir,
    timeout: 60_000,
    protocolTimeout: 120_000,
    // No WebDriver BiDi network events: nothing here reads them, and with them
    // subscribed Firefox's parent process kept about a response's size of memory
    // for every response a worker read (1 GiB download: +1.8 GiB PSS, still there
    // after; without: +0.9 GiB while it ran, back to idle after; `make bench`).
    networkEnabled: false,
    ...(prefs ? { extraPrefsFirefox: prefs } : {}),
  });
  return {
    browser,
    dir,
    /** SIGKILL the browser's main process (no shutdown, no flush). */
    kill() {
      const pid = browser.process()?.pid;
      if (pid) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
      }
    },
    async dispose() {
      await browser.close().catch(() => {});
      if (own) await removeDir(dir);
    },
  };
}

// ---------------------------------------------------------------- the demo page

/** Evaluate in the page; works for Playwright and Puppeteer pages. */
const ev = (page, fn, arg) => page.evaluate(fn, arg);

/** Go to the demo page (`query` e.g. `?worker=classic`) and wait for its session. */
export async function openDemo(page, origin, query = '', timeout = 30_000) {
  await page.goto(`${origin}/${query}`);
  await waitForSession(page, timeout);
}

/** Wait until `window.longhaulSession` exists (the demo opened its session). */
export async function waitForSession(page, timeout = 30_000) {
  const end = Date.now() + timeout;
  let status = '';
  while (Date.now() < end) {
    const r = await ev(page, () => ({
      ok: !!window.longhaulSession,
      status: document.querySelector('#status')?.textContent ?? '',
    })).catch((e) => ({ ok: false, status: `evaluate failed: ${e.message}` }));
    if (r.ok) return;
    status = r.status;
    await sleep(100);
  }
  throw new Error(`window.longhaulSession did not appear in ${timeout} ms; page status: ${status}`);
}

/** Start a download from the page; resolves with its snapshot. */
export async function download(page, url, options = {}) {
  return ev(page, ([u, o]) => window.longhaulSession.download(u, o), [url, options]);
}

/** One task snapshot (or null), from the page. */
export async function task(page, id) {
  return ev(page, (i) => window.longhaulSession.task(i), id);
}

/** All snapshots of the demo session, from the page. */
export async function tasks(page) {
  return ev(page, () => window.longhaulSession.tasks());
}

/**
 * Poll `task(id)` until `pred(snapshot)` holds; returns that snapshot. Fails (with
 * the last snapshot) on timeout, or at once if the task failed or was canceled and
 * `pred` did not accept it.
 */
export async function waitTask(page, id, pred, { timeout = 60_000, what = 'the condition', interval = 100 } = {}) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    last = await task(page, id);
    if (last && pred(last)) return last;
    if (last && (last.state === 'failed' || last.state === 'canceled')) {
      throw new Error(`task ${id} ended ${last.state} while waiting for ${what}: ${JSON.stringify(last)}`);
    }
    await sleep(interval);
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what}; last snapshot: ${JSON.stringify(last)}`);
}

/** Wait until at least `fraction` of the task's bytes are received. */
export function waitFraction(page, id, fraction, size, opts = {}) {
  return waitTask(page, id, (s) => s.state === 'completed' || s.bytesReceived >= fraction * size,
    { what: `${Math.round(fraction * 100)}% received`, ...opts });
}

/** Wait until the task completed. */
export function waitCompleted(page, id, opts = {}) {
  return waitTask(page, id, (s) => s.state === 'completed', { what: 'completion', timeout: 90_000, ...opts });
}

/**
 * Record the session's events in the page (`window.__events`), each as
 * `{type, id, state, bytesReceived, t}`.
 */
export async function recordEvents(page) {
  await ev(page, () => {
    if (window.__events) return;
    window.__events = [];
    for (const type of ['progress', 'statechange', 'complete']) {
      window.longhaulSession.addEventListener(type, (e) => {
        const d = e.detail;
        window.__events.push({ type, id: d.id, state: d.state, bytesReceived: d.bytesReceived, t: Date.now() });
      });
    }
  });
}

/** The events recorded so far for task `id`. */
export async function events(page, id) {
  return ev(page, (i) => (window.__events || []).filter((e) => e.id === i), id);
}

/**
 * Wait for a recorded event of `type` for task `id` (see `recordEvents`); resolves
 * with it. Unlike `waitTask`, this sends the worker nothing.
 */
export async function waitEvent(page, id, type, { timeout = 90_000 } = {}) {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    const e = (await events(page, id)).find((x) => x.type === type);
    if (e) return e;
    await sleep(100);
  }
  throw new Error(`no ${type} event for task ${id} in ${timeout} ms; saw: ${JSON.stringify(await events(page, id))}`);
}

/** SHA-256 (hex) and length of a completed download's bytes, computed in the page from `session.blob(id)`. */
export async function pageSha(page, id) {
  return ev(page, async (i) => {
    const blob = await window.longhaulSession.blob(i);
    const buf = await blob.arrayBuffer();
    const digest = await crypto.subtle.digest('SHA-256', buf);
    const hex = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
    return { sha: hex, length: buf.byteLength };
  }, id);
}

/**
 * Poll the devserver log until `pred(entries)` holds; returns the entries.
 */
export async function waitLog(server, p, pred, { timeout = 30_000, what = 'the log condition' } = {}) {
  const end = Date.now() + timeout;
  let entries = [];
  while (Date.now() < end) {
    entries = await server.log(p);
    if (pred(entries)) return entries;
    await sleep(100);
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what}; log for ${p}:\n${fmtLog(entries)}`);
}

/**
 * The task's record as committed in IndexedDB, read directly by `page` (a page of
 * the demo's origin), without sending the service worker anything. Its
 * `bytes_received` is the committed offset a restart resumes from. The record's
 * fields are longhaul's internal schema (database `longhaul`, store `tasks`).
 */
export async function storedRecord(page, id) {
  return ev(page, (i) => new Promise((resolve, reject) => {
    const req = indexedDB.open('longhaul');
    req.onerror = () => reject(new Error(`indexedDB.open failed: ${req.error}`));
    req.onupgradeneeded = () => { req.transaction.abort(); reject(new Error('the longhaul database does not exist')); };
    req.onsuccess = () => {
      const db = req.result;
      const get = db.transaction('tasks', 'readonly').objectStore('tasks').get(i);
      get.onsuccess = () => { db.close(); resolve(get.result ?? null); };
      get.onerror = () => { db.close(); reject(new Error(`reading task ${i} failed: ${get.error}`)); };
    };
  }), id);
}

/** The committed offset in a stored record (see `storedRecord`). */
export const committedOf = (rec) => rec?.bytes_received ?? rec?.bytesReceived;

/**
 * Open a page of `origin` that the service worker does not see: the navigation
 * bypasses service workers (CDP `Network.setBypassServiceWorker`), so it does not
 * start the worker. Chromium (Playwright) only. Use it to read IndexedDB before any
 * worker runs.
 */
export async function openBypassingWorker(context, origin, p = '/manifest.webmanifest') {
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setBypassServiceWorker', { bypass: true });
  await page.goto(`${origin}${p}`);
  return { page, async close() { await cdp.detach().catch(() => {}); await page.close(); } };
}

export const fmtMiB = (n) => `${(n / MiB).toFixed(3)} MiB (${n} bytes)`;

/**
 * Collect console messages of the context's pages and service workers (Playwright),
 * to attach to a failure. Returns the array it fills.
 */
export function collectConsole(context) {
  const lines = [];
  const push = (src) => (m) => lines.push(`[${src} ${m.type()}] ${m.text().slice(0, 500)}`);
  const onPage = (p) => {
    p.on('console', push('page'));
    p.on('pageerror', (e) => lines.push(`[pageerror] ${e.message}`));
  };
  context.pages().forEach(onPage);
  context.on('page', onPage);
  const onWorker = (w) => { lines.push(`[serviceworker started] ${w.url()}`); w.on('console', push('sw')); };
  context.serviceWorkers().forEach(onWorker);
  context.on('serviceworker', onWorker);
  return lines;
}

/** Run `fn`; on failure add the collected console lines to the error message. */
export async function withConsole(lines, fn) {
  try {
    return await fn();
  } catch (e) {
    if (lines.length) e.message += `\n--- browser console (last 40 lines) ---\n${lines.slice(-40).join('\n')}`;
    throw e;
  }
}

/**
 * Assert that the bytes stored for task `id` (hashed in `page` from `session.blob(id)`)
 * equal the source file's (hashed in node). Returns the hash.
 */
export async function assertSameBytes(assert, page, server, filePath, size, id, label = 'the page') {
  const snap = await task(page, id);
  const got = await pageSha(page, id);
  const want = await sourceSha(server.origin, filePath, size);
  assert.equal(got.length, want.length,
    `${label}: stored ${got.length} bytes, the source has ${want.length}; snapshot ${JSON.stringify(snap)}`);
  assert.equal(got.sha, want.sha,
    `${label}: SHA-256 of the stored bytes differs from the source's; snapshot ${JSON.stringify(snap)}; log:\n${fmtLog(await server.log(filePath))}`);
  return got.sha;
}

/** The `N` of a `Range: bytes=N-` (or, a window, `bytes=N-M`) header value, or null. */
export function rangeStart(range) {
  const m = /^bytes=(\d+)-(\d*)$/.exec(range ?? '');
  return m ? Number(m[1]) : null;
}

/**
 * How far into the file the server had sent, over log entries (each from its
 * range's start, or 0): with Range windows (Firefox, `EngineConfig::fetch_window`)
 * a transfer is several requests.
 */
export function servedEnd(entries) {
  return Math.max(0, ...entries.map((e) => (rangeStart(e.range) ?? 0) + e.bytes_sent));
}

// ---------------------------------------------------------------- uploads

/**
 * Start a tus server (tools/tus-server.mjs: npm @tus/server + @tus/file-store) on a
 * free port with its files in a fresh temp dir; `stop()` also removes the dir.
 */
export async function startTus({ checksum = false } = {}) {
  const { startTusServer } = await import('../../tools/tus-server.mjs');
  const dir = await tempProfile('tus');
  const tus = await startTusServer({ dir, checksum });
  return { ...tus, async stop() { await tus.close(); await removeDir(dir); } };
}

/**
 * In the page, fetch `filePath?size=…` from the devserver (unthrottled) into
 * `window.__bodies[key]` as a Blob: the body to upload.
 */
export async function makeBody(page, key, filePath, size) {
  await page.evaluate(async ([k, p, s, v]) => {
    const blob = await (await fetch(`${p}?size=${s}&${v}`)).blob();
    window.__bodies = { ...(window.__bodies ?? {}), [k]: blob };
  }, [key, filePath, size, VERIFY_PARAM]);
}

/** Upload `window.__bodies[key]` to `url` from the page; resolves with its snapshot. */
export async function upload(page, url, key, options = {}) {
  return page.evaluate(([u, k, o]) => window.longhaulSession.upload(u, window.__bodies[k], o), [url, key, options]);
}

/** Wait until the upload's server holds at least `fraction` of `size` bytes. */
export function waitSent(page, id, fraction, size, opts = {}) {
  return waitTask(page, id, (s) => s.state === 'completed' || s.bytesSent >= fraction * size,
    { what: `${Math.round(fraction * 100)}% sent`, ...opts });
}

/** How many chunks IndexedDB holds for task `id` (for every task without an id), read by `page`. */
export async function chunkCount(page, id = null) {
  return ev(page, (i) => new Promise((resolve, reject) => {
    const req = indexedDB.open('longhaul');
    req.onerror = () => reject(req.error);
    req.onsuccess = () => {
      const store = req.result.transaction('chunks').objectStore('chunks');
      const c = i === null ? store.count() : store.count(IDBKeyRange.bound([i, 0], [i, Infinity]));
      c.onsuccess = () => { req.result.close(); resolve(c.result); };
      c.onerror = () => reject(c.error);
    };
  }), id);
}

/** How many of task `id`'s chunk records name a segment file (Firefox's store on a fast link), read by `page`. */
export async function segmentCount(page, id) {
  return ev(page, (i) => new Promise((resolve, reject) => {
    const req = indexedDB.open('longhaul');
    req.onerror = () => reject(req.error);
    req.onsuccess = () => {
      const store = req.result.transaction('chunks').objectStore('chunks');
      const all = store.getAll(IDBKeyRange.bound([i, 0], [i, Infinity]));
      all.onsuccess = () => { req.result.close(); resolve(all.result.filter((v) => typeof v?.segment === 'string').length); };
      all.onerror = () => reject(all.error);
    };
  }), id);
}

/**
 * Run `fn(page, context)` on the demo page (`query`, e.g. `?worker=classic`) of a
 * fresh Chromium, the browser console attached to a failure; the browser and its
 * profile are removed after.
 */
export async function inChromium(origin, query, fn) {
  const browser = await launchChromium();
  const lines = collectConsole(browser.context);
  try {
    return await withConsole(lines, async () => {
      const page = await browser.context.newPage();
      await openDemo(page, origin, query);
      return await fn(page, browser.context, lines);
    });
  } finally {
    await browser.dispose();
  }
}

/** As `inChromium`, in a fresh Firefox (puppeteer-core over WebDriver BiDi). */
export async function inFirefox(origin, query, fn) {
  const ff = await launchFirefox();
  try {
    const page = await ff.browser.newPage();
    const lines = [];
    page.on('console', (m) => lines.push(`[page ${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => lines.push(`[pageerror] ${e.message}`));
    return await withConsole(lines, async () => {
      await openDemo(page, origin, query, 60_000);
      return await fn(page, ff.browser, lines);
    });
  } finally {
    await ff.dispose();
  }
}

/**
 * Stop the page's service workers over CDP (Chromium), and wait until they have.
 * Resolves with `started()`: whether one ran again since (CDP keeps watching until
 * `detach()`).
 */
export async function stopWorkers(page) {
  const cdp = await page.context().newCDPSession(page);
  const running = new Map();
  let again = false;
  cdp.on('ServiceWorker.workerVersionUpdated', ({ versions }) => {
    for (const v of versions) {
      if (running.get(v.versionId) === 'stopped' && v.runningStatus !== 'stopped') again = true;
      running.set(v.versionId, v.runningStatus);
    }
  });
  await cdp.send('ServiceWorker.enable');
  await cdp.send('ServiceWorker.stopAllWorkers');
  // Versions are reported as they change: wait until some were, all of them stopped.
  const stopped = () => running.size > 0 && [...running.values()].every((st) => st === 'stopped');
  for (let i = 0; i < 200 && !stopped(); i++) await sleep(50);
  if (!stopped()) {
    await cdp.detach().catch(() => {});
    throw new Error(`the service workers did not stop: ${JSON.stringify([...running])}`);
  }
  return { started: () => again, detach: () => cdp.detach().catch(() => {}) };
}
