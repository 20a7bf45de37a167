//! Browser tests of the page-side API, run in a page.
#![cfg(target_arch = "wasm32")]

use longhaul::BackgroundSession;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

async fn open_err(id: JsValue) -> JsValue {
    match BackgroundSession::open(id, None, None).await {
        Ok(_) => panic!("open accepted a bad identifier"),
        Err(e) => e,
    }
}

#[wasm_bindgen_test]
async fn bad_identifiers_reject_with_a_type_error() {
    for id in [
        JsValue::from(""),
        JsValue::from(42),
        JsValue::NULL,
        JsValue::UNDEFINED,
        JsValue::from("x".repeat(1025)),
    ] {
        let e = open_err(id.clone()).await;
        assert!(e.is_instance_of::<js_sys::TypeError>(), "{id:?} gave {e:?}");
        let code = js_sys::Reflect::get(&e, &"code".into()).unwrap();
        assert_eq!(code.as_string().as_deref(), Some("invalid-input"));
    }
}
