//! Applying the engine's outputs: writes in order, requests, events, timers.

use super::*;

/// Writes started by one pump, in the order their transactions were created.
pub(super) struct Writes(Vec<Write>);

impl Writes {
    pub(super) fn spawn(self) {
        for w in self.0 {
            spawn_local(async move {
                if let Err(e) = w.await {
                    js::warn(&format!("a write failed: {e}"));
                }
            });
        }
    }

    pub(super) async fn wait(self) -> Result<(), TaskError> {
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
pub(super) fn apart<'a, T: 'a>(
    f: impl Future<Output = T> + 'a,
) -> Pin<Box<dyn Future<Output = T> + 'a>> {
    Box::pin(f)
}

pub(super) fn boxed<F: Future<Output = Result<(), TaskError>> + 'static>(
    r: Result<F, TaskError>,
) -> Write {
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
pub(super) fn pump(rt: &Rc<Runtime>) -> Writes {
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
pub(super) async fn window_count() -> u32 {
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
pub(super) fn broadcast(rt: &Runtime, kind: &str, session: &str, detail: &JsValue) {
    if let Some(ch) = &rt.channel {
        let msg = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&msg, &"type".into(), &kind.into());
        let _ = js_sys::Reflect::set(&msg, &"session".into(), &session.into());
        let _ = js_sys::Reflect::set(&msg, &"snapshot".into(), detail);
        let _ = ch.post_message(&msg);
    }
}

/// `navigator.onLine` of this global, if the browser has it.
pub(super) fn navigator_online() -> Option<bool> {
    js::get(&js::get(&js_sys::global(), "navigator"), "onLine").as_bool()
}

/// Where Background Sync exists (Chromium), ask for a `sync` event for when the
/// network returns, so tasks waiting for it resume even with no page open.
pub(super) fn request_sync() {
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
pub(super) fn rearm(rt: &Rc<Runtime>) {
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
