//! How long events keep the worker alive while tasks have work.

use super::*;

/// A promise that resolves when no task has work left, or after [`KEEPALIVE_MS`].
pub(super) struct KeepAlive {
    promise: js_sys::Promise,
    pub(super) resolve: js_sys::Function,
    since: f64,
}

/// Resolves when no task has work left, or after [`KEEPALIVE_MS`] at most (at least
/// half of it). Events share one such promise, renewed once half its time is gone:
/// a page's command or keep-alive ping costs no timer of its own.
pub(super) fn keep_alive(rt: &Rc<Runtime>) -> js_sys::Promise {
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
