//! The worker's side of uploads: copying a page's body into storage, sending each
//! request the engine asks for with its body read back from storage, and deleting a
//! canceled tus upload on its server.
//!
//! The body is copied in [`COPY_CHUNK`]-byte chunks, one transaction each, before
//! the task exists, each a slice of the page's Blob stored as it is (its bytes are
//! never read into the worker where the browser stores Blobs): if the copy fails
//! (`quota`), the chunks written so far are deleted and nothing is left half-stored;
//! if the worker dies during it, the start-up sweep
//! ([`crate::store::Store::drop_orphans`]) frees them. Each request's body is a Blob
//! composed of the stored chunks its byte range covers, so no body is held in memory
//! (a `PUT`/`POST` sends the whole body in one request, by nature).

use super::{credentials, evicted, pump, storage_failure, with_abort, Runtime};
use crate::core::engine::upload::SendRequest;
use crate::core::protocol::Upload;
use crate::core::task::TaskRecord;
use crate::core::upload::{terminated, UploadInfo, UploadResponse, TERMINATE_ATTEMPTS};
use crate::core::validate::merge_headers;
use crate::core::validate::SessionId;
use crate::core::{ErrorCode, TaskError, TaskId};
use crate::js;
use crate::net::{self, NetFailure};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortController;

/// Bytes per stored chunk of an upload's copy; requests rely on this alignment.
pub const COPY_CHUNK: u64 = 1 << 20;

/// The `upload` command: check, copy the body in, then create the task.
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
    if let Err(e) = copy_in(rt, &id, &blob, size).await {
        // Nothing half-stored is left behind.
        if let Ok(drop) = rt.store.drop_chunks(&id) {
            let _ = drop.await;
        }
        return Err(e);
    }
    let info = UploadInfo {
        protocol: u.protocol,
        size,
        location: None,
        metadata: u.metadata,
        content_type: u.content_type,
        chunk_size: u.chunk_size,
    };
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

async fn copy_in(
    rt: &Runtime,
    id: &TaskId,
    blob: &web_sys::Blob,
    size: u64,
) -> Result<(), TaskError> {
    let mut at = 0u64;
    while at < size {
        if evicted() {
            return Err(TaskError::new(
                ErrorCode::NoWorker,
                "this service worker was replaced by a newer one",
            ));
        }
        let end = (at + COPY_CHUNK).min(size);
        let part = blob
            .slice_with_f64_and_f64(at as f64, end as f64)
            .map_err(|e| TaskError::new(ErrorCode::Internal, js::describe(&e)))?;
        rt.store.put_chunk(id, at, &part).await?;
        at = end;
    }
    Ok(())
}

/// The stored bytes `[from, to)` of upload `id`, as one Blob composed of the stored
/// chunks: a request body that is never read into memory where chunks are Blobs.
async fn read_range(
    rt: &Runtime,
    id: &TaskId,
    from: u64,
    to: u64,
) -> Result<wasm_bindgen::JsValue, TaskError> {
    let chunk_start = from - from % COPY_CHUNK;
    rt.store
        .blob(id, (chunk_start, from, to))
        .await
        .map(Into::into)
}

/// Send one request of an upload and report what came of it.
pub(super) async fn run_send(rt: Rc<Runtime>, req: SendRequest) {
    let (task, gen) = (req.task.clone(), req.gen);
    with_abort(rt, task, gen, |rt, ctl| async move {
        let resp = send(&rt, &req, &ctl).await?;
        if !evicted() {
            rt.engine.borrow_mut().handle_upload_response(
                &req.task,
                req.gen,
                req.step,
                &resp,
                js::now(),
            );
        }
        Ok(())
    })
    .await;
}

async fn send(
    rt: &Runtime,
    req: &SendRequest,
    ctl: &AbortController,
) -> Result<UploadResponse, NetFailure> {
    let body = match req.body {
        Some((from, to)) => Some(
            read_range(rt, &req.task, from, to)
                .await
                .map_err(storage_failure)?,
        ),
        None => None,
    };
    let extra = credentials(
        rt,
        &req.task,
        &req.url,
        &req.session,
        req.attempt,
        req.timeout_ms,
    )
    .await?;
    let headers = merge_headers(&req.headers, extra.pairs());
    let resp = net::send(
        req.method,
        &req.url,
        &headers,
        body.as_ref(),
        req.timeout_ms,
        ctl,
    )
    .await?;
    net::drop_body(&resp);
    let h = resp.headers();
    let get = |n: &str| h.get(n).ok().flatten();
    let location = get("location").and_then(|l| {
        web_sys::Url::new_with_base(&l, &req.url)
            .ok()
            .map(|u| u.href())
    });
    Ok(UploadResponse {
        status: resp.status(),
        location,
        upload_offset: get("upload-offset"),
        retry_after: get("retry-after"),
    })
}

/// Delete a canceled tus upload on its server: up to [`TERMINATE_ATTEMPTS`] attempts
/// in this worker life ([`terminated`] decides), each asking the credentials hook with
/// the task's session and the attempt's number; the outcome is only logged.
pub(super) async fn terminate(
    rt: Rc<Runtime>,
    task: TaskId,
    url: String,
    headers: Vec<(String, String)>,
    session: String,
) -> Result<(), TaskError> {
    let timeout = 30_000.0;
    let mut outcome = String::new();
    for attempt in 1..=TERMINATE_ATTEMPTS {
        if attempt > 1 {
            let _ = JsFuture::from(js::sleep(1000.0 * f64::from(1 << (attempt - 2)))).await;
        }
        let sent = match credentials(&rt, &task, &url, &session, attempt, timeout).await {
            Ok(extra) => merge_headers(&headers, extra.pairs()),
            Err(_) => headers.clone(),
        };
        let Ok(ctl) = AbortController::new() else {
            break;
        };
        let status = match net::send("DELETE", &url, &sent, None, timeout, &ctl).await {
            Ok(r) => {
                net::drop_body(&r);
                outcome = format!("HTTP {}", r.status());
                Some(r.status())
            }
            Err(f) => {
                outcome = f.error.to_string();
                None
            }
        };
        match terminated(status) {
            Some(true) => {
                outcome.clear();
                break;
            }
            Some(false) => break,
            None => {}
        }
    }
    rt.secrets.borrow_mut().retain(|(t, _)| *t != task);
    if !outcome.is_empty() {
        js::warn(&format!("could not delete a canceled upload: {outcome}"));
    }
    Ok(())
}
