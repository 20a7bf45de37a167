//! Pages' commands: who may send them, what each does, the answer.

use super::*;

/// A command from a page: validate, apply, reply on the port.
pub(super) async fn on_message(rt: &Rc<Runtime>, ev: web_sys::ExtendableMessageEvent) {
    let Some(port) = command_port(&ev) else {
        return;
    };
    let result = command(rt, ev.data()).await;
    answer(&port, result);
}

/// The reply port of a page's command, if `ev` is one from a window of this origin
/// (anything else is ignored, and logged if it claimed to be longhaul's).
pub(super) fn command_port(ev: &web_sys::ExtendableMessageEvent) -> Option<web_sys::MessagePort> {
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

/// Answer a page's command on its reply `port` with `result` (`{ ok, value }` or
/// `{ ok, error }`).
pub(super) fn answer(port: &web_sys::MessagePort, result: Result<JsValue, TaskError>) {
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
    if let Err(e) = port.post_message(&reply) {
        js::warn(&format!(
            "a command's answer could not be sent: {}",
            js::describe(&e)
        ));
    }
}

/// Commands are accepted only from window clients of the worker's own origin.
pub(super) fn from_own_window(ev: &web_sys::ExtendableMessageEvent) -> bool {
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
pub(super) async fn check_space(
    rt: &Runtime,
    session: &SessionId,
    bytes: u64,
) -> Result<(), TaskError> {
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
pub(super) fn http_url(href: &str) -> Result<crate::core::validate::HttpUrl, TaskError> {
    let origin_protocol = js::get(&js::get(&js_sys::global(), "location"), "protocol")
        .as_string()
        .unwrap_or_default();
    protocol::download_url(url_parts(href)?, &origin_protocol)
}

pub(super) fn url_parts(href: &str) -> Result<UrlParts, TaskError> {
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
pub(super) fn keys(v: &JsValue) -> Vec<String> {
    v.dyn_ref::<js_sys::Object>()
        .map(|o| {
            js_sys::Object::keys(o)
                .iter()
                .filter_map(|k| k.as_string())
                .collect()
        })
        .unwrap_or_default()
}

pub(super) async fn command(rt: &Rc<Runtime>, data: JsValue) -> Result<JsValue, TaskError> {
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
        Command::Open { config, must_exist } => open(rt, &session, config, must_exist, now).await?,
        Command::Invalidate { cancel } => invalidate(rt, &session, cancel, now).await?,
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
        Command::Blob { id, pieces } => blob(rt, &session, &id, pieces).await?,
        Command::Download(d) => download(rt, session, d, now).await?,
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

/// `open`: the session made or found, its configuration applied; the answer says
/// whether it is new, whether its `finish` is pending, and its tasks with work left.
async fn open(
    rt: &Rc<Runtime>,
    session: &SessionId,
    config: Option<config::SessionConfig>,
    must_exist: bool,
    now: f64,
) -> Result<JsValue, TaskError> {
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
    rt.engine.borrow_mut().set_invalidated(session, false);
    if let Some(config) = config {
        rt.engine.borrow_mut().configure(session.clone(), config);
    }
    let reply = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&reply, &"finishPending".into(), &pending.into());
    let _ = js_sys::Reflect::set(&reply, &"isNew".into(), &(!existed).into());
    // The tasks with work left, for the page's keep-alive pings (a session of many
    // tasks would otherwise cost the page a whole list to learn them).
    let active: js_sys::Array = rt
        .engine
        .borrow()
        .active_ids(session)
        .iter()
        .map(|id| JsValue::from_str(&id.0))
        .collect();
    let _ = js_sys::Reflect::set(&reply, &"active".into(), &active);
    Ok(reply.into())
}

/// `finishTasksAndInvalidate` (`cancel` false) and `invalidateAndCancel`.
async fn invalidate(
    rt: &Rc<Runtime>,
    session: &SessionId,
    cancel: bool,
    now: f64,
) -> Result<JsValue, TaskError> {
    if cancel {
        rt.engine.borrow_mut().invalidate_and_cancel(session, now);
    } else {
        rt.store
            .set_session_flag(session.as_str(), "invalidated", true)
            .await?;
        rt.engine.borrow_mut().finish_and_invalidate(session);
    }
    pump(rt).wait().await?;
    Ok(JsValue::UNDEFINED)
}

/// `blob`: a completed download's stored pieces, listed here, where the store's
/// reading code lives; the page composes them (Blobs cross postMessage without their
/// bytes), as Firefox buffers a Blob composed here while the page reads it (store
/// docs). Pages of older versions, open across an update, get the one Blob.
async fn blob(
    rt: &Rc<Runtime>,
    session: &SessionId,
    id: &TaskId,
    pieces: bool,
) -> Result<JsValue, TaskError> {
    let received = rt.engine.borrow().completed_bytes(session, id)?;
    Ok(if pieces {
        rt.store.pieces(id, (0, 0, received)).await?.into()
    } else {
        rt.store.blob(id, (0, 0, received)).await?.into()
    })
}

/// `download`: the task made, its declared size checked against the storage left.
async fn download(
    rt: &Rc<Runtime>,
    session: SessionId,
    d: protocol::Download,
    now: f64,
) -> Result<JsValue, TaskError> {
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
    Ok(js::to_js(&snap))
}

/// Run a command on the engine, wait for its writes, return its result as JS.
pub(super) async fn apply<T: serde::Serialize>(
    rt: &Rc<Runtime>,
    f: impl FnOnce(&mut Engine) -> Result<T, TaskError>,
) -> Result<JsValue, TaskError> {
    let v = f(&mut rt.engine.borrow_mut())?;
    pump(rt).wait().await?;
    Ok(js::to_js(&v))
}
