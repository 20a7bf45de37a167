//! The engine's side of uploads: which request comes next, and what a response means
//! for the task (the rules themselves are in [`crate::upload`]).
//!
//! An upload's `bytes_received` is the server's offset: what it acknowledged. It only
//! moves on a server's answer, never because a request was sent. Its stored copy is
//! freed when the upload completes or is canceled, and when the shell finds it no
//! longer matches the digests taken as it was copied in
//! ([`Engine::handle_upload_corrupt`]): the task then fails with `integrity`, and a
//! `resume` fails it again at once (the source is the page's; nothing can mend it).

use super::{Engine, EventKind, Output, TaskState};
use crate::error::{ErrorCode, TaskError};
use crate::http::retry_after_ms;
use crate::task::TaskId;
use crate::upload::{self as rules, Next, Step, UploadProtocol, UploadResponse};
use crate::validate::merge_headers;

/// A request of an upload, for the shell to send.
#[derive(Debug, Clone, PartialEq)]
pub struct SendRequest {
    /// The task.
    pub task: TaskId,
    /// Its generation: pass it back with the response.
    pub gen: u64,
    /// Which request this is.
    pub step: Step,
    /// `POST`, `HEAD`, `PATCH` or `PUT`.
    pub method: &'static str,
    /// Where to.
    pub url: String,
    /// Every header: the app's, then the protocol's.
    pub headers: Vec<(String, String)>,
    /// The stored bytes `[from, to)` to send as the body, if any.
    pub body: Option<(u64, u64)>,
    /// Abort and retry if no answer arrives within this, ms: the session's
    /// `requestTimeout` plus time to send the body at 64 KiB/s.
    pub timeout_ms: f64,
    /// The task's session (for the credentials hook).
    pub session: String,
    /// Which attempt this is since the last progress: 1, 2, …
    pub attempt: u32,
}

/// Slowest upload speed a request is given time for, bytes per second.
const SLOWEST_BPS: f64 = 64.0 * 1024.0;

impl Engine {
    /// Send the next request of upload `id` (its state becomes `running`).
    pub(super) fn start_upload(&mut self, id: &TaskId, now: f64) {
        let Some((stall_ms, base)) = self.tasks.get(id).map(|s| {
            (
                self.request_timeout(&s.rec.session),
                self.base_headers(&s.rec),
            )
        }) else {
            return;
        };
        let Some(s) = self.tasks.get_mut(id) else {
            return;
        };
        let Some(info) = s.rec.upload.clone() else {
            return;
        };
        if info.discarded {
            let err = TaskError::new(
                ErrorCode::Integrity,
                "this upload's stored copy was damaged and discarded; upload the file again",
            );
            self.set_state(id, TaskState::Failed, now, |r| {
                r.error = Some(err);
                r.retry_at = None;
            });
            return;
        }
        let step = match info.protocol {
            UploadProtocol::Tus => {
                rules::next_tus_step(&info, s.offset_known, s.rec.bytes_received)
            }
            UploadProtocol::Put | UploadProtocol::Post => {
                s.rec.bytes_received = 0;
                Step::Whole
            }
        };
        let (method, url, body) = match step {
            Step::Create => ("POST", s.rec.url.href.clone(), None),
            Step::Probe => ("HEAD", info.location.clone().unwrap_or_default(), None),
            Step::Patch { from, to } => (
                "PATCH",
                info.location.clone().unwrap_or_default(),
                Some((from, to)),
            ),
            Step::Whole => (
                if info.protocol == UploadProtocol::Put {
                    "PUT"
                } else {
                    "POST"
                },
                s.rec.url.href.clone(),
                Some((0, info.size)),
            ),
        };
        let headers = merge_headers(&base, &rules::tus_headers(step, &info));
        let body_bytes = body.map_or(0, |(a, b)| b - a);
        s.gen += 1;
        let req = SendRequest {
            task: id.clone(),
            gen: s.gen,
            step,
            method,
            url,
            headers,
            body,
            timeout_ms: stall_ms + body_bytes as f64 / SLOWEST_BPS * 1000.0,
            session: s.rec.session.as_str().to_owned(),
            attempt: s.rec.attempts + 1,
        };
        let running = s.rec.state == TaskState::Running;
        self.out.push_back(Output::Send(req));
        self.tasks.edit(id, |s| s.active = true);
        if !running {
            self.set_state(id, TaskState::Running, now, |r| r.retry_at = None);
        }
    }

    /// The server answered request `gen` (step `step`) of upload `id`.
    pub fn handle_upload_response(
        &mut self,
        id: &TaskId,
        gen: u64,
        step: Step,
        resp: &UploadResponse,
        now: f64,
    ) {
        let interval = self.config.progress_interval_ms;
        let Some(s) = self.current(id, gen) else {
            return;
        };
        let Some(size) = s.rec.upload.as_ref().map(|u| u.size) else {
            return;
        };
        match rules::decide(step, size, resp) {
            Next::At { location, offset } => {
                let progress = offset > s.rec.bytes_received;
                if let (Some(l), Some(info)) = (location, s.rec.upload.as_mut()) {
                    info.location = Some(l);
                }
                s.offset_known = true;
                s.rec.bytes_received = offset;
                s.rec.updated_at = now;
                if progress {
                    s.rec.attempts = 0;
                    s.rec.error = None;
                }
                let rec = s.rec.clone();
                let event = progress && now - s.last_progress >= interval;
                if event {
                    s.last_progress = now;
                }
                let snap = event.then(|| rec.snapshot());
                self.out.push_back(Output::Persist(rec));
                if let Some(snap) = snap {
                    self.out.push_back(Output::Event(EventKind::Progress, snap));
                }
                self.start_upload(id, now);
            }
            Next::Done => {
                s.rec.bytes_received = size;
                s.gen += 1;
                self.change(
                    id,
                    TaskState::Completed,
                    now,
                    |r| {
                        r.error = None;
                        r.retry_at = None;
                    },
                    true,
                );
                self.schedule(now);
            }
            Next::Recreate => {
                // The server forgot the upload: a new one, from byte 0 (and what the
                // server offers is asked again: it may be another one).
                if let Some(info) = s.rec.upload.as_mut() {
                    info.location = None;
                    info.checksum = None;
                }
                s.rec.bytes_received = 0;
                s.offset_known = false;
                let err = TaskError::new(
                    ErrorCode::NotResumable,
                    format!(
                        "the server no longer has the upload (HTTP {}); starting a new one",
                        resp.status
                    ),
                );
                self.retry_or_fail(id, err, Some(0.0), now);
            }
            Next::Probe => {
                s.offset_known = false;
                let err = TaskError::new(
                    ErrorCode::NotResumable,
                    format!(
                        "the server's offset differs (HTTP {}); asking it",
                        resp.status
                    ),
                );
                self.retry_or_fail(id, err, Some(0.0), now);
            }
            Next::Retry { status } => {
                s.offset_known = false;
                let after = resp
                    .retry_after
                    .as_deref()
                    .and_then(|v| retry_after_ms(v, now));
                self.retry_or_fail(id, TaskError::http(status), after, now);
            }
            Next::Resend { status } => {
                // The server kept none of the damaged bytes: its offset stands.
                s.offset_known = true;
                let err = TaskError::new(
                    ErrorCode::HttpStatus,
                    format!(
                        "the server received damaged bytes (HTTP {status}: they did not match their Upload-Checksum); sending them again"
                    ),
                );
                let err = TaskError {
                    status: Some(status),
                    ..err
                };
                self.retry_or_fail(id, err, None, now);
            }
            Next::Fail(e) => self.fail(id, e, now),
        }
    }

    /// Request `gen` of upload `id` found, before sending a byte, that the stored
    /// copy no longer matches its digests (`err`, `integrity`): the task fails and
    /// the copy is freed. Never retried: the copy cannot come back, and nothing
    /// wrong was sent.
    pub fn handle_upload_corrupt(&mut self, id: &TaskId, gen: u64, err: TaskError, now: f64) {
        let Some(s) = self.current(id, gen) else {
            return;
        };
        if let Some(info) = s.rec.upload.as_mut() {
            info.discarded = true;
        }
        self.change(
            id,
            TaskState::Failed,
            now,
            |r| {
                r.error = Some(err);
                r.retry_at = None;
            },
            true,
        );
        self.schedule(now);
    }

    /// The shell learnt, while sending request `gen` of upload `id`, whether its tus
    /// server offers the checksum extension with `sha256`
    /// ([`rules::capabilities`]): kept (and stored) for the rest of the upload.
    pub fn set_upload_checksum(&mut self, id: &TaskId, gen: u64, offered: bool) {
        let Some(s) = self.current(id, gen) else {
            return;
        };
        let Some(info) = s.rec.upload.as_mut() else {
            return;
        };
        if info.checksum == Some(offered) {
            return;
        }
        info.checksum = Some(offered);
        let rec = s.rec.clone();
        self.out.push_back(Output::Persist(rec));
    }

    /// A canceled tus upload that was created is deleted on its server.
    pub(super) fn terminate_upload(&mut self, id: &TaskId) {
        let Some(s) = self.tasks.get(id) else { return };
        let Some(info) = s.rec.upload.as_ref() else {
            return;
        };
        if let (UploadProtocol::Tus, Some(url)) = (info.protocol, info.location.clone()) {
            let mut headers = self.base_headers(&s.rec);
            headers.push(("tus-resumable".into(), rules::TUS_VERSION.into()));
            let session = s.rec.session.as_str().to_owned();
            self.out.push_back(Output::Terminate {
                task: id.clone(),
                url,
                headers,
                session,
            });
        }
    }
}
