//! Reading and checking the options pages pass, before anything reaches the worker.

use super::*;

/// Check that each of `keys` in `options` is absent or of its `typeof`, and pass it on.
pub(super) fn typed_options(
    options: &JsValue,
    fields: &mut Vec<(&'static str, JsValue)>,
    keys: &[(&'static str, &str)],
) -> Result<(), JsValue> {
    for &(key, kind) in keys {
        let v = js::get(options, key);
        if !v.is_undefined() && v.js_typeof().as_string().as_deref() != Some(kind) {
            return Err(js::type_error(&format!("options.{key} must be a {kind}")));
        }
        fields.push((key, v));
    }
    Ok(())
}

/// The options every new task takes: `description`, `headers`, the credentials
/// options and the scheduling options.
pub(super) fn task_options(
    options: &JsValue,
    fields: &mut Vec<(&'static str, JsValue)>,
) -> Result<(), JsValue> {
    typed_options(
        options,
        fields,
        &[("description", "string"), ("persistCredentials", "boolean")],
    )?;
    let sensitive = js::get(options, "sensitiveHeaders");
    if !sensitive.is_undefined() && !string_array(&sensitive) {
        return Err(js::type_error(
            "options.sensitiveHeaders must be an array of header names",
        ));
    }
    fields.push(("sensitiveHeaders", sensitive));
    fields.push((
        "headers",
        js::header_pairs(&js::get(options, "headers"))?.into(),
    ));
    schedule_options(options, fields)
}

/// `priority` and `earliestBegin` (a `Date`, or ms since the epoch) of task options.
pub(super) fn schedule_options(
    options: &JsValue,
    fields: &mut Vec<(&'static str, JsValue)>,
) -> Result<(), JsValue> {
    let priority = js::get(options, "priority");
    if !priority.is_undefined() && priority.as_f64().is_none() {
        return Err(js::type_error(
            "options.priority must be a number from 0 to 1",
        ));
    }
    let begin = js::get(options, "earliestBegin");
    let begin = if let Some(d) = begin.dyn_ref::<js_sys::Date>() {
        // An invalid Date gives NaN, which the worker refuses with invalid-input.
        JsValue::from_f64(d.get_time())
    } else if begin.is_undefined() || begin.as_f64().is_some() {
        begin
    } else {
        return Err(js::type_error(
            "options.earliestBegin must be a Date (or ms since the epoch)",
        ));
    };
    fields.push(("priority", priority));
    fields.push(("earliestBegin", begin));
    Ok(())
}

/// A session configuration as the worker reads it: `headers` as `[name, value]`
/// pairs, the rest as given (the worker checks every key and value).
pub(super) fn config_for_worker(c: &JsValue) -> Result<JsValue, JsValue> {
    let headers = js::get(c, "headers");
    if headers.is_undefined() {
        return Ok(c.clone());
    }
    let copy = js_sys::Object::assign(&js_sys::Object::new(), c.unchecked_ref());
    let pairs: JsValue = js::header_pairs(&headers)?.into();
    let _ = js_sys::Reflect::set(&copy, &"headers".into(), &pairs);
    Ok(copy.into())
}

/// `url` (a string or `URL`, maybe relative to the page) as an absolute URL string.
pub(super) fn absolute_url(url: &JsValue) -> Result<String, JsValue> {
    let url = if let Some(u) = url.dyn_ref::<web_sys::Url>() {
        u.href()
    } else {
        url.as_string()
            .ok_or_else(|| js::type_error("the URL must be a string or a URL"))?
    };
    let base = js::get(&js::get(&js_sys::global(), "location"), "href")
        .as_string()
        .unwrap_or_default();
    web_sys::Url::new_with_base(&url, &base)
        .map(|u| u.href())
        .map_err(|_| err(TaskError::invalid(format!("\"{url}\" is not a valid URL"))))
}

pub(super) fn string_array(v: &JsValue) -> bool {
    js_sys::Array::is_array(v) && js_sys::Array::from(v).every(&mut |x, _, _| x.is_string())
}

/// An upload body as a `Blob` (one is made around an `ArrayBuffer` or typed array).
pub(super) fn upload_blob(body: &JsValue) -> Result<web_sys::Blob, JsValue> {
    if let Some(b) = body.dyn_ref::<web_sys::Blob>() {
        return Ok(b.clone());
    }
    if body.is_instance_of::<js_sys::ArrayBuffer>() || js_sys::ArrayBuffer::is_view(body) {
        return web_sys::Blob::new_with_buffer_source_sequence(&js_sys::Array::of1(body))
            .map_err(|e| err(TaskError::new(ErrorCode::Internal, js::describe(&e))));
    }
    Err(js::type_error(
        "the upload body must be a Blob, File, ArrayBuffer or typed array",
    ))
}

/// `metadata` (an object of strings) as `[key, value]` pairs.
pub(super) fn metadata_pairs(m: &JsValue) -> Result<js_sys::Array, JsValue> {
    let bad = || js::type_error("options.metadata must be an object of strings");
    if !m.is_object() || js_sys::Array::is_array(m) {
        return Err(bad());
    }
    let out = js_sys::Array::new();
    for e in js_sys::Object::entries(m.unchecked_ref()).iter() {
        let pair = js_sys::Array::from(&e);
        if !pair.get(1).is_string() {
            return Err(bad());
        }
        out.push(&pair);
    }
    Ok(out)
}

pub(super) fn task_id(id: &JsValue) -> Result<TaskId, JsValue> {
    match id.as_string() {
        Some(s) if !s.is_empty() => Ok(TaskId(s)),
        _ => Err(js::type_error("a task id must be a non-empty string")),
    }
}
