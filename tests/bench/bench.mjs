// longhaul benchmark: one run in headless Chromium on loopback.
//
//   node tests/bench/bench.mjs
//
// Measures, and prints to stdout:
//   1. the raw baseline: a plain-JS service worker (www/bench/raw-sw.js) reading a
//      256 MiB file and discarding the bytes;
//   2. longhaul: session.download() of the same size on the demo page, until its
//      `complete` event;
//   3. the ratio longhaul ÷ raw (medians of 3 alternating runs each);
//   4. bytes fetched twice when the worker is stopped mid-download and resumed;
//   5. the size of the package (wasm + JS glue), raw and gzip -9, against the budget;
//   6. the machine, the Chromium version and the date.
// Every figure is measured by this run; nothing is asserted on timings. Exit 1 only
// if something broke (a download failed, a server or browser did not start).
// Progress goes to stderr, the report to stdout.

import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const KiB = 1024;
const MiB = 1024 * KiB;
const SIZE = 256 * MiB; // every download is 256 MiB
const SIZE_PARAM = '256M';
const CHUNK = 1 * MiB; // longhaul's IndexedDB chunk (one transaction each)
const RUNS = 3; // raw and longhaul runs, alternating
const STOP_RATE = '64M'; // throttle for the worker-stop test, so the stop lands mid-way
const STOP_AT = 0.4; // stop the worker once this fraction is committed
const SIZE_BUDGET_KIB = 80; // gzip(wasm) + gzip(glue), for each entry (page, worker)
const DOWNLOAD_TIMEOUT_MS = 120_000; // a download slower than this counts as broken
const SETTLE_MS = 1000; // pause before each timed run, so background work of the last one settles
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage',
];

// Playwright attaches DevTools to every service worker and by default also records
// their network traffic (a DevTools event per body chunk). That is inspection
// overhead on exactly the path being measured, so switch it off (this bench never
// reads service-worker network events). The CDP commands used below still work.
process.env.PLAYWRIGHT_DISABLE_SERVICE_WORKER_NETWORK ??= '1';

const log = (...a) => console.error('[bench]', ...a); // progress, on stderr
const out = (line = '') => console.log(line); // the report, on stdout
const mib = (bytes) => bytes / MiB;
const fmt = (x, digits = 1) => x.toFixed(digits);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// A unique file name per download, so each has its own bytes and its own log entries.
const stamp = Date.now().toString(36);
const uniqueName = (tag) => `bench-${stamp}-${tag}.bin`;

/** Build what the bench needs, only if it is missing (never rebuilds pkg/). */
function ensureBuilt() {
  if (!existsSync(path.join(ROOT, 'target/release/devserver'))) {
    log('building the devserver…');
    execFileSync('cargo', ['build', '--release', '-p', 'longhaul-devserver'], { cwd: ROOT, stdio: ['ignore', 2, 2] });
  }
  if (!existsSync(path.join(ROOT, 'pkg/longhaul-worker_bg.wasm'))) {
    log('building pkg/…');
    execFileSync('./tools/build-pkg.sh', [], { cwd: ROOT, stdio: ['ignore', 2, 2] });
  }
}

/** Start the devserver on a free port; resolves {base, proc} once it prints its address. */
function startServer() {
  const proc = spawn(path.join(ROOT, 'target/release/devserver'), ['--root', 'www', '--pkg', 'pkg'], {
    cwd: ROOT, env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('devserver did not start within 30 s')), 30_000);
    proc.on('error', reject);
    proc.on('exit', (code) => reject(new Error(`devserver exited early (code ${code})`)));
    proc.stdout.on('data', (d) => {
      buf += d;
      const m = buf.match(/longhaul devserver: (http:\/\/127\.0\.0\.1:\d+\/)/);
      if (m) { clearTimeout(timer); resolve({ base: m[1], proc }); }
    });
  });
}

/** The devserver's request log for one path. */
async function requestLog(base, filePath) {
  const res = await fetch(`${base}__log?${new URLSearchParams({ path: filePath })}`);
  if (!res.ok) throw new Error(`GET /__log answered ${res.status}`);
  return res.json();
}

/** Open a page and wait until `ready` (a page expression) is truthy. */
async function openPage(context, url, ready) {
  const page = await context.newPage();
  page.on('pageerror', (e) => log(`page error on ${url}:`, e.message));
  await page.goto(url);
  await page.waitForFunction(ready, null, { timeout: 30_000 });
  return page;
}

/** Raw baseline: the bench worker reads `url` and discards it; timed in the worker. */
async function rawRun(benchPage, url, size = SIZE) {
  const r = await benchPage.evaluate((u) => window.rawRun(u), url);
  if (r.bytes !== size) throw new Error(`raw read of ${url} got ${r.bytes} bytes, expected ${size}`);
  return { ms: r.ms, mibps: mib(r.bytes) / (r.ms / 1000) };
}

/**
 * longhaul: on the demo page, time session.download(url) until its `complete`
 * event, with performance.now() in the page. Fails on a `failed`/`canceled`
 * state or after the timeout.
 */
async function longhaulRun(demoPage, url, size = SIZE) {
  const r = await demoPage.evaluate(async ({ url, timeoutMs }) => {
    const s = window.longhaulSession;
    const ended = new Map(); // task id → {snap, t}: first terminal event seen
    let wake = () => {};
    const onEvent = (e) => {
      const snap = e.detail;
      const terminal = e.type === 'complete' || snap.state === 'failed' || snap.state === 'canceled';
      if (terminal && !ended.has(snap.id)) ended.set(snap.id, { snap, t: performance.now() });
      wake();
    };
    // Listen before starting, so a very early `complete` cannot be missed.
    s.addEventListener('complete', onEvent);
    s.addEventListener('statechange', onEvent);
    try {
      const t0 = performance.now();
      const started = await s.download(url, { description: 'longhaul bench' });
      while (!ended.has(started.id)) {
        const left = t0 + timeoutMs - performance.now();
        if (left <= 0) return { id: started.id, error: `timeout; last state ${JSON.stringify(await s.task(started.id))}` };
        await new Promise((r) => { wake = r; setTimeout(r, Math.min(left, 1000)); });
      }
      const { snap, t } = ended.get(started.id);
      return { id: started.id, ms: t - t0, snap };
    } finally {
      s.removeEventListener('complete', onEvent);
      s.removeEventListener('statechange', onEvent);
    }
  }, { url, timeoutMs: DOWNLOAD_TIMEOUT_MS });
  if (r.error) throw new Error(`longhaul download of ${url} broke: ${r.error}`);
  if (r.snap.state !== 'completed') {
    throw new Error(`longhaul download of ${url} ended ${r.snap.state}: ${JSON.stringify(r.snap.error)}`);
  }
  if (r.snap.bytesReceived !== size) {
    throw new Error(`longhaul download of ${url} completed with ${r.snap.bytesReceived} bytes, expected ${size}`);
  }
  // Free the stored bytes so the next runs do not fill the storage.
  await demoPage.evaluate((id) => window.longhaulSession.remove(id), r.id);
  return { ms: r.ms, mibps: mib(size) / (r.ms / 1000) };
}

/** Poll a task in the page until `done(snap)` holds; returns the snapshot. */
async function waitForTask(demoPage, id, doneSource, timeoutMs = DOWNLOAD_TIMEOUT_MS) {
  const snap = await demoPage.evaluate(async ({ id, doneSource, timeoutMs }) => {
    const done = new Function('snap', `return (${doneSource});`);
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const snap = await window.longhaulSession.task(id);
      if (snap && (done(snap) || snap.state === 'failed' || snap.state === 'canceled')) return snap;
      if (performance.now() > deadline) return { ...snap, timedOut: true };
      await new Promise((r) => setTimeout(r, 50));
    }
  }, { id, doneSource, timeoutMs });
  if (snap.timedOut) throw new Error(`task ${id} timed out in state ${snap.state} at ${snap.bytesReceived} bytes`);
  if (snap.state === 'failed' || snap.state === 'canceled') {
    throw new Error(`task ${id} ended ${snap.state}: ${JSON.stringify(snap.error)}`);
  }
  return snap;
}

/**
 * Stop the worker mid-download, reload, let it finish, then read the server log:
 * everything sent beyond the file size was fetched twice.
 */
async function stopResumeRun(demoPage, base) {
  const name = uniqueName('stop');
  const filePath = `/files/${name}`;
  const url = `${filePath}?size=${SIZE_PARAM}&rate=${STOP_RATE}`;
  const cdp = await demoPage.context().newCDPSession(demoPage);
  await cdp.send('ServiceWorker.enable');

  const started = await demoPage.evaluate((u) => window.longhaulSession.download(u, { description: 'longhaul bench: stop' }), url);
  const before = await waitForTask(demoPage, started.id, `snap.bytesReceived >= ${Math.ceil(STOP_AT * SIZE)}`);
  log(`stopping all service workers at ${fmt(mib(before.bytesReceived))} MiB committed`);
  await cdp.send('ServiceWorker.stopAllWorkers');
  await cdp.detach();

  // The reload's navigation wakes the worker, which resumes from what it committed.
  await demoPage.reload();
  await demoPage.waitForFunction(() => window.longhaulSession, null, { timeout: 30_000 });
  const done = await waitForTask(demoPage, started.id, `snap.state === 'completed'`);
  if (done.bytesReceived !== SIZE) {
    throw new Error(`resumed download completed with ${done.bytesReceived} bytes, expected ${SIZE}`);
  }
  await demoPage.evaluate((id) => window.longhaulSession.remove(id), started.id);

  const entries = (await requestLog(base, filePath)).filter((e) => e.method === 'GET');
  const sent = entries.reduce((sum, e) => sum + e.bytes_sent, 0);
  return { atStop: before.bytesReceived, entries, sent, twice: sent - SIZE };
}

/** Raw and gzip -9 sizes of a package file. */
function fileSizes(rel) {
  const bytes = readFileSync(path.join(ROOT, rel));
  return { rel, raw: bytes.length, gz: gzipSync(bytes, { level: 9 }).length };
}

/** `nproc` and the CPU model from /proc/cpuinfo. */
function machine() {
  let nproc;
  try { nproc = execFileSync('nproc', { encoding: 'utf8' }).trim(); } catch { nproc = String(os.availableParallelism()); }
  let cpu = 'unknown';
  try {
    const m = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m);
    if (m) cpu = m[1].trim();
  } catch { /* keep 'unknown' */ }
  return { nproc, cpu };
}

async function main() {
  ensureBuilt();
  const { base, proc: server } = await startServer();
  log(`devserver at ${base}`);
  let browser;
  try {
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    const context = await browser.newContext(); // a fresh, temporary profile

    const { nproc, cpu } = machine();
    out('longhaul benchmark');
    out('==================');
    out(`date      ${new Date().toISOString()}`);
    out(`machine   ${nproc} CPUs (nproc), ${cpu}, ${os.platform()} ${os.release()}`);
    out(`browser   Chromium ${browser.version()} (headless), loopback devserver`);
    out(`file      ${mib(SIZE)} MiB generated by the devserver, a new name for every download`);
    out();

    // The two pages: the bench page (raw worker, scope /bench/) and the demo page (longhaul, scope /).
    const benchPage = await openPage(context, `${base}bench/`, async () => !!(await window.benchReady));
    const demoPage = await openPage(context, base, () => !!window.longhaulSession);

    // Warm-up, not counted: start both workers' code paths (JIT, wasm tier-up,
    // first connection, IndexedDB open) so that run 1 is not a cold start.
    log('warm-up (not counted)');
    await rawRun(benchPage, `/files/${uniqueName('warm-raw')}?size=64M`, 64 * MiB);
    await longhaulRun(demoPage, `/files/${uniqueName('warm-lh')}?size=16M`, 16 * MiB);

    // 1-3. Alternate raw and longhaul runs.
    const raw = [];
    const lh = [];
    for (let i = 1; i <= RUNS; i++) {
      await sleep(SETTLE_MS);
      log(`run ${i}/${RUNS}: raw worker read`);
      raw.push(await rawRun(benchPage, `/files/${uniqueName(`raw-${i}`)}?size=${SIZE_PARAM}`));
      await sleep(SETTLE_MS);
      log(`run ${i}/${RUNS}: longhaul download`);
      lh.push(await longhaulRun(demoPage, `/files/${uniqueName(`lh-${i}`)}?size=${SIZE_PARAM}`));
    }
    const rawMed = median(raw.map((r) => r.mibps));
    const lhMed = median(lh.map((r) => r.mibps));
    out(`Throughput, ${mib(SIZE)} MiB, ${RUNS} runs each, alternating (MiB/s; time in ms)`);
    out('  run   raw worker read          longhaul download');
    for (let i = 0; i < RUNS; i++) {
      const r = raw[i], l = lh[i];
      out(`  ${i + 1}     ${fmt(r.mibps).padStart(7)} MiB/s ${fmt(r.ms, 0).padStart(6)} ms   ${fmt(l.mibps).padStart(7)} MiB/s ${fmt(l.ms, 0).padStart(6)} ms`);
    }
    out(`  median ${fmt(rawMed).padStart(6)} MiB/s             ${fmt(lhMed).padStart(7)} MiB/s`);
    out(`  ratio longhaul / raw (medians): ${(lhMed / rawMed).toFixed(2)}`);
    out('  raw: plain-JS worker (scope /bench/), fetch + body reader, bytes discarded, timed in the worker');
    out('  longhaul: demo page, session.download() to the `complete` event, timed in the page; bytesReceived checked');
    out(`  before them: one untimed warm-up of each (64 MiB raw, 16 MiB longhaul); ${SETTLE_MS} ms pause before every run;`);
    out('  Playwright\'s service-worker network recording off (PLAYWRIGHT_DISABLE_SERVICE_WORKER_NETWORK)');
    out();

    // 4. Bytes fetched twice after a mid-download worker stop.
    log(`worker-stop test (rate ${STOP_RATE}/s, stop at ≥ ${STOP_AT * 100}%)`);
    const stop = await stopResumeRun(demoPage, base);
    const resumes = stop.entries.filter((e) => e.range);
    out(`Worker stopped mid-download (${mib(SIZE)} MiB at rate=${STOP_RATE}, ServiceWorker.stopAllWorkers, then reload)`);
    out(`  committed when stopped: ${fmt(mib(stop.atStop))} MiB (${fmt((100 * stop.atStop) / SIZE)}%)`);
    out(`  requests for the file:  ${stop.entries.length}`);
    for (const e of stop.entries) {
      out(`    #${e.seq} status ${e.status}, Range ${e.range ?? '(none)'}, If-Range ${e.if_range ?? '(none)'}, sent ${fmt(mib(e.bytes_sent), 2)} MiB`);
    }
    out(`  resume request Range:   ${resumes.length ? resumes.map((e) => e.range).join(', ') : '(none: no ranged request)'}`);
    out(`  bytes sent in total:    ${fmt(mib(stop.sent), 2)} MiB`);
    out(`  fetched twice:          ${fmt(mib(stop.twice), 2)} MiB = ${(stop.twice / CHUNK).toFixed(2)} × the 1 MiB chunk (${stop.twice} bytes)`);
    out();

    // 5. Package size: the page's module and the worker's, each against the budget.
    out('Package size (gzip = zlib level 9), per entry');
    for (const [entry, wasmRel, glueRel] of [
      ['page', 'pkg/longhaul_bg.wasm', 'pkg/longhaul.js'],
      ['worker', 'pkg/longhaul-worker_bg.wasm', 'pkg/longhaul-worker.js'],
    ]) {
      const wasm = fileSizes(wasmRel);
      const glue = fileSizes(glueRel);
      const gzSum = (wasm.gz + glue.gz) / KiB;
      for (const f of [wasm, glue]) {
        out(`  ${f.rel.padEnd(28)} raw ${fmt(f.raw / KiB).padStart(7)} KiB   gzip ${fmt(f.gz / KiB).padStart(6)} KiB`);
      }
      out(`  ${entry} gzip total: ${fmt(gzSum)} KiB of the ${SIZE_BUDGET_KIB} KiB budget (${fmt((100 * gzSum) / SIZE_BUDGET_KIB, 0)}%)`);
    }
  } finally {
    await browser?.close().catch(() => {});
    server.kill();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`bench failed: ${err && err.stack || err}`);
    console.log(`\nbench FAILED: ${err && err.message || err}`);
    process.exit(1);
  },
);
