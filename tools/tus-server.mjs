// A tus 1.0 server for longhaul's demo and end-to-end tests: the npm `@tus/server`
// with `@tus/file-store` (pinned in package-lock.json), on 127.0.0.1, with a request
// log and switches the tests turn to break it on purpose.
//
//   node tools/tus-server.mjs            # the demo's: TUS_PORT (default 1080), files in target/tus-uploads
//
// As a module: `startTusServer({ dir, port, checksum })` → { endpoint, dir, log, faults, sha256(id), close() }
//   log:    every request: { method, path, uploadOffset, authorization, checksum, status, t }
//   faults: { patchDelayMs: n }      wait before handling each PATCH (a slow link)
//           { conflictNext: n }      answer the next n PATCHes 409 without storing anything
//           { mismatchNext: n }      with `checksum`: answer the next n PATCHes 460, as if
//                                    their bodies had been damaged on the way
//           { forget(id) }           delete an upload, as a server that lost it
//   checksum: true                   offer the checksum extension (sha256), which @tus/server
//                                    does not: OPTIONS says so, and each PATCH's
//                                    Upload-Checksum is checked against its body (460 if it
//                                    differs or is missing) before @tus/server, behind, gets it
import http from 'node:http';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server } from '@tus/server';
import { FileStore } from '@tus/file-store';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The answer of a server that offers checksums to an OPTIONS request. */
function checksumOptions(req, res) {
  res.writeHead(204, {
    'Access-Control-Allow-Origin': req.headers.origin ?? '*',
    'Access-Control-Allow-Methods': 'POST, HEAD, PATCH, OPTIONS, DELETE',
    'Access-Control-Allow-Headers': 'Authorization, Content-Type, Tus-Resumable, Upload-Length, Upload-Metadata, Upload-Offset, Upload-Checksum',
    'Access-Control-Expose-Headers': 'Upload-Offset, Location, Upload-Length, Tus-Version, Tus-Resumable, Tus-Extension, Tus-Checksum-Algorithm',
    'Tus-Resumable': '1.0.0',
    'Tus-Version': '1.0.0',
    'Tus-Extension': 'creation,termination,checksum',
    'Tus-Checksum-Algorithm': 'sha1,sha256',
  });
  res.end();
}

export async function startTusServer({ dir, port = 0, checksum = false } = {}) {
  await mkdir(dir, { recursive: true });
  const datastore = new FileStore({ directory: dir });
  const tus = new Server({ path: '/files', datastore });
  const log = [];
  const faults = { patchDelayMs: 0, conflictNext: 0, mismatchNext: 0 };
  // With `checksum`, @tus/server listens on a port of its own, behind this one.
  const inner = checksum ? http.createServer((req, res) => {
    tus.handle(req, res).catch(() => { if (!res.headersSent) { res.statusCode = 500; res.end(); } });
  }) : null;
  if (inner) await new Promise((resolve) => inner.listen(0, '127.0.0.1', resolve));
  /** With `checksum`: check a PATCH's body against its Upload-Checksum; the body to hand on, or null once answered 460. */
  const checked = async (req, res, entry) => {
    const parts = [];
    for await (const c of req) parts.push(c);
    const body = Buffer.concat(parts);
    const [alg, digest] = (req.headers['upload-checksum'] ?? '').split(' ');
    entry.checksumMatched = alg === 'sha256' && createHash('sha256').update(body).digest('base64') === digest;
    if (entry.checksumMatched && faults.mismatchNext <= 0) return body;
    if (entry.checksumMatched) faults.mismatchNext -= 1;
    res.writeHead(460, {
      'Access-Control-Allow-Origin': req.headers.origin ?? '*',
      'Access-Control-Expose-Headers': 'Upload-Offset, Location, Tus-Resumable',
      'Tus-Resumable': '1.0.0',
      'Content-Length': '0',
    });
    res.end();
    return null;
  };
  const server = http.createServer(async (req, res) => {
    const entry = {
      method: req.method,
      path: req.url,
      uploadOffset: req.headers['upload-offset'] ?? null,
      authorization: req.headers.authorization ?? null,
      checksum: req.headers['upload-checksum'] ?? null,
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
    if (checksum && req.method === 'OPTIONS') {
      // The capability request, and every preflight (Upload-Checksum must be allowed).
      checksumOptions(req, res);
      return;
    }
    if (inner) {
      // @tus/server, behind, gets the request with the bytes that were checked.
      const body = req.method === 'PATCH' ? await checked(req, res, entry) : null;
      if (req.method === 'PATCH' && !body) return;
      const headers = { ...req.headers };
      delete headers['upload-checksum'];
      if (body) headers['content-length'] = String(body.length);
      const fwd = http.request({ host: '127.0.0.1', port: inner.address().port, method: req.method, path: req.url, headers }, (r) => {
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      });
      fwd.on('error', () => { if (!res.headersSent) { res.statusCode = 502; res.end(); } });
      if (body) fwd.end(body);
      else req.pipe(fwd);
      return;
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
      inner?.closeAllConnections?.();
      inner?.close();
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
