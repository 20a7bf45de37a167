// The demo page's glue: register the worker, open the session, draw the tasks.
// `?worker=classic` registers the classic (importScripts) worker instead of the
// module worker, `?worker=credentials` the module worker with a credentials hook,
// `?worker=handed` one that keeps the wasm itself and hands it over (`install({ wasm })`);
// only one of them may run per origin.
import init, { BackgroundSession } from '/pkg/longhaul.js';

const $ = (sel, root = document) => root.querySelector(sel);
const status = (text) => { $('#status').textContent = text; };
const showError = (e) => {
  const el = $('#error');
  el.hidden = !e;
  el.textContent = e ? `${e.code ? e.code + ': ' : ''}${e.message ?? e}` : '';
};

const MiB = 1024 * 1024;
const fmtBytes = (n) => (n >= MiB ? `${(n / MiB).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`);
const fmtTime = (s) => (!isFinite(s) ? '' : s < 60 ? `${Math.ceil(s)} s left` : `${Math.floor(s / 60)} min ${Math.ceil(s % 60)} s left`);

/** Bytes done: stored for a download, acknowledged by the server for an upload. */
const done = (snap) => snap.bytesReceived ?? snap.bytesSent ?? 0;

/** Per-task speed, smoothed over recent progress. */
const speeds = new Map();
function speedOf(snap) {
  const now = performance.now();
  const s = speeds.get(snap.id) ?? { t: now, b: done(snap), rate: 0 };
  const dt = (now - s.t) / 1000;
  if (dt >= 0.25) {
    const inst = Math.max(0, (done(snap) - s.b) / dt);
    s.rate = s.rate ? 0.7 * s.rate + 0.3 * inst : inst;
    s.t = now;
    s.b = done(snap);
  }
  if (snap.state !== 'running') s.rate = 0;
  speeds.set(snap.id, s);
  return s.rate;
}

const rows = new Map();
const latest = new Map();
function render(snap) {
  latest.set(snap.id, snap);
  let li = rows.get(snap.id);
  if (!li) {
    li = $('#row').content.firstElementChild.cloneNode(true);
    li.dataset.id = snap.id;
    li.addEventListener('click', (e) => onAction(snap.id, e.target.dataset.act));
    rows.set(snap.id, li);
    $('#tasks').prepend(li);
  }
  $('#empty').hidden = rows.size > 0;
  li.dataset.state = snap.state;
  $('.name', li).textContent = snap.description || snap.url;
  $('.name', li).title = snap.url;
  const st = $('.state', li);
  st.textContent = snap.state;
  st.className = `state ${snap.state}`;
  const p = $('progress', li);
  if (snap.bytesExpected) p.value = done(snap) / snap.bytesExpected; else p.removeAttribute('value');
  if (snap.state === 'completed') p.value = 1;
  $('.bytes', li).textContent = (snap.kind === 'upload' ? '↑ ' : '↓ ') + fmtBytes(done(snap)) + (snap.bytesExpected != null ? ` of ${fmtBytes(snap.bytesExpected)}` : '');
  const rate = speedOf(snap);
  $('.speed', li).textContent = snap.state === 'running' && rate ? `${fmtBytes(rate)}/s` : '';
  $('.eta', li).textContent = snap.state === 'running' && rate && snap.bytesExpected
    ? fmtTime((snap.bytesExpected - done(snap)) / rate) : '';
  const can = {
    pause: ['pending', 'running', 'waiting'].includes(snap.state),
    resume: ['paused', 'failed'].includes(snap.state),
    cancel: !['completed', 'canceled'].includes(snap.state),
    remove: ['completed', 'failed', 'canceled'].includes(snap.state),
    save: snap.state === 'completed' && snap.kind === 'download',
  };
  for (const [act, ok] of Object.entries(can)) $(`[data-act=${act}]`, li).hidden = !ok;
  $('.err', li).textContent = snap.error && snap.state !== 'canceled' ? `${snap.error.code}: ${snap.error.message}` : '';
}

let session;
async function onAction(id, act) {
  if (!act) return;
  showError(null);
  try {
    if (act === 'save') {
      const blob = await session.blob(id);
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = (await session.task(id)).url.split('/').pop().split('?')[0] || 'download';
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
      return;
    }
    if (act === 'remove') {
      await session.remove(id);
      rows.get(id)?.remove();
      rows.delete(id);
      latest.delete(id);
      $('#empty').hidden = rows.size > 0;
      return;
    }
    const r = await session[act](id);
    if (r && typeof r === 'object') render(r);
  } catch (e) {
    showError(e);
  }
}

async function main() {
  if (!('serviceWorker' in navigator)) {
    status('This browser has no service workers here; longhaul needs them (and a secure origin).');
    return;
  }
  const kind = new URLSearchParams(location.search).get('worker') ?? 'module';
  const classic = kind === 'classic';
  const script = { module: '/sw.js', classic: '/sw-classic.js', credentials: '/sw-credentials.js', handed: '/sw-handed.js' }[kind] ?? '/sw.js';
  status('Registering the service worker…');
  await navigator.serviceWorker.register(script, classic ? {} : { type: 'module' });
  status('Loading longhaul…');
  await init();
  session = await BackgroundSession.open('demo');
  window.longhaulSession = session; // for the end-to-end tests and the console
  for (const type of ['progress', 'statechange', 'complete']) {
    session.addEventListener(type, (e) => render(e.detail));
  }
  for (const snap of await session.tasks()) render(snap);
  status(`Session "${session.identifier}" is open (${kind} worker).`);

  $('#sample').addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const name = `sample-${Date.now().toString(36)}.bin`;
    const rate = f.get('rate') ? `&rate=${f.get('rate')}` : '';
    try {
      showError(null);
      render(await session.download(`/files/${name}?size=${f.get('size')}${rate}`, { description: `${name} (${f.get('size')}iB)` }));
    } catch (err) { showError(err); }
  });
  // `make demo` runs a tus server on TUS_PORT (1080 unless set); `?tus=<port>` says another.
  const tusPort = new URLSearchParams(location.search).get('tus') ?? '1080';
  $('#upload [name=endpoint]').value = `${location.protocol}//${location.hostname}:${tusPort}/files`;
  $('#upload').addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const file = f.get('file');
    const protocol = f.get('protocol');
    const url = protocol === 'tus' ? f.get('endpoint') : `/sink/${encodeURIComponent(file.name || 'upload.bin')}`;
    try {
      showError(null);
      status(`Copying ${file.name} into storage…`);
      render(await session.upload(url, file, { protocol, description: `${file.name} (${fmtBytes(file.size)}, ${protocol})` }));
      status(`Session "${session.identifier}" is open: the upload goes on if you close this tab.`);
    } catch (err) { showError(err); }
  });
  $('#custom').addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      showError(null);
      render(await session.download(new FormData(e.target).get('url')));
    } catch (err) { showError(err); }
  });
  // Redraw speeds and times once a second between events, from the last snapshots
  // (no message to the worker: an idle worker may then stop as the browser likes).
  setInterval(() => { for (const s of latest.values()) if (s.state === 'running') render(s); }, 1000);
}

main().catch((e) => { status(`longhaul could not start: ${e.message ?? e}`); console.error(e); });
