//! The service-worker runtime: the one owner of every task.
//!
//! The JavaScript shim (`longhaul-sw.js`) registers the worker's listeners
//! synchronously when the script first runs, loads the wasm, and hands every event
//! to [`worker_handle`]. The runtime starts once per worker life: at once when an
//! already active worker wakes up ([`worker_start`]), else at its first event
//! (`activate` for a new version; an installing worker never starts it). Start-up
//! takes ownership from any older version ([`OWNER_LOCK`]), loads every task record,
//! gives them to the [`Engine`] and resumes the unfinished ones from their committed
//! offsets: whatever woke the worker (a page load, a message, `sync`), work picks up
//! where it stopped. Commands are only processed after that load, so a
//! start-up resume can never race a page's command into a duplicate download.
//!
//! Keep-alive (see the design notes on worker lifetimes): each event's `waitUntil`
//! lasts until no task has work left or [`KEEPALIVE_MS`] passed, well under
//! Chromium's 5-minute kill. Open pages ping every 20 s while tasks are active, and
//! each ping is a new event with a new bounded extension. After the last page closes
//! the worker runs out its last extension and is stopped; nothing is lost because
//! every chunk is committed with its offset as it arrives.
//!
//! ## Files
//!
//! - this one: the [`Runtime`], the entry points ([`worker_start`], [`worker_handle`]);
//! - `startup.rs`: ownership of the tasks ([`OWNER_LOCK`]), the first load, the
//!   runtime singleton (a failed start is tried again by the next event);
//! - `commands.rs`: pages' commands, who may send them, their answers;
//! - `pump.rs`: the engine's outputs applied (writes in order, requests, events, the
//!   timer); `keepalive.rs`: how long events keep the worker alive;
//! - `transfer.rs`: a download request, its body streamed into group commits;
//!   `ahead.rs`: the next Range window asked for ahead (Firefox);
//! - `upload.rs`: uploads' copies (`upload/check.rs`: read back and checked;
//!   `upload/send.rs`: their requests, the termination);
//! - `verify.rs`: integrity checks of finished downloads; `credentials.rs`: the
//!   credentials hook; `notify.rs`: notifications; `testing.rs`: entry points for
//!   the browser tests.

use crate::core::commit::{CommitKind, CHUNK_BYTES};
use crate::core::config;
use crate::core::engine::{Body, EventKind, FetchRequest, Output};
use crate::core::integrity::Integrity;
use crate::core::protocol::{self, Command};
use crate::core::task::TaskRecord;
use crate::core::transfer::{Commit, NextWindow, Transfer};
use crate::core::validate::{merge_headers, HeaderList, SessionId, UrlParts};
use crate::core::{Engine, EngineConfig, ErrorCode, TaskError, TaskId};
use crate::js;
use crate::net::{self, BodyReader, NetFailure};
use crate::store::Store;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, spawn_local, JsFuture};
use web_sys::{AbortController, BroadcastChannel};

use crate::core::protocol::CHANNEL;

/// Longest extension one event asks for (Chromium kills a worker whose event lasts 5 min).
pub const KEEPALIVE_MS: f64 = 270_000.0;

type Write = Pin<Box<dyn Future<Output = Result<(), TaskError>>>>;

struct Runtime {
    engine: RefCell<Engine>,
    store: Store,
    aborts: RefCell<Vec<(TaskId, u64, AbortController)>>,
    timer: RefCell<Option<js::Timer>>,
    /// The promise events extend their lifetime with while tasks have work, shared
    /// by every event (see [`keep_alive`]).
    keepalive: RefCell<Option<KeepAlive>>,
    channel: Option<BroadcastChannel>,
    /// A `sync` event was asked for while tasks wait for the network.
    sync_requested: std::cell::Cell<bool>,
    /// Credential headers pages gave, per task: in memory only, never stored (unless
    /// the page asked for that, in which case they are in the record instead).
    secrets: RefCell<Vec<(TaskId, HeaderList)>>,
}

thread_local! {
    static EVICTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static RUNTIME: RefCell<Option<Rc<Runtime>>> = const { RefCell::new(None) };
    static STARTING: RefCell<Option<js_sys::Promise>> = const { RefCell::new(None) };
    static CREDENTIALS: RefCell<Option<js_sys::Function>> = const { RefCell::new(None) };
    /// The database connection the shim opened while the wasm compiled, for
    /// [`start`] to adopt ([`Store::open_warm`]).
    static WARM: RefCell<Option<js_sys::Promise>> = const { RefCell::new(None) };
}

mod ahead;
mod commands;
mod credentials;
mod keepalive;
mod notify;
mod pump;
mod startup;
#[doc(hidden)]
pub mod testing;
mod transfer;
mod upload;
mod verify;

use ahead::*;
use commands::*;
use credentials::*;
use keepalive::*;
use pump::*;
use startup::*;
use transfer::*;
use verify::*;

/// Start the runtime: take ownership, open storage, load every task, resume the
/// unfinished ones. The shim calls it when an already active worker's script runs
/// (a wake-up); otherwise the first event starts it (an installing worker never does).
///
/// `warm`, if given, resolves to a connection to longhaul's database that the shim
/// opened while the wasm compiled (or to `null`); start-up adopts it if it is at
/// the current version, and closes it otherwise or if the runtime had already
/// started.
#[wasm_bindgen(js_name = workerStart)]
pub async fn worker_start(warm: JsValue) -> Result<(), JsValue> {
    if !warm.is_undefined() && !warm.is_null() {
        WARM.with(|c| *c.borrow_mut() = Some(js_sys::Promise::resolve(&warm)));
    }
    let started = runtime().await.map(|_| ()).map_err(|e| js::error_to_js(&e));
    let unused = WARM.with(|c| c.borrow_mut().take());
    if let Some(db) = crate::store::warm_connection(unused).await {
        db.close();
    }
    started
}

/// Handle a service-worker event; the shim passes the promise to `event.waitUntil`.
#[wasm_bindgen(js_name = workerHandle)]
pub fn worker_handle(
    #[wasm_bindgen(unchecked_param_type = "Event")] event: web_sys::ExtendableEvent,
) -> js_sys::Promise {
    future_to_promise(async move {
        let rt = match runtime().await {
            Ok(rt) => rt,
            Err(e) => {
                // A page waits for its answer: give it the cause now (the next event
                // tries the start-up again).
                if let Some(port) = event
                    .dyn_ref::<web_sys::ExtendableMessageEvent>()
                    .and_then(command_port)
                {
                    answer(&port, Err(e.clone()));
                }
                return Err(js::error_to_js(&e));
            }
        };
        match event.type_().as_str() {
            "message" => {
                if let Ok(ev) = event.dyn_into::<web_sys::ExtendableMessageEvent>() {
                    apart(on_message(&rt, ev)).await;
                }
            }
            // Activation starts the runtime (taking the tasks over from an older
            // version) but must not last: a long `activate` keeps the worker in
            // "activating", and pages' messages wait until it ends.
            "activate" => return Ok(JsValue::UNDEFINED),
            "notificationclick" => {
                apart(notify::on_click(&event)).await;
                return Ok(JsValue::UNDEFINED);
            }
            // Background Sync (Chromium) fires when the network is back.
            "sync" if navigator_online() == Some(true) => {
                rt.engine.borrow_mut().set_online(true, js::now());
                pump(&rt).spawn();
            }
            "fetch" => {
                let navigate = event
                    .dyn_ref::<web_sys::FetchEvent>()
                    .is_some_and(|f| f.request().mode() == web_sys::RequestMode::Navigate);
                if !navigate {
                    return Ok(JsValue::UNDEFINED);
                }
            }
            _ => {}
        }
        JsFuture::from(keep_alive(&rt)).await?;
        Ok(JsValue::UNDEFINED)
    })
}
