//! Start-up: ownership of the origin's tasks, the first load, the runtime singleton.

use super::*;

/// The Web Lock that marks the one worker owning every task of the origin.
pub const OWNER_LOCK: &str = "longhaul:owner";

/// Take ownership of the origin's tasks from any older worker (an update activating
/// while the old version still runs transfers): steal the owner lock and hold it for
/// the worker's life. The worker it was stolen from sees its request rejected and
/// stops at once ([`evict`]), so two versions never write the same task. Resolves
/// once the lock is held (at once where Web Locks are missing).
pub(super) async fn claim_ownership() {
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
pub(super) fn evict() {
    EVICTED.with(|e| e.set(true));
    js::warn("a newer service worker took over the transfers; this one stops");
    if let Some(rt) = RUNTIME.with(|r| r.borrow().clone()) {
        for (_, _, ctl) in rt.aborts.borrow_mut().drain(..) {
            ctl.abort();
        }
        *rt.timer.borrow_mut() = None;
    }
}

pub(super) fn evicted() -> bool {
    EVICTED.with(|e| e.get())
}

/// Start-up, shortest path to the first resumed request (measured by `make bench`):
/// the database connection is the one the shim opened while the wasm compiled
/// ([`Store::open_warm`]), the owner lock is claimed while it opens, sessions and
/// tasks are read in one transaction, and the sweep of orphaned chunks runs after
/// the resumed requests went out (still before any command, which it must precede:
/// an upload being copied in has chunks and no record yet).
///
/// Where the time goes, and why this order: docs/decisions.md, "Start-up: where the
/// time goes".
pub(super) async fn start() -> Result<Rc<Runtime>, TaskError> {
    let claimed = future_to_promise(async {
        claim_ownership().await;
        Ok(JsValue::UNDEFINED)
    });
    let store = Store::open_warm(WARM.with(|w| w.borrow_mut().take())).await?;
    let _ = JsFuture::from(claimed).await;
    let config = EngineConfig {
        fetch_window: crate::store::profile().fetch_window,
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
pub(super) async fn after_start(
    rt: &Rc<Runtime>,
    replaced: Vec<TaskRecord>,
) -> Result<(), TaskError> {
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
pub(super) async fn runtime() -> Result<Rc<Runtime>, TaskError> {
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
