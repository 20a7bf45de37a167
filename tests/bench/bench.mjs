// longhaul benchmark: `make bench`, or `node tests/bench/bench.mjs [chromium|firefox]…`.
//
// One run measures, in headless Chromium and in headless Firefox ESR, on loopback,
// and prints every figure as a ratio against a baseline measured in the same run:
//
//   1. download throughput into storage: the plain-JS bench worker (www/bench/raw-sw.js)
//      reading the same file and discarding it, or putting it into IndexedDB (1 and 8
//      chunks per transaction), OPFS or Cache Storage; and longhaul's session.download()
//      to its `complete` event. Ratio: longhaul ÷ the fastest plain-JS store;
//   2. progress events per second per task during those downloads (the engine's cap is 10);
//   3. upload throughput from storage: longhaul (tus to a loopback @tus/server, and one
//      PUT to the devserver) ÷ a plain fetch PUT of the same bytes;
//   4. memory: the browser's PSS (every process of it) while longhaul downloads 1 GiB
//      (at loopback speed, and served at 64 MiB/s) and while the page reads that file
//      back through session.blob(), over idle; and the same for plain JS: a fetch
//      whose bytes are dropped, and a download into IndexedDB read back as one Blob;
//   5. bytes fetched twice after a worker stop (Chromium) and after a SIGKILL of the
//      whole browser (both), read from the devserver's request log; and the start-up
//      time from the navigation of the relaunched browser's page to the resumed Range
//      request, both on the devserver's clock;
//   6. scale: open + tasks() with 10,000 tasks in a session; 100 concurrent small
//      downloads with the per-host limit, concurrency read from the request log;
//   7. Background Fetch of the same file (Chromium): longhaul ÷ Background Fetch;
//      and (section `latency`) a download with 50 ms before every response head ÷
//      the same without: what the round trips of Firefox's Range windows cost;
//   8. the package size (wasm + JS glue, gzip -9) against the 80 KiB budget.
//
// Nothing is asserted on timings. Exit 1 only if something broke (a transfer
// failed, a server or browser did not start). Progress goes to stderr, the report
// to stdout.

import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import * as h from '../e2e/helpers.mjs';

const { MiB, KiB, sleep } = h;
const SIZE = 256 * MiB; // throughput downloads
const SIZE_PARAM = '256M';
const UP_SIZE = 128 * MiB; // uploads
const BIG = 1024 * MiB; // the memory run
const RUNS = Number(process.env.BENCH_RUNS ?? 3); // runs of each path, interleaved
const STORES = (process.env.BENCH_STORES ?? 'idb1,idb8,opfs,cache').split(',');
// The plain-JS stores the memory section downloads 1 GiB into (after longhaul's).
const MEM_STORES = (process.env.BENCH_MEM_STORES ?? 'discard,idb8keep').split(',');
// A fast real link, for the memory section's throttled 1 GiB download: at loopback
// speed Firefox's parent process buffers what its worker has not read yet, even for
// a plain fetch whose bytes are dropped (the `discard` row).
const MEM_RATE = '64M';
const STORE_NAMES = {
  discard: 'network only, bytes dropped',
  idb1: 'IndexedDB, 1 MiB per transaction',
  idb8: 'IndexedDB, 8 MiB per transaction',
  idb8blob: 'IndexedDB, 8 MiB per transaction, as Blobs',
  idb8one: 'IndexedDB, 8 MiB per transaction, as one Blob',
  idb8keep: 'IndexedDB, 8 MiB per transaction, as Blobs, kept to be read back',
  opfsseg1: 'OPFS, a file per 1 MiB, offset in IndexedDB',
  opfsseg8: 'OPFS, a file per 8 MiB, offset in IndexedDB',
  opfsseg1x4: 'OPFS, a file per 1 MiB, 4 at once, offset in IDB',
  opfsseg2x4: 'OPFS, a file per 2 MiB, 4 at once, offset in IDB',
  opfsseg4x2: 'OPFS, a file per 4 MiB, 2 at once, offset in IDB',
  cacheseg1: 'Cache Storage, an entry per 1 MiB, offset in IDB',
  cacheseg8: 'Cache Storage, an entry per 8 MiB, offset in IDB',
  opfs: 'OPFS createWritable',
  cache: 'Cache Storage put(stream)',
};
/** What a plain-JS op measures (`<op>winN`: the same over Range windows, raw-sw.js). */
function storeName(op) {
  const w = /^(.*)win(\d+)$/.exec(op);
  if (w) return `${STORE_NAMES[w[1]] ?? w[1]}, in ${w[2]} MiB Range windows`;
  return STORE_NAMES[op] ?? op;
}
const KILL_RATE = '32M'; // throttle for the interruption runs, so they land mid-way
const SCALE_TASKS = 10_000;
const MANY = 100; // concurrent small downloads
const MANY_LIMIT = 6; // their session's maxConnectionsPerHost
const SIZE_BUDGET_KIB = 80;
const TIMEOUT_MS = 180_000; // a transfer slower than this counts as broken
const SETTLE_MS = 1000; // pause before each timed run
// While working on one part: BENCH_SECTIONS=throughput,latency,upload,memory,stop,scale,bgfetch,kill
// (default all; bgfetch needs throughput), BENCH_STORES=idb1,idb8,idb8blob,opfs,cache,…
// and BENCH_MEM_STORES=idb8,discard,opfs,… (the memory section's plain-JS runs); BENCH_RUNS=6
// for more runs of each (default 3).
const SECTIONS = process.env.BENCH_SECTIONS?.split(',');
const want = (section) => !SECTIONS || SECTIONS.includes(section);

// Playwright attaches DevTools to every service worker and by default records their
// network traffic (an event per body chunk): inspection overhead on the measured path.
process.env.PLAYWRIGHT_DISABLE_SERVICE_WORKER_NETWORK ??= '1';

const log = (...a) => console.error('[bench]', ...a);
const out = (line = '') => console.log(line);
const fmt = (x, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mibps = (bytes, ms) => bytes / MiB / (ms / 1000);
const stamp = Date.now().toString(36);
let serial = 0;
const fileUrl = (tag, size, extra = '') => `/files/bench-${stamp}-${tag}-${++serial}.bin?size=${size}${extra}`;

// ------------------------------------------------------------------ browsers

function version(bin) {
  try { return execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim(); } catch { return `${bin} (version unknown)`; }
}

/** Launch one browser on a fresh profile: { kind, version, newPage(), close() }. */
async function launch(kind) {
  if (kind === 'chromium') {
    const b = await h.launchChromium();
    return { kind, version: version(h.CHROMIUM), context: b.context, newPage: () => b.context.newPage(), close: () => b.dispose() };
  }
  const b = await h.launchFirefox();
  return { kind, version: version(h.FIREFOX), browser: b.browser, newPage: () => b.browser.newPage(), close: () => b.dispose() };
}

/** Open `url` in a new page and poll `ready` (a page function) until truthy. */
async function openPage(browser, url, ready) {
  const page = await browser.newPage();
  await page.goto(url);
  const end = Date.now() + 30_000;
  while (!(await page.evaluate(ready).catch(() => false))) {
    if (Date.now() > end) throw new Error(`${url} did not get ready in 30 s`);
    await sleep(100);
  }
  return page;
}

// ------------------------------------------------------------------ memory

/** PIDs of every browser process under this node process. */
function browserPids() {
  const children = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(d));
    } catch { /* gone */ }
  }
  const pids = [];
  const walk = (p) => {
    for (const c of children.get(p) ?? []) {
      let cmd = '';
      try { cmd = readFileSync(`/proc/${c}/cmdline`, 'utf8'); } catch {}
      if (/chromium|firefox/.test(cmd)) pids.push(c);
      walk(c);
    }
  };
  walk(process.pid);
  return pids;
}

/** The summed PSS of the browser's processes, bytes. */
function browserPss() {
  let kib = 0;
  for (const pid of browserPids()) {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
      if (m) kib += Number(m[1]);
    } catch { /* gone */ }
  }
  return kib * KiB;
}

/**
 * Wait until the browser's PSS is back within 64 MiB of `idle`, or 20 s have gone
 * (Firefox frees what a run left in its parent process lazily, and a run that began
 * on top of it would be measured from a high start). Returns the PSS then.
 */
async function settle(idle) {
  const end = Date.now() + 20_000;
  let pss = browserPss();
  while (pss > idle + 64 * MiB && Date.now() < end) { await sleep(500); pss = browserPss(); }
  return pss;
}

/** Sample the browser's PSS every 200 ms while `job` runs; resolves { result, peak }. */
async function peakPss(job) {
  let peak = browserPss();
  let running = true;
  const sampler = (async () => {
    while (running) { peak = Math.max(peak, browserPss()); await sleep(200); }
  })();
  try {
    const result = await job;
    return { result, peak };
  } finally {
    running = false;
    await sampler;
  }
}

// ------------------------------------------------------------------ runs in the pages

/** A plain-JS run in the bench worker: { bytes, ms }. */
async function rawRun(benchPage, op, url, size) {
  const r = await benchPage.evaluate(([o, u]) => window.rawRun(o, u), [op, url]);
  if (r.bytes !== size) throw new Error(`${op} of ${url} got ${r.bytes} bytes, expected ${size}`);
  return r;
}

/**
 * longhaul on the demo page: session.download(url) until `complete`, timed in the
 * page; also counts the task's progress events. The stored bytes are freed after.
 */
async function longhaulRun(demo, url, size, { keep = false } = {}) {
  const r = await demo.evaluate(async ([url, timeoutMs]) => {
    const s = window.longhaulSession;
    let id = null;
    let ended = null;
    let progress = 0;
    let firstProgress = null;
    let lastProgress = null;
    let wake = () => {};
    const early = [];
    const onEvent = (e) => {
      const snap = e.detail;
      if (id === null) { early.push(e); return; }
      if (snap.id !== id) return;
      if (e.type === 'progress') {
        progress += 1;
        firstProgress ??= performance.now();
        lastProgress = performance.now();
      }
      if (!ended && (e.type === 'complete' || snap.state === 'failed' || snap.state === 'canceled')) {
        ended = { snap, t: performance.now() };
      }
      wake();
    };
    const types = ['complete', 'statechange', 'progress'];
    for (const t of types) s.addEventListener(t, onEvent);
    try {
      const t0 = performance.now();
      const started = await s.download(url, { description: 'longhaul bench' });
      id = started.id;
      for (const e of early.splice(0)) onEvent(e);
      while (!ended) {
        const left = t0 + timeoutMs - performance.now();
        if (left <= 0) return { id, error: `timeout; last state ${JSON.stringify(await s.task(id))}` };
        await new Promise((r) => { wake = r; setTimeout(r, Math.min(left, 1000)); });
      }
      const span = lastProgress !== null && lastProgress > firstProgress ? lastProgress - firstProgress : null;
      return { id, ms: ended.t - t0, snap: ended.snap, progress, perSecond: span ? (progress - 1) / (span / 1000) : null };
    } finally {
      for (const t of types) s.removeEventListener(t, onEvent);
    }
  }, [url, TIMEOUT_MS]);
  if (r.error) throw new Error(`longhaul download of ${url} broke: ${r.error}`);
  if (r.snap.state !== 'completed' || r.snap.bytesReceived !== size) {
    throw new Error(`longhaul download of ${url} ended ${r.snap.state} with ${r.snap.bytesReceived} bytes: ${JSON.stringify(r.snap.error)}`);
  }
  if (!keep) await demo.evaluate((id) => window.longhaulSession.remove(id), r.id);
  return r;
}

/** longhaul upload of `size` zero bytes; times the copy into storage and the sending apart. */
async function longhaulUpload(demo, url, size, protocol) {
  const r = await demo.evaluate(async ([url, size, protocol, timeoutMs]) => {
    const s = window.longhaulSession;
    const body = new Blob([new Uint8Array(size)]);
    const t0 = performance.now();
    const started = await s.upload(url, body, { protocol, description: 'longhaul bench upload' });
    const t1 = performance.now();
    for (;;) {
      const snap = await s.task(started.id);
      if (snap.state === 'completed') return { id: started.id, copyMs: t1 - t0, sendMs: performance.now() - t1, snap };
      if (snap.state === 'failed' || snap.state === 'canceled') return { error: `${snap.state}: ${JSON.stringify(snap.error)}` };
      if (performance.now() - t1 > timeoutMs) return { error: `timeout at ${snap.bytesSent} bytes` };
      await new Promise((r) => setTimeout(r, 20));
    }
  }, [url, size, protocol, TIMEOUT_MS]);
  if (r.error) throw new Error(`longhaul ${protocol} upload to ${url} broke: ${r.error}`);
  await demo.evaluate((id) => window.longhaulSession.remove(id), r.id);
  return r;
}

/** Poll a task in `page` until it completed; returns its snapshot. */
async function waitDone(page, id) {
  return h.waitTask(page, id, (s) => s.state === 'completed', { what: 'completion', timeout: TIMEOUT_MS, interval: 200 });
}

// ------------------------------------------------------------------ sections

async function throughput(b, server, benchPage, demo) {
  log(`${b.kind}: warm-up (not counted)`);
  await rawRun(benchPage, 'discard', fileUrl('warm', '64M'), 64 * MiB);
  for (const op of STORES) await rawRun(benchPage, op, fileUrl(`warm-${op}`, '16M'), 16 * MiB);
  await longhaulRun(demo, fileUrl('warm-lh', '16M'), 16 * MiB);

  const ops = ['discard', ...STORES, 'longhaul'];
  const runs = Object.fromEntries(ops.map((o) => [o, []]));
  const progress = [];
  for (let i = 1; i <= RUNS; i++) {
    for (const op of ops) {
      await sleep(SETTLE_MS);
      log(`${b.kind}: run ${i}/${RUNS}: ${op}`);
      if (op === 'longhaul') {
        const r = await longhaulRun(demo, fileUrl('lh', SIZE_PARAM), SIZE);
        runs[op].push(mibps(SIZE, r.ms));
        progress.push(r);
      } else {
        const r = await rawRun(benchPage, op, fileUrl(op, SIZE_PARAM), SIZE);
        runs[op].push(mibps(SIZE, r.ms));
      }
    }
  }
  const med = Object.fromEntries(ops.map((o) => [o, median(runs[o])]));
  const fastest = STORES.reduce((a, o) => (med[o] > med[a] ? o : a), STORES[0]);
  out(`Download throughput into storage, ${SIZE / MiB} MiB, ${RUNS} runs of each, interleaved (MiB/s)`);
  for (const o of ops) {
    const name = o === 'longhaul' ? 'longhaul session.download() to `complete`' : `plain JS: ${storeName(o)}`;
    out(`  ${name.padEnd(44)} ${runs[o].map((x) => fmt(x).padStart(6)).join(' ')}   median ${fmt(med[o]).padStart(6)}`);
  }
  out(`  fastest plain-JS store: ${storeName(fastest)} (${fmt(med[fastest])} MiB/s)`);
  out(`  RATIO longhaul ÷ fastest plain-JS store: ${fmt(med.longhaul / med[fastest], 2)}   (÷ network only: ${fmt(med.longhaul / med.discard, 2)})`);
  const rates = progress.map((r) => r.perSecond).filter((x) => x !== null);
  out(`  progress events per second per task: ${rates.map((x) => fmt(x)).join(', ')} (max ${fmt(Math.max(...rates))}; cap 10)`);
  out();
  return { lh: med.longhaul, fastest: med[fastest], fastestName: fastest, med };
}

// What a round trip per Range window costs (Firefox asks for 16 MiB windows, each
// about two round trips ahead of the last one's end): the same download with and
// without a head latency. Not paced by the server: its rate is per request, so two
// windows in flight at once would get twice a link's bandwidth.
const LAT_SIZE = 128 * MiB;
const LAT_MS = 50;
const LAT_WINDOW = 16 * MiB; // worker::FETCH_WINDOW (Firefox)

async function latency(b) {
  const runs = { none: [], late: [] };
  for (let i = 1; i <= RUNS; i++) {
    for (const k of ['none', 'late']) {
      await sleep(SETTLE_MS);
      log(`${b.kind}: latency run ${i}/${RUNS}: ${k === 'late' ? `${LAT_MS} ms per head` : 'none'}`);
      const extra = k === 'late' ? `&latency=${LAT_MS}` : '';
      const r = await longhaulRun(b.demo, fileUrl(`lat-${k}`, `${LAT_SIZE / MiB}M`, extra), LAT_SIZE);
      runs[k].push(mibps(LAT_SIZE, r.ms));
    }
  }
  const med = { none: median(runs.none), late: median(runs.late) };
  // Were every round trip waited for: one per window (Firefox) or per transfer.
  const trips = b.kind === 'firefox' ? LAT_SIZE / LAT_WINDOW : 1;
  const secs = LAT_SIZE / MiB / med.none;
  out(`Latency: longhaul, ${LAT_SIZE / MiB} MiB, ${RUNS} runs of each, interleaved (MiB/s)`);
  out(`  no latency                                    ${runs.none.map((x) => fmt(x).padStart(6)).join(' ')}   median ${fmt(med.none).padStart(6)}`);
  out(`  ${`${LAT_MS} ms before every response head`.padEnd(45)} ${runs.late.map((x) => fmt(x).padStart(6)).join(' ')}   median ${fmt(med.late).padStart(6)}`);
  out(`  RATIO with latency ÷ without: ${fmt(med.late / med.none, 2)} (with ${trips} round trip(s) waited for, it would be ${fmt(secs / (secs + trips * LAT_MS / 1000), 2)})`);
  out();
}

async function uploads(b, server, tus, benchPage, demo) {
  const runs = { put: [], tus: [], lhput: [] };
  const copy = [];
  for (let i = 1; i <= RUNS; i++) {
    await sleep(SETTLE_MS);
    log(`${b.kind}: upload run ${i}/${RUNS}: plain PUT`);
    const p = await benchPage.evaluate(([u, s]) => window.rawPut(u, s), [`${server.origin}/sink/bench-${stamp}-put-${i}`, UP_SIZE]);
    runs.put.push(mibps(UP_SIZE, p.ms));
    await sleep(SETTLE_MS);
    log(`${b.kind}: upload run ${i}/${RUNS}: longhaul tus`);
    const t = await longhaulUpload(demo, tus.endpoint, UP_SIZE, 'tus');
    runs.tus.push(mibps(UP_SIZE, t.sendMs));
    copy.push(mibps(UP_SIZE, t.copyMs));
    await sleep(SETTLE_MS);
    log(`${b.kind}: upload run ${i}/${RUNS}: longhaul PUT`);
    const l = await longhaulUpload(demo, `${server.origin}/sink/bench-${stamp}-lhput-${i}`, UP_SIZE, 'put');
    runs.lhput.push(mibps(UP_SIZE, l.sendMs));
    copy.push(mibps(UP_SIZE, l.copyMs));
    for (const name of [`put-${i}`, `lhput-${i}`]) await fetch(`${server.origin}/sink/bench-${stamp}-${name}`, { method: 'DELETE' });
  }
  const med = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)]));
  out(`Upload throughput from storage, ${UP_SIZE / MiB} MiB, ${RUNS} runs of each, interleaved (MiB/s)`);
  out(`  plain JS: fetch PUT of a Blob to the devserver       ${runs.put.map((x) => fmt(x).padStart(6)).join(' ')}   median ${fmt(med.put).padStart(6)}`);
  out(`  longhaul tus (8 MiB PATCHes) to @tus/server          ${runs.tus.map((x) => fmt(x).padStart(6)).join(' ')}   median ${fmt(med.tus).padStart(6)}`);
  out(`  longhaul PUT to the devserver                        ${runs.lhput.map((x) => fmt(x).padStart(6)).join(' ')}   median ${fmt(med.lhput).padStart(6)}`);
  out(`  RATIO longhaul tus ÷ plain PUT: ${fmt(med.tus / med.put, 2)}   longhaul PUT ÷ plain PUT: ${fmt(med.lhput / med.put, 2)}`);
  out(`  (timed from upload() resolving, the body already copied into IndexedDB, to \`completed\`; the copy ran at median ${fmt(median(copy))} MiB/s)`);
  out();
}

async function memory(b, benchPage, demo) {
  // First thing in a fresh browser (before the throughput runs, whose garbage Firefox
  // keeps for a long while): one small download to load every code path, then idle.
  await longhaulRun(demo, fileUrl('mem-warm', '16M'), 16 * MiB);
  await sleep(3000);
  const samples = [];
  for (let i = 0; i < 5; i++) { samples.push(browserPss()); await sleep(400); }
  const idle = median(samples);
  // A quarter of the size first: if the rise is the same, it does not grow with the file.
  log(`${b.kind}: memory: 256 MiB download (idle PSS ${fmt(idle / MiB)} MiB)`);
  const small = await peakPss(longhaulRun(demo, fileUrl('mem-small', SIZE_PARAM), SIZE));
  await settle(idle);
  log(`${b.kind}: memory: 1 GiB download`);
  const dl = await peakPss(longhaulRun(demo, fileUrl('mem', '1G'), BIG, { keep: true }));
  const id = dl.result.id;
  await sleep(2000);
  const rest = browserPss();
  // Chromium: what the worker's end gives back (Blobs it made and dropped are freed
  // only when its heap is collected, or it ends).
  let stopped = null;
  if (b.kind === 'chromium') {
    const cdp = await b.context.newCDPSession(demo);
    await cdp.send('ServiceWorker.enable');
    await cdp.send('ServiceWorker.stopAllWorkers');
    await cdp.detach();
    await sleep(2000);
    stopped = browserPss();
  }
  const slowStart = await settle(idle);
  log(`${b.kind}: memory: 1 GiB download at ${MEM_RATE}/s (PSS ${fmt(slowStart / MiB)} MiB)`);
  const slow = await peakPss(longhaulRun(demo, fileUrl('mem-slow', '1G', `&rate=${MEM_RATE}`), BIG));
  const readStart = await settle(idle);
  log(`${b.kind}: memory: reading the first back through session.blob()`);
  const read = await peakPss(demo.evaluate(async (id) => {
    const blob = await window.longhaulSession.blob(id);
    const reader = blob.stream().getReader();
    let n = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return n;
      n += value.byteLength;
    }
  }, id));
  if (read.result !== BIG) throw new Error(`blob() of the 1 GiB download read ${read.result} bytes`);
  await demo.evaluate((id) => window.longhaulSession.remove(id), id);
  // The same 1 GiB by plain JS into each of MEM_STORES, measured the same way: what
  // the browser itself costs for such a download (each over its own start).
  const plain = [];
  const reads = []; // plain-JS reads of what `idb8keep` stored: { how, before, peak }
  for (const op of MEM_STORES) {
    const before = await settle(idle);
    log(`${b.kind}: memory: plain-JS download of 1 GiB, ${storeName(op)} (PSS ${fmt(before / MiB)} MiB)`);
    const run = await peakPss(rawRun(benchPage, op, fileUrl(`mem-plain-${op}`, '1G'), BIG));
    await sleep(2000);
    plain.push({ op, before, peak: run.peak, after: browserPss() });
    if (op === 'idb8keep') {
      // What the browser costs to read such a file back as longhaul's blob() does.
      const start = await settle(idle);
      log(`${b.kind}: memory: plain-JS read of those Blobs in the page (PSS ${fmt(start / MiB)} MiB)`);
      const read = await peakPss(benchPage.evaluate(() => window.rawReadStored()));
      if (read.result.bytes !== BIG) throw new Error(`the plain-JS read got ${read.result.bytes} bytes`);
      reads.push({ how: 'composed in the worker and read by the page through its stream()', before: start, peak: read.peak });
      // The same bytes streamed to the page as a fetch's body, a record per pull.
      const start2 = await settle(idle);
      log(`${b.kind}: memory: plain-JS read of those Blobs as a fetch the worker answers (PSS ${fmt(start2 / MiB)} MiB)`);
      const read2 = await peakPss(benchPage.evaluate(() => window.rawReadStored(true)));
      // A baseline, not longhaul: a short read is reported, not fatal. (Seen once in
      // Firefox, 907 of 1,024 MiB: the stream ended without an error, as when the
      // browser stops a worker that answers a long fetch.)
      const short = read2.result.bytes === BIG ? '' : ` (ended early: ${fmt(read2.result.bytes / MiB)} of ${BIG / MiB} MiB arrived)`;
      reads.push({ how: `streamed by the worker as the body of the page's fetch, a record per pull${short}`, before: start2, peak: read2.peak });
      await benchPage.evaluate(() => window.rawDropStored());
    }
  }
  out('Memory: PSS summed over every browser process, sampled every 200 ms (MiB)');
  out(`  idle ${fmt(idle / MiB)}; peak during a ${SIZE / MiB} MiB longhaul download ${fmt(small.peak / MiB)} (+${fmt((small.peak - idle) / MiB)}); ` +
    `during a 1 GiB one ${fmt(dl.peak / MiB)} (+${fmt((dl.peak - idle) / MiB)}); after it ${fmt(rest / MiB)}` +
    (stopped === null ? '' : `; after the worker was stopped (CDP) ${fmt(stopped / MiB)} (+${fmt((stopped - idle) / MiB)})`));
  out(`  peak while the page reads the 1 GiB file through session.blob().stream(): ${fmt(read.peak / MiB)} (+${fmt((read.peak - idle) / MiB)} over idle, +${fmt((read.peak - readStart) / MiB)} over its start)`);
  out(`  peak during a 1 GiB longhaul download served at ${MEM_RATE}/s: ${fmt(slow.peak / MiB)} (+${fmt((slow.peak - slowStart) / MiB)} over its start, +${fmt((slow.peak - idle) / MiB)} over idle)`);
  for (const p of plain) {
    out(`  plain JS, 1 GiB, ${storeName(p.op)}: peak ${fmt(p.peak / MiB)} (+${fmt((p.peak - p.before) / MiB)} over its start); ` +
      `2 s after it ${fmt((p.after - p.before) / MiB)} over its start`);
  }
  for (const r of reads) {
    out(`  plain JS, the 1 GiB of IndexedDB Blobs ${r.how}: peak ${fmt(r.peak / MiB)} (+${fmt((r.peak - r.before) / MiB)} over its start)`);
  }
  for (const p of plain) {
    // (A plain run that began while earlier garbage was being freed may show no rise.)
    const rise = p.peak - p.before;
    out(`  RATIO longhaul's rise ÷ plain JS's rise (${storeName(p.op)}), each over its start, for 1 GiB: ` +
      (rise > 0 ? fmt((dl.peak - idle) / rise, 2) : 'none (plain JS showed no rise)'));
  }
  out(`  RATIO peak ÷ idle: 1 GiB download ${fmt(dl.peak / idle, 2)}, blob read ${fmt(read.peak / idle, 2)}; ` +
    `rise for 1 GiB ÷ rise for ${SIZE / MiB} MiB: ${fmt((dl.peak - idle) / (small.peak - idle), 2)} (1.00: it does not grow with the file)`);
  out();
}

/** Chromium: stop every service worker mid-download (CDP), reload, read what was fetched twice. */
async function workerStop(b, server, demo) {
  const url = fileUrl('stop', SIZE_PARAM, `&rate=${KILL_RATE}`);
  const file = url.split('?')[0];
  const cdp = await b.context.newCDPSession(demo);
  await cdp.send('ServiceWorker.enable');
  const started = await demo.evaluate((u) => window.longhaulSession.download(u, { description: 'bench: stop' }), url);
  const seen = await h.waitFraction(demo, started.id, 0.4, SIZE, { timeout: TIMEOUT_MS });
  log(`${b.kind}: stopping the workers at ${fmt(seen.bytesReceived / MiB)} MiB`);
  const pre = (await server.log(file))[0];
  await cdp.send('ServiceWorker.stopAllWorkers');
  await cdp.detach();
  await demo.reload();
  await h.waitForSession(demo);
  await waitDone(demo, started.id);
  await demo.evaluate((id) => window.longhaulSession.remove(id), started.id);
  const entries = await server.log(file);
  const resumed = entries.find((e) => e.range);
  const n = resumed ? h.rangeStart(resumed.range) : 0;
  out('Worker stopped mid-download (CDP ServiceWorker.stopAllWorkers, then a reload)');
  out(`  requests: ${entries.map((e) => `${e.status} Range ${e.range ?? '(none)'} sent ${fmt(e.bytes_sent / MiB, 2)} MiB`).join('; ')}`);
  out(`  fetched twice: ${fmt((pre.bytes_sent - n) / MiB, 2)} MiB read by the worker before the stop but not committed ` +
    `(${fmt((entries[0].bytes_sent - n) / MiB, 2)} MiB counting what the server had written into the socket by the end)`);
  out();
}

/** SIGKILL the whole browser mid-download, relaunch, and time the resume. */
async function sigkill(kind, server) {
  const dir = await h.tempProfile(`bench-kill-${kind}`);
  const spawnIt = () => (kind === 'chromium' ? h.spawnChromium(dir) : h.launchFirefox(dir));
  let b;
  try {
    b = await spawnIt();
    const ctx = kind === 'chromium' ? b.context : b.browser;
    let page = await ctx.newPage();
    await h.openDemo(page, server.origin);
    const url = fileUrl('kill', SIZE_PARAM, `&rate=${KILL_RATE}`);
    const file = url.split('?')[0];
    const snap = await h.download(page, url);
    await h.waitFraction(page, snap.id, 0.4, SIZE, { timeout: TIMEOUT_MS });
    // What the server had sent just before the signal: the bytes the browser could
    // have read (afterwards the server goes on writing into dying sockets).
    // (In Firefox a transfer is Range windows, several requests: how far they went.)
    const pre = h.servedEnd(await server.log(file));
    log(`${kind}: SIGKILL at ${fmt(pre / MiB)} MiB sent`);
    if (kind === 'chromium') await b.kill(); else { b.kill(); await sleep(1000); }
    b = undefined;
    const before = (await server.log(file)).length;
    b = await spawnIt();
    const ctx2 = kind === 'chromium' ? b.context : b.browser;
    page = await ctx2.newPage();
    // The navigation's time on the devserver's clock: a request just before it.
    const probe = `/__bench-probe-${stamp}-${++serial}`;
    await fetch(`${server.origin}${probe}`).then((r) => r.arrayBuffer());
    const t0 = (await server.log(probe))[0].t_ms;
    await h.openDemo(page, server.origin);
    const entries = await h.waitLog(server, file, (l) => l.length > before, { what: 'the resumed request', timeout: 30_000 });
    const resumed = entries[before];
    const n = h.rangeStart(resumed.range) ?? 0;
    await waitDone(page, snap.id);
    await page.evaluate((id) => window.longhaulSession.remove(id), snap.id);
    const final = h.servedEnd((await server.log(file)).slice(0, before));
    return { twice: Math.max(0, pre - n), twiceMax: final - n, resumed, startup: resumed.t_ms - t0 };
  } finally {
    if (b) { if (kind === 'chromium') await b.close(); else await b.dispose(); }
    await h.removeDir(dir);
  }
}

async function scale(b, server, demo) {
  // A session of its own, so that the demo page does not render 10,000 rows.
  log(`${b.kind}: scale: creating ${SCALE_TASKS} tasks (earliestBegin tomorrow, so none runs)`);
  const made = await demo.evaluate(async ([n, origin]) => {
    const m = await import('/pkg/longhaul.js');
    await m.default();
    const s = await m.BackgroundSession.open('bench-scale');
    const begin = Date.now() + 86_400_000;
    const t0 = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < n) {
        const i = next++;
        await s.download(`${origin}/files/scale-${i}.bin?size=1K`, { earliestBegin: begin });
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    const ms = performance.now() - t0;
    s.close();
    return { ms };
  }, [SCALE_TASKS, server.origin]);
  const times = [];
  let count = 0;
  for (let i = 0; i < RUNS; i++) {
    await demo.reload();
    await h.waitForSession(demo);
    const r = await demo.evaluate(async () => {
      const m = await import('/pkg/longhaul.js');
      await m.default();
      const t0 = performance.now();
      const s = await m.BackgroundSession.open('bench-scale');
      const list = await s.tasks();
      const ms = performance.now() - t0;
      s.close();
      return { ms, count: list.length };
    });
    times.push(r.ms);
    count = r.count;
  }
  await demo.evaluate(async () => {
    const m = await import('/pkg/longhaul.js');
    const s = await m.BackgroundSession.open('bench-scale');
    await s.invalidateAndCancel();
  });

  log(`${b.kind}: scale: ${MANY} concurrent small downloads, maxConnectionsPerHost ${MANY_LIMIT}`);
  const tag = `many-${stamp}-${b.kind}`;
  const many = await demo.evaluate(async ([n, limit, tag, timeoutMs]) => {
    const m = await import('/pkg/longhaul.js');
    const s = await m.BackgroundSession.open(`bench-many-${tag}`, { maxConnectionsPerHost: limit });
    const t0 = performance.now();
    const ids = await Promise.all(Array.from({ length: n }, (_, i) => s.download(`/files/${tag}-${i}.bin?size=512K&rate=2M`).then((x) => x.id)));
    for (;;) {
      const list = await s.tasks();
      const done = list.filter((x) => x.state === 'completed' && x.bytesReceived === 512 * 1024).length;
      const bad = list.filter((x) => x.state === 'failed' || x.state === 'canceled').length;
      if (done + bad === n || performance.now() - t0 > timeoutMs) {
        const ms = performance.now() - t0;
        await s.invalidateAndCancel();
        return { ms, done, bad, ids: ids.length };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }, [MANY, MANY_LIMIT, tag, TIMEOUT_MS]);
  const all = (await (await fetch(`${server.origin}/__log`)).json()).filter((e) => e.path.startsWith(`/files/${tag}-`));
  const edges = all.flatMap((e) => [[e.t_ms, 1], [e.end_ms ?? Infinity, -1]]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let most = 0;
  for (const [, d] of edges) { now += d; most = Math.max(most, now); }
  out(`Scale`);
  out(`  ${SCALE_TASKS} tasks in one session (created in ${fmt(made.ms / 1000)} s, 32 at a time): open + tasks() ` +
    `${times.map((t) => `${fmt(t, 0)} ms`).join(', ')} (median ${fmt(median(times), 0)} ms, ${count} tasks listed; aim ≤ 200 ms)`);
  out(`  ${MANY} concurrent 512 KiB downloads (2 MiB/s each), maxConnectionsPerHost ${MANY_LIMIT}: ${many.done} completed, ${many.bad} failed, ` +
    `in ${fmt(many.ms / 1000, 2)} s; ${all.length} requests; most in flight at once ${most} (limit ${MANY_LIMIT})`);
  out();
}

async function backgroundFetch(b, server, lhMed) {
  // Background Fetch allows one fetch per tab (then "no permission"): a new tab for each.
  const runs = [];
  for (let i = 0; i <= RUNS; i++) {
    const page = await openPage(b, `${server.origin}/bench/`, async () => !!(await window.benchReady));
    log(`${b.kind}: Background Fetch ${i === 0 ? 'warm-up (not counted)' : `run ${i}/${RUNS}`}`);
    const url = `${server.origin}${fileUrl('bgfetch', SIZE_PARAM)}`;
    const r = await page.evaluate(([u, s]) => window.bgFetchRun(u, s), [url, SIZE]);
    if (r.bytes !== SIZE) throw new Error(`Background Fetch got ${r.bytes} bytes, expected ${SIZE}`);
    if (i > 0) runs.push(mibps(SIZE, r.ms));
    await page.close();
  }
  const med = median(runs);
  out(`Background Fetch of the same ${SIZE / MiB} MiB file, timed in its worker from fetch() to backgroundfetchsuccess (MiB/s)`);
  out(`  ${runs.map((x) => fmt(x)).join(', ')} (median ${fmt(med)}; one untimed warm-up before)`);
  out(`  RATIO longhaul ÷ Background Fetch: ${fmt(lhMed / med, 2)}`);
  out();
}

function fileSizes(rel) {
  const bytes = readFileSync(path.join(h.ROOT, rel));
  return { rel, raw: bytes.length, gz: gzipSync(bytes, { level: 9 }).length };
}

/** The page's module and the worker's, each (wasm + glue) against the budget. */
function packageSize() {
  out('Package size (gzip = zlib level 9), per entry');
  for (const [entry, wasmRel, glueRel] of [
    ['page', 'pkg/longhaul_bg.wasm', 'pkg/longhaul.js'],
    ['worker', 'pkg/longhaul-worker_bg.wasm', 'pkg/longhaul-worker.js'],
  ]) {
    const files = [fileSizes(wasmRel), fileSizes(glueRel)];
    const gz = files.reduce((s, f) => s + f.gz, 0) / KiB;
    for (const f of files) out(`  ${f.rel.padEnd(28)} raw ${fmt(f.raw / KiB).padStart(7)} KiB   gzip ${fmt(f.gz / KiB).padStart(6)} KiB`);
    out(`  RATIO ${entry} gzip total ÷ budget: ${fmt(gz)} ÷ ${SIZE_BUDGET_KIB} KiB = ${fmt(gz / SIZE_BUDGET_KIB, 2)}`);
  }
  out();
}

function machine() {
  let cpu = 'unknown';
  try { cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu; } catch {}
  return `${os.availableParallelism()} CPUs, ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.platform()} ${os.release()}`;
}

async function benchBrowser(kind, server, tus) {
  const b = await launch(kind);
  try {
    out(`## ${b.version} (headless)`);
    out();
    const benchPage = await openPage(b, `${server.origin}/bench/`, async () => !!(await window.benchReady));
    const demo = await b.newPage();
    await h.openDemo(demo, server.origin);
    if (want('memory')) await memory(b, benchPage, demo);
    const tp = want('throughput') ? await throughput(b, server, benchPage, demo) : null;
    if (want('latency')) await latency({ ...b, demo });
    if (want('upload')) await uploads(b, server, tus, benchPage, demo);
    if (kind === 'chromium' && want('stop')) await workerStop(b, server, demo);
    if (want('scale')) await scale(b, server, demo);
    if (kind === 'chromium' && tp && want('bgfetch')) await backgroundFetch(b, server, tp.lh);
    await benchPage.close();
  } finally {
    await b.close();
  }
  if (!want('kill')) return;
  log(`${kind}: SIGKILL run`);
  const ks = [];
  for (let i = 1; i <= RUNS; i++) {
    log(`${kind}: SIGKILL run ${i}/${RUNS}`);
    ks.push(await sigkill(kind, server));
  }
  out(`Browser SIGKILLed mid-download (${SIZE / MiB} MiB at ${KILL_RATE}/s), relaunched on its profile, demo page opened; ${RUNS} runs, each on a fresh profile`);
  for (const k of ks) {
    out(`  resumed with Range ${k.resumed.range} (status ${k.resumed.status}); fetched twice ${fmt(k.twice / MiB, 2)} MiB ` +
      `(sent when the signal went out, less the resume offset; ${fmt(k.twiceMax / MiB, 2)} MiB counting all the server wrote into the dying socket)`);
  }
  out(`  start-up: navigation → resumed Range request ${ks.map((k) => `${k.startup} ms`).join(', ')} on the devserver's clock ` +
    `(median ${median(ks.map((k) => k.startup))} ms; aim < 250 ms)`);
  out();
}

async function main() {
  const kinds = process.argv.slice(2).length ? process.argv.slice(2) : ['chromium', 'firefox'];
  const server = await h.startServer();
  const tus = await h.startTus();
  try {
    out('longhaul benchmark');
    out('==================');
    out(`date      ${new Date().toISOString()}`);
    out(`machine   ${machine()}`);
    out(`servers   loopback devserver (files generated on the fly, a new name for every transfer), @tus/server with a file store`);
    out();
    for (const kind of kinds) await benchBrowser(kind, server, tus);
    packageSize();
  } finally {
    await tus.stop();
    await server.stop();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`bench failed: ${(err && err.stack) || err}`);
    console.log(`\nbench FAILED: ${(err && err.message) || err}`);
    process.exit(1);
  },
);
