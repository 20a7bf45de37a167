//! Helpers shared by the browser test files.
#![allow(dead_code)]

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// The devserver the Makefile starts for these tests (CORS enabled).
pub fn server() -> &'static str {
    option_env!("LONGHAUL_TEST_SERVER").unwrap_or("http://127.0.0.1:8091")
}

/// A file name no other test run used.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", js_sys::Math::random().to_bits())
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn fetch_str(url: &str) -> js_sys::Promise;
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(cb: &js_sys::Function, ms: i32);
}

/// GET `url` straight, without longhaul, and return the body.
pub async fn fetch_bytes(url: &str) -> Vec<u8> {
    let resp: web_sys::Response = JsFuture::from(fetch_str(url))
        .await
        .unwrap()
        .dyn_into()
        .unwrap();
    let buf = JsFuture::from(resp.array_buffer().unwrap()).await.unwrap();
    js_sys::Uint8Array::new(&buf).to_vec()
}

/// The devserver's log entries for `path`, as JS objects.
pub async fn log(path: &str) -> Vec<JsValue> {
    let resp: web_sys::Response =
        JsFuture::from(fetch_str(&format!("{}/__log?path={path}", server())))
            .await
            .unwrap()
            .dyn_into()
            .unwrap();
    let v = JsFuture::from(resp.json().unwrap()).await.unwrap();
    js_sys::Array::from(&v).iter().collect()
}

/// Wait `ms`.
pub async fn sleep(ms: i32) {
    let p = js_sys::Promise::new(&mut |resolve, _| set_timeout(&resolve, ms));
    JsFuture::from(p).await.unwrap();
}

/// `obj[key]`.
pub fn get(obj: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(obj, &key.into()).unwrap()
}
