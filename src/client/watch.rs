//! What a session adds to the page: the ping while tasks are active, network events forwarded, all removed at teardown.

use super::*;

impl Inner {
    /// Track which tasks are active (to ping while any is), from any snapshot seen.
    pub(super) fn observe(self: &Rc<Self>, snap: &JsValue) {
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
    pub(super) fn set_active(self: &Rc<Self>, ids: &JsValue) {
        let ids = if ids.is_array() {
            ids
        } else {
            &JsValue::UNDEFINED
        };
        *self.active.borrow_mut() = js_sys::Set::new(ids);
        self.update_ping();
    }

    pub(super) fn update_ping(self: &Rc<Self>) {
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
    pub(super) fn forward_network_events(self: &Rc<Self>) {
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
    pub(super) async fn report_connection(&self) {
        let _ = self
            .request("network", &[("connection", connection_report())])
            .await;
    }

    pub(super) fn stop_ping(&self) {
        if let Some((id, _cb)) = self.ping.borrow_mut().take() {
            if let Ok(f) =
                js::get(&js_sys::global(), "clearInterval").dyn_into::<js_sys::Function>()
            {
                let _ = f.call1(&JsValue::NULL, &id);
            }
        }
    }
}

impl Inner {
    /// Remove every listener and timer this session added to the page, so that none
    /// outlives it (a listener whose closure is gone would throw when it fires). Runs
    /// at `close()` and when the last reference goes ([`Drop`]); a second run finds
    /// nothing left to remove.
    pub(super) fn teardown(&self) {
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

/// `navigator.connection` as `{ saveData, type, effectiveType }` (each `undefined`
/// where unknown; `{}` where the API is missing).
pub(super) fn connection_report() -> JsValue {
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
