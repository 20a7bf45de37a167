// Page side of the raw baseline: register the bench worker and offer
// window.rawRun(url) → Promise<{bytes, ms}>, timed inside the worker.
(function () {
  const status = (text) => { document.getElementById('status').textContent = text; };

  /** Ask the active bench worker to read `url` and discard it. */
  async function rawRun(url) {
    const reg = await window.benchReady;
    const worker = reg.active;
    if (!worker) throw new Error('bench worker is not active');
    const { port1, port2 } = new MessageChannel();
    const reply = new Promise((resolve) => { port1.onmessage = (e) => resolve(e.data); });
    worker.postMessage({ op: 'raw', url }, [port2]);
    const result = await reply;
    port1.close();
    if (result.error) throw new Error(result.error);
    return result;
  }

  window.rawRun = rawRun;
  window.benchReady = (async () => {
    await navigator.serviceWorker.register('/bench/raw-sw.js', { scope: '/bench/' });
    // `ready` resolves with the registration matching this page (/bench/) once active.
    const reg = await navigator.serviceWorker.ready;
    status(`Bench worker active (scope ${reg.scope}).`);
    return reg;
  })();
  window.benchReady.catch((e) => status(`Bench worker failed: ${e.message || e}`));
})();
