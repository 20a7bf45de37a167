// longhaul soak: `make soak`, or `node tests/soak/soak.mjs`.
//
// SIGKILLs the whole browser again and again, at random moments, through one
// throttled download and one tus upload, in headless Chromium and in Firefox ESR:
// after each kill the browser is relaunched on the same profile and the demo page
// is opened again (that wakes the service worker, which resumes), and the next kill
// waits until the task has made progress again. At the end every transfer must be
// `completed` with the source's bytes: a download's bytes hashed in the page
// (`session.blob`) against the devserver's file, an upload's as the tus server
// stored them against the same source.
//
// Per kill it prints what was transferred twice: a download's bytes fetched twice
// from the devserver's request log (how far the requests before the kill were
// served, against where the resumed request's Range starts), an upload's bytes sent
// twice from the tus server's offsets (the PATCH in flight at the kill, against the
// offset the resumed PATCH starts from); then a summary per browser and transfer.
//
// Environment (all optional):
//   SOAK_KILLS=20             kills per browser per transfer
//   SOAK_SEED=<any string>    seeds the kill times (default: random; printed)
//   SOAK_BROWSERS=chromium,firefox    SOAK_TRANSFERS=download,upload
//   SOAK_DOWNLOAD_MIB=96  SOAK_DOWNLOAD_RATE=2M     the download, throttled by the devserver
//   SOAK_UPLOAD_MIB=96    SOAK_UPLOAD_CHUNK_KIB=1024  SOAK_UPLOAD_DELAY_MS=400
//                             the upload: tus PATCHes of that size, each held back
//                             that long by the tus server (its patchDelayMs)
//   SOAK_TIMEOUT_MIN          a bound on the whole run (default: from the sizes and kills)
//
// Kill times: for each browser and transfer, SOAK_KILLS moments drawn uniformly
// (seeded by SOAK_SEED, the browser and the transfer) from the first 70% of the
// transfer's nominal running time (size ÷ rate; for the upload, PATCHes × delay, a
// lower bound), on a clock that runs only while the task is making progress: it
// starts when progress is first seen, stops at each kill and goes on once progress
// is seen again after the relaunch.
//
// The devserver serves a copy of www/ and pkg/ taken at the start (once pkg/ is one
// whole build: a rebuild during the run must not change the code under test).
//
// Exit 1 on any wrong byte, a task that fails, a timeout (every wait is bounded),
// or a broken resume (committed bytes lost, a download started over, a new upload
// created); the reasons are printed at the end. Servers, browsers and temporary
// profiles are stopped and removed at the end, also on failure or Ctrl-C.

import { readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as h from '../e2e/helpers.mjs';

const { MiB, KiB, sleep } = h;

// Playwright records service workers' network traffic by default (an event per body
// chunk); nothing here reads it.
process.env.PLAYWRIGHT_DISABLE_SERVICE_WORKER_NETWORK ??= '1';

// ------------------------------------------------------------------ options

const env = process.env;
function intEnv(name, dflt, min = 1) {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be a whole number ≥ ${min}, got ${JSON.stringify(v)}`);
  return n;
}
/** Bytes from `2M`, `512K`, `1048576` (the devserver's syntax). */
function parseBytes(name, v) {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?$/i.exec(v);
  if (!m) throw new Error(`${name}: not a byte count: ${JSON.stringify(v)}`);
  const mul = { '': 1, k: KiB, m: MiB, g: 1024 * MiB }[m[2].toLowerCase()];
  const n = Math.round(Number(m[1]) * mul);
  if (n <= 0) throw new Error(`${name} must be more than 0`);
  return n;
}
function listEnv(name, all) {
  const v = (env[name] ?? all.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  for (const x of v) if (!all.includes(x)) throw new Error(`${name}: unknown ${JSON.stringify(x)} (one of ${all.join(', ')})`);
  return v;
}

const KILLS = intEnv('SOAK_KILLS', 20);
const SEED = env.SOAK_SEED || String(randomBytes(4).readUInt32BE(0));
const BROWSERS = listEnv('SOAK_BROWSERS', ['chromium', 'firefox']);
const TRANSFERS = listEnv('SOAK_TRANSFERS', ['download', 'upload']);
const DOWN_MIB = intEnv('SOAK_DOWNLOAD_MIB', 96);
const DOWN_RATE_PARAM = env.SOAK_DOWNLOAD_RATE || '2M';
const DOWN_RATE = parseBytes('SOAK_DOWNLOAD_RATE', DOWN_RATE_PARAM);
const UP_MIB = intEnv('SOAK_UPLOAD_MIB', 96);
const UP_CHUNK = intEnv('SOAK_UPLOAD_CHUNK_KIB', 1024, 64) * KiB;
const UP_DELAY_MS = intEnv('SOAK_UPLOAD_DELAY_MS', 400, 0);

/** A transfer's nominal running time without kills, ms (the upload's is a lower bound). */
const nominalMs = (transfer) => (transfer === 'download'
  ? (DOWN_MIB * MiB / DOWN_RATE) * 1000
  : Math.ceil(UP_MIB * MiB / UP_CHUNK) * UP_DELAY_MS);
/**
 * Kills are drawn from this share of the nominal running time, so that all land
 * before the end. The kill clock misses the time from each relaunch to the first
 * progress seen (for an upload, a PATCH's round: 0.4-1.5 s a kill), so with 20 kills
 * 90% let a 96 MiB upload end before its last kills.
 */
const KILL_SPAN = 0.7;

// Bounds on each wait (ms).
const LAUNCH_MS = 120_000; // a browser (re)launched and attached
const OPEN_MS = 60_000; // the demo page's session open
const RESUME_MS = 60_000; // the resumed request after a relaunch
const PROGRESS_MS = 90_000; // progress again after the relaunch
const EVAL_MS = 30_000; // one page.evaluate answering (a snapshot)
const VERIFY_MS = 180_000; // hashing the bytes
/** Bound on one whole run (browser × transfer). */
const runBoundMs = (transfer) => 3 * nominalMs(transfer) + KILLS * (LAUNCH_MS / 4 + 30_000) + 300_000;
const TOTAL_MS = env.SOAK_TIMEOUT_MIN
  ? intEnv('SOAK_TIMEOUT_MIN', 1) * 60_000
  : BROWSERS.length * TRANSFERS.reduce((s, t) => s + runBoundMs(t), 0) + 120_000;

// ------------------------------------------------------------------ output and small tools

const say = (...a) => console.log('[soak]', ...a);
const mib = (n) => `${(n / MiB).toFixed(2)} MiB`;
const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;
const minsecs = (ms) => { const s = Math.round(ms / 1000); return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`; };
const median = (xs) => { if (!xs.length) return NaN; const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

class SoakError extends Error {
  constructor(kind, message) { super(message); this.kind = kind; }
}
const timeoutError = (what, ms) => new SoakError('timeout', `timed out after ${secs(ms)} waiting for ${what}`);

/** `promise`, or a `timeout` rejection after `ms`. */
function bounded(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => { timer = setTimeout(() => reject(timeoutError(what, ms)), ms); });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

/** A seeded PRNG (mulberry32) in [0, 1), its state from SHA-256 of `label`. */
function prng(label) {
  let s = createHash('sha256').update(label).digest().readUInt32BE(0);
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ------------------------------------------------------------------ processes we started

/** Every process of this machine: pid → { ppid, pgid, state }. */
function processTable() {
  const table = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      table.set(Number(name), { state: f[0], ppid: Number(f[1]), pgid: Number(f[2]) });
    } catch { /* gone meanwhile */ }
  }
  return table;
}
function descendants(pid, table = processTable()) {
  const out = [];
  const walk = (p) => { for (const [c, e] of table) if (e.ppid === p) { out.push(c); walk(c); } };
  walk(pid);
  return out;
}
function alive(pid) {
  try { return !/^[ZX]/.test(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] ?? ''); } catch { return false; }
}

/** Temp dirs to remove, and Chromium profiles (whose killed browser leaves a /tmp dir). */
const ownedDirs = new Set();
const chromiumProfiles = new Set();

/** What a killed Chromium leaves besides its profile (see helpers' removeSingletonDir). */
function singletonDir(profile) {
  try {
    const d = path.dirname(readlinkSync(path.join(profile, 'SingletonSocket')));
    if (path.dirname(d) === tmpdir() && path.basename(d).startsWith('org.chromium.Chromium.')) return d;
  } catch {}
  return null;
}

/**
 * Last resort, synchronous (also on `exit`): SIGKILL every process this script
 * started that is still there (our children: the devserver, browsers; a spawned
 * browser's whole process group), and remove our temp dirs.
 */
function reap() {
  const table = processTable();
  for (const [pid, e] of table) {
    if (e.ppid !== process.pid || /^[ZX]/.test(e.state)) continue;
    try { process.kill(e.pgid === pid ? -pid : pid, 'SIGKILL'); } catch {}
    for (const d of descendants(pid, table)) { try { process.kill(d, 'SIGKILL'); } catch {} }
  }
  for (const p of chromiumProfiles) { const d = singletonDir(p); if (d) rmSync(d, { recursive: true, force: true }); }
  for (const d of ownedDirs) { try { rmSync(d, { recursive: true, force: true }); } catch {} }
}
process.on('exit', reap);

/** Asynchronous cleanups of what is running now (browsers, servers), newest first. */
const cleanups = new Map();
let cleanupSeq = 0;
function own(fn) { const k = ++cleanupSeq; cleanups.set(k, fn); return () => cleanups.delete(k); }
async function cleanupAll() {
  const fns = [...cleanups.values()].reverse();
  cleanups.clear();
  for (const fn of fns) await bounded(Promise.resolve().then(fn), 20_000, 'a cleanup').catch(() => {});
}
let aborting = false;
async function abort(why, code = 1) {
  if (aborting) return;
  aborting = true;
  console.log(`\n[soak] FAILED: ${why}`);
  await cleanupAll();
  process.exit(code);
}
process.on('SIGINT', () => abort('interrupted (SIGINT)', 130));
process.on('SIGTERM', () => abort('terminated (SIGTERM)', 143));
process.on('unhandledRejection', (e) => abort(`unhandled rejection: ${e?.stack ?? e}`));
process.on('uncaughtException', (e) => abort(`uncaught exception: ${e?.stack ?? e}`));

async function tempDir(label) {
  const d = await h.tempProfile(label);
  ownedDirs.add(d);
  return d;
}
async function dropDir(d) {
  if (!d) return;
  const s = singletonDir(d);
  if (s) await h.removeDir(s);
  await h.removeDir(d);
  ownedDirs.delete(d);
  chromiumProfiles.delete(d);
}

// ------------------------------------------------------------------ the devserver

/**
 * Start the devserver (`target/release/devserver`, as the helpers' `startServer`
 * does) on a copy of www/, pkg/ and the binary taken now, in a temp dir: a rebuild
 * of pkg/ during the run (they take many minutes) must not change the code under
 * test half-way, nor leave the worker's files missing at a relaunch. Waits (up to 15
 * minutes) until pkg/ is one whole build before copying it. Returns `{ origin, log(path), stop(),
 * exited() }`, `log` like the helpers' (the tests' reference fetches left out).
 */
async function startDevserver() {
  const { cp, stat, readFile } = await import('node:fs/promises');
  const { spawn } = await import('node:child_process');
  const bin = path.join(h.ROOT, 'target/release/devserver');
  const PKG_FILES = ['longhaul.js', 'longhaul_bg.wasm', 'longhaul-worker.js', 'longhaul-worker_bg.wasm',
    'longhaul-sw.js', 'classic/longhaul-classic.js', 'classic/longhaul_bg.wasm'];
  /** Why the package in `pkg` is not one whole build (null if it is). */
  const torn = async (pkg) => {
    const mtime = {};
    for (const f of PKG_FILES) {
      try { mtime[f] = (await stat(path.join(pkg, f))).mtimeMs; } catch { return `${f} is missing`; }
    }
    // tools/build-pkg.sh writes the shims last, each with its wasm's SHA-256.
    for (const [shim, wasm] of [['longhaul-sw.js', 'longhaul-worker_bg.wasm'], ['classic/longhaul-classic.js', 'classic/longhaul_bg.wasm']]) {
      const want = /'([0-9a-f]{64})'/.exec(await readFile(path.join(pkg, shim), 'utf8'))?.[1];
      const got = createHash('sha256').update(await readFile(path.join(pkg, wasm))).digest('hex');
      if (want !== got) return `${shim} was built for another ${wasm}`;
    }
    const newer = PKG_FILES.filter((f) => mtime[f] > mtime['longhaul-sw.js'] + 1000);
    return newer.length ? `${newer.join(', ')} newer than longhaul-sw.js` : null;
  };
  await stat(bin).catch(() => { throw new SoakError('error', 'target/release/devserver is missing: run `make soak` (or `make build devserver`)'); });
  const end = Date.now() + 15 * 60_000;
  let dir;
  for (;;) {
    const why = await torn(path.join(h.ROOT, 'pkg'));
    if (!why) {
      dir = await tempDir('soak-site');
      await cp(path.join(h.ROOT, 'www'), path.join(dir, 'www'), { recursive: true });
      await cp(path.join(h.ROOT, 'pkg'), path.join(dir, 'pkg'), { recursive: true, preserveTimestamps: true });
      await cp(bin, path.join(dir, 'devserver'));
      const copied = await torn(path.join(dir, 'pkg'));
      if (!copied) break;
      await dropDir(dir);
      say(`pkg/ changed while it was copied (${copied}); again`);
    } else {
      if (Date.now() > end) throw new SoakError('timeout', `pkg/ is not one whole build (${why}) after 15 minutes: run \`make build\``);
      say(`pkg/ is not one whole build (${why}): a build running? Waiting (up to 15 minutes)`);
    }
    await sleep(30_000);
  }
  const proc = spawn(path.join(dir, 'devserver'), ['--root', 'www', '--pkg', 'pkg'], {
    cwd: dir, env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let exit = null;
  proc.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
  const exited = new Promise((r) => proc.once('exit', (code, sig) => { exit = `exited (${code ?? sig})`; r(); }));
  const origin = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new SoakError('timeout', `the devserver did not start in 20 s; stderr: ${stderr}`)), 20_000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /longhaul devserver: (http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    exited.then(() => { clearTimeout(timer); reject(new SoakError('error', `the devserver ${exit}: ${stderr}`)); });
  });
  proc.stdout.resume();
  return {
    origin,
    dir,
    /** Why the devserver is gone (with its stderr's end), or null. */
    exited: () => (exit ? `the devserver ${exit}; its stderr ended: ${stderr.slice(-1500)}` : null),
    async log(p) {
      const r = await bounded(fetch(`${origin}/__log?path=${encodeURIComponent(p)}`), EVAL_MS, 'the devserver\'s log');
      if (!r.ok) throw new SoakError('error', `GET /__log answered ${r.status}`);
      return (await r.json()).filter((e) => e.path === p && !(e.query || '').includes('e2e-verify=1'));
    },
    async stop() {
      if (exit) return;
      proc.kill('SIGTERM');
      await bounded(exited, 5000, 'the devserver to stop').catch(() => { proc.kill('SIGKILL'); });
    },
  };
}

// ------------------------------------------------------------------ browsers

/**
 * Launch `kind` on profile `dir`: { newPage(), kill() (SIGKILL of the whole
 * browser, waits until every process of it is gone), close(), lines (console) }.
 * Chromium is spawned by us (its own process group) and attached over CDP; the
 * kill is of the whole group, as in tests/e2e/04-sigkill. Firefox is launched by
 * puppeteer-core; the kill is of its main process, as in 11-firefox-sigkill, and
 * then waits for its other processes to go (and kills any left after 10 s).
 */
async function launch(kind, dir) {
  if (kind === 'chromium') {
    chromiumProfiles.add(dir);
    const b = await bounded(h.spawnChromium(dir), LAUNCH_MS, 'Chromium to start');
    const lines = h.collectConsole(b.context);
    let gone = false;
    const disown = own(() => b.kill());
    return {
      lines,
      newPage: () => bounded(b.context.newPage(), EVAL_MS, 'a new Chromium page'),
      async kill() { gone = true; disown(); await bounded(b.kill(), 30_000, 'the killed Chromium to be gone'); },
      async close() { if (gone) return; gone = true; disown(); await bounded(b.close(), 30_000, 'Chromium to close').catch(() => b.kill()); },
    };
  }
  const ff = await bounded(h.launchFirefox(dir), LAUNCH_MS, 'Firefox to start');
  const proc = ff.browser.process();
  const lines = [];
  let gone = false;
  const hardKill = async () => {
    const pid = proc.pid;
    const family = descendants(pid);
    const exited = proc.exitCode !== null || proc.signalCode !== null
      ? Promise.resolve() : new Promise((r) => proc.once('exit', r));
    ff.kill(); // SIGKILL of the main process
    await bounded(exited, 15_000, 'the killed Firefox to exit');
    const end = Date.now() + 10_000;
    while (Date.now() < end && family.some(alive)) await sleep(50);
    const left = family.filter(alive);
    for (const p of left) { try { process.kill(p, 'SIGKILL'); } catch {} }
    if (left.length) say(`note: ${left.length} Firefox process(es) outlived the main one by 10 s; killed`);
    await bounded(Promise.resolve(ff.browser.disconnect()), 5_000, 'puppeteer to disconnect').catch(() => {});
  };
  const disown = own(hardKill);
  return {
    lines,
    async newPage() {
      const p = await bounded(ff.browser.newPage(), EVAL_MS, 'a new Firefox page');
      p.on('console', (m) => lines.push(`[page ${m.type()}] ${m.text().slice(0, 500)}`));
      p.on('pageerror', (e) => lines.push(`[pageerror] ${e.message}`));
      return p;
    },
    async kill() { gone = true; disown(); await hardKill(); },
    async close() {
      if (gone) return;
      gone = true;
      disown();
      await bounded(ff.browser.close(), 30_000, 'Firefox to close').catch(hardKill);
    },
  };
}

// ------------------------------------------------------------------ the page

const snapshot = (page, id) => bounded(h.task(page, id), EVAL_MS, 'a task snapshot from the page');

/**
 * Poll the task until `pred(snapshot)`; fails at once if it failed or was canceled,
 * or after `timeout`. Returns the snapshot.
 */
async function waitTask(page, id, pred, timeout, what) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    last = await snapshot(page, id);
    if (last && pred(last)) return last;
    if (last && (last.state === 'failed' || last.state === 'canceled')) {
      throw new SoakError('failed', `the task ended ${last.state} while waiting for ${what}: ${JSON.stringify(last)}`);
    }
    await sleep(200);
  }
  throw new SoakError('timeout', `timed out after ${secs(timeout)} waiting for ${what}; last snapshot: ${JSON.stringify(last)}`);
}

async function openDemo(page, origin) {
  await bounded(h.openDemo(page, origin, '', OPEN_MS), OPEN_MS + 10_000, 'the demo page to open its session');
}

const done = (s) => (s.kind === 'upload' ? s.bytesSent : s.bytesReceived) ?? 0;

// ------------------------------------------------------------------ one run

/** One browser × one transfer: start it, kill the browser KILLS times, verify the bytes. */
async function soakRun(kind, transfer, server, tus) {
  const label = `${kind} ${transfer}`;
  const random = prng(`${SEED}/${kind}/${transfer}`);
  const span = KILL_SPAN * nominalMs(transfer);
  const schedule = Array.from({ length: KILLS }, () => random() * span).sort((a, b) => a - b);
  const size = (transfer === 'download' ? DOWN_MIB : UP_MIB) * MiB;
  const sizeParam = `${size / MiB}M`;
  const deadline = Date.now() + runBoundMs(transfer);
  const left = () => Math.max(1000, deadline - Date.now());
  const result = { kind, transfer, size, kills: [], anomalies: [], wallMs: 0, ok: false, why: null };
  const anomaly = (msg) => { result.anomalies.push(msg); say(`ANOMALY: ${msg}`); };
  say(`== ${label}: ${mib(size)}, ${transfer === 'download'
    ? `served at ${DOWN_RATE_PARAM}/s (${minsecs(nominalMs(transfer))} without kills)`
    : `tus PATCHes of ${mib(UP_CHUNK)}, each held ${UP_DELAY_MS} ms by the server (≥ ${minsecs(nominalMs(transfer))} without kills)`}; ` +
    `${KILLS} kills at ${schedule.map((t) => (t / 1000).toFixed(1)).join(', ')} s of running`);

  const dir = await tempDir(`soak-${kind}-${transfer}`);
  let b;
  let lines = [];
  const t0 = Date.now();
  try {
    b = await launch(kind, dir);
    lines = b.lines;
    let page = await b.newPage();
    await openDemo(page, server.origin);

    // Start the transfer.
    const file = h.uniquePath(`soak-${kind}-${transfer}`);
    let id;
    let uploadId = null;
    let tusBefore = 0;
    const patches = () => tus.log.filter((e) => e.path === `/files/${uploadId}` && e.method === 'PATCH');
    if (transfer === 'download') {
      const snap = await bounded(h.download(page, `${file}?size=${sizeParam}&rate=${DOWN_RATE_PARAM}`), EVAL_MS, 'download() to answer');
      id = snap.id;
    } else {
      await bounded(h.makeBody(page, 'soak', file, sizeParam), VERIFY_MS, 'the upload body to be fetched into the page');
      tusBefore = tus.created().length;
      tus.faults.patchDelayMs = UP_DELAY_MS;
      const snap = await bounded(h.upload(page, tus.endpoint, 'soak', { chunkSize: UP_CHUNK, metadata: { filename: `${kind}.bin` } }),
        VERIFY_MS, 'upload() to copy the body into storage and answer');
      id = snap.id;
    }
    let last = await waitTask(page, id, (s) => done(s) > 0, PROGRESS_MS, 'the first progress');
    if (transfer === 'upload') {
      const ids = tus.created().slice(tusBefore);
      if (ids.length !== 1) throw new SoakError('anomaly', `expected one tus upload, the server saw ${JSON.stringify(ids)}`);
      uploadId = ids[0];
    }
    say(`${label}: task ${id}${uploadId ? `, tus upload ${uploadId}` : ''}; progress seen, the kill clock runs`);

    let running = 0; // ms of the kill clock before the current stretch
    let stretch = Date.now(); // when the current stretch of running began
    for (let k = 0; k < KILLS; k++) {
      // Run until the clock reaches the next kill time.
      for (;;) {
        const wait = schedule[k] - (running + Date.now() - stretch);
        if (wait <= 0) break;
        await sleep(Math.min(200, wait));
        const s = await snapshot(page, id);
        if (!s) throw new SoakError('failed', `the task is gone from the session before kill ${k + 1}`);
        if (s.state === 'failed' || s.state === 'canceled') throw new SoakError('failed', `the task ended ${s.state} before kill ${k + 1}: ${JSON.stringify(s)}`);
        if (s.state === 'completed') {
          throw new SoakError('short', `the transfer completed before kill ${k + 1} of ${KILLS} (at ${secs(running + Date.now() - stretch)} of running): ` +
            'make it larger or slower (SOAK_*_MIB, SOAK_DOWNLOAD_RATE, SOAK_UPLOAD_DELAY_MS)');
        }
        last = s;
      }

      // The kill, with what the server had handed over just before it.
      const k1 = k + 1;
      const kill = { k: k1, atRunMs: running + Date.now() - stretch, atWallMs: Date.now() - t0, seen: done(last) };
      let pre = 0;
      let pending = new Set(); // the upload's PATCHes not answered yet
      const tusBeforeKill = tus.log.length;
      if (transfer === 'download') {
        pre = h.servedEnd(await server.log(file));
      } else {
        pending = new Set(patches().filter((e) => e.status === 0));
      }
      const killedAt = Date.now();
      running = kill.atRunMs;
      await b.kill();
      b = undefined;
      // Requests the browser sent just before the signal may be read by the tus server
      // only now: they count as before the kill, in flight.
      const tusMark = tus.log.length;
      const inFlight = tus.log.slice(0, tusMark).filter((e, i) => (pending.has(e) || i >= tusBeforeKill)
        && e.method === 'PATCH' && e.path === `/files/${uploadId}`).map((e) => Number(e.uploadOffset));

      // What the cut requests had been served, once they ended.
      let final = 0;
      let maxSeq = 0;
      if (transfer === 'download') {
        const end = Date.now() + 10_000;
        let entries = await server.log(file);
        while (Date.now() < end && entries.some((e) => e.end_ms === null)) { await sleep(100); entries = await server.log(file); }
        final = h.servedEnd(entries);
        maxSeq = Math.max(0, ...entries.map((e) => e.seq));
      }

      // Relaunch on the same profile; the demo page wakes the worker.
      const relaunchAt = Date.now();
      b = await launch(kind, dir);
      lines = b.lines;
      page = await b.newPage();
      await openDemo(page, server.origin);
      const opened = Date.now();

      if (transfer === 'download') {
        const log = await bounded(h.waitLog(server, file, (l) => l.some((e) => e.seq > maxSeq && e.method === 'GET'),
          { timeout: RESUME_MS, what: `the resumed request after kill ${k1}` }), RESUME_MS + 10_000, 'the resumed request');
        const resumed = log.find((e) => e.seq > maxSeq && e.method === 'GET');
        const n = h.rangeStart(resumed.range) ?? 0;
        kill.resumeAt = n;
        kill.twice = final - n;
        kill.twiceRead = pre - n;
        const detail = `kill ${k1}: bytes seen stored before it ${kill.seen}, served by then ${pre} (${final} when the cut requests ended), ` +
          `resumed request ${JSON.stringify({ seq: resumed.seq, range: resumed.range, if_range: resumed.if_range, status: resumed.status })}`;
        if (n < kill.seen) anomaly(`${label}: resumed at ${n}, below the ${kill.seen} bytes stored before the kill (committed bytes lost); ${detail}`);
        if (n > final) anomaly(`${label}: resumed at ${n}, past the ${final} bytes the server had sent; ${detail}`);
        if (n > 0 && (resumed.status !== 206 || !new RegExp(`^"[0-9a-f]{16}-${size}"$`).test(resumed.if_range ?? ''))) {
          anomaly(`${label}: the resumed request is not a 206 with the strong If-Range; ${detail}`);
        }
        if (n === 0 && kill.seen > 0) anomaly(`${label}: the download started over from byte 0; ${detail}`);
      } else {
        const end = Date.now() + RESUME_MS;
        let since = [];
        while (Date.now() < end) {
          since = tus.log.slice(tusMark).filter((e) => e.method !== 'OPTIONS' && e.path.startsWith('/files'));
          if (since.some((e) => e.method === 'PATCH')) break;
          await sleep(100);
        }
        const first = since.find((e) => e.method === 'PATCH');
        if (!first) throw new SoakError('timeout', `no PATCH within ${secs(RESUME_MS)} of the relaunch after kill ${k1}; the server saw ${JSON.stringify(since)}`);
        const n = Number(first.uploadOffset);
        const o = inFlight.length ? Math.max(...inFlight) : null;
        kill.resumeAt = n;
        kill.inFlight = o;
        kill.kept = o === null ? null : n - o;
        kill.twice = o === null ? 0 : Math.max(0, Math.min(o + UP_CHUNK, size) - n);
        const detail = `kill ${k1}: bytes acknowledged before it ${kill.seen}, PATCH in flight at ${o ?? 'none'}, ` +
          `requests after the relaunch ${JSON.stringify(since.slice(0, 6).map(({ method, path: p, uploadOffset, status }) => ({ method, path: p, uploadOffset, status })))}`;
        if (first.path !== `/files/${uploadId}`) anomaly(`${label}: the resumed PATCH went to ${first.path}, not the upload ${uploadId}; ${detail}`);
        if (since[0]?.method !== 'HEAD') anomaly(`${label}: the relaunched worker did not ask the server's offset (HEAD) first; ${detail}`);
        if (n < kill.seen) anomaly(`${label}: resumed at ${n}, below the ${kill.seen} bytes acknowledged before the kill; ${detail}`);
      }

      // Progress again before the next kill.
      last = await waitTask(page, id, (s) => s.state === 'completed' || (s.state === 'running' && done(s) > kill.resumeAt),
        PROGRESS_MS, `progress after the relaunch that followed kill ${k1}`);
      stretch = Date.now();
      kill.relaunchMs = opened - relaunchAt;
      kill.progressMs = stretch - relaunchAt;
      kill.downMs = stretch - killedAt;
      result.kills.push(kill);
      if (transfer === 'download') {
        say(`${label} kill ${k1}/${KILLS} at ${secs(kill.atRunMs)} of running (${secs(kill.atWallMs)} wall): served ${mib(pre)} ` +
          `(${mib(final)} by the end of the cut request), resumed at ${mib(kill.resumeAt)}: fetched twice ${mib(kill.twice)} ` +
          `(${mib(Math.max(0, kill.twiceRead))} of what was sent before the signal); relaunch ${secs(kill.relaunchMs)}, progress again ${secs(kill.progressMs)} after it`);
      } else {
        say(`${label} kill ${k1}/${KILLS} at ${secs(kill.atRunMs)} of running (${secs(kill.atWallMs)} wall): ` +
          (kill.inFlight === null ? `no PATCH in flight, ` : `PATCH in flight from ${mib(kill.inFlight)}, the server kept ${mib(kill.kept)} of it, `) +
          `resumed at ${mib(kill.resumeAt)}: sent twice ≤ ${mib(kill.twice)}; relaunch ${secs(kill.relaunchMs)}, progress again ${secs(kill.progressMs)} after it`);
      }
      if (last.state === 'completed' && k1 < KILLS) {
        throw new SoakError('short', `the transfer completed right after kill ${k1} of ${KILLS}: make it larger or slower`);
      }
    }

    // The end: completed, with the source's bytes.
    const fin = await waitTask(page, id, (s) => s.state === 'completed', left(), 'completion');
    if (done(fin) !== size) throw new SoakError('wrong-bytes', `completed with ${done(fin)} bytes, the source has ${size}: ${JSON.stringify(fin)}`);
    const want = await bounded(h.sourceSha(server.origin, file, sizeParam), VERIFY_MS, 'the source\'s SHA-256');
    let got;
    if (transfer === 'download') {
      got = await bounded(h.pageSha(page, id), VERIFY_MS, 'the stored bytes\' SHA-256 in the page');
      const log = await server.log(file);
      result.served = log.filter((e) => e.method === 'GET').reduce((s, e) => s + e.bytes_sent, 0);
      result.requests = log.filter((e) => e.method === 'GET').length;
      const restarts = log.filter((e) => e.method === 'GET' && e.status !== 206).length;
      if (restarts > 1) anomaly(`${label}: ${restarts} requests were answered with the whole file (not a 206):\n${h.fmtLog(log)}`);
    } else {
      tus.faults.patchDelayMs = 0;
      got = await bounded(tus.sha256(uploadId), VERIFY_MS, 'the tus server\'s stored bytes\' SHA-256');
      result.requests = patches().length;
      const ids = tus.created().slice(tusBefore);
      if (ids.length !== 1) anomaly(`${label}: ${ids.length} tus uploads were created: ${JSON.stringify(ids)}`);
    }
    result.sha = got.sha;
    if (got.length !== want.length || got.sha !== want.sha) {
      throw new SoakError('wrong-bytes', `${transfer === 'download' ? 'the stored bytes' : 'the server\'s bytes'} differ from the source: ` +
        `${got.length} bytes, SHA-256 ${got.sha}; the source: ${want.length} bytes, ${want.sha}`);
    }
    result.wallMs = Date.now() - t0;
    say(`${label}: completed after ${result.kills.length} kills in ${minsecs(result.wallMs)}; SHA-256 ${got.sha} = the source's ` +
      `(${want.length} bytes${transfer === 'download' ? `; the server sent ${mib(result.served)} in ${result.requests} requests, ${mib(result.served - size)} more than the file` : `; ${result.requests} PATCHes`})`);
    if (result.anomalies.length) throw new SoakError('anomaly', result.anomalies.join('\n'));
    result.ok = true;
    await b.close();
    b = undefined;
  } catch (e) {
    result.wallMs = Date.now() - t0;
    const gone = server.exited();
    result.why = `${label}: ${e.kind ?? 'error'}: ${e.message}` + (gone ? `\n${gone}` : '') +
      (e.kind !== 'anomaly' && result.anomalies.length ? `\nalso:\n${result.anomalies.join('\n')}` : '') +
      (lines.length ? `\n--- browser console (last 40 lines) ---\n${lines.slice(-40).join('\n')}` : '');
    say(`${label}: FAILED after ${result.kills.length} kills: ${result.why}`);
  } finally {
    if (transfer === 'upload') tus.faults.patchDelayMs = 0;
    if (b) await b.kill().catch(() => {});
    await dropDir(dir);
  }
  return result;
}

// ------------------------------------------------------------------ main

async function main() {
  const started = Date.now();
  say(`SOAK_SEED=${SEED} (to draw the same kill times again: SOAK_SEED=${SEED} make soak)`);
  say(`${KILLS} kills per browser per transfer; browsers ${BROWSERS.join(', ')}; transfers ${TRANSFERS.join(', ')}; bound on the whole run ${minsecs(TOTAL_MS)}`);
  for (const t of TRANSFERS) {
    const gap = (KILL_SPAN * nominalMs(t)) / KILLS;
    if (gap < 1000) say(`warning: ${t}: ${KILLS} kills in ${secs(KILL_SPAN * nominalMs(t))} of running, ${secs(gap)} apart on average; make it larger or slower`);
  }
  const watchdog = setTimeout(() => abort(`timeout: the whole soak took longer than ${minsecs(TOTAL_MS)} (SOAK_TIMEOUT_MIN)`), TOTAL_MS);

  const server = await startDevserver();
  own(async () => { await server.stop(); await dropDir(server.dir); });
  const tus = await h.startTus();
  ownedDirs.add(tus.dir);
  own(() => tus.stop());
  say(`devserver ${server.origin}, tus server ${tus.endpoint}`);

  const results = [];
  for (const kind of BROWSERS) {
    for (const transfer of TRANSFERS) {
      if (server.exited()) { say(`${kind} ${transfer}: not run: ${server.exited()}`); continue; }
      results.push(await soakRun(kind, transfer, server, tus));
    }
  }
  await cleanupAll();
  ownedDirs.delete(tus.dir);
  clearTimeout(watchdog);

  console.log();
  say(`summary (SOAK_SEED=${SEED}, ${KILLS} kills each; "twice": a download's bytes fetched twice, by how far the server had served each cut request; an upload's bytes sent twice, at most: the PATCH in flight beyond the server's offset after the kill)`);
  const rows = [['browser', 'transfer', 'kills', 'twice total', 'max per kill', 'median per kill', 'kill to progress (median)', 'wall time', 'result']];
  for (const r of results) {
    const tw = r.kills.map((k) => k.twice);
    rows.push([r.kind, r.transfer, String(r.kills.length),
      tw.length ? mib(tw.reduce((a, b) => a + b, 0)) : '-', tw.length ? mib(Math.max(...tw)) : '-', tw.length ? mib(median(tw)) : '-',
      r.kills.length ? secs(median(r.kills.map((k) => k.downMs))) : '-', minsecs(r.wallMs), r.ok ? 'ok' : 'FAILED']);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  for (const row of rows) console.log('  ' + row.map((c, i) => c.padEnd(widths[i])).join('  '));
  for (const r of results) {
    const over = r.kills.filter((k) => r.transfer === 'download' && k.twiceRead > h.REFETCH_LIMIT);
    if (over.length) {
      say(`note: ${r.kind} ${r.transfer}: kill(s) ${over.map((k) => k.k).join(', ')} fetched twice more than the e2e tests' bound ` +
        `(${mib(h.REFETCH_LIMIT)}, by what was sent before the signal): ${over.map((k) => mib(k.twiceRead)).join(', ')}`);
    }
  }
  say(`total ${minsecs(Date.now() - started)}`);
  const failed = results.filter((r) => !r.ok);
  if (results.length < BROWSERS.length * TRANSFERS.length) {
    failed.push({ why: `only ${results.length} of ${BROWSERS.length * TRANSFERS.length} runs ran` });
  }
  if (failed.length) {
    console.log();
    for (const r of failed) console.log(`[soak] FAILED: ${r.why}\n`);
    process.exitCode = 1;
  } else {
    say('every transfer completed with the source\'s bytes');
  }
}

main().catch((e) => abort(e?.stack ?? String(e)));
