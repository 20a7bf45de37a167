// A tus 1.0 server for longhaul's demo and end-to-end tests: the npm `@tus/server`
// with `@tus/file-store` (pinned in package-lock.json), on 127.0.0.1, with a request
// log and switches the tests turn to break it on purpose.
//
//   node tools/tus-server.mjs            # the demo's: TUS_PORT (default 1080), files in target/tus-uploads
//
// As a module: `startTusServer({ dir, port })` → { endpoint, dir, log, faults, sha256(id), close() }
//   log:    every request: { method, path, uploadOffset, authorization, status, t }
//   faults: { patchDelayMs: n }      wait before handling each PATCH (a slow link)
//           { conflictNext: n }      answer the next n PATCHes 409 without storing anything
//           { forget(id) }           delete an upload, as a server that lost it
import http from 'node:http';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server } from '@tus/server';
import { FileStore } from '@tus/file-store';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function startTusServer({ dir, port = 0 } = {}) {
  await mkdir(dir, { recursive: true });
  const datastore = new FileStore({ directory: dir });
  const tus = new Server({ path: '/files', datastore });
  const log = [];
  const faults = { patchDelayMs: 0, conflictNext: 0 };
  const server = http.createServer(async (req, res) => {
    const entry = {
      method: req.method,
      path: req.url,
      uploadOffset: req.headers['upload-offset'] ?? null,
      authorization: req.headers.authorization ?? null,
      status: 0,
      t: Date.now(),
    };
    log.push(entry);
    res.on('finish', () => { entry.status = res.statusCode; });
    // A response the client stopped reading still had a status.
    res.on('close', () => { if (!entry.status && res.headersSent) entry.status = res.statusCode; });
    if (req.method === 'PATCH') {
      if (faults.conflictNext > 0) {
        faults.conflictNext -= 1;
        req.resume();
        res.writeHead(409, {
          'Access-Control-Allow-Origin': req.headers.origin ?? '*',
          'Access-Control-Expose-Headers': 'Upload-Offset, Location, Tus-Resumable',
          'Tus-Resumable': '1.0.0',
          'Content-Length': '0',
        });
        res.end();
        return;
      }
      if (faults.patchDelayMs > 0) await sleep(faults.patchDelayMs);
    }
    tus.handle(req, res).catch(() => { if (!res.headersSent) { res.statusCode = 500; res.end(); } });
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { port: bound } = server.address();
  const endpoint = `http://127.0.0.1:${bound}/files`;
  return {
    endpoint,
    dir,
    log,
    faults,
    /** Delete an upload (its id is the last segment of its URL). */
    async forget(id) { await datastore.remove(id); },
    /** SHA-256 (hex) and length of an upload's stored bytes. */
    async sha256(id) {
      const h = createHash('sha256');
      let n = 0;
      for await (const c of createReadStream(path.join(dir, id))) { h.update(c); n += c.length; }
      return { sha: h.digest('hex'), length: n };
    },
    /** The ids of the uploads that requests named, in order of first appearance. */
    created() {
      const ids = [];
      for (const e of log) {
        const m = /^\/files\/([^/?]+)/.exec(e.path);
        if (m && !ids.includes(m[1])) ids.push(m[1]);
      }
      return ids;
    },
    close() {
      server.closeAllConnections?.();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const port = Number(process.env.TUS_PORT ?? 1080);
  const s = await startTusServer({ dir: path.join(root, 'target', 'tus-uploads'), port });
  console.log(`longhaul tus server: ${s.endpoint}/`);
}
