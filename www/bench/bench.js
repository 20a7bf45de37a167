// Page side of the plain-JavaScript baselines: register the bench worker and offer
//   window.rawRun(op, url) → Promise<{bytes, ms}>   (see raw-sw.js for the ops)
//   window.rawPut(url, size) → Promise<{bytes, ms}>
//   window.bgFetchRun(url, size) → Promise<{bytes, ms}>  (Background Fetch, Chromium)
// each timed inside the worker.
(function () {
  const status = (text) => { document.getElementById('status').textContent = text; };

  /** Post `msg` to the active bench worker and wait for its answer on a fresh port. */
  async function ask(msg, before) {
    const reg = await window.benchReady;
    const worker = reg.active;
    if (!worker) throw new Error('bench worker is not active');
    const { port1, port2 } = new MessageChannel();
    const reply = new Promise((resolve) => { port1.onmessage = (e) => resolve(e.data); });
    worker.postMessage(msg, [port2]);
    if (before) await before(reg);
    const result = await reply;
    port1.close();
    if (result.error) throw new Error(result.error);
    return result;
  }

  window.rawRun = (op, url) => ask({ op, url });
  window.rawPut = (url, size) => ask({ op: 'put', url, size });
  // What the op `idb8keep` stored, as one Blob composed in the worker, read here
  // through its stream (as a page reads longhaul's session.blob()).
  // With `viaFetch`, read them instead as the body of a fetch the worker answers.
  window.rawReadStored = async (viaFetch = false) => {
    const body = viaFetch ? (await fetch('/bench/stored')).body : (await ask({ op: 'storedblob' })).blob.stream();
    const reader = body.getReader();
    let bytes = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
    }
    return { bytes };
  };
  window.rawDropStored = () => ask({ op: 'dropstored' });
  window.bgFetchRun = (url, size) => {
    const id = `bench-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    return ask({ op: 'bgwait', id }, (reg) => {
      if (!reg.backgroundFetch) throw new Error('no Background Fetch in this browser');
      return reg.backgroundFetch.fetch(id, [url], { downloadTotal: size, title: 'longhaul bench' });
    });
  };
  window.benchReady = (async () => {
    await navigator.serviceWorker.register('/bench/raw-sw.js', { scope: '/bench/' });
    // `ready` resolves with the registration matching this page (/bench/) once active.
    const reg = await navigator.serviceWorker.ready;
    status(`Bench worker active (scope ${reg.scope}).`);
    return reg;
  })();
  window.benchReady.catch((e) => status(`Bench worker failed: ${e.message || e}`));
})();
