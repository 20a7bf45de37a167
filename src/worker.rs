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

use crate::core::commit::{CommitKind, CommitPolicy, CHUNK_BYTES};
use crate::core::config;
use crate::core::engine::{Body, EventKind, FetchRequest, Output};
use crate::core::http;
use crate::core::integrity::Integrity;
use crate::core::protocol::{self, Command};
use crate::core::task::TaskRecord;
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

/// Longest extension one event asks for (Chromium kills a worker whose event lasts 5 min).
pub const KEEPALIVE_MS: f64 = 270_000.0;
use crate::core::protocol::CHANNEL;

type Write = Pin<Box<dyn Future<Output = Result<(), TaskError>>>>;

mod notify;
mod upload;

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

/// Set the app's credentials hook (`install({ credentials })` in the worker script).
/// It is called before every attempt of every request with `{ url, taskId, session,
/// attempt }` and returns (or resolves to) headers for that attempt only, such as a
/// fresh `Authorization`: they are never stored, and a request resumed after a
/// restart asks the hook again instead of replaying stale credentials.
#[wasm_bindgen(js_name = workerSetCredentials)]
pub fn worker_set_credentials(hook: JsValue) -> Result<(), JsValue> {
    let hook = if hook.is_undefined() || hook.is_null() {
        None
    } else {
        Some(hook.dyn_into::<js_sys::Function>().map_err(|_| {
            js::type_error("the credentials hook must be a function returning headers")
        })?)
    };
    CREDENTIALS.with(|c| *c.borrow_mut() = hook);
    Ok(())
}

/// The credentials for one attempt of a request of `task`: the page's (kept in
/// memory only), then the hook's fresh ones on top.
async fn credentials(
    rt: &Runtime,
    task: &TaskId,
    url: &str,
    session: &str,
    attempt: u32,
    timeout_ms: f64,
) -> Result<HeaderList, NetFailure> {
    let secrets = rt
        .secrets
        .borrow()
        .iter()
        .find(|(t, _)| t == task)
        .map(|(_, h)| h.clone())
        .unwrap_or_default();
    let hooked = hook_headers(url, task, session, attempt, timeout_ms).await?;
    Ok(secrets.merged(&hooked))
}

/// The headers the credentials hook gives for an attempt, validated like a page's.
async fn hook_headers(
    url: &str,
    task: &TaskId,
    session: &str,
    attempt: u32,
    timeout_ms: f64,
) -> Result<HeaderList, NetFailure> {
    let Some(hook) = CREDENTIALS.with(|c| c.borrow().clone()) else {
        return Ok(HeaderList::default());
    };
    let hook_failed = |m: String| NetFailure {
        error: TaskError::new(
            ErrorCode::Network,
            format!("the credentials hook failed: {m}"),
        ),
        retryable: true,
    };
    let arg = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&arg, &"url".into(), &url.into());
    let _ = js_sys::Reflect::set(&arg, &"taskId".into(), &task.0.as_str().into());
    let _ = js_sys::Reflect::set(&arg, &"session".into(), &session.into());
    let _ = js_sys::Reflect::set(&arg, &"attempt".into(), &attempt.into());
    let v = hook
        .call1(&JsValue::UNDEFINED, &arg)
        .map_err(|e| hook_failed(js::describe(&e)))?;
    let v = js::within(&js_sys::Promise::resolve(&v), timeout_ms)
        .await
        .map_err(|e| hook_failed(js::describe(&e)))?
        .ok_or_else(|| {
            hook_failed(format!(
                "it did not answer within requestTimeout ({} s)",
                (timeout_ms / 1000.0) as u64
            ))
        })?;
    if v.is_undefined() || v.is_null() {
        return Ok(HeaderList::default());
    }
    let pairs = js::header_pairs(&v).map_err(|e| hook_failed(js::describe(&e)))?;
    let pairs = pairs
        .iter()
        .map(|p| {
            let p = js_sys::Array::from(&p);
            (
                p.get(0).as_string().unwrap_or_default(),
                p.get(1).as_string().unwrap_or_default(),
            )
        })
        .collect();
    HeaderList::parse(pairs).map_err(|e| hook_failed(e.message))
}

/// The Web Lock that marks the one worker owning every task of the origin.
pub const OWNER_LOCK: &str = "longhaul:owner";

/// Take ownership of the origin's tasks from any older worker (an update activating
/// while the old version still runs transfers): steal the owner lock and hold it for
/// the worker's life. The worker it was stolen from sees its request rejected and
/// stops at once ([`evict`]), so two versions never write the same task. Resolves
/// once the lock is held (at once where Web Locks are missing).
async fn claim_ownership() {
    let locks = js::get(&js::get(&js_sys::global(), "navigator"), "locks");
    let Ok(request) = js::get(&locks, "request").dyn_into::<js_sys::Function>() else {
        return;
    };
    let opts = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&opts, &"steal".into(), &true.into());
    let mut granted_tx = None;
    let granted = js_sys::Promise::new(&mut |resolve, _| granted_tx = Some(resolve));
    let hold = Closure::once_into_js(move |_lock: JsValue| -> js_sys::Promise {
        if let Some(resolve) = granted_tx {
            let _ = resolve.call0(&JsValue::NULL);
        }
        js_sys::Promise::new(&mut |_, _| {}) // never settles: held until the worker dies
    });
    let Ok(held) = request.call3(&locks, &OWNER_LOCK.into(), &opts, &hold) else {
        return;
    };
    if let Ok(held) = held.dyn_into::<js_sys::Promise>() {
        // One closure for the worker's whole life: leaking it is the point.
        let on_lost = Closure::<dyn FnMut(JsValue)>::new(|_: JsValue| evict());
        let _ = held.catch(&on_lost);
        on_lost.forget();
    }
    let _ = JsFuture::from(granted).await;
}

/// A newer worker took over: abort every request and write nothing more.
fn evict() {
    EVICTED.with(|e| e.set(true));
    js::warn("a newer service worker took over the transfers; this one stops");
    if let Some(rt) = RUNTIME.with(|r| r.borrow().clone()) {
        for (_, _, ctl) in rt.aborts.borrow_mut().drain(..) {
            ctl.abort();
        }
        *rt.timer.borrow_mut() = None;
    }
}

fn evicted() -> bool {
    EVICTED.with(|e| e.get())
}

/// Start-up, shortest path to the first resumed request (measured by `make bench`):
/// the database connection is the one the shim opened while the wasm compiled
/// ([`Store::open_warm`]), the owner lock is claimed while it opens, sessions and
/// tasks are read in one transaction, and the sweep of orphaned chunks runs after
/// the resumed requests went out (still before any command, which it must precede:
/// an upload being copied in has chunks and no record yet).
///
/// Where the time goes, measured with `performance.now()` stamps in a Chromium
/// worker woken by the navigation of a browser relaunched after a SIGKILL (2 CPUs,
/// 5 runs; the stamps were not committed):
/// - the worker starts 28-224 ms after the navigation (the relaunched browser keeps
///   both cores busy);
/// - the shim's open of IndexedDB, cold after the relaunch, takes 97-158 ms, longer
///   than fetching, compiling and instantiating the wasm (67-108 ms): in every run
///   the wasm was ready first and waited for the database;
/// - from the open connection to the resumed request, 57-114 ms: the owner lock
///   5-36 ms, reading 5-15 ms, decoding the records, restoring, scheduling and the
///   first write 10-40 ms, most of it Chromium compiling each function at its first
///   call (it compiles wasm lazily), the request itself 8-25 ms later.
///
/// So the cold open sets the floor: a design that sent the resumed request from
/// JavaScript before the wasm ran would still wait for it, as the offsets live in
/// IndexedDB. Reading before the lock is held would save the lock's 5-36 ms, but a
/// worker it is taken from may still write (or remove) a task after the read.
/// Firefox asks for a download's bytes in windows of this size
/// ([`EngineConfig::fetch_window`]), the next asked for a little before one ends
/// (`core::http::ask_ahead`), so that no round trip stops the transfer at a window's
/// edge.
///
/// Why: Firefox's parent process reads a response off the network as fast as it
/// comes and holds what the worker has not read yet; at loopback speed, where
/// storage is slower than the network, a 1 GiB download raised its memory by
/// +829 MiB (a plain script that drops the bytes: +589-673). Measured with
/// plain-JS workers (`make bench`, memory section, `BENCH_MEM_STORES=discard,
/// discardwin16,discardwin4`; `www/bench/raw-sw.js`), the same 1 GiB fetched as
/// Range windows rose +137 MiB in 16 MiB windows and +87 in 4 MiB ones, against
/// +589 as one response; and stored into OPFS in 32 MiB windows it ran at 0.96 of one
/// response (138.8 against 144.6 MiB/s, 4 runs). A window also bounds what a crash
/// makes Firefox fetch twice. Chromium's network service stops reading when the
/// worker does (its download's rise is flat, +85-97 MiB), so it keeps one response
/// per transfer and saves the requests.
const FETCH_WINDOW: u64 = 16 << 20;

async fn start() -> Result<Rc<Runtime>, TaskError> {
    let claimed = future_to_promise(async {
        claim_ownership().await;
        Ok(JsValue::UNDEFINED)
    });
    let store = Store::open_warm(WARM.with(|w| w.borrow_mut().take())).await?;
    let _ = JsFuture::from(claimed).await;
    let config = EngineConfig {
        fetch_window: crate::store::firefox().then_some(FETCH_WINDOW),
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(config, js::random_seed());
    let (sessions, tasks) = store.load_all().await?;
    for stored in sessions {
        if let Ok(session) = SessionId::parse(&stored.id) {
            engine.set_invalidated(&session, stored.invalidated);
            engine.configure(session, stored.config);
        }
    }
    let mut replaced = Vec::new();
    for rec in tasks {
        match rec {
            Ok(rec) => engine.restore(rec),
            Err(bad) => {
                let session = bad.session.as_deref().map(SessionId::parse);
                match (bad.id, session) {
                    (Some(id), Some(Ok(session))) if !id.is_empty() => {
                        let url = bad.url.unwrap_or_default();
                        let rec = TaskRecord::unreadable(
                            TaskId(id),
                            session,
                            url,
                            &bad.reason,
                            js::now(),
                        );
                        engine.restore(rec.clone());
                        replaced.push(rec);
                    }
                    _ => js::warn(&format!(
                        "skipping a task record without id or session: {}",
                        bad.reason
                    )),
                }
            }
        }
    }
    let rt = Rc::new(Runtime {
        engine: RefCell::new(engine),
        store,
        aborts: RefCell::new(Vec::new()),
        timer: RefCell::new(None),
        keepalive: RefCell::new(None),
        channel: BroadcastChannel::new(CHANNEL).ok(),
        sync_requested: std::cell::Cell::new(false),
        secrets: RefCell::new(Vec::new()),
    });
    rt.engine.borrow_mut().schedule(js::now());
    pump(&rt).spawn();
    // Let the resumed requests go out first (they are queued tasks now).
    let _ = JsFuture::from(js_sys::Promise::resolve(&JsValue::UNDEFINED)).await;
    apart(after_start(&rt, replaced)).await?;
    Ok(rt)
}

/// The rest of start-up, once the resumed requests are on their way: the sweeps of
/// orphaned chunks and segment files, and the replacement of unreadable records.
async fn after_start(rt: &Rc<Runtime>, replaced: Vec<TaskRecord>) -> Result<(), TaskError> {
    let known: Vec<TaskId> = rt.engine.borrow().ids();
    match rt.store.drop_orphans(&known).await {
        Ok(0) => {}
        Ok(n) => js::warn(&format!(
            "freed the stored bytes of {n} unfinished upload copies"
        )),
        Err(e) => js::warn(&format!("could not look for orphaned bytes: {e}")),
    }
    let sweeper = rt.clone();
    spawn_local(async move {
        if let Err(e) = sweeper.store.sweep_segments().await {
            js::warn(&format!("could not sweep the segment files: {e}"));
        }
    });
    for rec in &replaced {
        // The failed record replaces the corrupt one; its bytes are freed.
        if let Err(e) = rt.store.drop_bytes(rec)?.await {
            js::warn(&format!("could not replace an unreadable task record: {e}"));
        }
    }
    Ok(())
}

/// The runtime, started once however many callers ask at the same time.
async fn runtime() -> Result<Rc<Runtime>, TaskError> {
    if let Some(rt) = RUNTIME.with(|r| r.borrow().clone()) {
        return Ok(rt);
    }
    let promise = STARTING.with(|s| {
        s.borrow_mut()
            .get_or_insert_with(|| {
                future_to_promise(async {
                    let rt = start().await.map_err(|e| js::error_to_js(&e))?;
                    RUNTIME.with(|r| *r.borrow_mut() = Some(rt));
                    Ok(JsValue::UNDEFINED)
                })
            })
            .clone()
    });
    if let Err(e) = JsFuture::from(promise).await {
        STARTING.with(|s| *s.borrow_mut() = None);
        return Err(TaskError::new(ErrorCode::Storage, js::describe(&e)));
    }
    RUNTIME
        .with(|r| r.borrow().clone())
        .ok_or_else(|| TaskError::new(ErrorCode::Internal, "the runtime did not start"))
}

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
                if let Some(ev) = event.dyn_ref::<web_sys::ExtendableMessageEvent>() {
                    answer(ev, Err(e.clone()));
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

/// A promise that resolves when no task has work left, or after [`KEEPALIVE_MS`].
struct KeepAlive {
    promise: js_sys::Promise,
    resolve: js_sys::Function,
    since: f64,
}

/// Resolves when no task has work left, or after [`KEEPALIVE_MS`] at most (at least
/// half of it). Events share one such promise, renewed once half its time is gone:
/// a page's command or keep-alive ping costs no timer of its own.
fn keep_alive(rt: &Rc<Runtime>) -> js_sys::Promise {
    if !rt.engine.borrow().has_work() {
        return js_sys::Promise::resolve(&JsValue::UNDEFINED);
    }
    let now = js::now();
    if let Some(k) = rt.keepalive.borrow().as_ref() {
        if now - k.since < KEEPALIVE_MS / 2.0 {
            return k.promise.clone();
        }
    }
    let mut resolve = None;
    let idle = js_sys::Promise::new(&mut |r, _| resolve = Some(r));
    let Some(resolve) = resolve else {
        return js_sys::Promise::resolve(&JsValue::UNDEFINED); // the executor runs at once
    };
    let promise = js_sys::Promise::race(&js_sys::Array::of2(&idle, &js::sleep(KEEPALIVE_MS)));
    let old = rt.keepalive.borrow_mut().replace(KeepAlive {
        promise: promise.clone(),
        resolve,
        since: now,
    });
    // The events it kept alive may end: the new one keeps the worker alive.
    if let Some(old) = old {
        let _ = old.resolve.call0(&JsValue::NULL);
    }
    promise
}

/// Writes started by one pump, in the order their transactions were created.
struct Writes(Vec<Write>);

impl Writes {
    fn spawn(self) {
        for w in self.0 {
            spawn_local(async move {
                if let Err(e) = w.await {
                    js::warn(&format!("a write failed: {e}"));
                }
            });
        }
    }

    async fn wait(self) -> Result<(), TaskError> {
        let mut first_err = None;
        for w in self.0 {
            if let Err(e) = w.await {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// `f` as a future of its own (boxed, polled through a pointer), never inlined into
/// its caller's. Chromium compiles each wasm function when it is first called:
/// work that is not on the way to the first resumed request (a page's command, the
/// sweeps after start-up) stays out of the functions that are, and is compiled only
/// when it runs (start-up, in the README's Benchmark).
fn apart<'a, T: 'a>(f: impl Future<Output = T> + 'a) -> Pin<Box<dyn Future<Output = T> + 'a>> {
    Box::pin(f)
}

fn boxed<F: Future<Output = Result<(), TaskError>> + 'static>(r: Result<F, TaskError>) -> Write {
    match r {
        Ok(f) => Box::pin(f),
        Err(e) => Box::pin(async move { Err(e) }),
    }
}

/// Apply every output of the engine. Transactions are created here, synchronously
/// and in order; the returned writes say when they end. Records to write one after
/// another, with no other write between them, share one transaction (an input
/// often changes a task twice: adding one writes it pending, then waiting), which
/// commits them together, as their order wants.
fn pump(rt: &Rc<Runtime>) -> Writes {
    let mut writes = Vec::new();
    if evicted() {
        return Writes(writes);
    }
    let mut records: Vec<TaskRecord> = Vec::new();
    let flush = |records: &mut Vec<TaskRecord>, writes: &mut Vec<Write>| {
        if !records.is_empty() {
            writes.push(boxed(rt.store.put_tasks(records)));
            records.clear();
        }
    };
    loop {
        let out = rt.engine.borrow_mut().poll_output();
        let Some(out) = out else { break };
        if matches!(out, Output::PersistAndDropBytes(_) | Output::Forget(_)) {
            flush(&mut records, &mut writes);
        }
        match out {
            Output::Fetch(req) => spawn_local(run_request(rt.clone(), req)),
            Output::Abort { task, gen } => {
                let mut aborts = rt.aborts.borrow_mut();
                if let Some(i) = aborts.iter().position(|(t, g, _)| *t == task && *g == gen) {
                    aborts.swap_remove(i).2.abort();
                }
            }
            Output::Persist(rec) => records.push(rec),
            Output::PersistAndDropBytes(rec) => writes.push(boxed(rt.store.drop_bytes(&rec))),
            Output::Forget(id) => {
                rt.secrets.borrow_mut().retain(|(t, _)| *t != id);
                writes.push(boxed(rt.store.forget(&id)));
            }
            Output::Verify {
                task,
                gen,
                upto,
                integrity,
            } => spawn_local(verify(rt.clone(), task, gen, upto, integrity)),
            Output::Send(req) => spawn_local(upload::run_send(rt.clone(), req)),
            Output::Finished(session) => {
                // Broadcast to the pages open now; with none open, kept as pending
                // until a page opens the session (`open` returns and clears it).
                let detail = js_sys::Object::new();
                let _ = js_sys::Reflect::set(&detail, &"session".into(), &session.as_str().into());
                broadcast(rt, "finish", session.as_str(), &detail.into());
                let store_rt = rt.clone();
                writes.push(Box::pin(async move {
                    if window_count().await == 0 {
                        store_rt
                            .store
                            .set_session_flag(session.as_str(), "finishPending", true)
                            .await?;
                    }
                    Ok(())
                }));
            }
            Output::ForgetSession(session) => {
                let store_rt = rt.clone();
                writes.push(Box::pin(async move {
                    store_rt.store.delete_session(session.as_str()).await
                }));
            }
            Output::Terminate {
                task,
                url,
                headers,
                session,
            } => {
                let rt = rt.clone();
                writes.push(Box::pin(upload::terminate(rt, task, url, headers, session)));
            }
            Output::Event(kind, snap) => {
                broadcast(rt, kind.as_str(), &snap.session, &js::to_js(&snap));
                if kind == EventKind::Complete {
                    writes.push(Box::pin({
                        let rt = rt.clone();
                        async move {
                            notify::on_event(rt, kind, snap).await;
                            Ok(())
                        }
                    }));
                }
            }
        }
    }
    flush(&mut records, &mut writes);
    rearm(rt);
    let waits = rt.engine.borrow().waits_for_network();
    if waits && !rt.sync_requested.replace(true) {
        request_sync();
    } else if !waits {
        rt.sync_requested.set(false);
    }
    if !rt.engine.borrow().has_work() {
        if let Some(k) = rt.keepalive.borrow_mut().take() {
            let _ = k.resolve.call0(&JsValue::NULL);
        }
    }
    Writes(writes)
}

/// How many window clients (pages) of this worker are open.
async fn window_count() -> u32 {
    let clients = js::get(&js_sys::global(), "clients");
    let Ok(match_all) = js::get(&clients, "matchAll").dyn_into::<js_sys::Function>() else {
        return 0;
    };
    let opts = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&opts, &"type".into(), &"window".into());
    let Ok(p) = match_all
        .call1(&clients, &opts)
        .and_then(|p| p.dyn_into::<js_sys::Promise>())
    else {
        return 0;
    };
    JsFuture::from(p)
        .await
        .ok()
        .map_or(0, |list| js_sys::Array::from(&list).length())
}

/// Publish an event to the pages of `session`.
fn broadcast(rt: &Runtime, kind: &str, session: &str, detail: &JsValue) {
    if let Some(ch) = &rt.channel {
        let msg = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&msg, &"type".into(), &kind.into());
        let _ = js_sys::Reflect::set(&msg, &"session".into(), &session.into());
        let _ = js_sys::Reflect::set(&msg, &"snapshot".into(), detail);
        let _ = ch.post_message(&msg);
    }
}

/// `navigator.onLine` of this global, if the browser has it.
fn navigator_online() -> Option<bool> {
    js::get(&js::get(&js_sys::global(), "navigator"), "onLine").as_bool()
}

/// Where Background Sync exists (Chromium), ask for a `sync` event for when the
/// network returns, so tasks waiting for it resume even with no page open.
fn request_sync() {
    let sync = js::get(&js::get(&js_sys::global(), "registration"), "sync");
    if let Ok(register) = js::get(&sync, "register").dyn_into::<js_sys::Function>() {
        if let Ok(p) = register.call1(&sync, &"longhaul-network".into()) {
            if let Ok(p) = p.dyn_into::<js_sys::Promise>() {
                // A refusal (no permission) leaves the page events and the next wake.
                spawn_local(async move {
                    let _ = JsFuture::from(p).await;
                });
            }
        }
    }
}

/// Set the timer for the engine's next wake-up.
fn rearm(rt: &Rc<Runtime>) {
    let next = rt.engine.borrow().poll_timeout();
    let timer = next.map(|at| {
        let weak = Rc::downgrade(rt);
        js::Timer::once(at - js::now(), move || {
            if let Some(rt) = weak.upgrade() {
                rt.engine.borrow_mut().handle_timeout(js::now());
                pump(&rt).spawn();
            }
        })
    });
    *rt.timer.borrow_mut() = timer;
}

/// Check the stored bytes of a finished download against its integrity metadata.
async fn verify(rt: Rc<Runtime>, task: TaskId, gen: u64, upto: u64, integrity: Integrity) {
    if let Some(result) = hash_stored(&rt, &task, gen, upto, &integrity).await {
        rt.engine
            .borrow_mut()
            .handle_verified(&task, gen, result, js::now());
    }
    pump(&rt).spawn();
}

/// Chunks read from storage per transaction while hashing: bounded memory.
const VERIFY_BATCH: u32 = 8;

/// Hash `[0, upto)` of the task's stored bytes, a few chunks at a time; `None` if
/// the check stopped being wanted (paused, canceled, a newer worker took over).
async fn hash_stored(
    rt: &Rc<Runtime>,
    task: &TaskId,
    gen: u64,
    upto: u64,
    integrity: &Integrity,
) -> Option<Result<(), TaskError>> {
    let wanted = || !evicted() && rt.engine.borrow().is_verifying(task, gen);
    let mut v = integrity.verifier();
    let read = rt
        .store
        .read_span(task, (0, 0, upto), Some(VERIFY_BATCH), |_, bytes| {
            v.update(&bytes.to_vec());
            wanted()
        })
        .await;
    match read {
        Ok(true) if wanted() => Some(v.finish()),
        Ok(_) => None,
        Err(e) => Some(Err(e)),
    }
}

async fn run_request(rt: Rc<Runtime>, req: FetchRequest) {
    let (task, gen) = (req.task.clone(), req.gen);
    with_abort(rt, task, gen, |rt, ctl| async move {
        transfer(&rt, &req, &ctl).await?;
        Ok(())
    })
    .await;
}

/// Run one request of `task` with an abort controller registered for `gen` (so that
/// pause, cancel or eviction can abort it); a failure goes to the engine.
async fn with_abort<F, Fut>(rt: Rc<Runtime>, task: TaskId, gen: u64, f: F)
where
    F: FnOnce(Rc<Runtime>, AbortController) -> Fut,
    Fut: Future<Output = Result<(), NetFailure>>,
{
    let result = match AbortController::new() {
        Ok(ctl) => {
            rt.aborts
                .borrow_mut()
                .push((task.clone(), gen, ctl.clone()));
            let r = f(rt.clone(), ctl).await;
            rt.aborts
                .borrow_mut()
                .retain(|(t, g, _)| !(*t == task && *g == gen));
            r
        }
        Err(e) => Err(NetFailure {
            error: TaskError::new(ErrorCode::Internal, js::describe(&e)),
            retryable: false,
        }),
    };
    if evicted() {
        return;
    }
    if let Err(f) = result {
        rt.engine
            .borrow_mut()
            .handle_failure(&task, gen, f.error, f.retryable, js::now());
    }
    pump(&rt).spawn();
}

/// `parts` (`len` bytes in all) cut into chunk records of [`CHUNK_BYTES`] each, the
/// last one taking the remainder (a commit under a chunk is one smaller record): each
/// record as the views of `parts` it is made of. No byte is copied here; the store
/// copies each record's views once, into a Blob (or one array).
fn chunked(parts: &[js_sys::Uint8Array], len: u32) -> Vec<js_sys::Array> {
    let count = (len / CHUNK_BYTES).max(1);
    let mut out = Vec::with_capacity(count as usize);
    let mut src = parts.iter();
    let mut cur: Option<(&js_sys::Uint8Array, u32)> = None; // a part, and how much of it is used
    for i in 0..count {
        let size = if i + 1 < count {
            CHUNK_BYTES
        } else {
            len - (count - 1) * CHUNK_BYTES
        };
        let views = js_sys::Array::new();
        let mut fill = 0;
        while fill < size {
            let Some((part, used)) = cur.take().or_else(|| src.next().map(|p| (p, 0))) else {
                break;
            };
            let n = (part.length() - used).min(size - fill);
            if used == 0 && n == part.length() {
                views.push(part);
            } else {
                views.push(&part.subarray(used, used + n));
            }
            fill += n;
            if used + n < part.length() {
                cur = Some((part, used + n));
            }
        }
        out.push(views);
    }
    out
}

fn storage_failure(e: TaskError) -> NetFailure {
    NetFailure {
        error: e,
        retryable: false,
    }
}

/// One request: head, then the body in committed chunks.
///
/// Group commit: reading goes on while commits are in flight, each commit taking
/// what arrived during the last; when a commit starts, and whether it is chunk
/// records (one transaction with the offset) or a segment file (the file, then its
/// record with the offset), is [`CommitPolicy`]'s to say (`core::commit`). Commits
/// complete in the order they started, so the engine's committed offset only moves
/// forward, at [`committed`], and never covers a byte whose transaction did not
/// commit.
async fn transfer(
    rt: &Rc<Runtime>,
    req: &FetchRequest,
    ctl: &AbortController,
) -> Result<(), NetFailure> {
    let extra = credentials(
        rt,
        &req.task,
        &req.url,
        &req.session,
        req.attempt,
        req.stall_ms,
    )
    .await?;
    let headers = merge_headers(&req.headers, extra.pairs());
    let sent_at = js::now();
    let resp = net::send("GET", &req.url, &headers, None, req.stall_ms, ctl).await?;
    // The round trip the next Range windows are asked for ahead of (`http::ask_ahead`).
    let head_ms = js::now() - sent_at;
    let head = net::head(&resp);
    let decision = rt
        .engine
        .borrow_mut()
        .handle_head(&req.task, req.gen, &head, js::now());
    pump(rt).spawn();
    let Body::StreamAt(offset) = decision else {
        net::drop_body(&resp);
        return Ok(());
    };
    let Some(mut reader) = BodyReader::new(&resp) else {
        rt.engine
            .borrow_mut()
            .handle_body_end(&req.task, req.gen, js::now());
        return Ok(());
    };
    // The next Range window (Firefox), asked for ahead of this one's end; where this
    // window's body began, and when.
    let mut plan = rt.engine.borrow_mut().window_after(&req.task, req.gen);
    let mut ahead: Option<Ahead> = None;
    let mut window_from = (offset, js::now());
    let mut drop_from = Some(offset);
    let mut parts: Vec<js_sys::Uint8Array> = Vec::new();
    let mut buffered: u32 = 0;
    let mut done = false;
    let mut read: Option<Read> = None;
    // Commits in flight, oldest first, with the offset each makes durable; they
    // complete in this order (IndexedDB runs them in the order they were created).
    let mut writes: std::collections::VecDeque<(ChunkWrite, u64)> = Default::default();
    let mut issued = offset; // the end of the last commit started
    rt.store.probe().await;
    // When commits start, and which kind (`core::commit`).
    let mut policy = CommitPolicy::new(rt.store.segmented(), js::now());
    loop {
        let now = js::now();
        if let Some(kind) = policy.due(writes.len(), buffered, done, now) {
            let chunks = chunked(&parts, buffered);
            parts.clear();
            let new_pos = issued + u64::from(buffered);
            let w = if kind == CommitKind::Segment {
                // The file first; the record once it is closed, made then, so that
                // it is current when its transaction is made (`Store::commit_segment`).
                let file = rt
                    .store
                    .write_segment(&req.task, issued, &chunks)
                    .map_err(|e| {
                        reader.cancel();
                        storage_failure(e)
                    })?;
                let (rt, task, gen) = (rt.clone(), req.task.clone(), req.gen);
                let (at, drop_from) = (issued, drop_from.take());
                Box::pin(async move {
                    let seg = file.await?;
                    let rec = rt
                        .engine
                        .borrow_mut()
                        .commit_record(&task, gen, new_pos, js::now());
                    let Some(rec) = rec.filter(|_| !evicted()) else {
                        seg.discard().await;
                        return Ok(false);
                    };
                    rt.store.commit_segment(&rec, at, seg, drop_from)?.await?;
                    Ok(true)
                }) as ChunkWrite
            } else {
                let rec = rt
                    .engine
                    .borrow_mut()
                    .commit_record(&req.task, req.gen, new_pos, now);
                let Some(rec) = rec.filter(|_| !evicted()) else {
                    reader.cancel();
                    return Ok(());
                };
                let w = rt
                    .store
                    .write_chunks(&rec, issued, &chunks, drop_from.take())
                    .map_err(|e| {
                        reader.cancel();
                        storage_failure(e)
                    })?;
                Box::pin(async move { w.await.map(|()| true) })
            };
            writes.push_back((w, new_pos));
            policy.started(kind, buffered, now);
            issued = new_pos;
            buffered = 0;
        }
        if done && writes.is_empty() && buffered == 0 {
            rt.engine
                .borrow_mut()
                .handle_body_end(&req.task, req.gen, js::now());
            return Ok(());
        }
        if read.is_none() && !done && buffered < policy.max_buffered() {
            read = Some(Box::pin(reader.next(req.stall_ms)));
        }
        match step(&mut read, writes.front_mut()).await {
            Step::Piece(Ok(Some(p))) => {
                read = None;
                buffered += p.length();
                parts.push(p);
                let pos = issued + u64::from(buffered);
                let (from, since) = window_from;
                let rate = pos.saturating_sub(from) as f64 / (js::now() - since).max(1.0);
                let due = |(at, ..): &mut (u64, String, String)| {
                    http::ask_ahead(at.saturating_sub(pos), rate, head_ms)
                };
                if let Some(next) = plan.take_if(due) {
                    ahead = Some(Ahead::ask(req, &headers, next, ctl));
                }
            }
            Step::Piece(Ok(None)) => {
                read = None;
                done = true;
                // A window ended: go on with the next in this transfer, its bytes going
                // on into the same commits (`core::http`, "Windows"), if it starts
                // where this body ended (if not, `handle_body_end` sorts it out).
                let at = issued + u64::from(buffered);
                if let Some(next) = plan.take_if(|(start, ..)| *start == at) {
                    ahead = Some(Ahead::ask(req, &headers, next, ctl));
                }
                if let Some(next) = ahead.take().filter(|a| a.at == at) {
                    match next_window(rt, req, &next).await {
                        Ok(Some(r)) => {
                            reader = r;
                            done = false;
                            plan = rt.engine.borrow_mut().window_after(&req.task, req.gen);
                            window_from = (at, js::now());
                        }
                        Ok(None) => {}
                        Err(failure) => return Err(settle(rt, req, writes, failure).await),
                    }
                }
            }
            Step::Piece(Err(failure)) => return Err(settle(rt, req, writes, failure).await),
            Step::Written(result) => {
                // `step` saw the oldest write end: it is there.
                let new_pos = writes.pop_front().map_or(issued, |(_, p)| p);
                let stored = match result {
                    Ok(stored) => stored,
                    Err(e) => {
                        reader.cancel();
                        return Err(storage_failure(e));
                    }
                };
                policy.ended(js::now());
                if !stored || !committed(rt, req, new_pos) {
                    reader.cancel();
                    return Ok(());
                }
            }
        }
    }
}

/// Keep what is already on its way to storage when a transfer breaks with
/// `failure`; then report the break.
async fn settle(
    rt: &Rc<Runtime>,
    req: &FetchRequest,
    writes: std::collections::VecDeque<(ChunkWrite, u64)>,
    failure: NetFailure,
) -> NetFailure {
    for (w, new_pos) in writes {
        if w.await != Ok(true) || !committed(rt, req, new_pos) {
            break;
        }
    }
    failure
}

/// The next Range window of a transfer, asked for before the current one's body has
/// ended: where it starts, and its answer, which a task of its own awaits (a request
/// is sent only when its future runs). If the transfer ends without taking it, its
/// body is let go once the answer arrives.
struct Ahead {
    at: u64,
    slot: Rc<RefCell<AheadSlot>>,
}

#[derive(Default)]
struct AheadSlot {
    answer: Option<Result<web_sys::Response, NetFailure>>,
    waker: Option<std::task::Waker>,
    abandoned: bool,
}

impl Ahead {
    /// Send the request for `(at, range, if_range)` ([`Engine::window_after`]), with
    /// the transfer's `headers` and abort signal.
    fn ask(
        req: &FetchRequest,
        headers: &[(String, String)],
        (at, range, if_range): (u64, String, String),
        ctl: &AbortController,
    ) -> Ahead {
        let window = [("range".into(), range), ("if-range".into(), if_range)];
        let headers = merge_headers(headers, &window);
        let slot = Rc::new(RefCell::new(AheadSlot::default()));
        let (to, url, stall_ms, ctl) = (slot.clone(), req.url.clone(), req.stall_ms, ctl.clone());
        spawn_local(async move {
            let answer = net::send("GET", &url, &headers, None, stall_ms, &ctl).await;
            let mut to = to.borrow_mut();
            if to.abandoned {
                if let Ok(resp) = &answer {
                    net::drop_body(resp);
                }
                return;
            }
            to.answer = Some(answer);
            if let Some(w) = to.waker.take() {
                w.wake();
            }
        });
        Ahead { at, slot }
    }

    /// The answer, once it has arrived.
    async fn answer(&self) -> Result<web_sys::Response, NetFailure> {
        std::future::poll_fn(|cx| {
            let mut slot = self.slot.borrow_mut();
            match slot.answer.take() {
                Some(a) => std::task::Poll::Ready(a),
                None => {
                    slot.waker = Some(cx.waker().clone());
                    std::task::Poll::Pending
                }
            }
        })
        .await
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        let mut slot = self.slot.borrow_mut();
        slot.abandoned = true;
        if let Some(Ok(resp)) = slot.answer.take() {
            net::drop_body(&resp);
        }
    }
}

/// Take the window asked for ahead: the reader of its body if the engine takes its
/// head, `None` if not (the body is dropped).
async fn next_window(
    rt: &Rc<Runtime>,
    req: &FetchRequest,
    next: &Ahead,
) -> Result<Option<BodyReader>, NetFailure> {
    let resp = next.answer().await?;
    let head = net::head(&resp);
    let fits =
        rt.engine
            .borrow_mut()
            .handle_window_head(&req.task, req.gen, next.at, &head, js::now());
    if !fits {
        net::drop_body(&resp);
        return Ok(None);
    }
    Ok(BodyReader::new(&resp))
}

/// The next piece of the body being read.
type Read = Pin<Box<dyn Future<Output = Result<Option<js_sys::Uint8Array>, NetFailure>>>>;

/// What [`step`] saw first.
enum Step {
    Piece(Result<Option<js_sys::Uint8Array>, NetFailure>),
    Written(Result<bool, TaskError>),
}

/// A commit of a transfer in flight: `Ok(false)` if its bytes were dropped (the task
/// is no longer this request's), with nothing stored.
type ChunkWrite = Pin<Box<dyn Future<Output = Result<bool, TaskError>>>>;

/// Wait for the pending read or the oldest write in flight, whichever settles first
/// (the write if both have). Neither is dropped unsettled: a read that lost the race
/// stays pending for the next call. At least one of them must be there.
async fn step(read: &mut Option<Read>, mut write: Option<&mut (ChunkWrite, u64)>) -> Step {
    std::future::poll_fn(|cx| {
        if let Some((w, _)) = write.as_mut() {
            if let std::task::Poll::Ready(r) = w.as_mut().poll(cx) {
                return std::task::Poll::Ready(Step::Written(r));
            }
        }
        if let Some(r) = read.as_mut() {
            if let std::task::Poll::Ready(p) = r.as_mut().poll(cx) {
                return std::task::Poll::Ready(Step::Piece(p));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Tell the engine that `pos` bytes of the request's task are committed; false once
/// the request is no longer the task's current one (paused, canceled, superseded).
fn committed(rt: &Rc<Runtime>, req: &FetchRequest, pos: u64) -> bool {
    rt.engine
        .borrow_mut()
        .handle_committed(&req.task, req.gen, pos, js::now());
    pump(rt).spawn();
    rt.engine.borrow().is_current(&req.task, req.gen)
}

/// A command from a page: validate, apply, reply on the port.
async fn on_message(rt: &Rc<Runtime>, ev: web_sys::ExtendableMessageEvent) {
    let data = ev.data();
    if command_port(&ev).is_none() {
        return;
    }
    let result = command(rt, data).await;
    answer(&ev, result);
}

/// The reply port of a page's command, if `ev` is one from a window of this origin
/// (anything else is ignored, and logged if it claimed to be longhaul's).
fn command_port(ev: &web_sys::ExtendableMessageEvent) -> Option<web_sys::MessagePort> {
    if js::get(&ev.data(), "longhaul").is_undefined() {
        return None; // someone else's message
    }
    let Some(port) = ev.ports().get(0).dyn_into::<web_sys::MessagePort>().ok() else {
        js::warn("ignored a command without a reply port");
        return None;
    };
    if !from_own_window(ev) {
        js::warn("ignored a command that did not come from a window of this origin");
        return None;
    }
    Some(port)
}

/// Answer the page's command `ev` with `result` (`{ ok, value }` or `{ ok, error }`).
fn answer(ev: &web_sys::ExtendableMessageEvent, result: Result<JsValue, TaskError>) {
    let Some(port) = command_port(ev) else {
        return;
    };
    let reply = js_sys::Object::new();
    match result {
        Ok(v) => {
            let _ = js_sys::Reflect::set(&reply, &"ok".into(), &true.into());
            let _ = js_sys::Reflect::set(&reply, &"value".into(), &v);
        }
        Err(e) => {
            let _ = js_sys::Reflect::set(&reply, &"ok".into(), &false.into());
            let _ = js_sys::Reflect::set(&reply, &"error".into(), &js::to_js(&e));
        }
    }
    let _ = port.post_message(&reply);
}

/// Commands are accepted only from window clients of the worker's own origin.
fn from_own_window(ev: &web_sys::ExtendableMessageEvent) -> bool {
    let Some(src) = ev.source() else { return false };
    let Some(client) = src.dyn_ref::<web_sys::WindowClient>() else {
        return false;
    };
    let origin = js::get(&js::get(&js_sys::global(), "location"), "origin")
        .as_string()
        .unwrap_or_default();
    let url = client.url();
    !origin.is_empty() && (url == origin || url.starts_with(&format!("{origin}/")))
}

/// Refuse up front a transfer of `bytes` that the session's byte budget
/// (`over-budget`) or the browser's storage estimate (`quota`) has no room for.
/// Where the estimate is missing, the browser's side refuses nothing.
async fn check_space(rt: &Runtime, session: &SessionId, bytes: u64) -> Result<(), TaskError> {
    rt.engine.borrow().check_room(session, bytes)?;
    let storage = js::get(&js::get(&js_sys::global(), "navigator"), "storage");
    let Ok(estimate) = js::get(&storage, "estimate").dyn_into::<js_sys::Function>() else {
        return Ok(());
    };
    let Ok(p) = estimate
        .call0(&storage)
        .and_then(|p| p.dyn_into::<js_sys::Promise>())
    else {
        return Ok(());
    };
    let Ok(e) = JsFuture::from(p).await else {
        return Ok(());
    };
    let (quota, usage) = (js::get(&e, "quota").as_f64(), js::get(&e, "usage").as_f64());
    if let (Some(q), Some(u)) = (quota, usage) {
        if bytes as f64 > q - u {
            return Err(TaskError::new(
                ErrorCode::Quota,
                format!(
                    "{bytes} bytes are expected, but the browser's storage has room for {}",
                    (q - u).max(0.0) as u64
                ),
            ));
        }
    }
    Ok(())
}

/// Parse and check a task's URL with the browser's parser: http(s), no
/// credentials, no mixed content.
fn http_url(href: &str) -> Result<crate::core::validate::HttpUrl, TaskError> {
    let origin_protocol = js::get(&js::get(&js_sys::global(), "location"), "protocol")
        .as_string()
        .unwrap_or_default();
    protocol::download_url(url_parts(href)?, &origin_protocol)
}

fn url_parts(href: &str) -> Result<UrlParts, TaskError> {
    let u = web_sys::Url::new(href)
        .map_err(|_| TaskError::invalid(format!("\"{href}\" is not a valid absolute URL")))?;
    Ok(UrlParts {
        href: u.href(),
        protocol: u.protocol(),
        username: u.username(),
        password: u.password(),
        host: u.host(),
    })
}

/// The own enumerable keys of `v`, if it is an object.
fn keys(v: &JsValue) -> Vec<String> {
    v.dyn_ref::<js_sys::Object>()
        .map(|o| {
            js_sys::Object::keys(o)
                .iter()
                .filter_map(|k| k.as_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn command(rt: &Rc<Runtime>, data: JsValue) -> Result<JsValue, TaskError> {
    let config = js::get(&data, "config");
    if config.is_object() {
        config::check_keys(
            "the session configuration",
            &keys(&config),
            config::CONFIG_KEYS,
        )?;
        let retry = js::get(&config, "retry");
        config::check_keys("config.retry", &keys(&retry), config::RETRY_KEYS)?;
    }
    let body = js::get(&data, "body");
    let raw = crate::from_js::command(&data)
        .map_err(|e| TaskError::invalid(format!("a malformed command: {e}")))?;
    let (session, cmd) = raw.validate()?;
    if evicted() {
        return Err(TaskError::new(
            ErrorCode::NoWorker,
            "this service worker was replaced by a newer one",
        ));
    }
    let now = js::now();
    let value = match cmd {
        Command::Open { config, must_exist } => {
            let Some((existed, pending)) = rt
                .store
                .open_session(session.as_str(), config.as_ref(), must_exist, now)
                .await?
            else {
                return Err(TaskError::new(
                    ErrorCode::NotFound,
                    format!(
                        "session \"{}\" is not stored: its storage vanished (site data cleared, or evicted) or it never existed",
                        session.as_str()
                    ),
                ));
            };
            rt.engine.borrow_mut().set_invalidated(&session, false);
            if let Some(config) = config {
                rt.engine.borrow_mut().configure(session.clone(), config);
            }
            let reply = js_sys::Object::new();
            let _ = js_sys::Reflect::set(&reply, &"finishPending".into(), &pending.into());
            let _ = js_sys::Reflect::set(&reply, &"isNew".into(), &(!existed).into());
            // The tasks with work left, for the page's keep-alive pings (a session of
            // many tasks would otherwise cost the page a whole list to learn them).
            let active: js_sys::Array = rt
                .engine
                .borrow()
                .active_ids(&session)
                .iter()
                .map(|id| JsValue::from_str(&id.0))
                .collect();
            let _ = js_sys::Reflect::set(&reply, &"active".into(), &active);
            reply.into()
        }
        Command::Invalidate { cancel } => {
            if cancel {
                rt.engine.borrow_mut().invalidate_and_cancel(&session, now);
            } else {
                rt.store
                    .set_session_flag(session.as_str(), "invalidated", true)
                    .await?;
                rt.engine.borrow_mut().finish_and_invalidate(&session);
            }
            pump(rt).wait().await?;
            JsValue::UNDEFINED
        }
        Command::Ping => JsValue::UNDEFINED,
        Command::Network(online) => {
            rt.engine.borrow_mut().set_online(online, now);
            pump(rt).spawn();
            JsValue::UNDEFINED
        }
        Command::Connection(report) => {
            rt.engine.borrow_mut().set_network_report(report, now);
            pump(rt).spawn();
            JsValue::UNDEFINED
        }
        // One JSON string, which the page parses: measured with 10,000 tasks in
        // Chromium, serde_json (25-45 ms) and the page's `JSON.parse` (30-60 ms) cost
        // half of what building the objects in wasm (80-95 ms) and cloning them to
        // the page (about 90 ms) did.
        Command::Tasks => serde_json::to_string(&rt.engine.borrow().list(&session))
            .map(|s| JsValue::from_str(&s))
            .map_err(|e| TaskError::new(ErrorCode::Internal, e.to_string()))?,
        Command::Task(id) => js::to_js(&rt.engine.borrow().get(&session, &id)),
        Command::Blob { id, pieces } => {
            // Listed here, where the store's reading code lives; the page composes
            // the pieces (Blobs cross postMessage without their bytes), as Firefox
            // buffers a Blob composed here while the page reads it (store docs).
            // Pages of older versions, open across an update, get the one Blob.
            let received = rt.engine.borrow().completed_bytes(&session, &id)?;
            if pieces {
                rt.store.pieces(&id, (0, 0, received)).await?.into()
            } else {
                rt.store.blob(&id, (0, 0, received)).await?.into()
            }
        }
        Command::Download(d) => {
            rt.engine.borrow().accepts(&session)?;
            let url = http_url(&d.url)?;
            let mut rec = TaskRecord::new_download(
                TaskId(js::random_uuid()),
                session,
                url,
                d.headers,
                d.description,
            );
            rec.max_bytes = d.max_bytes;
            rec.integrity = d.integrity;
            rec.priority = d.schedule.priority;
            rec.earliest_begin = d.schedule.earliest_begin;
            if let Some(expected) = d.expected_bytes {
                check_space(rt, &rec.session, expected).await?;
            }
            if !d.secrets.pairs().is_empty() {
                rt.secrets.borrow_mut().push((rec.id.clone(), d.secrets));
            }
            let snap = rt.engine.borrow_mut().add(rec, now);
            pump(rt).wait().await?;
            js::to_js(&snap)
        }
        Command::Upload(u) => {
            rt.engine.borrow().accepts(&session)?;
            upload::command(rt, session, u, body).await?
        }
        Command::Pause(id) => apply(rt, |e| e.pause(&session, &id, now)).await?,
        Command::Resume(id) => apply(rt, |e| e.resume(&session, &id, now)).await?,
        Command::Cancel(id) => {
            let changed = apply(rt, |e| {
                e.cancel(&session, &id, now).map(|(_, changed)| changed)
            })
            .await?;
            changed
        }
        Command::CancelForResume(id) => {
            let token = js::random_uuid();
            apply(rt, |e| {
                e.cancel_producing_resume_data(&session, &id, token, now)
            })
            .await?
        }
        Command::ResumeFrom(data) => {
            apply(rt, |e| e.resume_from_data(&session, &data, now)).await?
        }
        Command::Remove(id) => {
            rt.engine.borrow_mut().remove(&session, &id)?;
            pump(rt).wait().await?;
            JsValue::UNDEFINED
        }
    };
    Ok(value)
}

/// Run a command on the engine, wait for its writes, return its result as JS.
async fn apply<T: serde::Serialize>(
    rt: &Rc<Runtime>,
    f: impl FnOnce(&mut Engine) -> Result<T, TaskError>,
) -> Result<JsValue, TaskError> {
    let v = f(&mut rt.engine.borrow_mut())?;
    pump(rt).wait().await?;
    Ok(js::to_js(&v))
}

/// Entry points for the browser tests, which run inside a service worker and drive
/// the runtime without pages.
#[doc(hidden)]
pub mod testing {
    pub use super::upload::testing::*;
    use super::*;

    /// Start a download in `session` as a page's command would, returning its id.
    pub async fn download(session: &str, url: &str) -> Result<String, TaskError> {
        let v = run(session, "download", &[("url", url)]).await?;
        Ok(js::get(&v, "id").as_string().unwrap_or_default())
    }

    /// Run any command (`op` with string `fields` such as `id`) and return its JS result.
    pub async fn run(
        session: &str,
        op: &str,
        fields: &[(&str, &str)],
    ) -> Result<JsValue, TaskError> {
        let fields: Vec<(&str, JsValue)> = fields
            .iter()
            .map(|(k, v)| (*k, JsValue::from_str(v)))
            .collect();
        run_js(session, op, &fields).await
    }

    /// Run any command with JS-valued `fields` (numbers, objects) and return its result.
    pub async fn run_js(
        session: &str,
        op: &str,
        fields: &[(&str, JsValue)],
    ) -> Result<JsValue, TaskError> {
        let rt = runtime().await?;
        let obj = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&obj, &"longhaul".into(), &1.into());
        let _ = js_sys::Reflect::set(&obj, &"op".into(), &op.into());
        let _ = js_sys::Reflect::set(&obj, &"session".into(), &session.into());
        for (k, v) in fields {
            let _ = js_sys::Reflect::set(&obj, &(*k).into(), v);
        }
        command(&rt, obj.into()).await
    }

    /// Hand an event to the runtime as the shim does (`workerHandle`).
    pub fn handle(event: web_sys::ExtendableEvent) -> js_sys::Promise {
        worker_handle(event)
    }

    /// Resolve once no task has work left (or the keep-alive bound passed).
    pub async fn idle() -> Result<(), TaskError> {
        let rt = runtime().await?;
        let _ = JsFuture::from(keep_alive(&rt)).await;
        Ok(())
    }

    /// The stored bytes of a completed task.
    pub async fn bytes(id: &str) -> Result<Vec<u8>, TaskError> {
        let rt = runtime().await?;
        let id = TaskId(id.into());
        let upto = rt
            .engine
            .borrow()
            .record(&id)
            .map(|r| r.bytes_received)
            .unwrap_or(0);
        let mut out = Vec::new();
        rt.store
            .read_span(&id, (0, 0, upto), None, |_, bytes| {
                out.extend(bytes.to_vec());
                true
            })
            .await?;
        Ok(out)
    }
}
