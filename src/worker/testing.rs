//! Entry points for the browser tests, which run inside a service worker and drive
//! the runtime without pages.

pub use super::upload::testing::*;
use super::*;

/// Start a download in `session` as a page's command would, returning its id.
pub async fn download(session: &str, url: &str) -> Result<String, TaskError> {
    let v = run(session, "download", &[("url", url)]).await?;
    Ok(js::get(&v, "id").as_string().unwrap_or_default())
}

/// Run any command (`op` with string `fields` such as `id`) and return its JS result.
pub async fn run(session: &str, op: &str, fields: &[(&str, &str)]) -> Result<JsValue, TaskError> {
    let fields: Vec<(&str, JsValue)> = fields
        .iter()
        .map(|(k, v)| (*k, JsValue::from_str(v)))
        .collect();
    run_js(session, op, &fields).await
}

/// Run any command with JS-valued `fields` (numbers, objects) and return its result.
pub async fn run_js(
    session: &str,
    op: &str,
    fields: &[(&str, JsValue)],
) -> Result<JsValue, TaskError> {
    let rt = runtime().await?;
    let obj = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&obj, &"longhaul".into(), &1.into());
    let _ = js_sys::Reflect::set(&obj, &"op".into(), &op.into());
    let _ = js_sys::Reflect::set(&obj, &"session".into(), &session.into());
    for (k, v) in fields {
        let _ = js_sys::Reflect::set(&obj, &(*k).into(), v);
    }
    command(&rt, obj.into()).await
}

/// Hand an event to the runtime as the shim does (`workerHandle`).
pub fn handle(event: web_sys::ExtendableEvent) -> js_sys::Promise {
    worker_handle(event)
}

/// Resolve once no task has work left (or the keep-alive bound passed).
pub async fn idle() -> Result<(), TaskError> {
    let rt = runtime().await?;
    let _ = JsFuture::from(keep_alive(&rt)).await;
    Ok(())
}

/// The stored bytes of a completed task.
pub async fn bytes(id: &str) -> Result<Vec<u8>, TaskError> {
    let rt = runtime().await?;
    let id = TaskId(id.into());
    let upto = rt
        .engine
        .borrow()
        .record(&id)
        .map(|r| r.bytes_received)
        .unwrap_or(0);
    let mut out = Vec::new();
    rt.store
        .read_span(&id, (0, 0, upto), None, |_, bytes| {
            out.extend(bytes.to_vec());
            true
        })
        .await?;
    Ok(out)
}
