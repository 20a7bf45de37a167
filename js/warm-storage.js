// Shared by both worker shims: tools/build-pkg.sh appends this file to
// longhaul-sw.js (module workers) and to classic/longhaul-classic.js, after
// js/install.js, which calls it.

/**
 * Open longhaul's database as it is, while the wasm compiles (see install()): a
 * promise of the connection, or of null. Opened without a version, so an existing
 * database is never upgraded here; a missing one is not created (the upgrade is
 * aborted), so the wasm's own open still makes and upgrades it. The connection
 * closes itself for another's upgrade until the wasm adopts it.
 */
function longhaulWarmStorage() {
  return new Promise((resolve) => {
    try {
      const req = indexedDB.open('longhaul');
      req.onupgradeneeded = () => req.transaction.abort();
      req.onsuccess = () => {
        const db = req.result;
        db.onversionchange = () => db.close();
        resolve(db);
      };
      req.onerror = (e) => { e.preventDefault(); resolve(null); };
    } catch { resolve(null); /* no IndexedDB: the wasm reports it */ }
  });
}
