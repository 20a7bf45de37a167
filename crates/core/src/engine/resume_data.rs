//! Resume data, URLSession's `cancel(byProducingResumeData:)`, in the web's idiom.
//!
//! `cancel(id, { produceResumeData: true })` cancels a download but keeps its stored
//! bytes, and returns a plain, JSON-serializable [`ResumeData`] value: the URL, the
//! validators, the committed offset, a reference to the stored bytes (the task id)
//! and a random token. `download(resumeData)`, in this or a later page load, revives
//! that task from its offset (the same id, with `If-Range` as usual, so a changed
//! resource still starts over).
//!
//! The token is what makes the value trustworthy: it is stored with the canceled task
//! and must match, so resume data that was forged, edited, or already used (the token
//! is cleared on use) is refused with `not-resumable`, as is data whose task was
//! removed (its bytes are gone). The kept bytes count against the session's byte
//! budget until the task is resumed or removed; `remove` frees them.

use super::{Engine, TaskState};
use crate::error::{ErrorCode, TaskError};
use crate::task::{TaskId, TaskKind, TaskSnapshot};
use crate::validate::SessionId;
use serde::{Deserialize, Serialize};

/// The version of the resume data format.
pub const RESUME_DATA_VERSION: u32 = 1;

/// What `cancel(id, { produceResumeData: true })` returns; opaque to apps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumeData {
    /// Format version ([`RESUME_DATA_VERSION`]); also marks the object as resume data.
    pub longhaul_resume_data: u32,
    /// The session it belongs to.
    pub session: String,
    /// The task whose stored bytes it refers to.
    pub task: String,
    /// The URL.
    pub url: String,
    /// Bytes stored.
    pub offset: u64,
    /// Complete length, if known.
    pub expected: Option<u64>,
    /// Strong ETag, if any.
    pub etag: Option<String>,
    /// Last-Modified, if any.
    pub last_modified: Option<String>,
    /// Proof that this value came from the cancel that kept the bytes.
    pub token: String,
}

fn stale(why: &str) -> TaskError {
    TaskError::new(
        ErrorCode::NotResumable,
        format!("this resume data cannot be used: {why}"),
    )
}

impl Engine {
    /// Cancel download `id` keeping its bytes, and return its resume data; `token`
    /// is a fresh random string from the shell.
    pub fn cancel_producing_resume_data(
        &mut self,
        session: &SessionId,
        id: &TaskId,
        token: String,
        now: f64,
    ) -> Result<ResumeData, TaskError> {
        let s = self.slot_of(session, id)?;
        if s.rec.kind != TaskKind::Download {
            return Err(TaskError::new(
                ErrorCode::InvalidState,
                "only downloads produce resume data; an upload resumes from its server's offset",
            ));
        }
        if s.rec.state.is_final() {
            return Err(TaskError::new(
                ErrorCode::InvalidState,
                "only an unfinished download can be canceled with resume data",
            ));
        }
        self.stop_request(id);
        let data_token = token.clone();
        self.set_state(id, TaskState::Canceled, now, |r| {
            r.error = Some(TaskError::new(ErrorCode::Canceled, "the task was canceled"));
            r.retry_at = None;
            r.resume_token = Some(data_token);
        });
        self.schedule(now);
        let rec = &self
            .tasks
            .get(id)
            .ok_or_else(|| stale("the task vanished"))?
            .rec;
        Ok(ResumeData {
            longhaul_resume_data: RESUME_DATA_VERSION,
            session: session.as_str().to_owned(),
            task: id.0.clone(),
            url: rec.url.href.clone(),
            offset: rec.bytes_received,
            expected: rec.bytes_expected,
            etag: rec.etag.clone(),
            last_modified: rec.last_modified.clone(),
            token,
        })
    }

    /// Revive the download `data` refers to, from its stored offset.
    pub fn resume_from_data(
        &mut self,
        session: &SessionId,
        data: &ResumeData,
        now: f64,
    ) -> Result<TaskSnapshot, TaskError> {
        if data.longhaul_resume_data != RESUME_DATA_VERSION {
            return Err(stale("it was made by another version of longhaul"));
        }
        if data.session != session.as_str() {
            return Err(stale("it belongs to another session"));
        }
        let id = TaskId(data.task.clone());
        let Some(s) = self.tasks.get(&id).filter(|s| &s.rec.session == session) else {
            return Err(stale("its task was removed, and its bytes with it"));
        };
        let rec = &s.rec;
        let matches = rec.state == TaskState::Canceled
            && rec.resume_token.as_deref() == Some(data.token.as_str())
            && rec.url.href == data.url
            && rec.bytes_received == data.offset
            && rec.etag == data.etag
            && rec.last_modified == data.last_modified;
        if !matches {
            return Err(stale(
                "it does not match the stored bytes (already used, altered, or forged)",
            ));
        }
        self.set_state(&id, TaskState::Pending, now, |r| {
            r.resume_token = None;
            r.error = None;
            r.attempts = 0;
        });
        self.schedule(now);
        Ok(self.snapshot(&id))
    }
}
