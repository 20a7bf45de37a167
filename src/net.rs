//! The network edge: `fetch` with an abort signal, response heads, body reading.
//!
//! Body bytes stay in JS memory: each read gives a `Uint8Array` that is gathered and
//! later written to IndexedDB without a copy through wasm memory.

use crate::core::http::ResponseHead;
use crate::core::{ErrorCode, TaskError};
use crate::js;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use wasm_bindgen::JsCast;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, Request, RequestInit, Response};

/// Why a request failed, and whether trying again may help.
pub struct NetFailure {
    /// The error.
    pub error: TaskError,
    /// Whether to retry.
    pub retryable: bool,
}

fn failure(code: ErrorCode, msg: String, retryable: bool) -> NetFailure {
    NetFailure {
        error: TaskError::new(code, msg),
        retryable,
    }
}

/// Send a request and resolve with its response head, or fail: `network` (retryable)
/// if the browser refused or lost it, `timeout` (retryable) if no head came within
/// `timeout_ms` (the request is then aborted).
pub async fn send(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<&wasm_bindgen::JsValue>,
    timeout_ms: f64,
    ctl: &AbortController,
) -> Result<Response, NetFailure> {
    let h = Headers::new().map_err(|e| failure(ErrorCode::Internal, js::describe(&e), false))?;
    for (k, v) in headers {
        h.append(k, v).map_err(|e| {
            failure(
                ErrorCode::InvalidInput,
                format!("header {k}: {}", js::describe(&e)),
                false,
            )
        })?;
    }
    let init = RequestInit::new();
    init.set_method(method);
    init.set_headers(&h);
    init.set_signal(Some(&ctl.signal()));
    init.set_cache(web_sys::RequestCache::NoStore);
    if let Some(b) = body {
        init.set_body(b);
    }
    let request = Request::new_with_str_and_init(url, &init)
        .map_err(|e| failure(ErrorCode::InvalidInput, js::describe(&e), false))?;
    let resp = js::within(&js::global_fetch(&request), timeout_ms)
        .await
        .map_err(|e| {
            failure(
                ErrorCode::Network,
                format!("the request failed: {}", js::describe(&e)),
                true,
            )
        })?;
    let Some(resp) = resp else {
        ctl.abort();
        return Err(failure(
            ErrorCode::Timeout,
            format!("no answer arrived for {} s", (timeout_ms / 1000.0) as u64),
            true,
        ));
    };
    resp.dyn_into::<Response>()
        .map_err(|_| failure(ErrorCode::Internal, "fetch gave no Response".into(), false))
}

/// Let go of a response whose body is not wanted (so its connection is freed).
pub fn drop_body(resp: &Response) {
    if let Some(body) = resp.body() {
        let _ = body.cancel();
    }
}

/// The parts of a response head the resume rules read.
pub fn head(resp: &Response) -> ResponseHead {
    let h = resp.headers();
    let get = |n: &str| h.get(n).ok().flatten();
    ResponseHead {
        status: resp.status(),
        content_length: get("content-length").and_then(|v| v.trim().parse().ok()),
        content_range: get("content-range"),
        etag: get("etag"),
        last_modified: get("last-modified"),
        content_encoding: get("content-encoding"),
        retry_after: get("retry-after"),
        accept_ranges: get("accept-ranges"),
    }
}

/// Reads a body in pieces.
///
/// Stall detection costs one timer per stall window, not one per piece: a deadline
/// is armed for `stall_ms` after the last byte, and when it fires while a read is
/// pending, the read fails only if no byte came since; else a new deadline is armed
/// for what is left of the window. (A timer and a promise race per piece were a
/// measurable share of the time a fast download spent in the worker.)
pub struct BodyReader {
    reader: web_sys::ReadableStreamDefaultReader,
    watch: Rc<RefCell<Watch>>,
}

/// The deadline shared by the reads of one body.
struct Watch {
    /// When the last piece (or the head) arrived.
    last_byte: f64,
    /// The armed deadline and its timer (cleared when dropped).
    deadline: Option<(JsFuture, js::ClearOnDrop)>,
}

impl BodyReader {
    /// The reader of `resp`'s body (`None` if it has none).
    pub fn new(resp: &Response) -> Option<BodyReader> {
        let body = resp.body()?;
        let reader = body
            .get_reader()
            .dyn_into::<web_sys::ReadableStreamDefaultReader>()
            .ok()?;
        let watch = Watch {
            last_byte: js::now(),
            deadline: None,
        };
        Some(BodyReader {
            reader,
            watch: Rc::new(RefCell::new(watch)),
        })
    }

    /// The next piece, `Ok(None)` at the end, or a failure; fails with `timeout` if no
    /// byte arrives for `stall_ms`.
    ///
    /// The future does not borrow the reader, so it can stay pending while the caller
    /// does other work (commits the previous chunk); dropping it unresolved would lose
    /// a piece, so a caller keeps it until it resolves.
    pub fn next(
        &self,
        stall_ms: f64,
    ) -> impl Future<Output = Result<Option<js_sys::Uint8Array>, NetFailure>> + 'static {
        let reader = self.reader.clone();
        let watch = self.watch.clone();
        async move { Self::read(reader, watch, stall_ms).await }
    }

    async fn read(
        reader: web_sys::ReadableStreamDefaultReader,
        watch: Rc<RefCell<Watch>>,
        stall_ms: f64,
    ) -> Result<Option<js_sys::Uint8Array>, NetFailure> {
        let mut read = JsFuture::from(reader.read());
        let v = loop {
            let got = std::future::poll_fn(|cx| {
                if let Poll::Ready(v) = Pin::new(&mut read).poll(cx) {
                    return Poll::Ready(Some(v));
                }
                let mut w = watch.borrow_mut();
                let left = w.last_byte + stall_ms - js::now();
                let (deadline, _) = w.deadline.get_or_insert_with(|| {
                    let (p, clear) = js::timeout(left.max(0.0), JsValue::UNDEFINED);
                    (JsFuture::from(p), clear)
                });
                if Pin::new(deadline).poll(cx).is_ready() {
                    w.deadline = None;
                    return Poll::Ready(None);
                }
                Poll::Pending
            })
            .await;
            match got {
                Some(v) => break v,
                // The deadline fired: a stall only if no byte came in the window.
                None if js::now() - watch.borrow().last_byte >= stall_ms => {
                    let _ = reader.cancel();
                    return Err(failure(
                        ErrorCode::Timeout,
                        format!("no byte arrived for {} s", (stall_ms / 1000.0) as u64),
                        true,
                    ));
                }
                None => {}
            }
        };
        let v = v.map_err(|e| {
            failure(
                ErrorCode::Network,
                format!("the body broke off: {}", js::describe(&e)),
                true,
            )
        })?;
        watch.borrow_mut().last_byte = js::now();
        if js::get(&v, "done").as_bool() == Some(true) {
            return Ok(None);
        }
        js::get(&v, "value")
            .dyn_into::<js_sys::Uint8Array>()
            .map(Some)
            .map_err(|_| {
                failure(
                    ErrorCode::Internal,
                    "the body gave something other than bytes".into(),
                    false,
                )
            })
    }

    /// Stop reading.
    pub fn cancel(&self) {
        let _ = self.reader.cancel();
    }
}
