//! The page-side API: `BackgroundSession`.
//!
//! A session object is a remote control and a view: commands go to the service worker
//! as messages with a `MessagePort` for the reply; events come back on a
//! `BroadcastChannel` and are re-dispatched on the session as DOM `CustomEvent`s whose
//! `detail` is the task snapshot. Completed bytes are read straight from IndexedDB,
//! never copied through the worker.
//!
//! While the page knows of active tasks it pings the worker every [`PING_MS`]: each
//! ping is an event that extends the worker's life by a bounded amount, which is what
//! keeps transfers going in browsers that stop idle workers after 30 s.

use crate::core::validate::SessionId;
use crate::core::{ErrorCode, TaskError, TaskId};
use crate::js;
use crate::store::Store;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    BroadcastChannel, EventTarget, MessageChannel, MessageEvent, ServiceWorkerRegistration,
};

/// How often an open page pings the worker while tasks are active.
pub const PING_MS: f64 = 20_000.0;
/// How long to wait for the worker to answer a command.
pub const REPLY_TIMEOUT_MS: f64 = 30_000.0;
/// How long `open` waits for a service worker registration to become active.
pub const READY_TIMEOUT_MS: f64 = 15_000.0;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** A task's state. */
export type TaskState = 'pending' | 'running' | 'paused' | 'waiting' | 'completed' | 'failed' | 'canceled';
/** Stable error codes (see the README's table). */
export type ErrorCode = 'invalid-input' | 'network' | 'http-status' | 'timeout' | 'not-resumable'
  | 'quota' | 'storage' | 'canceled' | 'too-large' | 'integrity' | 'over-budget' | 'not-found'
  | 'invalid-state' | 'no-worker' | 'internal';
/** Why a task failed. */
export interface TaskError { code: ErrorCode; message: string; status?: number; }
/** Fields every task's snapshot has. */
interface TaskSnapshotBase {
  id: string;
  session: string;
  url: string;
  description: string;
  state: TaskState;
  bytesExpected: number | null;
  error: TaskError | null;
  createdAt: number;
  updatedAt: number;
  retryAt: number | null;
  /** Why a `waiting` task waits. */
  waitReason: 'offline' | 'retry-at' | 'earliest-begin' | 'connection-limit' | 'discretionary'
    | 'expensive-network' | 'constrained-network' | null;
  /** 0 to 1. */
  priority: number;
  /** Not started before this, ms since the epoch, or null. */
  earliestBegin: number | null;
}
/** A download: `bytesReceived` bytes are stored. */
export interface DownloadSnapshot extends TaskSnapshotBase {
  kind: 'download';
  bytesReceived: number;
}
/** An upload: the server acknowledged `bytesSent` bytes. */
export interface UploadSnapshot extends TaskSnapshotBase {
  kind: 'upload';
  bytesSent: number;
}
/** A plain-object view of a task; `kind` tells which. */
export type TaskSnapshot = DownloadSnapshot | UploadSnapshot;
/** Options of `BackgroundSession.open`. */
export interface OpenOptions {
  /** Refuse with `not-found` instead of creating a session that is not stored (its storage vanished). */
  mustExist?: boolean;
}
/** Opaque, versioned, JSON-serializable resume data of a canceled download. */
export interface ResumeData { readonly longhaulResumeData: number; readonly [key: string]: unknown; }
/** Options of `session.cancel`. */
export interface CancelOptions {
  /** Keep a download's bytes and resolve with resume data for `download(resumeData)`. */
  produceResumeData?: boolean;
}
/** Options of `session.upload`. */
export interface UploadOptions {
  /** `'tus'` (default: resumable, chunked), or one `'put'`/`'post'` restarted from zero on failure. */
  protocol?: 'tus' | 'put' | 'post';
  headers?: Record<string, string> | [string, string][] | Headers;
  description?: string;
  /** tus `Upload-Metadata`; a File's name and type are sent as `filename` and `filetype` unless given. */
  metadata?: Record<string, string>;
  /** Bytes per tus PATCH request (64 KiB to 256 MiB; default 8 MiB). */
  chunkSize?: number;
  /** `Content-Type` of a put/post body (default: the Blob's type, else application/octet-stream). */
  contentType?: string;
  /** As for downloads: header names kept in memory only, besides `Authorization`. */
  sensitiveHeaders?: string[];
  /** Store credential headers with the task (default false). */
  persistCredentials?: boolean;
  /** As for downloads. */
  priority?: number;
  /** As for downloads. */
  earliestBegin?: Date | number;
}
/** Options of `session.download`. */
export interface DownloadOptions {
  headers?: Record<string, string> | [string, string][] | Headers;
  description?: string;
  /** Most bytes the download may store; a larger resource fails with `too-large`. */
  maxBytes?: number;
  /**
   * Subresource Integrity metadata (`'sha256-<base64>'`, sha384, sha512; several
   * separated by spaces). The whole file is checked before the task completes; a
   * mismatch fails it with `integrity` and frees its bytes.
   */
  integrity?: string;
  /**
   * Header names to treat as credentials besides `Authorization`: kept in the
   * worker's memory only, never stored, unless `persistCredentials` is true.
   */
  sensitiveHeaders?: string[];
  /** Store credential headers with the task, so they survive a restart (default false). */
  persistCredentials?: boolean;
  /** Order among the session's tasks for one host, 0 to 1 (default 0.5); higher first. */
  priority?: number;
  /** Not started before this time; survives restarts; runs at the first wake after it. */
  earliestBegin?: Date | number;
  /** Bytes the app expects; refused up front (`over-budget`, `quota`) if they cannot fit. */
  expectedBytes?: number;
}
/** How failed attempts are retried (all durations in ms). */
export interface RetryPolicy {
  /** Failed attempts in a row, without progress, before the task fails (default 8). */
  maxAttempts?: number;
  /** First delay of the exponential backoff (default 1000). */
  baseDelay?: number;
  /** Largest delay, and the clamp for a server's Retry-After (default 60000). */
  maxDelay?: number;
  /** Explicit delays instead of the exponential backoff; the last one repeats. */
  delays?: number[];
  /** No retry once the task is older than this. */
  maxAge?: number;
  /** Random spread of each delay, as a fraction (default 0.2). */
  jitter?: number;
}
/** Session configuration, stored with the session. Unknown keys are refused. */
export interface SessionConfig {
  retry?: RetryPolicy;
  /** A request that receives nothing (no head, no byte) for this long is aborted and retried, ms (default 60000). */
  requestTimeout?: number;
  /**
   * Most bytes the session's tasks may hold together; a download that would cross
   * it fails with `over-budget` before storing those bytes. Default: no budget.
   */
  byteBudget?: number;
  /** Requests of the session in flight to one host at once (default 6, 1 to 64); more wait with `connection-limit`. */
  maxConnectionsPerHost?: number;
  /** A task not finished this long after it was created fails with `timeout`, ms (default 7 days); paused tasks are left alone. */
  resourceTimeout?: number;
  /** Headers sent with every request of the session; a task's own win. `Authorization` is refused here (it would be stored). */
  headers?: Record<string, string> | [string, string][] | Headers;
  /** Run only when pages report a good network (not cellular, no Save-Data, not 2G); best effort (default false). */
  discretionary?: boolean;
  /** May use cellular networks, as pages report them (default true). */
  allowsExpensiveNetworkAccess?: boolean;
  /** May use the network while the user asks to save data (default true). */
  allowsConstrainedNetworkAccess?: boolean;
  /**
   * Show a notification when a task ends while no page is open (default false). The
   * app must have the permission (`Notification.requestPermission()`); clicking the
   * notification focuses or opens the app.
   */
  notifications?: boolean;
}
/** The events a session dispatches; `detail` is the task's snapshot. */
export interface SessionEventMap {
  progress: CustomEvent<TaskSnapshot>;
  statechange: CustomEvent<TaskSnapshot>;
  complete: CustomEvent<TaskSnapshot>;
  /** Every task of the session has ended (delivered once; to a page that opens later if none was open). */
  finish: CustomEvent<{ session: string }>;
}
"#;

type EventHandler = Closure<dyn FnMut(MessageEvent)>;
type NetworkHandler = Closure<dyn FnMut(web_sys::Event)>;
/// A running `setInterval`: its id and its callback.
type Interval = (JsValue, Closure<dyn FnMut()>);

struct Inner {
    id: SessionId,
    target: EventTarget,
    registration: ServiceWorkerRegistration,
    channel: BroadcastChannel,
    on_event: RefCell<Option<EventHandler>>,
    /// The window's `online`/`offline` listener, forwarding them to the worker.
    on_network: RefCell<Option<NetworkHandler>>,
    /// The `navigator.connection` `change` listener.
    on_connection: RefCell<Option<Closure<dyn FnMut()>>>,
    /// The ids of the session's tasks with work left: set by `open`, kept by the
    /// events. Not by the lists `tasks()` returns: they come on another channel than
    /// the events, so one may be older than an event already seen. A JS `Set`, so
    /// that `open` of a session of many tasks converts no id to a Rust string.
    active: RefCell<js_sys::Set>,
    ping: RefCell<Option<Interval>>,
}

/// A background session: open it by identifier, hand it downloads, watch its events.
#[wasm_bindgen]
pub struct BackgroundSession {
    inner: Rc<Inner>,
    is_new: bool,
}

fn err(e: TaskError) -> JsValue {
    js::error_to_js(&e)
}

async fn ready_registration() -> Result<ServiceWorkerRegistration, TaskError> {
    let no_worker = |m: &str| TaskError::new(ErrorCode::NoWorker, m.to_owned());
    let nav = js::get(&js_sys::global(), "navigator");
    let container = js::get(&nav, "serviceWorker");
    let container: web_sys::ServiceWorkerContainer = container
        .dyn_into()
        .map_err(|_| no_worker("service workers are not available here (an insecure origin?)"))?;
    let ready = container
        .ready()
        .map_err(|_| no_worker("navigator.serviceWorker.ready failed"))?;
    let (timeout, _clear) = js::timeout(READY_TIMEOUT_MS, JsValue::NULL);
    let v = JsFuture::from(js_sys::Promise::race(&js_sys::Array::of2(&ready, &timeout)))
        .await
        .map_err(|e| no_worker(&js::describe(&e)))?;
    v.dyn_into::<ServiceWorkerRegistration>().map_err(|_| {
        no_worker(
            "no service worker became active: register one that loads longhaul (see the README)",
        )
    })
}

/// How many times one command is sent at most (see [`Inner::request_within`]).
const MAX_SENDS: u32 = 3;

/// How one sending of a command ended.
enum Sent {
    /// The worker's reply (a `MessageEvent`).
    Answered(JsValue),
    /// The worker became redundant first: an update replaced it.
    Replaced,
    TimedOut,
}

/// Whether an update replaced `worker` (its state is `redundant`).
fn redundant(worker: &web_sys::ServiceWorker) -> bool {
    js::get(worker, "state").as_string().as_deref() == Some("redundant")
}

/// Post `msg` to `worker` with a reply port; wait for the reply, the worker's
/// replacement or `ms`, whichever comes first.
async fn send(worker: &web_sys::ServiceWorker, msg: &JsValue, ms: f64) -> Result<Sent, TaskError> {
    let channel =
        MessageChannel::new().map_err(|e| TaskError::new(ErrorCode::Internal, js::describe(&e)))?;
    let port = channel.port1();
    let reply = js_sys::Promise::new(&mut |resolve, _| {
        port.set_onmessage(Some(&resolve));
    });
    // A fresh object marks the replacement: no reply can equal it.
    let replaced_mark: JsValue = js_sys::Object::new().into();
    let mut on_state = None;
    let replaced = js_sys::Promise::new(&mut |resolve, _| {
        let w = worker.clone();
        let mark = replaced_mark.clone();
        let cb = Closure::<dyn FnMut()>::new(move || {
            if redundant(&w) {
                let _ = resolve.call1(&JsValue::NULL, &mark);
            }
        });
        let _ = worker.add_event_listener_with_callback("statechange", cb.as_ref().unchecked_ref());
        on_state = Some(cb);
    });
    let transfer = js_sys::Array::of1(&channel.port2());
    let posted = worker
        .post_message_with_transferable(msg, &transfer)
        .map_err(|e| TaskError::new(ErrorCode::NoWorker, js::describe(&e)));
    let answer = match posted {
        Ok(()) if redundant(worker) => Ok(Some(replaced_mark.clone())),
        Ok(()) => js::within(
            &js_sys::Promise::race(&js_sys::Array::of2(&reply, &replaced)),
            ms,
        )
        .await
        .map_err(|e| TaskError::new(ErrorCode::Internal, js::describe(&e))),
        Err(e) => Err(e),
    };
    if let Some(cb) = on_state {
        let _ =
            worker.remove_event_listener_with_callback("statechange", cb.as_ref().unchecked_ref());
    }
    port.set_onmessage(None);
    port.close();
    Ok(match answer? {
        Some(v) if v == replaced_mark => Sent::Replaced,
        Some(v) => Sent::Answered(v),
        None => Sent::TimedOut,
    })
}

impl Inner {
    async fn request(&self, op: &str, fields: &[(&str, JsValue)]) -> Result<JsValue, TaskError> {
        self.request_within(op, fields, REPLY_TIMEOUT_MS).await
    }

    /// Send a command to the active worker and wait up to `timeout_ms` for its answer.
    ///
    /// A worker that an update replaced (it became `redundant`) before answering never
    /// will: the command is sent again, to the worker that is active now. Browsers
    /// replace a worker only once it has no event in flight (Chromium gives up waiting
    /// after 5 minutes; no longhaul event lasts that long), so the replaced one never
    /// began the command and sending it again runs it once. Chromium drops a message
    /// posted while the old worker stops for the switch (measured by the worker-update
    /// end-to-end test): without this, such a command waited out the whole timeout.
    async fn request_within(
        &self,
        op: &str,
        fields: &[(&str, JsValue)],
        timeout_ms: f64,
    ) -> Result<JsValue, TaskError> {
        let msg = js_sys::Object::new();
        let set = |k: &str, v: &JsValue| {
            let _ = js_sys::Reflect::set(&msg, &k.into(), v);
        };
        set("longhaul", &1.into());
        set("op", &op.into());
        set("session", &self.id.as_str().into());
        for (k, v) in fields {
            set(k, v);
        }
        let deadline = js::now() + timeout_ms;
        let mut ev = JsValue::NULL;
        let mut replaced: Option<web_sys::ServiceWorker> = None;
        for _ in 0..MAX_SENDS {
            let worker = self.successor(replaced.as_ref(), deadline).await?;
            match send(&worker, &msg, deadline - js::now()).await? {
                Sent::Answered(v) => {
                    ev = v;
                    break;
                }
                Sent::Replaced => replaced = Some(worker),
                Sent::TimedOut => break,
            }
        }
        if ev.is_null() {
            return Err(TaskError::new(
                ErrorCode::NoWorker,
                format!("the service worker did not answer \"{op}\" in time"),
            ));
        }
        let data = js::get(&ev, "data");
        if js::get(&data, "ok").as_bool() == Some(true) {
            Ok(js::get(&data, "value"))
        } else {
            let e = js::get(&data, "error");
            let code = js::get(&e, "code")
                .as_string()
                .and_then(|c| ErrorCode::parse(&c))
                .unwrap_or(ErrorCode::Internal);
            let message = js::get(&e, "message")
                .as_string()
                .unwrap_or_else(|| "the worker sent an unreadable error".into());
            Err(TaskError {
                code,
                message,
                status: js::get(&e, "status").as_f64().map(|s| s as u16),
            })
        }
    }

    /// The registration's active worker; after `replaced` became redundant, the one
    /// that took its place (the page may learn of the old one's end before the
    /// registration shows the new one: wait for it, until `deadline`).
    async fn successor(
        &self,
        replaced: Option<&web_sys::ServiceWorker>,
        deadline: f64,
    ) -> Result<web_sys::ServiceWorker, TaskError> {
        loop {
            let active = self.registration.active();
            match active {
                Some(w) if replaced != Some(&w) => return Ok(w),
                None if replaced.is_none() => {
                    return Err(TaskError::new(
                        ErrorCode::NoWorker,
                        "the service worker is not active",
                    ))
                }
                _ if js::now() >= deadline => {
                    return Err(TaskError::new(
                        ErrorCode::NoWorker,
                        "the service worker was replaced and no new one became active in time",
                    ))
                }
                _ => {
                    let _ = JsFuture::from(js::sleep(20.0)).await;
                }
            }
        }
    }

    /// Track which tasks are active (to ping while any is), from any snapshot seen.
    fn observe(self: &Rc<Self>, snap: &JsValue) {
        let (id, Some(state)) = (js::get(snap, "id"), js::get(snap, "state").as_string()) else {
            return;
        };
        if !id.is_string() {
            return;
        }
        if matches!(state.as_str(), "pending" | "running" | "waiting") {
            self.active.borrow().add(&id);
        } else {
            self.active.borrow().delete(&id);
        }
        self.update_ping();
    }

    /// Replace the set of active tasks with the ids in `ids`, the array of strings
    /// the worker's `open` answers.
    fn set_active(self: &Rc<Self>, ids: &JsValue) {
        let ids = if ids.is_array() {
            ids
        } else {
            &JsValue::UNDEFINED
        };
        *self.active.borrow_mut() = js_sys::Set::new(ids);
        self.update_ping();
    }

    fn update_ping(self: &Rc<Self>) {
        let want = self.active.borrow().size() > 0;
        let has = self.ping.borrow().is_some();
        if want && !has {
            let weak = Rc::downgrade(self);
            let cb = Closure::<dyn FnMut()>::new(move || {
                if let Some(inner) = weak.upgrade() {
                    wasm_bindgen_futures::spawn_local(async move {
                        let _ = inner.request("ping", &[]).await;
                    });
                }
            });
            let set_interval = js::get(&js_sys::global(), "setInterval");
            if let Ok(f) = set_interval.dyn_into::<js_sys::Function>() {
                if let Ok(id) = f.call2(&JsValue::NULL, cb.as_ref(), &PING_MS.into()) {
                    *self.ping.borrow_mut() = Some((id, cb));
                }
            }
        } else if !want && has {
            self.stop_ping();
        }
    }

    /// Forward the window's `online`/`offline` events: service workers get none
    /// (Chromium), and tasks waiting for the network resume on `online`.
    fn forward_network_events(self: &Rc<Self>) {
        let global = js_sys::global();
        let Some(target) = global.dyn_ref::<EventTarget>() else {
            return;
        };
        let weak = Rc::downgrade(self);
        let cb = Closure::<dyn FnMut(web_sys::Event)>::new(move |ev: web_sys::Event| {
            let Some(inner) = weak.upgrade() else { return };
            let online = ev.type_() == "online";
            wasm_bindgen_futures::spawn_local(async move {
                let _ = inner.request("network", &[("online", online.into())]).await;
            });
        });
        for kind in ["online", "offline"] {
            let _ = target.add_event_listener_with_callback(kind, cb.as_ref().unchecked_ref());
        }
        *self.on_network.borrow_mut() = Some(cb);
        // `navigator.connection` (Network Information API, where it exists): report it
        // now and on every change, for sessions with a network policy.
        let connection = js::get(&js::get(&global, "navigator"), "connection");
        let weak = Rc::downgrade(self);
        let report = Closure::<dyn FnMut()>::new(move || {
            if let Some(inner) = weak.upgrade() {
                wasm_bindgen_futures::spawn_local(async move {
                    let _ = inner
                        .request("network", &[("connection", connection_report())])
                        .await;
                });
            }
        });
        if let Some(c) = connection.dyn_ref::<EventTarget>() {
            let _ = c.add_event_listener_with_callback("change", report.as_ref().unchecked_ref());
        }
        *self.on_connection.borrow_mut() = Some(report);
    }

    /// Send the first report of `navigator.connection`.
    async fn report_connection(&self) {
        let _ = self
            .request("network", &[("connection", connection_report())])
            .await;
    }

    fn stop_ping(&self) {
        if let Some((id, _cb)) = self.ping.borrow_mut().take() {
            if let Ok(f) =
                js::get(&js_sys::global(), "clearInterval").dyn_into::<js_sys::Function>()
            {
                let _ = f.call1(&JsValue::NULL, &id);
            }
        }
    }
}

/// Check that each of `keys` in `options` is absent or of its `typeof`, and pass it on.
fn typed_options(
    options: &JsValue,
    fields: &mut Vec<(&'static str, JsValue)>,
    keys: &[(&'static str, &str)],
) -> Result<(), JsValue> {
    for &(key, kind) in keys {
        let v = js::get(options, key);
        if !v.is_undefined() && v.js_typeof().as_string().as_deref() != Some(kind) {
            return Err(js::type_error(&format!("options.{key} must be a {kind}")));
        }
        fields.push((key, v));
    }
    Ok(())
}

/// The options every new task takes: `description`, `headers`, the credentials
/// options and the scheduling options.
fn task_options(
    options: &JsValue,
    fields: &mut Vec<(&'static str, JsValue)>,
) -> Result<(), JsValue> {
    typed_options(
        options,
        fields,
        &[("description", "string"), ("persistCredentials", "boolean")],
    )?;
    let sensitive = js::get(options, "sensitiveHeaders");
    if !sensitive.is_undefined() && !string_array(&sensitive) {
        return Err(js::type_error(
            "options.sensitiveHeaders must be an array of header names",
        ));
    }
    fields.push(("sensitiveHeaders", sensitive));
    fields.push((
        "headers",
        js::header_pairs(&js::get(options, "headers"))?.into(),
    ));
    schedule_options(options, fields)
}

/// `priority` and `earliestBegin` (a `Date`, or ms since the epoch) of task options.
fn schedule_options(
    options: &JsValue,
    fields: &mut Vec<(&'static str, JsValue)>,
) -> Result<(), JsValue> {
    let priority = js::get(options, "priority");
    if !priority.is_undefined() && priority.as_f64().is_none() {
        return Err(js::type_error(
            "options.priority must be a number from 0 to 1",
        ));
    }
    let begin = js::get(options, "earliestBegin");
    let begin = if let Some(d) = begin.dyn_ref::<js_sys::Date>() {
        // An invalid Date gives NaN, which the worker refuses with invalid-input.
        JsValue::from_f64(d.get_time())
    } else if begin.is_undefined() || begin.as_f64().is_some() {
        begin
    } else {
        return Err(js::type_error(
            "options.earliestBegin must be a Date (or ms since the epoch)",
        ));
    };
    fields.push(("priority", priority));
    fields.push(("earliestBegin", begin));
    Ok(())
}

/// A session configuration as the worker reads it: `headers` as `[name, value]`
/// pairs, the rest as given (the worker checks every key and value).
fn config_for_worker(c: &JsValue) -> Result<JsValue, JsValue> {
    let headers = js::get(c, "headers");
    if headers.is_undefined() {
        return Ok(c.clone());
    }
    let copy = js_sys::Object::assign(&js_sys::Object::new(), c.unchecked_ref());
    let pairs: JsValue = js::header_pairs(&headers)?.into();
    let _ = js_sys::Reflect::set(&copy, &"headers".into(), &pairs);
    Ok(copy.into())
}

/// `url` (a string or `URL`, maybe relative to the page) as an absolute URL string.
fn absolute_url(url: &JsValue) -> Result<String, JsValue> {
    let url = if let Some(u) = url.dyn_ref::<web_sys::Url>() {
        u.href()
    } else {
        url.as_string()
            .ok_or_else(|| js::type_error("the URL must be a string or a URL"))?
    };
    let base = js::get(&js::get(&js_sys::global(), "location"), "href")
        .as_string()
        .unwrap_or_default();
    web_sys::Url::new_with_base(&url, &base)
        .map(|u| u.href())
        .map_err(|_| err(TaskError::invalid(format!("\"{url}\" is not a valid URL"))))
}

fn string_array(v: &JsValue) -> bool {
    js_sys::Array::is_array(v) && js_sys::Array::from(v).every(&mut |x, _, _| x.is_string())
}

/// An upload body as a `Blob` (one is made around an `ArrayBuffer` or typed array).
fn upload_blob(body: &JsValue) -> Result<web_sys::Blob, JsValue> {
    if let Some(b) = body.dyn_ref::<web_sys::Blob>() {
        return Ok(b.clone());
    }
    if body.is_instance_of::<js_sys::ArrayBuffer>() || js_sys::ArrayBuffer::is_view(body) {
        return web_sys::Blob::new_with_buffer_source_sequence(&js_sys::Array::of1(body))
            .map_err(|e| err(TaskError::new(ErrorCode::Internal, js::describe(&e))));
    }
    Err(js::type_error(
        "the upload body must be a Blob, File, ArrayBuffer or typed array",
    ))
}

/// `metadata` (an object of strings) as `[key, value]` pairs.
fn metadata_pairs(m: &JsValue) -> Result<js_sys::Array, JsValue> {
    let bad = || js::type_error("options.metadata must be an object of strings");
    if !m.is_object() || js_sys::Array::is_array(m) {
        return Err(bad());
    }
    let out = js_sys::Array::new();
    for e in js_sys::Object::entries(m.unchecked_ref()).iter() {
        let pair = js_sys::Array::from(&e);
        if !pair.get(1).is_string() {
            return Err(bad());
        }
        out.push(&pair);
    }
    Ok(out)
}

/// `navigator.connection` as `{ saveData, type, effectiveType }` (each `undefined`
/// where unknown; `{}` where the API is missing).
fn connection_report() -> JsValue {
    let c = js::get(&js::get(&js_sys::global(), "navigator"), "connection");
    let out = js_sys::Object::new();
    for key in ["saveData", "type", "effectiveType"] {
        let v = js::get(&c, key);
        if v.is_string() || v.as_bool().is_some() {
            let _ = js_sys::Reflect::set(&out, &key.into(), &v);
        }
    }
    out.into()
}

fn task_id(id: &JsValue) -> Result<TaskId, JsValue> {
    match id.as_string() {
        Some(s) if !s.is_empty() => Ok(TaskId(s)),
        _ => Err(js::type_error("a task id must be a non-empty string")),
    }
}

#[wasm_bindgen]
impl BackgroundSession {
    /// Open the session `identifier` (creating it if new). Pages that open the same
    /// identifier share its tasks. Rejects with a `TypeError` for an empty or
    /// non-string identifier, before anything is stored.
    #[wasm_bindgen(unchecked_return_type = "BackgroundSession")]
    pub async fn open(
        #[wasm_bindgen(unchecked_param_type = "string")] identifier: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "SessionConfig")] config: Option<JsValue>,
        #[wasm_bindgen(unchecked_optional_param_type = "OpenOptions")] options: Option<JsValue>,
    ) -> Result<BackgroundSession, JsValue> {
        let must_exist = options
            .map(|o| js::get(&o, "mustExist"))
            .filter(|v| !v.is_undefined());
        if must_exist.as_ref().is_some_and(|v| v.as_bool().is_none()) {
            return Err(js::type_error("options.mustExist must be a boolean"));
        }
        let config = config.filter(|c| !c.is_undefined() && !c.is_null());
        if config.as_ref().is_some_and(|c| !c.is_object()) {
            return Err(js::type_error(
                "the session configuration must be an object",
            ));
        }
        let id = identifier
            .as_string()
            .ok_or_else(|| js::type_error("the session identifier must be a string"))?;
        let id = SessionId::parse(&id).map_err(|e| js::type_error(&e.message))?;
        let registration = ready_registration().await.map_err(err)?;
        let channel = BroadcastChannel::new(crate::core::protocol::CHANNEL)
            .map_err(|e| err(TaskError::new(ErrorCode::Internal, js::describe(&e))))?;
        let target = EventTarget::new()
            .map_err(|e| err(TaskError::new(ErrorCode::Internal, js::describe(&e))))?;
        let inner = Rc::new(Inner {
            id,
            target,
            registration,
            channel,
            on_event: RefCell::new(None),
            on_network: RefCell::new(None),
            on_connection: RefCell::new(None),
            active: RefCell::new(js_sys::Set::new(&JsValue::UNDEFINED)),
            ping: RefCell::new(None),
        });
        let weak = Rc::downgrade(&inner);
        let on_event = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let Some(inner) = weak.upgrade() else { return };
            let data = ev.data();
            if js::get(&data, "session").as_string().as_deref() != Some(inner.id.as_str()) {
                return;
            }
            let Some(kind) = js::get(&data, "type").as_string() else {
                return;
            };
            let snap = js::get(&data, "snapshot");
            inner.observe(&snap);
            let init = web_sys::CustomEventInit::new();
            init.set_detail(&snap);
            if let Ok(event) = web_sys::CustomEvent::new_with_event_init_dict(&kind, &init) {
                let _ = inner.target.dispatch_event(&event);
            }
        });
        inner
            .channel
            .set_onmessage(Some(on_event.as_ref().unchecked_ref()));
        *inner.on_event.borrow_mut() = Some(on_event);
        inner.forward_network_events();
        let config = config.map(|c| config_for_worker(&c)).transpose()?;
        let mut fields: Vec<(&str, JsValue)> = config.into_iter().map(|c| ("config", c)).collect();
        if let Some(m) = must_exist {
            fields.push(("mustExist", m));
        }
        let opened = inner.request("open", &fields).await.map_err(err)?;
        inner.report_connection().await;
        inner.set_active(&js::get(&opened, "active"));
        if js::get(&opened, "finishPending").as_bool() == Some(true) {
            // The session finished while no page was open: deliver `finish` once,
            // after the caller had a chance to add its listener.
            let target = inner.target.clone();
            let session = inner.id.as_str().to_owned();
            js::Timer::once(0.0, move || {
                let detail = js_sys::Object::new();
                let _ = js_sys::Reflect::set(&detail, &"session".into(), &session.into());
                let init = web_sys::CustomEventInit::new();
                init.set_detail(&detail);
                if let Ok(ev) = web_sys::CustomEvent::new_with_event_init_dict("finish", &init) {
                    let _ = target.dispatch_event(&ev);
                }
            })
            .forget();
        }
        let is_new = js::get(&opened, "isNew").as_bool() == Some(true);
        Ok(BackgroundSession { inner, is_new })
    }

    /// The identifiers of the stored sessions, except those invalidated by
    /// `finishTasksAndInvalidate` (read from IndexedDB; no worker needed).
    #[wasm_bindgen(unchecked_return_type = "string[]")]
    pub async fn identifiers() -> Result<JsValue, JsValue> {
        let store = Store::open().await.map_err(err)?;
        let out = js_sys::Array::new();
        for s in store.load_sessions().await.map_err(err)? {
            if !s.invalidated {
                out.push(&s.id.into());
            }
        }
        Ok(out.into())
    }

    /// Take no new task; the tasks go on to their end, then the session gets its
    /// `finish` event and is no longer listed by `identifiers()`. Opening it again
    /// makes it live again.
    #[wasm_bindgen(js_name = finishTasksAndInvalidate)]
    pub async fn finish_tasks_and_invalidate(&self) -> Result<(), JsValue> {
        self.inner
            .request("invalidate", &[("cancel", false.into())])
            .await
            .map_err(err)?;
        Ok(())
    }

    /// Cancel every task, free every byte and forget the session.
    #[wasm_bindgen(js_name = invalidateAndCancel)]
    pub async fn invalidate_and_cancel(&self) -> Result<(), JsValue> {
        self.inner
            .request("invalidate", &[("cancel", true.into())])
            .await
            .map_err(err)?;
        self.inner.active.borrow().clear();
        self.inner.stop_ping();
        Ok(())
    }

    /// Whether this `open` created the session: it was not stored before. An app
    /// that knows it opened this identifier before is seeing a session whose storage
    /// vanished (site data cleared: the web's force-quit); `open(id, config, {
    /// mustExist: true })` refuses such a session with `not-found` instead.
    #[wasm_bindgen(getter, js_name = isNew)]
    pub fn is_new(&self) -> bool {
        self.is_new
    }

    /// The session's identifier.
    #[wasm_bindgen(getter)]
    pub fn identifier(&self) -> String {
        self.inner.id.as_str().to_owned()
    }

    /// Start downloading `url` (absolute, or relative to the page). Resolves with the
    /// new task's snapshot once the task is stored.
    #[wasm_bindgen(unchecked_return_type = "DownloadSnapshot")]
    pub async fn download(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | URL | ResumeData")] url: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "DownloadOptions")] options: Option<JsValue>,
    ) -> Result<JsValue, JsValue> {
        if url.is_object() && !js::get(&url, "longhaulResumeData").is_undefined() {
            // Resume data from `cancel(id, { produceResumeData: true })`: the worker
            // checks it against the bytes it kept.
            let snap = self
                .inner
                .request("download", &[("resumeData", url)])
                .await
                .map_err(err)?;
            self.inner.observe(&snap);
            return Ok(snap);
        }
        let absolute = absolute_url(&url)?;
        let options = options.unwrap_or(JsValue::UNDEFINED);
        let mut fields = vec![("url", JsValue::from(absolute))];
        if options.is_object() {
            task_options(&options, &mut fields)?;
            typed_options(
                &options,
                &mut fields,
                &[
                    ("maxBytes", "number"),
                    ("expectedBytes", "number"),
                    ("integrity", "string"),
                ],
            )?;
        } else if !options.is_undefined() && !options.is_null() {
            return Err(js::type_error("options must be an object"));
        }
        let snap = self.inner.request("download", &fields).await.map_err(err)?;
        self.inner.observe(&snap);
        Ok(snap)
    }

    /// Upload `body` (a `Blob`, `File`, `ArrayBuffer` or typed array) to `url`: a tus
    /// endpoint by default, or with `protocol: 'put' | 'post'` the resource itself.
    /// Its bytes are copied into longhaul's storage before the promise resolves, so
    /// the page may close at once; `quota` if they do not fit, with nothing left half
    /// stored.
    #[wasm_bindgen(unchecked_return_type = "UploadSnapshot")]
    pub async fn upload(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | URL")] url: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Blob | ArrayBuffer | ArrayBufferView")]
        body: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "UploadOptions")] options: Option<JsValue>,
    ) -> Result<JsValue, JsValue> {
        let absolute = absolute_url(&url)?;
        let blob = upload_blob(&body)?;
        let options = options.unwrap_or(JsValue::UNDEFINED);
        let mut fields = vec![
            ("url", JsValue::from(absolute)),
            ("body", blob.clone().into()),
        ];
        if options.is_object() {
            task_options(&options, &mut fields)?;
            typed_options(
                &options,
                &mut fields,
                &[
                    ("protocol", "string"),
                    ("contentType", "string"),
                    ("chunkSize", "number"),
                ],
            )?;
            let meta = js::get(&options, "metadata");
            if !meta.is_undefined() {
                fields.push(("metadata", metadata_pairs(&meta)?.into()));
            }
        } else if !options.is_undefined() && !options.is_null() {
            return Err(js::type_error("options must be an object"));
        }
        let given = |fields: &[(&str, JsValue)], k: &str| {
            fields.iter().any(|(f, v)| *f == k && !v.is_undefined())
        };
        if !given(&fields, "metadata") {
            // A File's name and type, as tus clients send them.
            let pairs = js_sys::Array::new();
            if let Some(name) = js::get(&body, "name").as_string() {
                pairs.push(&js_sys::Array::of2(&"filename".into(), &name.into()));
            }
            if !blob.type_().is_empty() {
                pairs.push(&js_sys::Array::of2(
                    &"filetype".into(),
                    &blob.type_().into(),
                ));
            }
            fields.push(("metadata", pairs.into()));
        }
        if !given(&fields, "contentType") && !blob.type_().is_empty() {
            fields.push(("contentType", blob.type_().into()));
        }
        // Copying into storage and checking the copy take time: allow 4 MiB/s on top
        // of the usual wait (both ran at 64-75 MiB/s here; slow phones run far below).
        let timeout = REPLY_TIMEOUT_MS + blob.size() / (4.0 * 1024.0 * 1024.0) * 1000.0;
        let snap = self
            .inner
            .request_within("upload", &fields, timeout)
            .await
            .map_err(err)?;
        self.inner.observe(&snap);
        Ok(snap)
    }

    /// Every task of the session, oldest first. (The worker sends them as JSON; see
    /// its `tasks` command.)
    #[wasm_bindgen(unchecked_return_type = "TaskSnapshot[]")]
    pub async fn tasks(&self) -> Result<JsValue, JsValue> {
        let list = self.inner.request("tasks", &[]).await.map_err(err)?;
        match list.as_string() {
            Some(json) => js_sys::JSON::parse(&json),
            None => Ok(list), // an older worker, mid-update, answers with the objects
        }
    }

    /// One task, or `null`.
    #[wasm_bindgen(unchecked_return_type = "TaskSnapshot | null")]
    pub async fn task(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
    ) -> Result<JsValue, JsValue> {
        let id = task_id(&id)?;
        self.inner
            .request("task", &[("id", id.0.into())])
            .await
            .map_err(err)
    }

    /// Pause a task; its stored bytes are kept. Resolves with the snapshot.
    #[wasm_bindgen(unchecked_return_type = "TaskSnapshot")]
    pub async fn pause(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
    ) -> Result<JsValue, JsValue> {
        self.task_command("pause", &id).await
    }

    /// Resume a paused or failed task from its committed offset.
    #[wasm_bindgen(unchecked_return_type = "TaskSnapshot")]
    pub async fn resume(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
    ) -> Result<JsValue, JsValue> {
        self.task_command("resume", &id).await
    }

    /// Cancel a task and free its bytes. Resolves `true`, or `false` if it was
    /// already canceled. With `{ produceResumeData: true }` (downloads), the bytes are
    /// kept and it resolves with resume data for `download(resumeData)`.
    #[wasm_bindgen(unchecked_return_type = "boolean | ResumeData")]
    pub async fn cancel(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CancelOptions")] options: Option<JsValue>,
    ) -> Result<JsValue, JsValue> {
        let id = task_id(&id)?;
        let produce = options
            .map(|o| js::get(&o, "produceResumeData"))
            .filter(|v| !v.is_undefined());
        if produce.as_ref().is_some_and(|v| v.as_bool().is_none()) {
            return Err(js::type_error(
                "options.produceResumeData must be a boolean",
            ));
        }
        let mut fields = vec![("id", JsValue::from(id.0))];
        if let Some(p) = produce {
            fields.push(("produceResumeData", p));
        }
        self.inner.request("cancel", &fields).await.map_err(err)
    }

    /// Forget an ended (completed, failed or canceled) task and free its bytes.
    pub async fn remove(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
    ) -> Result<(), JsValue> {
        let id = task_id(&id)?;
        self.inner
            .request("remove", &[("id", id.0.clone().into())])
            .await
            .map_err(err)?;
        self.inner.active.borrow().delete(&JsValue::from_str(&id.0));
        Ok(())
    }

    /// The bytes of a completed download: a Blob composed of the stored chunks the
    /// worker lists, backed by IndexedDB's files where the browser stores Blobs, so
    /// nothing is read into memory until the Blob is read (and then as it is read).
    #[wasm_bindgen(unchecked_return_type = "Blob")]
    pub async fn blob(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
    ) -> Result<JsValue, JsValue> {
        let id = task_id(&id)?;
        let v = self
            .inner
            .request("blob", &[("id", id.0.into()), ("pieces", true.into())])
            .await
            .map_err(err)?;
        // The worker sends the stored pieces, composed here (see the store's docs,
        // "Why pages compose their Blobs"); a worker of an older version ignores
        // `pieces` and sends the Blob itself.
        match v.dyn_ref::<js_sys::Array>() {
            Some(pieces) => web_sys::Blob::new_with_blob_sequence(pieces).map(Into::into),
            None => Ok(v),
        }
    }

    /// Add a listener for `progress`, `statechange` or `complete`.
    #[wasm_bindgen(js_name = addEventListener)]
    pub fn add_event_listener(
        &self,
        #[wasm_bindgen(unchecked_param_type = "keyof SessionEventMap")] kind: &str,
        #[wasm_bindgen(unchecked_param_type = "(event: CustomEvent<TaskSnapshot>) => void")]
        listener: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "boolean | AddEventListenerOptions")]
        options: Option<JsValue>,
    ) -> Result<(), JsValue> {
        self.call_target("addEventListener", kind, listener, options)
    }

    /// Remove a listener.
    #[wasm_bindgen(js_name = removeEventListener)]
    pub fn remove_event_listener(
        &self,
        #[wasm_bindgen(unchecked_param_type = "keyof SessionEventMap")] kind: &str,
        #[wasm_bindgen(unchecked_param_type = "(event: CustomEvent<TaskSnapshot>) => void")]
        listener: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "boolean | EventListenerOptions")]
        options: Option<JsValue>,
    ) -> Result<(), JsValue> {
        self.call_target("removeEventListener", kind, listener, options)
    }

    /// Dispatch an event on the session (as `EventTarget.dispatchEvent`).
    #[wasm_bindgen(js_name = dispatchEvent)]
    pub fn dispatch_event(&self, event: &web_sys::Event) -> Result<bool, JsValue> {
        self.inner.target.dispatch_event(event)
    }

    /// Stop listening and pinging; the session's tasks go on in the worker. A session
    /// that is dropped (collected, or freed with `free()` or `using`) without it, and
    /// an `open` that fails, do the same.
    pub fn close(&self) {
        self.inner.teardown();
    }
}

impl Inner {
    /// Remove every listener and timer this session added to the page, so that none
    /// outlives it (a listener whose closure is gone would throw when it fires). Runs
    /// at `close()` and when the last reference goes ([`Drop`]); a second run finds
    /// nothing left to remove.
    fn teardown(&self) {
        self.stop_ping();
        if let Some(cb) = self.on_connection.borrow_mut().take() {
            let c = js::get(&js::get(&js_sys::global(), "navigator"), "connection");
            if let Some(c) = c.dyn_ref::<EventTarget>() {
                let _ =
                    c.remove_event_listener_with_callback("change", cb.as_ref().unchecked_ref());
            }
        }
        if self.on_event.borrow_mut().take().is_some() {
            self.channel.set_onmessage(None);
            self.channel.close();
        }
        if let (Some(cb), Some(target)) = (
            self.on_network.borrow_mut().take(),
            js_sys::global().dyn_ref::<EventTarget>(),
        ) {
            for kind in ["online", "offline"] {
                let _ =
                    target.remove_event_listener_with_callback(kind, cb.as_ref().unchecked_ref());
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.teardown();
    }
}

impl BackgroundSession {
    async fn task_command(&self, op: &str, id: &JsValue) -> Result<JsValue, JsValue> {
        let id = task_id(id)?;
        let snap = self
            .inner
            .request(op, &[("id", id.0.into())])
            .await
            .map_err(err)?;
        self.inner.observe(&snap);
        Ok(snap)
    }

    fn call_target(
        &self,
        method: &str,
        kind: &str,
        listener: JsValue,
        options: Option<JsValue>,
    ) -> Result<(), JsValue> {
        let f: js_sys::Function = js::get(&self.inner.target, method).dyn_into()?;
        f.call3(
            &self.inner.target,
            &kind.into(),
            &listener,
            &options.unwrap_or(JsValue::UNDEFINED),
        )?;
        Ok(())
    }
}
