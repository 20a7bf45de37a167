//! Task records (what is persisted) and snapshots (what pages see).

use super::error::{ErrorCode, TaskError};
use super::http::ResumePoint;
use super::integrity::Integrity;
use super::upload::UploadInfo;
use super::validate::{HeaderList, HttpUrl, SessionId};
use serde::{Deserialize, Serialize};

/// A task's identifier, unique across sessions (the shell draws a random UUID).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub String);

/// What a task transfers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    /// Bytes from a server into storage.
    Download,
    /// Stored bytes to a server.
    Upload,
}

/// A task's state, as URLSessionTask's, in the web's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Accepted, not yet started (for example held by the per-host limit).
    Pending,
    /// A request is in flight.
    Running,
    /// Paused by a user; only `resume` moves it on.
    Paused,
    /// Waiting to retry after a failure (`retryAt` says until when).
    Waiting,
    /// All bytes are stored.
    Completed,
    /// Ended with an error.
    Failed,
    /// Canceled by a user; its bytes are freed.
    Canceled,
}

impl TaskState {
    /// Pending, running or waiting: the task still has work to do (a paused one
    /// waits for the user).
    pub fn has_work(self) -> bool {
        matches!(
            self,
            TaskState::Pending | TaskState::Running | TaskState::Waiting
        )
    }

    /// Completed, failed or canceled.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskState::Completed | TaskState::Failed | TaskState::Canceled
        )
    }
}

/// Why a `waiting` task waits (URLSession's taskIsWaitingForConnectivity, and more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitReason {
    /// The browser reports no network: the task resumes when it returns, and waiting
    /// spends no retry attempt.
    Offline,
    /// Backing off after a failure until `retryAt`.
    RetryAt,
    /// Not to start before its `earliestBegin` (`retryAt` says when).
    EarliestBegin,
    /// Its host has as many requests of the session in flight as
    /// `maxConnectionsPerHost` allows; it starts when one ends.
    ConnectionLimit,
    /// A discretionary session's task waits for a good network (not cellular, no
    /// Save-Data, not 2G), as pages report it.
    Discretionary,
    /// The session does not allow expensive (cellular) networks, and pages report one.
    ExpensiveNetwork,
    /// The session does not allow constrained networks (Save-Data), and pages
    /// report one.
    ConstrainedNetwork,
}

/// Everything persisted about a task. The committed offset (`bytes_received`) is the
/// only truth at start-up: stored chunks at or beyond it are garbage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Identifier.
    pub id: TaskId,
    /// Owning session.
    pub session: SessionId,
    /// Kind.
    pub kind: TaskKind,
    /// What to fetch.
    pub url: HttpUrl,
    /// Extra request headers.
    pub headers: HeaderList,
    /// Free text for the app.
    pub description: String,
    /// State.
    pub state: TaskState,
    /// Bytes committed to storage.
    pub bytes_received: u64,
    /// Complete length, once known.
    pub bytes_expected: Option<u64>,
    /// Strong ETag of the representation being stored.
    pub etag: Option<String>,
    /// Last-Modified of the representation (used only without a strong ETag).
    pub last_modified: Option<String>,
    /// The error that ended the task, or the last transient one while waiting.
    pub error: Option<TaskError>,
    /// Creation time, ms since the epoch.
    pub created_at: f64,
    /// Last change, ms since the epoch.
    pub updated_at: f64,
    /// Consecutive failed attempts without progress.
    pub attempts: u32,
    /// When a waiting task may try again, ms since the epoch.
    pub retry_at: Option<f64>,
    /// Most bytes the task may store (`maxBytes`); larger resources fail `too-large`.
    #[serde(default)]
    pub max_bytes: Option<u64>,
    /// Why a waiting task waits.
    #[serde(default)]
    pub wait_reason: Option<WaitReason>,
    /// Subresource Integrity metadata the stored file must match before the task
    /// completes.
    #[serde(default)]
    pub integrity: Option<Integrity>,
    /// What an upload sends and where (uploads only). For uploads `bytes_received`
    /// counts the bytes the server acknowledged (`bytesSent`).
    #[serde(default)]
    pub upload: Option<UploadInfo>,
    /// Order among the session's tasks for one host, 0 to 1 (`priority`); higher first.
    #[serde(default = "default_priority")]
    pub priority: f64,
    /// Not started before this time, ms since the epoch (`earliestBegin`).
    #[serde(default)]
    pub earliest_begin: Option<f64>,
    /// A canceled download whose bytes are kept for resume data: the token the resume
    /// data must carry.
    #[serde(default)]
    pub resume_token: Option<String>,
}

/// The priority of a task that was given none (URLSessionTask's default).
pub const DEFAULT_PRIORITY: f64 = 0.5;

fn default_priority() -> f64 {
    DEFAULT_PRIORITY
}

impl TaskRecord {
    /// A new, pending download that has stored nothing yet.
    pub fn new_download(
        id: TaskId,
        session: SessionId,
        url: HttpUrl,
        headers: HeaderList,
        description: String,
    ) -> TaskRecord {
        TaskRecord {
            id,
            session,
            kind: TaskKind::Download,
            url,
            headers,
            description,
            state: TaskState::Pending,
            bytes_received: 0,
            bytes_expected: None,
            etag: None,
            last_modified: None,
            error: None,
            created_at: 0.0,
            updated_at: 0.0,
            attempts: 0,
            retry_at: None,
            max_bytes: None,
            wait_reason: None,
            integrity: None,
            upload: None,
            priority: DEFAULT_PRIORITY,
            earliest_begin: None,
            resume_token: None,
        }
    }

    /// A new, pending upload of `info.size` stored bytes to `url`.
    pub fn new_upload(
        id: TaskId,
        session: SessionId,
        url: HttpUrl,
        headers: HeaderList,
        description: String,
        info: UploadInfo,
    ) -> TaskRecord {
        let mut rec = TaskRecord::new_download(id, session, url, headers, description);
        rec.kind = TaskKind::Upload;
        rec.bytes_expected = Some(info.size);
        rec.upload = Some(info);
        rec
    }

    /// The record that replaces one that could not be read: the task is failed with a
    /// `storage` error that says so, holds no bytes, and the others go on.
    pub fn unreadable(
        id: TaskId,
        session: SessionId,
        url: String,
        reason: &str,
        now: f64,
    ) -> TaskRecord {
        let mut rec = TaskRecord::new_download(
            id,
            session,
            HttpUrl {
                href: url,
                host: String::new(),
            },
            HeaderList::default(),
            String::new(),
        );
        rec.state = TaskState::Failed;
        rec.error = Some(TaskError::new(
            ErrorCode::Storage,
            format!("this task's stored record could not be read ({reason}); it was marked failed"),
        ));
        rec.created_at = now;
        rec.updated_at = now;
        rec
    }

    /// Where a new request for this task resumes.
    pub fn resume_point(&self) -> ResumePoint {
        ResumePoint {
            offset: self.bytes_received,
            expected: self.bytes_expected,
            etag: self.etag.clone(),
            last_modified: self.last_modified.clone(),
        }
    }

    /// The public view of this record.
    pub fn snapshot(&self) -> TaskSnapshot {
        TaskSnapshot {
            id: self.id.0.clone(),
            session: self.session.as_str().to_owned(),
            kind: self.kind,
            url: self.url.href.clone(),
            description: self.description.clone(),
            state: self.state,
            bytes_received: (self.kind == TaskKind::Download).then_some(self.bytes_received),
            bytes_sent: (self.kind == TaskKind::Upload).then_some(self.bytes_received),
            bytes_expected: self.bytes_expected,
            error: self.error.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            retry_at: self.retry_at,
            wait_reason: self.wait_reason,
            priority: self.priority,
            earliest_begin: self.earliest_begin,
        }
    }
}

/// The plain object pages receive (`event.detail`, `session.tasks()`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSnapshot {
    /// Task id.
    pub id: String,
    /// Session identifier.
    pub session: String,
    /// `'download'` or `'upload'`.
    pub kind: TaskKind,
    /// The URL.
    pub url: String,
    /// The app's description.
    pub description: String,
    /// The state.
    pub state: TaskState,
    /// Downloads: bytes committed to storage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_received: Option<u64>,
    /// Uploads: bytes the server acknowledged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_sent: Option<u64>,
    /// Complete length, or `null` while unknown.
    pub bytes_expected: Option<u64>,
    /// `null`, or the error.
    pub error: Option<TaskError>,
    /// ms since the epoch.
    pub created_at: f64,
    /// ms since the epoch.
    pub updated_at: f64,
    /// When a waiting task retries, or `null`.
    pub retry_at: Option<f64>,
    /// Why a waiting task waits, or `null`.
    pub wait_reason: Option<WaitReason>,
    /// 0 to 1.
    pub priority: f64,
    /// Not started before this, ms since the epoch, or `null`.
    pub earliest_begin: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{HeaderList, HttpUrl};

    #[test]
    fn a_list_of_snapshots_is_the_json_pages_are_documented_to_get() {
        // `tasks()` reaches pages as this JSON (the worker's `tasks` command): the
        // keys of `TaskSnapshot` in longhaul.d.ts, `null` where nothing is known,
        // `bytesSent` only on uploads.
        let mut rec = TaskRecord::new_download(
            TaskId("t1".into()),
            SessionId::parse("s").unwrap(),
            HttpUrl {
                href: "https://a.test/f?q=\"x\"".into(),
                host: "a.test".into(),
            },
            HeaderList::default(),
            "line\nbreak \u{2028} é".into(),
        );
        rec.state = TaskState::Waiting;
        rec.wait_reason = Some(WaitReason::ConnectionLimit);
        rec.bytes_received = 1 << 40;
        rec.created_at = 1_764_480_000_123.5;
        let json = serde_json::to_string(&[rec.snapshot()]).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let s = &v[0];
        let keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = vec![
            "id",
            "session",
            "kind",
            "url",
            "description",
            "state",
            "bytesReceived",
            "bytesExpected",
            "error",
            "createdAt",
            "updatedAt",
            "retryAt",
            "waitReason",
            "priority",
            "earliestBegin",
        ];
        want.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(s["state"], "waiting");
        assert_eq!(s["waitReason"], "connection-limit");
        assert_eq!(s["kind"], "download");
        assert_eq!(s["url"], "https://a.test/f?q=\"x\"");
        assert_eq!(s["description"], "line\nbreak \u{2028} é");
        assert_eq!(s["bytesReceived"], 1u64 << 40);
        assert_eq!(s["createdAt"], 1_764_480_000_123.5);
        assert!(s["bytesExpected"].is_null() && s["error"].is_null());
    }
}
