//! Notifications (URLSession's `sessionSendsLaunchEvents`, in the web's idiom).
//!
//! With `notifications: true` in a session's configuration, a task that ends
//! (completed or failed) while no page of the app is open shows a notification,
//! provided the app obtained the permission (`Notification.requestPermission()` from
//! a page; longhaul never asks). One notification per task (its tag is the task id).
//! Clicking it focuses an open page of the app, or opens the worker's scope.

use super::{window_count, Runtime};
use crate::core::engine::EventKind;
use crate::core::task::{TaskKind, TaskSnapshot, TaskState};
use crate::js;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Show a notification for `snap` if its session wants one and no page is open.
pub(super) async fn on_event(rt: Rc<Runtime>, kind: EventKind, snap: TaskSnapshot) {
    if kind != EventKind::Complete || snap.state == TaskState::Canceled {
        return;
    }
    let Ok(session) = crate::core::validate::SessionId::parse(&snap.session) else {
        return;
    };
    // Read before the await: a borrow held across it would make any command that
    // changes the engine meanwhile panic.
    let notifies = rt.engine.borrow().notifies(&session);
    if !notifies || window_count().await > 0 {
        return;
    }
    let global = js_sys::global();
    let permission = js::get(&js::get(&global, "Notification"), "permission");
    if permission.as_string().as_deref() != Some("granted") {
        return;
    }
    let registration = js::get(&global, "registration");
    let Ok(show) = js::get(&registration, "showNotification").dyn_into::<js_sys::Function>() else {
        return;
    };
    let what = if snap.kind == TaskKind::Upload {
        "Upload"
    } else {
        "Download"
    };
    let title = if snap.state == TaskState::Completed {
        format!("{what} complete")
    } else {
        format!("{what} failed")
    };
    let body = if snap.description.is_empty() {
        snap.url.clone()
    } else {
        snap.description.clone()
    };
    let options = js_sys::Object::new();
    let set = |k: &str, v: &JsValue| {
        let _ = js_sys::Reflect::set(&options, &k.into(), v);
    };
    set("body", &body.into());
    set("tag", &format!("longhaul:{}", snap.id).into());
    let data = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&data, &"longhaul".into(), &true.into());
    let _ = js_sys::Reflect::set(&data, &"session".into(), &snap.session.as_str().into());
    let _ = js_sys::Reflect::set(&data, &"task".into(), &snap.id.as_str().into());
    set("data", &data.into());
    if let Ok(p) = show
        .call2(&registration, &title.into(), &options)
        .and_then(|p| p.dyn_into::<js_sys::Promise>())
    {
        if let Err(e) = JsFuture::from(p).await {
            js::warn(&format!(
                "could not show a notification: {}",
                js::describe(&e)
            ));
        }
    }
}

/// `notificationclick` on one of longhaul's notifications: focus a page of the app,
/// or open one.
pub(super) async fn on_click(event: &web_sys::ExtendableEvent) {
    let notification = js::get(event, "notification");
    if js::get(&js::get(&notification, "data"), "longhaul").as_bool() != Some(true) {
        return; // the app's own notification
    }
    if let Ok(close) = js::get(&notification, "close").dyn_into::<js_sys::Function>() {
        let _ = close.call0(&notification);
    }
    let global = js_sys::global();
    let clients = js::get(&global, "clients");
    let opts = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&opts, &"type".into(), &"window".into());
    let list = match js::get(&clients, "matchAll").dyn_into::<js_sys::Function>() {
        Ok(f) => match f
            .call1(&clients, &opts)
            .and_then(|p| p.dyn_into::<js_sys::Promise>())
        {
            Ok(p) => JsFuture::from(p).await.unwrap_or(JsValue::UNDEFINED),
            Err(_) => JsValue::UNDEFINED,
        },
        Err(_) => JsValue::UNDEFINED,
    };
    let first = js_sys::Array::from(&list).get(0);
    if let Ok(focus) = js::get(&first, "focus").dyn_into::<js_sys::Function>() {
        if let Ok(p) = focus
            .call0(&first)
            .and_then(|p| p.dyn_into::<js_sys::Promise>())
        {
            let _ = JsFuture::from(p).await;
            return;
        }
    }
    let scope = js::get(&js::get(&global, "registration"), "scope");
    if let Ok(open) = js::get(&clients, "openWindow").dyn_into::<js_sys::Function>() {
        if let Ok(p) = open
            .call1(&clients, &scope)
            .and_then(|p| p.dyn_into::<js_sys::Promise>())
        {
            let _ = JsFuture::from(p).await;
        }
    }
}
