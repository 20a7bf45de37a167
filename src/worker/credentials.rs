//! The app's credentials hook and the headers each request attempt carries.

use super::*;

/// Set the app's credentials hook (`install({ credentials })` in the worker script).
/// It is called before every attempt of every request with `{ url, taskId, session,
/// attempt }` and returns (or resolves to) headers for that attempt only, such as a
/// fresh `Authorization`: they are never stored, and a request resumed after a
/// restart asks the hook again instead of replaying stale credentials.
#[wasm_bindgen(js_name = workerSetCredentials)]
pub fn worker_set_credentials(hook: JsValue) -> Result<(), JsValue> {
    let hook = if hook.is_undefined() || hook.is_null() {
        None
    } else {
        Some(hook.dyn_into::<js_sys::Function>().map_err(|_| {
            js::type_error("the credentials hook must be a function returning headers")
        })?)
    };
    CREDENTIALS.with(|c| *c.borrow_mut() = hook);
    Ok(())
}

/// The headers of one attempt of a request of `task`: `base` (the task's and the
/// session's), then the page's credentials (kept in memory only), then the hook's
/// fresh ones on top.
pub(super) async fn signed(
    rt: &Runtime,
    task: &TaskId,
    url: &str,
    session: &str,
    attempt: u32,
    timeout_ms: f64,
    base: &[(String, String)],
) -> Result<Vec<(String, String)>, NetFailure> {
    let extra = credentials(rt, task, url, session, attempt, timeout_ms).await?;
    Ok(merge_headers(base, extra.pairs()))
}

/// The credentials for one attempt of a request of `task`: the page's (kept in
/// memory only), then the hook's fresh ones on top.
async fn credentials(
    rt: &Runtime,
    task: &TaskId,
    url: &str,
    session: &str,
    attempt: u32,
    timeout_ms: f64,
) -> Result<HeaderList, NetFailure> {
    let secrets = rt
        .secrets
        .borrow()
        .iter()
        .find(|(t, _)| t == task)
        .map(|(_, h)| h.clone())
        .unwrap_or_default();
    let hooked = hook_headers(url, task, session, attempt, timeout_ms).await?;
    Ok(secrets.merged(&hooked))
}

/// The headers the credentials hook gives for an attempt, validated like a page's.
pub(super) async fn hook_headers(
    url: &str,
    task: &TaskId,
    session: &str,
    attempt: u32,
    timeout_ms: f64,
) -> Result<HeaderList, NetFailure> {
    let Some(hook) = CREDENTIALS.with(|c| c.borrow().clone()) else {
        return Ok(HeaderList::default());
    };
    let hook_failed = |m: String| NetFailure {
        error: TaskError::new(
            ErrorCode::Network,
            format!("the credentials hook failed: {m}"),
        ),
        retryable: true,
    };
    let arg = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&arg, &"url".into(), &url.into());
    let _ = js_sys::Reflect::set(&arg, &"taskId".into(), &task.0.as_str().into());
    let _ = js_sys::Reflect::set(&arg, &"session".into(), &session.into());
    let _ = js_sys::Reflect::set(&arg, &"attempt".into(), &attempt.into());
    let v = hook
        .call1(&JsValue::UNDEFINED, &arg)
        .map_err(|e| hook_failed(js::describe(&e)))?;
    let v = js::within(&js_sys::Promise::resolve(&v), timeout_ms)
        .await
        .map_err(|e| hook_failed(js::describe(&e)))?
        .ok_or_else(|| {
            hook_failed(format!(
                "it did not answer within requestTimeout ({} s)",
                (timeout_ms / 1000.0) as u64
            ))
        })?;
    if v.is_undefined() || v.is_null() {
        return Ok(HeaderList::default());
    }
    let pairs = js::header_pairs(&v).map_err(|e| hook_failed(js::describe(&e)))?;
    let pairs = pairs
        .iter()
        .map(|p| {
            let p = js_sys::Array::from(&p);
            (
                p.get(0).as_string().unwrap_or_default(),
                p.get(1).as_string().unwrap_or_default(),
            )
        })
        .collect();
    HeaderList::parse(pairs).map_err(|e| hook_failed(e.message))
}
