//! The worker's side of uploads: copying a page's body into storage, checking the
//! stored copy, sending each request the engine asks for with its body read back
//! from storage, and deleting a canceled tus upload on its server.
//!
//! **The copy stores real bytes, never slices.** The body is copied in
//! [`COPY_CHUNK`]-byte chunks, one transaction each, before the task exists: each
//! chunk's bytes are read (`slice.arrayBuffer()`), hashed, and stored as a value made
//! of those bytes ([`Store::put_chunk`]: a Blob built from them where the browser
//! stores Blobs, the bytes themselves where it stores bytes), never as a slice of the
//! page's Blob. Slices are not proven safe in any engine, and are broken in one:
//! measured in WebKitGTK 2.50.6, a `file.slice(a, b)` stored in IndexedDB is written
//! as the whole source file (each 1 MiB slice's `.blob` file was the full 24 MiB: a
//! 24 MiB upload cost 24 × 24 MiB of disk), with the slice's size; once the slice
//! object is gone (collected, a worker or browser restart) the record reads as the
//! source from byte 0 (`size` 1 MiB, `slice(0, 1 MiB)` the source's first MiB,
//! `arrayBuffer()` all 24 MiB), and every tus and `PUT` upload completed with the
//! right length and wrong bytes. `new Blob([slice])` is as bad; only a Blob of the
//! bytes read (`new Blob([await slice.arrayBuffer()])`) round-trips. Memory stays
//! bounded: the next chunk is read while one is hashed and committed, so at most two
//! chunks are in memory.
//!
//! **Digests, and checks before any byte is sent.** The SHA-256 of each chunk is
//! taken from the source's bytes as they are read and kept in the task record
//! ([`ChunkDigests`], with the upload's info), so checks also run after a restart:
//! - after the copy, every stored chunk is read back and checked; a mismatch rejects
//!   the `upload` command with `integrity` and deletes what was stored;
//! - before each request, every stored chunk its body covers is read and checked
//!   (whole chunks: a body that starts or ends inside one reads it all); a mismatch
//!   fails the task with `integrity` and frees its copy
//!   ([`crate::core::Engine::handle_upload_corrupt`]), and no byte of the body is
//!   sent. That is where a WebKit-style corruption, which appears only after a
//!   restart, is caught.
//!
//! Why `integrity` and not `storage`: the failure is a digest mismatch, as a
//! download's `integrity` failure is, and it ends the same way: the bytes are
//! discarded and no `resume` can mend them (here the source is the page's file: hand
//! it over again). `storage` means IndexedDB refused or lost something (a failed
//! transaction, a missing chunk): the copy is kept, and such a task can be resumed.
//!
//! What the checks cost, as measured: docs/decisions.md, "The upload copy's checks".
//! Records written before digests were taken have none: their chunks are sent
//! unchecked.
//!
//! **tus checksums.** Where the server offers the checksum extension with `sha256`
//! (asked once per upload with an `OPTIONS` to the endpoint: see
//! [`crate::core::upload`]), each `PATCH` carries `Upload-Checksum: sha256 <base64>`
//! of its exact body, hashed from the same read as the check with `sha2` (a body can
//! span several chunks, and WebCrypto cannot hash in parts): 340-420 ms more per
//! 64 MiB sent. A `460` sends the bytes again under the retry policy.
//!
//! If the copy fails (`quota`), the chunks written so far are deleted and nothing
//! is left half-stored; if the worker dies during it, the start-up sweep
//! ([`crate::store::Store::drop_orphans`]) frees them.

use super::{evicted, pump, signed, storage_failure, with_abort, Runtime};
use crate::core::engine::upload::SendRequest;
use crate::core::protocol::Upload;
use crate::core::task::TaskRecord;
use crate::core::upload::{
    self as rules, terminated, ChunkDigests, UploadInfo, UploadResponse, TERMINATE_ATTEMPTS,
};
use crate::core::validate::SessionId;
use crate::core::{ErrorCode, TaskError, TaskId};
use crate::js;
use crate::net::{self, NetFailure};
use crate::store::{Chunk, Store};
use sha2::{Digest as _, Sha256};
use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortController;

pub use crate::core::upload::COPY_CHUNK;

mod check;
mod send;

use check::*;
pub(in crate::worker) use send::{run_send, terminate};

/// Stored chunks listed per transaction while a copy is read back (their bytes are
/// then read one chunk at a time).
const READ_BATCH: u32 = 8;

thread_local! {
    /// Tests only: damage the stored chunk at this offset of the next copy, once
    /// written and before it is read back ([`testing::damage_next_copy`]).
    static DAMAGE_NEXT_COPY: Cell<Option<u64>> = const { Cell::new(None) };
    /// Tests only: the task id of the copy last damaged that way.
    static DAMAGED_COPY: std::cell::RefCell<Option<TaskId>> = const { std::cell::RefCell::new(None) };
}

/// The `upload` command: check, copy the body in and check the copy, then create
/// the task.
pub(super) async fn command(
    rt: &Rc<Runtime>,
    session: SessionId,
    u: Upload,
    body: JsValue,
) -> Result<JsValue, TaskError> {
    let blob: web_sys::Blob = body
        .dyn_into()
        .map_err(|_| TaskError::invalid("the upload body must be a Blob, File or ArrayBuffer"))?;
    let size = blob.size();
    if !(0.0..=crate::core::validate::MAX_SAFE_INTEGER as f64).contains(&size) {
        return Err(TaskError::invalid(
            "the upload body is larger than 2^53 bytes",
        ));
    }
    let size = size as u64;
    let url = super::http_url(&u.url)?;
    super::check_space(rt, &session, size).await?;
    let id = TaskId(js::random_uuid());
    let mut info = UploadInfo {
        protocol: u.protocol,
        size,
        location: None,
        metadata: u.metadata,
        content_type: u.content_type,
        chunk_size: u.chunk_size,
        chunk_sha256: ChunkDigests::new(),
        checksum: None,
        discarded: false,
    };
    let copied = async {
        info.chunk_sha256 = copy_in(rt, &id, &blob, size).await?;
        if let Some(at) = DAMAGE_NEXT_COPY.with(|d| d.take()) {
            DAMAGED_COPY.with(|d| *d.borrow_mut() = Some(id.clone()));
            damage(&rt.store, &id, at).await?;
        }
        read_checked(&rt.store, &id, &info, (0, size), (false, false), None).await
    };
    if let Err(e) = copied.await {
        // Nothing half-stored (or damaged) is left behind.
        if let Ok(drop) = rt.store.drop_chunks(&id) {
            let _ = drop.await;
        }
        return Err(e);
    }
    let mut rec = TaskRecord::new_upload(id, session, url, u.headers, u.description, info);
    rec.priority = u.schedule.priority;
    rec.earliest_begin = u.schedule.earliest_begin;
    if !u.secrets.pairs().is_empty() {
        rt.secrets.borrow_mut().push((rec.id.clone(), u.secrets));
    }
    let snap = rt.engine.borrow_mut().add(rec, js::now());
    pump(rt).wait().await?;
    Ok(js::to_js(&snap))
}

/// Copy `blob` (`size` bytes) in as chunks of task `id`, each a value made of the
/// bytes read (never a slice of `blob`), and return each chunk's SHA-256, taken from
/// those bytes. The next chunk is read while one is hashed and stored.
async fn copy_in(
    rt: &Runtime,
    id: &TaskId,
    blob: &web_sys::Blob,
    size: u64,
) -> Result<ChunkDigests, TaskError> {
    let read = |at: u64| -> Result<JsFuture, TaskError> {
        let end = (at + COPY_CHUNK).min(size);
        let part = blob
            .slice_with_f64_and_f64(at as f64, end as f64)
            .map_err(|e| TaskError::new(ErrorCode::Internal, js::describe(&e)))?;
        Ok(JsFuture::from(part.array_buffer()))
    };
    let unreadable = |why: String| {
        TaskError::invalid(format!(
            "the upload body could not be read ({why}); was the file changed or removed?"
        ))
    };
    let mut digests = ChunkDigests::new();
    let mut at = 0u64;
    let mut next = if size > 0 { Some(read(0)?) } else { None };
    while let Some(pending) = next.take() {
        if evicted() {
            return Err(TaskError::new(
                ErrorCode::NoWorker,
                "this service worker was replaced by a newer one",
            ));
        }
        let bytes =
            js_sys::Uint8Array::new(&pending.await.map_err(|e| unreadable(js::describe(&e)))?);
        let end = (at + COPY_CHUNK).min(size);
        if u64::from(bytes.length()) != end - at {
            return Err(unreadable(format!(
                "{} bytes at {at} read as {}",
                end - at,
                bytes.length()
            )));
        }
        if end < size {
            next = Some(read(end)?);
        }
        digests.push(sha256(&bytes).await?);
        rt.store.put_chunk(id, at, &bytes).await?;
        at = end;
    }
    Ok(digests)
}

/// The SHA-256 of `bytes`: the browser's (`crypto.subtle.digest`), about four times
/// as fast as `sha2` in wasm and without copying the bytes into wasm memory
/// (64 MiB in 80-105 ms against 330-420, measured in Chromium and Firefox, release
/// builds), or `sha2`'s where WebCrypto is missing.
async fn sha256(bytes: &js_sys::Uint8Array) -> Result<[u8; 32], TaskError> {
    let failed = |e: &JsValue| {
        TaskError::new(
            ErrorCode::Internal,
            format!("SHA-256 failed: {}", js::describe(e)),
        )
    };
    let subtle = js::get(&js::get(&js_sys::global(), "crypto"), "subtle");
    let Ok(digest) = js::get(&subtle, "digest").dyn_into::<js_sys::Function>() else {
        return Ok(Sha256::digest(bytes.to_vec()).into());
    };
    let promise: js_sys::Promise = digest
        .call2(&subtle, &"SHA-256".into(), bytes)
        .map_err(|e| failed(&e))?
        .unchecked_into();
    let buf = JsFuture::from(promise).await.map_err(|e| failed(&e))?;
    <[u8; 32]>::try_from(js_sys::Uint8Array::new(&buf).to_vec())
        .map_err(|_| failed(&"not 32 bytes".into()))
}

/// Overwrite the stored chunk of `id` at `offset` with other bytes of its length
/// (each one flipped): what storage that changed it would leave (tests only).
async fn damage(store: &Store, id: &TaskId, offset: u64) -> Result<(), TaskError> {
    let found = store
        .read_chunk_batch(id, offset, offset + 1, Some(1))
        .await?;
    let Some((_, chunk)) = found.into_iter().next() else {
        return Err(TaskError::new(
            ErrorCode::NotFound,
            format!("no stored chunk at {offset}"),
        ));
    };
    let mut bytes = chunk.bytes().await?.to_vec();
    for b in &mut bytes {
        *b ^= 0xA5;
    }
    store
        .put_chunk(id, offset, &js_sys::Uint8Array::from(&bytes[..]))
        .await
}

/// Entry points for the browser tests (re-exported by `worker::testing`).
#[doc(hidden)]
pub mod testing {
    use super::*;

    /// Make the next `upload` command damage its stored chunk at `offset` once the
    /// copy is written, before it is read back.
    pub fn damage_next_copy(offset: u64) {
        DAMAGE_NEXT_COPY.with(|d| d.set(Some(offset)));
    }

    /// The task id the copy damaged by [`damage_next_copy`] had.
    pub fn damaged_copy() -> Option<String> {
        DAMAGED_COPY.with(|d| d.borrow().as_ref().map(|t| t.0.clone()))
    }

    /// Overwrite the stored chunk of task `id` at `offset` with other bytes of the
    /// same length (each one flipped), as storage that changed it would.
    pub async fn damage_chunk(id: &str, offset: u64) -> Result<(), TaskError> {
        let rt = super::super::runtime().await?;
        damage(&rt.store, &TaskId(id.into()), offset).await
    }

    /// The body of a request for bytes `[from, to)` of upload `id`, read and checked
    /// as one is before it is sent, and the `Upload-Checksum` value it would carry.
    pub async fn request_body(
        id: &str,
        from: u64,
        to: u64,
    ) -> Result<(web_sys::Blob, String), TaskError> {
        let rt = super::super::runtime().await?;
        let id = TaskId(id.into());
        let info = rt
            .engine
            .borrow()
            .record(&id)
            .and_then(|r| r.upload.clone())
            .ok_or_else(|| TaskError::new(ErrorCode::NotFound, "no such upload"))?;
        let (body, digest) =
            read_checked(&rt.store, &id, &info, (from, to), (true, true), None).await?;
        let header = digest
            .map(|d| rules::checksum_header(&d).1)
            .unwrap_or_default();
        Ok((
            body.unwrap_or_else(|| web_sys::Blob::new().unwrap()),
            header,
        ))
    }
}
