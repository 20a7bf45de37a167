//! Small bindings to the global scope shared by the worker and the page side.
//!
//! Everything here binds globals (`fetch`, `setTimeout`, `crypto`), never `window`,
//! so it runs in a service worker and in a page alike.

use crate::core::TaskError;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(cb: &js_sys::Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
    #[wasm_bindgen(js_name = fetch)]
    pub fn global_fetch(req: &web_sys::Request) -> js_sys::Promise;
    #[wasm_bindgen(js_namespace = crypto, js_name = randomUUID)]
    pub fn random_uuid() -> String;
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(buf: &js_sys::Uint32Array);
}

/// Milliseconds since the epoch.
pub fn now() -> f64 {
    js_sys::Date::now()
}

/// A random 64-bit seed.
pub fn random_seed() -> u64 {
    let buf = js_sys::Uint32Array::new_with_length(2);
    get_random_values(&buf);
    (u64::from(buf.get_index(0)) << 32) | u64::from(buf.get_index(1))
}

/// A promise resolving to `undefined` after `ms`.
pub fn sleep(ms: f64) -> js_sys::Promise {
    js_sys::Promise::new(&mut |resolve, _| {
        set_timeout(&resolve, ms);
    })
}

/// A promise resolving to `value` after `ms`, and the handle that clears its timer
/// when dropped (so that many short races leave no timers behind).
pub fn timeout(ms: f64, value: JsValue) -> (js_sys::Promise, ClearOnDrop) {
    let id = std::rc::Rc::new(std::cell::RefCell::new(JsValue::UNDEFINED));
    let slot = id.clone();
    let p = js_sys::Promise::new(&mut |resolve, _| {
        let bound: js_sys::Function = resolve.bind1(&JsValue::NULL, &value).unchecked_into();
        *slot.borrow_mut() = set_timeout(&bound, ms);
    });
    let handle = id.borrow().clone();
    (p, ClearOnDrop(handle))
}

/// Await `p` for at most `ms`: `Ok(Some(value))` if it resolves first, `Ok(None)`
/// if the time runs out first, `Err` if it rejects. The timer is cleared either way.
pub async fn within(p: &js_sys::Promise, ms: f64) -> Result<Option<JsValue>, JsValue> {
    // A fresh object marks the timeout: no value `p` resolves to can equal it.
    let marker: JsValue = js_sys::Object::new().into();
    let (timer, _clear) = timeout(ms, marker.clone());
    let v =
        wasm_bindgen_futures::JsFuture::from(js_sys::Promise::race(&js_sys::Array::of2(p, &timer)))
            .await?;
    Ok((v != marker).then_some(v))
}

/// Clears a `setTimeout` when dropped.
pub struct ClearOnDrop(JsValue);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        clear_timeout(&self.0);
    }
}

/// A one-shot timer that can be cleared.
pub struct Timer(JsValue, #[allow(dead_code)] Closure<dyn FnMut()>);

impl Timer {
    /// Call `f` after `ms`.
    pub fn once(ms: f64, f: impl FnOnce() + 'static) -> Timer {
        let mut f = Some(f);
        let cb = Closure::<dyn FnMut()>::new(move || {
            if let Some(f) = f.take() {
                f()
            }
        });
        let id = set_timeout(cb.as_ref().unchecked_ref(), ms.max(0.0));
        Timer(id, cb)
    }
}

impl Timer {
    /// Let the timer fire even though this handle is dropped.
    pub fn forget(self) {
        let this = std::mem::ManuallyDrop::new(self);
        // The closure must outlive the timer: leak it with the handle.
        let _ = &this.1;
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        clear_timeout(&self.0);
    }
}

/// Serialize to a plain JS value: `None` as `null`, maps as objects. Through
/// `JSON.parse`: the worker has serde_json anyway (for `tasks()` lists), and this
/// left serde-wasm-bindgen's serializer out (1.6 KiB gzip less). Reading goes the
/// other way through [`crate::from_js`] (serde_json's deserializer cost 12.8 KiB more).
pub fn to_js<T: Serialize>(v: &T) -> JsValue {
    serde_json::to_string(v)
        .ok()
        .and_then(|s| js_sys::JSON::parse(&s).ok())
        .unwrap_or(JsValue::NULL)
}

/// A JS `Error` (or `TypeError` for bad input types) carrying `code`, and `status` if any.
pub fn error_to_js(e: &TaskError) -> JsValue {
    let err = js_sys::Error::new(&e.message);
    let _ = js_sys::Reflect::set(&err, &"name".into(), &"LonghaulError".into());
    let _ = js_sys::Reflect::set(&err, &"code".into(), &e.code.as_str().into());
    if let Some(s) = e.status {
        let _ = js_sys::Reflect::set(&err, &"status".into(), &s.into());
    }
    err.into()
}

/// A `TypeError` with a code, for arguments of the wrong type or shape.
pub fn type_error(message: &str) -> JsValue {
    let err = js_sys::TypeError::new(message);
    let _ = js_sys::Reflect::set(&err, &"code".into(), &"invalid-input".into());
    err.into()
}

/// A readable description of a thrown JS value.
pub fn describe(v: &JsValue) -> String {
    if let Some(e) = v.dyn_ref::<js_sys::Error>() {
        let name: String = e.name().into();
        let msg: String = e.message().into();
        return format!("{name}: {msg}");
    }
    v.as_string()
        .unwrap_or_else(|| String::from("an unknown error"))
}

/// `obj[key]`, or `undefined`.
pub fn get(obj: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(obj, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

/// `headers` as `[name, value]` pairs, from a plain object, an array of pairs or a `Headers`.
pub fn header_pairs(h: &JsValue) -> Result<js_sys::Array, JsValue> {
    let out = js_sys::Array::new();
    if h.is_undefined() || h.is_null() {
        return Ok(out);
    }
    let bad = || {
        type_error("options.headers must be an object of strings, an array of [name, value] pairs or a Headers")
    };
    let entries: js_sys::Array =
        if h.is_instance_of::<web_sys::Headers>() || js_sys::Array::is_array(h) {
            js_sys::Array::from(h)
        } else if h.is_object() {
            js_sys::Object::entries(h.unchecked_ref())
        } else {
            return Err(bad());
        };
    for e in entries.iter() {
        let pair = e.dyn_into::<js_sys::Array>().map_err(|_| bad())?;
        let (k, v) = (pair.get(0), pair.get(1));
        if pair.length() != 2 || !k.is_string() || !v.is_string() {
            return Err(bad());
        }
        out.push(&pair);
    }
    Ok(out)
}

/// Log a warning to the console.
pub fn warn(msg: &str) {
    web_sys::console::warn_1(&format!("longhaul: {msg}").into());
}
