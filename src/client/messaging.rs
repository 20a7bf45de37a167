//! Commands to the worker: posted with a reply port, sent again to a worker that replaced the one asked.

use super::*;

pub(super) async fn ready_registration() -> Result<ServiceWorkerRegistration, TaskError> {
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
pub(super) const MAX_SENDS: u32 = 3;

/// The commands that only read: sent again once when no answer came in half their
/// time ([`Inner::request_within`]).
const READ_ONLY: [&str; 4] = ["blob", "task", "tasks", "ping"];

/// How one sending of a command ended.
pub(super) enum Sent {
    /// The worker's reply (a `MessageEvent`).
    Answered(JsValue),
    /// The worker became redundant first: an update replaced it.
    Replaced,
    TimedOut,
}

/// Whether an update replaced `worker` (its state is `redundant`).
pub(super) fn redundant(worker: &web_sys::ServiceWorker) -> bool {
    js::get(worker, "state").as_string().as_deref() == Some("redundant")
}

/// Post `msg` to `worker` with a reply port; wait for the reply, the worker's
/// replacement or `ms`, whichever comes first.
pub(super) async fn send(
    worker: &web_sys::ServiceWorker,
    msg: &JsValue,
    ms: f64,
) -> Result<Sent, TaskError> {
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
    pub(super) async fn request(
        &self,
        op: &str,
        fields: &[(&str, JsValue)],
    ) -> Result<JsValue, TaskError> {
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
    pub(super) async fn request_within(
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
        // A command that only reads is sent again once if half its time passed with
        // no answer: a message the browser lost (as Chromium does while a worker
        // stops) costs half the wait, not the command. One that changes state is not:
        // it may have run (docs/decisions.md, "Sending a read-only command again").
        let mut resend = READ_ONLY.contains(&op);
        for _ in 0..MAX_SENDS {
            let worker = self.successor(replaced.as_ref(), deadline).await?;
            let left = deadline - js::now();
            let wait = if resend { left / 2.0 } else { left };
            match send(&worker, &msg, wait).await? {
                Sent::Answered(v) => {
                    ev = v;
                    break;
                }
                Sent::Replaced => replaced = Some(worker),
                Sent::TimedOut if resend => {
                    resend = false;
                    // Whole seconds: formatting a float would add core's float
                    // formatting to the page's module (about 23 KB).
                    let secs = (wait / 1000.0) as u64;
                    js::warn(&format!(
                        "the service worker did not answer \"{op}\" in {secs} s; sent again"
                    ));
                }
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
    pub(super) async fn successor(
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
}
