//! Sending an upload's requests (the checksum extension asked for once) and deleting
//! a canceled tus upload on its server.

use super::*;

/// Send one request of an upload and report what came of it. A stored copy found
/// damaged before the request went out fails the task and frees the copy.
pub(in crate::worker) async fn run_send(rt: Rc<Runtime>, req: SendRequest) {
    let (task, gen) = (req.task.clone(), req.gen);
    with_abort(rt, task, gen, |rt, ctl| async move {
        match send(&rt, &req, &ctl).await {
            Ok(resp) => {
                if !evicted() {
                    rt.engine.borrow_mut().handle_upload_response(
                        &req.task,
                        req.gen,
                        req.step,
                        &resp,
                        js::now(),
                    );
                }
                Ok(())
            }
            Err(f) if f.error.code == ErrorCode::Integrity => {
                if !evicted() {
                    rt.engine.borrow_mut().handle_upload_corrupt(
                        &req.task,
                        req.gen,
                        f.error,
                        js::now(),
                    );
                }
                Ok(())
            }
            Err(f) => Err(f),
        }
    })
    .await;
}

pub(super) async fn send(
    rt: &Runtime,
    req: &SendRequest,
    ctl: &AbortController,
) -> Result<UploadResponse, NetFailure> {
    let known = rt
        .engine
        .borrow()
        .record(&req.task)
        .and_then(|r| Some((r.upload.clone()?, r.url.href.clone())));
    let Some((info, endpoint)) = known else {
        return Err(storage_failure(TaskError::new(
            ErrorCode::NotFound,
            "the upload is gone",
        )));
    };
    let ask = rules::asks_capabilities(req.step, &info);
    let mut checksum = rules::sends_checksum(req.step, &info);
    // The body is read and checked before anything goes out, OPTIONS included.
    let (body, digest) = match req.body {
        Some(span) => read_checked(
            &rt.store,
            &req.task,
            &info,
            span,
            (true, checksum || ask),
            Some(ctl),
        )
        .await
        .map_err(storage_failure)?,
        None => (None, None),
    };
    let (url, session) = (&req.url, &req.session);
    let headers = signed(
        rt,
        &req.task,
        url,
        session,
        req.attempt,
        req.timeout_ms,
        &req.headers,
    );
    let mut headers = headers.await?;
    let mut unknown = false;
    if ask {
        let answer = ask_options(&endpoint, &headers, req.timeout_ms, ctl).await?;
        let answer = answer
            .as_ref()
            .map(|(s, ext, alg)| (*s, ext.as_deref(), alg.as_deref()));
        match rules::capabilities(answer, false) {
            Some(offered) => {
                if !evicted() {
                    rt.engine
                        .borrow_mut()
                        .set_upload_checksum(&req.task, req.gen, offered);
                }
                let learnt = UploadInfo {
                    checksum: Some(offered),
                    ..info
                };
                checksum = rules::sends_checksum(req.step, &learnt);
            }
            None => unknown = true,
        }
    }
    if let (true, Some(d)) = (checksum, digest) {
        headers.push(rules::checksum_header(&d));
    }
    let resp = net::send(
        req.method,
        &req.url,
        &headers,
        body.as_ref().map(|b| b.as_ref()),
        req.timeout_ms,
        ctl,
    )
    .await?;
    net::drop_body(&resp);
    if unknown && !evicted() {
        // The server answered this request but not the OPTIONS before it.
        if let Some(offered) = rules::capabilities(None, true) {
            rt.engine
                .borrow_mut()
                .set_upload_checksum(&req.task, req.gen, offered);
        }
    }
    let h = resp.headers();
    let get = |n: &str| h.get(n).ok().flatten();
    let location = get("location").and_then(|l| {
        web_sys::Url::new_with_base(&l, &req.url)
            .ok()
            .map(|u| u.href())
    });
    Ok(UploadResponse {
        status: resp.status(),
        location,
        upload_offset: get("upload-offset"),
        retry_after: get("retry-after"),
    })
}

/// Ask the tus endpoint what it offers (`OPTIONS`, with the request's app and
/// credential headers): its status and `Tus-Extension` and `Tus-Checksum-Algorithm`
/// headers, or `None` if no answer came. Its own abort controller, aborted with
/// `ctl` (a pause or cancel), so that its timeout does not abort the request after
/// it; `Err` only when `ctl` was aborted.
pub(super) async fn ask_options(
    endpoint: &str,
    headers: &[(String, String)],
    timeout_ms: f64,
    ctl: &AbortController,
) -> Result<Option<(u16, Option<String>, Option<String>)>, NetFailure> {
    let own = AbortController::new().map_err(|e| NetFailure {
        error: TaskError::new(ErrorCode::Internal, js::describe(&e)),
        retryable: false,
    })?;
    let abort: js_sys::Function = js::get(&own, "abort").unchecked_into();
    let abort = abort.bind0(&own);
    let _ = ctl
        .signal()
        .add_event_listener_with_callback("abort", &abort);
    let sent = net::send(
        "OPTIONS",
        endpoint,
        &rules::options_headers(headers),
        None,
        timeout_ms,
        &own,
    )
    .await;
    let _ = ctl
        .signal()
        .remove_event_listener_with_callback("abort", &abort);
    match sent {
        Ok(r) => {
            net::drop_body(&r);
            let h = r.headers();
            let get = |n: &str| h.get(n).ok().flatten();
            Ok(Some((
                r.status(),
                get("tus-extension"),
                get("tus-checksum-algorithm"),
            )))
        }
        Err(f) if ctl.signal().aborted() => Err(f),
        Err(_) => Ok(None),
    }
}

/// Delete a canceled tus upload on its server: up to [`TERMINATE_ATTEMPTS`] attempts
/// in this worker life ([`terminated`] decides), each asking the credentials hook with
/// the task's session and the attempt's number; the outcome is only logged.
pub(in crate::worker) async fn terminate(
    rt: Rc<Runtime>,
    task: TaskId,
    url: String,
    headers: Vec<(String, String)>,
    session: String,
) -> Result<(), TaskError> {
    let timeout = 30_000.0;
    let mut outcome = String::new();
    for attempt in 1..=TERMINATE_ATTEMPTS {
        if attempt > 1 {
            let _ = JsFuture::from(js::sleep(1000.0 * f64::from(1 << (attempt - 2)))).await;
        }
        let sent = signed(&rt, &task, &url, &session, attempt, timeout, &headers)
            .await
            .unwrap_or_else(|_| headers.clone());
        let Ok(ctl) = AbortController::new() else {
            break;
        };
        let status = match net::send("DELETE", &url, &sent, None, timeout, &ctl).await {
            Ok(r) => {
                net::drop_body(&r);
                outcome = format!("HTTP {}", r.status());
                Some(r.status())
            }
            Err(f) => {
                outcome = f.error.to_string();
                None
            }
        };
        match terminated(status) {
            Some(true) => {
                outcome.clear();
                break;
            }
            Some(false) => break,
            None => {}
        }
    }
    rt.secrets.borrow_mut().retain(|(t, _)| *t != task);
    if !outcome.is_empty() {
        js::warn(&format!("could not delete a canceled upload: {outcome}"));
    }
    Ok(())
}
