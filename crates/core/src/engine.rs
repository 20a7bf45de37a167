//! The task engine: one owner of every task, as a sans-IO state machine.
//!
//! Inputs arrive through `add`/`pause`/`resume`/`cancel`/`remove` (user commands) and
//! `handle_*` (what the network and storage did); outputs leave through
//! [`Engine::poll_output`] and [`Engine::poll_timeout`]. The shell applies outputs in
//! the order they come, which keeps IndexedDB writes of one task ordered.
//!
//! Every request the engine starts carries a generation number (`gen`). Callbacks
//! for an older generation (a fetch that was aborted by a pause, a body that ended
//! after a restart) are ignored, so a stale callback can never move a task.
//!
//! Bytes and offsets: the shell writes each chunk together with the record that
//! [`Engine::commit_record`] returns (one transaction), then reports
//! [`Engine::handle_committed`]. The persisted `bytes_received` therefore never
//! covers bytes that were not stored; chunks beyond it are garbage that the first
//! write of the next attempt deletes.

use super::config::{SessionConfig, DEFAULT_REQUEST_TIMEOUT};
use super::error::{ErrorCode, TaskError};
use super::http::{decide, HeadDecision, ResponseHead, ResumePoint};
use super::integrity::Integrity;
use super::retry::{RetryPolicy, Rng};
use super::task::{TaskId, TaskKind, TaskRecord, TaskSnapshot, TaskState, WaitReason};
use super::validate::SessionId;
use index::Tasks;
use std::collections::VecDeque;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Requests in flight per host (`host:port`).
    pub max_connections_per_host: usize,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Least time between two progress events of one task, ms.
    pub progress_interval_ms: f64,
    /// Ask for at most this many bytes per download request, chaining the next
    /// window where one ends ([`Engine::window_after`]; see `core::http`,
    /// "Windows"); `None`: one request per transfer.
    /// What the browser buffers of a response the worker has not read yet is then
    /// bounded by a window. The worker sets it where that was measured to matter.
    pub fetch_window: Option<u64>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_connections_per_host: 6,
            retry: RetryPolicy::default(),
            progress_interval_ms: 100.0,
            fetch_window: None,
        }
    }
}

/// A request the shell must make.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchRequest {
    /// The task.
    pub task: TaskId,
    /// Its generation: pass it back with every callback.
    pub gen: u64,
    /// URL.
    pub url: String,
    /// Headers, including `range` and `if-range` when resuming.
    pub headers: Vec<(String, String)>,
    /// The committed offset this request resumes from.
    pub offset: u64,
    /// The task's session (for the worker's credentials hook).
    pub session: String,
    /// Which attempt this is since the last progress: 1, 2, …
    pub attempt: u32,
    /// Abort and retry when nothing arrives for this long, ms (`requestTimeout`).
    pub stall_ms: f64,
}

/// Which event pages receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Bytes were committed.
    Progress,
    /// The state changed.
    StateChange,
    /// The task ended: completed, failed or canceled.
    Complete,
}

impl EventKind {
    /// The DOM event name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Progress => "progress",
            EventKind::StateChange => "statechange",
            EventKind::Complete => "complete",
        }
    }
}

/// What the engine asks the shell to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Start a request.
    Fetch(FetchRequest),
    /// Abort the request of `task` with generation `gen`.
    Abort {
        /// The task.
        task: TaskId,
        /// The generation to abort.
        gen: u64,
    },
    /// Write this record.
    Persist(TaskRecord),
    /// Write this record and delete every stored byte of the task.
    PersistAndDropBytes(TaskRecord),
    /// Delete the task's record and bytes.
    Forget(TaskId),
    /// Publish an event to the session's pages.
    Event(EventKind, TaskSnapshot),
    /// Send one request of an upload; report with [`Engine::handle_upload_response`]
    /// or [`Engine::handle_failure`].
    Send(upload::SendRequest),
    /// The last unfinished task of the session ended: deliver one `finish` event
    /// (and keep it pending for pages that open the session later).
    Finished(SessionId),
    /// Delete the session's record (`invalidateAndCancel`).
    ForgetSession(SessionId),
    /// Delete a tus upload on its server (a canceled upload's termination); best
    /// effort: a few attempts within this worker life
    /// ([`crate::upload::TERMINATE_ATTEMPTS`]), none after it.
    Terminate {
        /// The task.
        task: TaskId,
        /// The upload URL.
        url: String,
        /// Headers to send (the session's and the task's, and `Tus-Resumable`).
        headers: Vec<(String, String)>,
        /// The task's session identifier (for the credentials hook).
        session: String,
    },
    /// Every byte is stored: hash `[0, upto)` of the task's stored bytes against
    /// `integrity` and report with [`Engine::handle_verified`].
    Verify {
        /// The task.
        task: TaskId,
        /// The generation of this check: pass it back.
        gen: u64,
        /// How many stored bytes to hash.
        upto: u64,
        /// What they must match.
        integrity: Integrity,
    },
}

/// What the shell does with a response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// Stream the body, writing its first byte at `offset`.
    StreamAt(u64),
    /// Drop the response; the engine has already decided what comes next.
    Discard,
}

struct Slot {
    rec: TaskRecord,
    gen: u64,
    /// A request is in flight (it counts against its host's limit).
    active: bool,
    /// The stored bytes are being checked against the task's integrity metadata.
    verifying: bool,
    /// Uploads: the server's offset is known in this worker life (else probe first).
    offset_known: bool,
    /// The window the request in flight asked for, if any.
    window: Option<u64>,
    /// Where the body of the request in flight ends when it is a window short of the
    /// total (exclusive): the next window starts there.
    window_end: Option<u64>,
    /// This worker life asks for this task's bytes without windows: its server
    /// answered one with no validator to chain them by, or one that could not be used.
    unwindowed: bool,
    /// The offset the body of the request in flight may not reach past (exclusive):
    /// its head's declared end (`core::http`, "A body that does not match its head").
    limit: Option<u64>,
    /// The body in flight has no known length, and its end is to be confirmed with
    /// a range request from there (`core::http`, "A body of unknown length that ends").
    confirm_end: bool,
    /// How many answers of this task this worker life were distrusted: the second
    /// makes the download start over as one whole response.
    distrusted: u8,
    last_progress: f64,
}

impl Slot {
    fn new(rec: TaskRecord) -> Slot {
        Slot {
            rec,
            gen: 0,
            active: false,
            verifying: false,
            offset_known: false,
            window: None,
            window_end: None,
            unwindowed: false,
            limit: None,
            confirm_end: false,
            distrusted: 0,
            last_progress: f64::NEG_INFINITY,
        }
    }
}

/// The engine. See the module docs.
pub struct Engine {
    config: EngineConfig,
    /// Per-session configuration; few sessions, so a vector.
    sessions: Vec<(SessionId, SessionConfig)>,
    tasks: Tasks,
    /// Sessions invalidated by `finishTasksAndInvalidate`: they take no new task.
    invalidated: Vec<SessionId>,
    /// What pages last reported of `navigator.connection` (`None`: nothing yet).
    network: Option<crate::network::NetworkReport>,
    /// What the browser last said about the network.
    online: bool,
    out: VecDeque<Output>,
    rng: Rng,
    /// Hosts (`host:port`) whose answer to a first window could not be used (most
    /// often a cross-origin server that hides `Content-Range`): for the rest of this
    /// worker life their tasks ask for no windows, saving each a dropped request.
    unwindowed_hosts: Vec<String>,
}

impl Engine {
    /// A new engine; `seed` feeds the jitter.
    pub fn new(config: EngineConfig, seed: u64) -> Engine {
        Engine {
            config,
            sessions: Vec::new(),
            tasks: Tasks::default(),
            invalidated: Vec::new(),
            network: None,
            online: true,
            out: VecDeque::new(),
            rng: Rng::new(seed),
            unwindowed_hosts: Vec::new(),
        }
    }

    /// Set (or replace) a session's configuration (already validated).
    pub fn configure(&mut self, session: SessionId, config: SessionConfig) {
        match self.sessions.iter_mut().find(|(s, _)| *s == session) {
            Some((_, c)) => *c = config,
            None => self.sessions.push((session, config)),
        }
    }

    fn request_timeout(&self, session: &SessionId) -> f64 {
        self.sessions
            .iter()
            .find(|(s, _)| s == session)
            .map_or(DEFAULT_REQUEST_TIMEOUT, |(_, c)| c.request_timeout)
    }

    fn byte_budget(&self, session: &SessionId) -> Option<u64> {
        self.sessions
            .iter()
            .find(|(s, _)| s == session)
            .and_then(|(_, c)| c.byte_budget)
    }

    /// The bytes the tasks of `session` other than `except` hold or have claimed:
    /// what ended tasks keep stored, and for unfinished ones the larger of what they
    /// stored and what their server declared.
    fn session_bytes_except(&self, session: &SessionId, except: &TaskId) -> u64 {
        self.tasks
            .values()
            .filter(|s| &s.rec.session == session && &s.rec.id != except)
            .map(|s| match s.rec.state {
                // Bytes kept for resume data still take room.
                TaskState::Canceled if s.rec.resume_token.is_some() => s.rec.bytes_received,
                // A finished upload's stored copy is freed; an unfinished one holds it.
                state if s.rec.upload.is_some() => {
                    if state.is_final() {
                        0
                    } else {
                        s.rec.bytes_expected.unwrap_or(0)
                    }
                }
                TaskState::Canceled => 0,
                TaskState::Completed | TaskState::Failed | TaskState::Paused => {
                    s.rec.bytes_received
                }
                _ => s.rec.bytes_received.max(s.rec.bytes_expected.unwrap_or(0)),
            })
            .sum()
    }

    /// Whether `session`'s byte budget has room for `bytes` more (an upload's copy,
    /// checked before it is stored).
    pub fn check_room(&self, session: &SessionId, bytes: u64) -> Result<(), TaskError> {
        let Some(budget) = self.byte_budget(session) else {
            return Ok(());
        };
        let none = TaskId(String::new());
        let used = self.session_bytes_except(session, &none);
        if used.saturating_add(bytes) > budget {
            return Err(TaskError::new(
                ErrorCode::OverBudget,
                format!(
                    "{bytes} bytes do not fit in the session's byteBudget ({budget}, {used} in use)"
                ),
            ));
        }
        Ok(())
    }

    /// The error for a task that would hold `bytes` (at least), if that is more than
    /// its `maxBytes` or more than its session's byte budget leaves room for.
    fn over_limit(&self, id: &TaskId, bytes: u64) -> Option<TaskError> {
        let rec = &self.tasks.get(id)?.rec;
        if let Some(max) = rec.max_bytes.filter(|&m| bytes > m) {
            return Some(too_large(bytes, max));
        }
        let budget = self.byte_budget(&rec.session)?;
        let others = self.session_bytes_except(&rec.session, id);
        (others.saturating_add(bytes) > budget).then(|| {
            TaskError::new(
                ErrorCode::OverBudget,
                format!(
                    "the resource needs at least {bytes} bytes, but the session's byteBudget ({budget}) leaves {} beside its other tasks; remove ended tasks or raise the budget",
                    budget.saturating_sub(others)
                ),
            )
        })
    }

    /// The headers of a request of `rec`: the session's, then the task's own.
    fn base_headers(&self, rec: &TaskRecord) -> Vec<(String, String)> {
        match self.session_config(&rec.session) {
            Some(c) if !c.headers.pairs().is_empty() => {
                c.headers.merged(&rec.headers).pairs().to_vec()
            }
            _ => rec.headers.pairs().to_vec(),
        }
    }

    fn session_config(&self, session: &SessionId) -> Option<&SessionConfig> {
        self.sessions
            .iter()
            .find(|(s, _)| s == session)
            .map(|(_, c)| c)
    }

    fn retry_policy(&self, session: &SessionId) -> &RetryPolicy {
        self.sessions
            .iter()
            .find(|(s, _)| s == session)
            .map_or(&self.config.retry, |(_, c)| &c.retry)
    }

    /// Take back a record loaded from storage at start-up. A task that was running
    /// when the worker died is pending again; call [`Engine::schedule`] afterwards.
    pub fn restore(&mut self, mut rec: TaskRecord) {
        if rec.state == TaskState::Running {
            rec.state = TaskState::Pending;
        }
        self.tasks.insert(Slot::new(rec));
    }

    /// Accept a new task (already validated). It starts as soon as the host has room.
    pub fn add(&mut self, mut rec: TaskRecord, now: f64) -> TaskSnapshot {
        rec.state = TaskState::Pending;
        rec.created_at = now;
        rec.updated_at = now;
        let id = rec.id.clone();
        let snap = rec.snapshot();
        self.out.push_back(Output::Persist(rec.clone()));
        self.out
            .push_back(Output::Event(EventKind::StateChange, snap));
        self.tasks.insert(Slot::new(rec));
        self.schedule(now);
        self.snapshot(&id)
    }

    /// The snapshot of one task of `session`.
    pub fn get(&self, session: &SessionId, id: &TaskId) -> Option<TaskSnapshot> {
        self.tasks
            .get(id)
            .filter(|s| &s.rec.session == session)
            .map(|s| s.rec.snapshot())
    }

    /// How many bytes completed download `id` of `session` holds, to read it back:
    /// `not-found` if the session has no such task, `invalid-state` unless it is a
    /// completed download.
    pub fn completed_bytes(&self, session: &SessionId, id: &TaskId) -> Result<u64, TaskError> {
        let rec = self
            .tasks
            .get(id)
            .map(|s| &s.rec)
            .filter(|r| &r.session == session)
            .ok_or_else(|| TaskError::new(ErrorCode::NotFound, format!("no task \"{}\"", id.0)))?;
        if rec.state != TaskState::Completed || rec.kind != TaskKind::Download {
            return Err(TaskError::new(
                ErrorCode::InvalidState,
                "only a completed download has a blob",
            ));
        }
        Ok(rec.bytes_received)
    }

    /// The tasks of `session` with work left (pending, running, waiting), in
    /// ascending id order.
    pub fn active_ids(&self, session: &SessionId) -> Vec<TaskId> {
        self.tasks
            .values()
            .filter(|s| &s.rec.session == session && s.rec.state.has_work())
            .map(|s| s.rec.id.clone())
            .collect()
    }

    /// The snapshots of every task of `session`, oldest first.
    pub fn list(&self, session: &SessionId) -> Vec<TaskSnapshot> {
        let mut v: Vec<_> = self
            .tasks
            .values()
            .filter(|s| &s.rec.session == session)
            .map(|s| &s.rec)
            .collect();
        v.sort_by(|a, b| {
            a.created_at
                .total_cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        v.into_iter().map(TaskRecord::snapshot).collect()
    }

    /// Every task id, in ascending order.
    pub fn ids(&self) -> Vec<TaskId> {
        self.tasks.keys().cloned().collect()
    }

    /// The full record of a task (for the shell, e.g. to read its bytes).
    pub fn record(&self, id: &TaskId) -> Option<&TaskRecord> {
        self.tasks.get(id).map(|s| &s.rec)
    }

    fn slot_of(&mut self, session: &SessionId, id: &TaskId) -> Result<&mut Slot, TaskError> {
        match self.tasks.get_mut(id) {
            Some(s) if &s.rec.session == session => Ok(s),
            _ => Err(TaskError::new(
                ErrorCode::NotFound,
                format!("no task \"{}\" in session \"{}\"", id.0, session.as_str()),
            )),
        }
    }

    /// Pause a task: its request is aborted, its bytes are kept.
    pub fn pause(
        &mut self,
        session: &SessionId,
        id: &TaskId,
        now: f64,
    ) -> Result<TaskSnapshot, TaskError> {
        let state = self.slot_of(session, id)?.rec.state;
        match state {
            TaskState::Paused => {}
            TaskState::Pending | TaskState::Running | TaskState::Waiting => {
                self.stop_request(id);
                self.set_state(id, TaskState::Paused, now, |r| r.retry_at = None);
                self.schedule(now);
            }
            s => return Err(invalid_state("pause", s)),
        }
        Ok(self.snapshot(id))
    }

    /// Resume a paused or failed task from its committed offset.
    pub fn resume(
        &mut self,
        session: &SessionId,
        id: &TaskId,
        now: f64,
    ) -> Result<TaskSnapshot, TaskError> {
        let state = self.slot_of(session, id)?.rec.state;
        match state {
            TaskState::Paused | TaskState::Failed => {
                self.set_state(id, TaskState::Pending, now, |r| {
                    r.error = None;
                    r.attempts = 0;
                });
                self.schedule(now);
            }
            TaskState::Pending | TaskState::Running | TaskState::Waiting => {}
            s => return Err(invalid_state("resume", s)),
        }
        Ok(self.snapshot(id))
    }

    /// Cancel a task and free its bytes. Returns whether anything changed: canceling
    /// a canceled task is a no-op that says so.
    pub fn cancel(
        &mut self,
        session: &SessionId,
        id: &TaskId,
        now: f64,
    ) -> Result<(TaskSnapshot, bool), TaskError> {
        let state = self.slot_of(session, id)?.rec.state;
        match state {
            TaskState::Canceled => Ok((self.snapshot(id), false)),
            TaskState::Completed => Err(invalid_state("cancel", state)),
            _ => {
                self.stop_request(id);
                self.terminate_upload(id);
                self.set_state_dropping(id, TaskState::Canceled, now);
                self.schedule(now);
                Ok((self.snapshot(id), true))
            }
        }
    }

    /// Forget an ended task and free its bytes.
    pub fn remove(&mut self, session: &SessionId, id: &TaskId) -> Result<(), TaskError> {
        let state = self.slot_of(session, id)?.rec.state;
        if !state.is_final() {
            return Err(TaskError::new(
                ErrorCode::InvalidState,
                format!(
                    "cannot remove a {} task; cancel it first",
                    state_name(state)
                ),
            ));
        }
        self.tasks.remove(id);
        self.out.push_back(Output::Forget(id.clone()));
        Ok(())
    }

    /// The browser says the network went away or came back (`navigator.onLine`, a
    /// page's `online`/`offline` event, a `sync` event). Offline, tasks wait without
    /// spending retry attempts; back online, they start again at once.
    pub fn set_online(&mut self, online: bool, now: f64) {
        if self.online == online {
            return;
        }
        self.online = online;
        if online {
            let back: Vec<TaskId> = self
                .tasks
                .values()
                .filter(|s| {
                    s.rec.state == TaskState::Waiting
                        && s.rec.wait_reason == Some(WaitReason::Offline)
                })
                .map(|s| s.rec.id.clone())
                .collect();
            for id in back {
                self.set_state(&id, TaskState::Pending, now, |r| r.retry_at = None);
            }
        }
        self.schedule(now);
    }

    /// Whether a task waits for the network (the shell may ask for a `sync` event).
    pub fn waits_for_network(&self) -> bool {
        self.tasks.any_offline()
    }

    fn wait_offline(&mut self, id: &TaskId, err: Option<TaskError>, now: f64) {
        self.set_state(id, TaskState::Waiting, now, |r| {
            r.wait_reason = Some(WaitReason::Offline);
            r.retry_at = None;
            if err.is_some() {
                r.error = err;
            }
        });
    }

    fn start(&mut self, id: &TaskId, now: f64) {
        if self.tasks.get(id).is_some_and(|s| s.rec.upload.is_some()) {
            self.start_upload(id, now);
            return;
        }
        let Some(s) = self.tasks.get_mut(id) else {
            return;
        };
        if s.rec.bytes_received > 0 && s.rec.bytes_expected == Some(s.rec.bytes_received) {
            // Every byte was committed before the worker died: nothing to fetch.
            self.finish(id, now);
            return;
        }
        if self.unwindowed_hosts.contains(&s.rec.url.host) {
            s.unwindowed = true;
        }
        if !self.request(id) {
            return;
        }
        self.tasks.edit(id, |s| s.active = true);
        self.set_state(id, TaskState::Running, now, |r| r.retry_at = None);
    }

    /// Queue the next request of download `id` from its resume point, asking for at
    /// most a window of bytes where it can; false if there is no such task. Called
    /// alone (not from `start`), it asks again at once, with no backoff, no attempt
    /// and no state change: a window ended where the next one starts and the shell
    /// did not chain it, or a first window's answer could not be used.
    fn request(&mut self, id: &TaskId) -> bool {
        let Some((stall_ms, mut headers)) = self.tasks.get(id).map(|s| {
            (
                self.request_timeout(&s.rec.session),
                self.base_headers(&s.rec),
            )
        }) else {
            return false;
        };
        let window = self.config.fetch_window;
        let Some(s) = self.tasks.get_mut(id) else {
            return false;
        };
        let window = window.filter(|_| !s.unwindowed);
        let mut range = s.rec.resume_point().range_headers(window);
        if s.rec.bytes_received > 0 && range.is_none() {
            // Nothing proves the stored bytes still match: start over.
            s.rec.bytes_received = 0;
            range = s.rec.resume_point().range_headers(window);
        }
        // A window from a fresh start is asked only while nothing says the server
        // has no validator to chain windows by.
        if s.rec.bytes_expected.is_some() && s.rec.resume_point().if_range().is_none() {
            range = None;
        }
        s.window = window.filter(|_| range.is_some());
        s.window_end = None;
        s.limit = None;
        s.confirm_end = false;
        s.gen += 1;
        if let Some((r, ir)) = range {
            headers.push(("range".into(), r));
            if let Some(ir) = ir {
                headers.push(("if-range".into(), ir));
            }
        }
        let req = FetchRequest {
            task: s.rec.id.clone(),
            gen: s.gen,
            url: s.rec.url.href.clone(),
            headers,
            offset: s.rec.bytes_received,
            stall_ms,
            session: s.rec.session.as_str().to_owned(),
            attempt: s.rec.attempts + 1,
        };
        self.out.push_back(Output::Fetch(req));
        true
    }

    /// The window after the one request `gen` is reading: where it starts (the
    /// current window's end), and the `range` and `if-range` values to ask for it in
    /// the same transfer, its bytes going on into the same commits. The shell may ask
    /// for it before the current window's body has ended, to have its round trip
    /// under way, and takes it only if that body ends exactly where it starts. `None`
    /// if there is none to chain: the current window runs to the end of the
    /// resource, the download is not windowed, or nothing validates a next window.
    /// Check its head with [`Engine::handle_window_head`].
    pub fn window_after(&mut self, id: &TaskId, gen: u64) -> Option<(u64, String, String)> {
        let s = self.current(id, gen)?;
        let at = s.window_end.filter(|_| !s.unwindowed)?;
        let point = ResumePoint {
            offset: at,
            ..s.rec.resume_point()
        };
        let (range, if_range) = point.range_headers(s.window)?;
        Some((at, range, if_range?))
    }

    /// The head of the window asked for at `at` ([`Engine::window_after`]): true if
    /// its body goes on from `at` (stream it); false if it does not fit, and the
    /// shell drops it and ends the transfer once its commits are done
    /// ([`Engine::handle_body_end`] then asks again as a request of its own, which
    /// sorts out what changed).
    pub fn handle_window_head(
        &mut self,
        id: &TaskId,
        gen: u64,
        at: u64,
        head: &ResponseHead,
        now: f64,
    ) -> bool {
        let Some(s) = self.current(id, gen) else {
            return false;
        };
        let point = ResumePoint {
            offset: at,
            ..s.rec.resume_point()
        };
        match decide(&point, s.window, head, now) {
            HeadDecision::Stream {
                offset,
                restart: false,
                end,
                limit,
                ..
            } if offset == at => {
                s.window_end = end;
                s.limit = limit;
                true
            }
            _ => false,
        }
    }

    fn current(&mut self, id: &TaskId, gen: u64) -> Option<&mut Slot> {
        self.tasks
            .get_mut(id)
            .filter(|s| s.gen == gen && s.active && s.rec.state == TaskState::Running)
    }

    /// A response head arrived for request `gen` of task `id`.
    pub fn handle_head(&mut self, id: &TaskId, gen: u64, head: &ResponseHead, now: f64) -> Body {
        let Some(s) = self.current(id, gen) else {
            return Body::Discard;
        };
        let window = s.window;
        match decide(&s.rec.resume_point(), window, head, now) {
            HeadDecision::Stream {
                offset,
                restart,
                rep,
                end,
                limit,
                confirm_end,
            } => {
                if let Some(e) = rep.total.and_then(|t| self.over_limit(id, t)) {
                    self.fail_dropping(id, e, now);
                    return Body::Discard;
                }
                let Some(s) = self.tasks.get_mut(id) else {
                    return Body::Discard;
                };
                s.window_end = end;
                s.limit = limit;
                s.confirm_end = confirm_end;
                if end.is_some() && rep.etag.is_none() && rep.last_modified.is_none() {
                    // Nothing to chain the next window by: the rest comes as one
                    // response, from byte 0 (see `core::http`, "Windows").
                    s.unwindowed = true;
                }
                if restart {
                    s.rec.bytes_received = 0;
                    s.rec.etag = rep.etag;
                    s.rec.last_modified = rep.last_modified;
                    s.rec.bytes_expected = rep.total;
                    s.rec.updated_at = now;
                    let rec = s.rec.clone();
                    self.out.push_back(Output::Persist(rec));
                } else if s.rec.bytes_expected.is_none() {
                    // A resume of a body whose length was unknown: its 206 tells it.
                    s.rec.bytes_expected = rep.total;
                }
                Body::StreamAt(offset)
            }
            HeadDecision::AlreadyComplete => {
                self.finish(id, now);
                Body::Discard
            }
            HeadDecision::Restart { reason } => {
                // Whatever went wrong with a window is not tried with another.
                s.unwindowed |= window.is_some();
                let fresh = s.rec.bytes_received == 0;
                s.rec.bytes_received = 0;
                s.rec.etag = None;
                s.rec.last_modified = None;
                s.rec.bytes_expected = None;
                if window.is_some() && fresh {
                    // A first window the server's answer does not fit (a Content-Range
                    // hidden by CORS, an encoded body): ask for the whole at once,
                    // which is no failure of the task's (`core::http`, "Windows").
                    let host = s.rec.url.host.clone();
                    if !self.unwindowed_hosts.contains(&host) {
                        self.unwindowed_hosts.push(host);
                    }
                    self.request(id);
                    return Body::Discard;
                }
                let err =
                    TaskError::new(ErrorCode::NotResumable, format!("cannot resume: {reason}"));
                self.retry_or_fail(id, err, Some(0.0), now);
                Body::Discard
            }
            HeadDecision::Retry {
                status,
                retry_after_ms,
            } => {
                self.retry_or_fail(id, TaskError::http(status), retry_after_ms, now);
                Body::Discard
            }
            HeadDecision::Distrust { reason } => {
                self.distrust(id, reason, now);
                Body::Discard
            }
            HeadDecision::Fail(e) => {
                self.fail(id, e, now);
                Body::Discard
            }
        }
    }

    /// An answer of task `id` disagrees with itself (`core::http`, "A body that does
    /// not match its head"): nothing of it was appended. The first time, it is
    /// asked again from the committed offset, as after an interruption; the second
    /// time in this worker life the server is taken as one that cannot serve
    /// ranges, and the download starts over as one whole response.
    fn distrust(&mut self, id: &TaskId, reason: &'static str, now: f64) {
        let Some(s) = self.tasks.get_mut(id) else {
            return;
        };
        s.distrusted = s.distrusted.saturating_add(1);
        s.limit = None;
        s.confirm_end = false;
        if s.distrusted >= 2 {
            s.unwindowed = true;
            s.rec.bytes_received = 0;
            s.rec.etag = None;
            s.rec.last_modified = None;
            s.rec.bytes_expected = None;
        }
        let err = TaskError::new(
            ErrorCode::NotResumable,
            format!("the server's answer was distrusted: {reason}"),
        );
        self.retry_or_fail(id, err, None, now);
    }

    /// The record to write together with a chunk that brings the committed offset to
    /// `new_offset`, or `None` if the chunk must be dropped: request `gen` no longer
    /// owns the task, or the chunk would cross the task's `maxBytes` or its session's
    /// byte budget (the task then fails and its bytes are freed; nothing over the
    /// limit is ever stored).
    pub fn commit_record(
        &mut self,
        id: &TaskId,
        gen: u64,
        new_offset: u64,
        now: f64,
    ) -> Option<TaskRecord> {
        let s = self.current(id, gen)?;
        // No byte past what the head declared is ever stored (`core::http`, "A body
        // that does not match its head").
        if s.limit
            .or(s.rec.bytes_expected)
            .is_some_and(|l| new_offset > l)
        {
            self.distrust(id, "the body runs past the end its head declared", now);
            return None;
        }
        if let Some(e) = self.over_limit(id, new_offset) {
            self.fail_dropping(id, e, now);
            return None;
        }
        let s = self.current(id, gen)?;
        let mut rec = s.rec.clone();
        rec.bytes_received = new_offset;
        rec.updated_at = now;
        Some(rec)
    }

    /// A chunk and its record committed: the task now holds `new_offset` bytes.
    pub fn handle_committed(&mut self, id: &TaskId, gen: u64, new_offset: u64, now: f64) {
        let interval = self.config.progress_interval_ms;
        let Some(s) = self.current(id, gen) else {
            return;
        };
        s.rec.bytes_received = new_offset;
        s.rec.updated_at = now;
        s.rec.attempts = 0;
        s.rec.error = None;
        if let Some(expected) = s.rec.bytes_expected {
            if new_offset > expected {
                let e = TaskError::new(
                    ErrorCode::NotResumable,
                    "the server sent more bytes than it declared",
                );
                self.fail(id, e, now);
                return;
            }
            if new_offset == expected {
                self.finish(id, now);
                return;
            }
        }
        if now - s.last_progress >= interval {
            s.last_progress = now;
            let snap = s.rec.snapshot();
            self.out.push_back(Output::Event(EventKind::Progress, snap));
        }
    }

    /// The body of request `gen` ended normally (after its last chunk committed).
    pub fn handle_body_end(&mut self, id: &TaskId, gen: u64, now: f64) {
        let Some(s) = self.current(id, gen) else {
            return;
        };
        let received = s.rec.bytes_received;
        if s.window_end == Some(received) && s.rec.bytes_expected.is_some_and(|e| received < e) {
            self.request(id);
            return;
        }
        if s.confirm_end && s.rec.bytes_expected.is_none() {
            // A body of unknown length ended: ask from its end whether it was all
            // (`core::http`, "A body of unknown length that ends"), as a request of
            // its own, with no attempt spent.
            self.request(id);
            return;
        }
        match s.rec.bytes_expected {
            Some(e) if s.rec.bytes_received < e => {
                let err = TaskError::new(
                    ErrorCode::Network,
                    "the body ended before its declared length",
                );
                self.retry_or_fail(id, err, None, now);
            }
            _ => self.finish(id, now),
        }
    }

    /// Request `gen` failed. `retryable` failures (network, stall) are retried with
    /// backoff; others end the task.
    pub fn handle_failure(
        &mut self,
        id: &TaskId,
        gen: u64,
        err: TaskError,
        retryable: bool,
        now: f64,
    ) {
        let Some(s) = self.current(id, gen) else {
            return;
        };
        s.offset_known = false;
        if retryable && !self.online {
            self.wait_offline(id, Some(err), now);
            self.schedule(now);
        } else if retryable {
            self.retry_or_fail(id, err, None, now);
        } else {
            self.fail(id, err, now);
        }
    }

    /// Time passed: waiting tasks whose time came are started.
    pub fn handle_timeout(&mut self, now: f64) {
        // Waiting for a retry or `earliestBegin` (or for nothing), and due.
        for id in self.tasks.due(now) {
            self.set_state(&id, TaskState::Pending, now, |r| r.retry_at = None);
        }
        self.schedule(now);
    }

    /// Whether request `gen` still owns task `id` (the shell stops reading otherwise).
    pub fn is_current(&self, id: &TaskId, gen: u64) -> bool {
        self.tasks
            .get(id)
            .is_some_and(|s| s.gen == gen && s.active && s.rec.state == TaskState::Running)
    }

    /// The next output for the shell.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When to call [`Engine::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<f64> {
        self.tasks
            .next_due()
            .into_iter()
            .chain(self.next_deadline())
            .min_by(f64::total_cmp)
    }

    /// Whether any task still has work to do (pending, running or waiting).
    pub fn has_work(&self) -> bool {
        self.tasks.has_work()
    }

    fn snapshot(&self, id: &TaskId) -> TaskSnapshot {
        self.tasks
            .get(id)
            .map(|s| s.rec.snapshot())
            .unwrap_or_else(|| unreachable_snapshot(id))
    }

    fn stop_request(&mut self, id: &TaskId) {
        let stopped = self.tasks.edit(id, |s| {
            let was = std::mem::replace(&mut s.active, false);
            // An aborted upload request may have left part of its body with the
            // server: ask for its offset before sending more.
            if was {
                s.offset_known = false;
            }
            was.then_some(s.gen)
        });
        if let Some(Some(gen)) = stopped {
            self.out.push_back(Output::Abort {
                task: id.clone(),
                gen,
            });
        }
    }

    fn set_state(
        &mut self,
        id: &TaskId,
        state: TaskState,
        now: f64,
        f: impl FnOnce(&mut TaskRecord),
    ) {
        self.change(id, state, now, f, false);
    }

    fn set_state_dropping(&mut self, id: &TaskId, state: TaskState, now: f64) {
        self.change(
            id,
            state,
            now,
            |r| r.error = Some(TaskError::new(ErrorCode::Canceled, "the task was canceled")),
            true,
        );
    }

    fn change(
        &mut self,
        id: &TaskId,
        state: TaskState,
        now: f64,
        f: impl FnOnce(&mut TaskRecord),
        drop_bytes: bool,
    ) {
        let rec = self.tasks.edit(id, |s| {
            if state != TaskState::Running {
                s.active = false;
                s.verifying = false;
            }
            s.rec.state = state;
            s.rec.updated_at = now;
            if state != TaskState::Waiting {
                s.rec.wait_reason = None;
            }
            f(&mut s.rec);
            s.rec.clone()
        });
        let Some(rec) = rec else {
            return;
        };
        let snap = rec.snapshot();
        let session = rec.session.clone();
        self.out.push_back(if drop_bytes {
            Output::PersistAndDropBytes(rec)
        } else {
            Output::Persist(rec)
        });
        self.out
            .push_back(Output::Event(EventKind::StateChange, snap.clone()));
        if state.is_final() {
            self.out.push_back(Output::Event(EventKind::Complete, snap));
            self.check_finished(&session);
        }
    }

    /// Every byte is stored: complete the task, or first have the shell check the
    /// stored bytes against its integrity metadata ([`Output::Verify`]). The task
    /// stays `running` while they are checked, holding no connection.
    fn finish(&mut self, id: &TaskId, now: f64) {
        let Some(s) = self.tasks.get_mut(id) else {
            return;
        };
        s.gen += 1;
        if s.rec.bytes_expected.is_none() {
            s.rec.bytes_expected = Some(s.rec.bytes_received);
        }
        let Some(integrity) = s.rec.integrity.clone() else {
            self.complete(id, now);
            return;
        };
        s.verifying = true;
        let verify = Output::Verify {
            task: id.clone(),
            gen: s.gen,
            upto: s.rec.bytes_received,
            integrity,
        };
        let running = s.rec.state == TaskState::Running;
        self.tasks.edit(id, |s| s.active = false);
        if !running {
            self.set_state(id, TaskState::Running, now, |r| r.retry_at = None);
        }
        self.out.push_back(verify);
        self.schedule(now);
    }

    /// The check of [`Output::Verify`] `gen` ended: `Ok` completes the task; an
    /// `integrity` error fails it and frees its bytes; another error (storage) fails
    /// it and keeps them, so that `resume` checks again.
    pub fn handle_verified(
        &mut self,
        id: &TaskId,
        gen: u64,
        result: Result<(), TaskError>,
        now: f64,
    ) {
        if !self.is_verifying(id, gen) {
            return;
        }
        if let Some(s) = self.tasks.get_mut(id) {
            s.verifying = false;
        }
        match result {
            Ok(()) => self.complete(id, now),
            Err(e) if e.code == ErrorCode::Integrity => self.fail_dropping(id, e, now),
            Err(e) => self.fail(id, e, now),
        }
    }

    /// Whether check `gen` of task `id` is still wanted (the shell stops otherwise).
    pub fn is_verifying(&self, id: &TaskId, gen: u64) -> bool {
        self.tasks
            .get(id)
            .is_some_and(|s| s.verifying && s.gen == gen && s.rec.state == TaskState::Running)
    }

    fn complete(&mut self, id: &TaskId, now: f64) {
        self.set_state(id, TaskState::Completed, now, |r| {
            r.error = None;
            r.retry_at = None;
        });
        self.schedule(now);
    }

    /// Fail and free the bytes: for failures no resume can mend (`too-large`).
    fn fail_dropping(&mut self, id: &TaskId, err: TaskError, now: f64) {
        self.change(
            id,
            TaskState::Failed,
            now,
            |r| {
                r.error = Some(err);
                r.retry_at = None;
                r.bytes_received = 0;
            },
            true,
        );
        self.schedule(now);
    }

    fn fail(&mut self, id: &TaskId, err: TaskError, now: f64) {
        self.set_state(id, TaskState::Failed, now, |r| {
            r.error = Some(err);
            r.retry_at = None;
        });
        self.schedule(now);
    }

    fn retry_or_fail(
        &mut self,
        id: &TaskId,
        err: TaskError,
        retry_after_ms: Option<f64>,
        now: f64,
    ) {
        let Some((attempts, age, session)) = self.tasks.get(id).map(|s| {
            (
                s.rec.attempts,
                now - s.rec.created_at,
                s.rec.session.clone(),
            )
        }) else {
            return;
        };
        let u = self.rng.next_f64();
        match self
            .retry_policy(&session)
            .delay_ms(attempts, age, retry_after_ms, u)
        {
            Some(delay) => {
                self.set_state(id, TaskState::Waiting, now, |r| {
                    r.wait_reason = Some(WaitReason::RetryAt);
                    r.attempts = attempts + 1;
                    r.retry_at = Some(now + delay);
                    r.error = Some(err);
                });
                if delay <= 0.0 {
                    self.handle_timeout(now);
                } else {
                    self.schedule(now);
                }
            }
            None => self.fail(id, err, now),
        }
    }
}

fn too_large(bytes: u64, max: u64) -> TaskError {
    TaskError::new(
        ErrorCode::TooLarge,
        format!("the resource has at least {bytes} bytes, more than the task's maxBytes ({max})"),
    )
}

fn state_name(s: TaskState) -> &'static str {
    match s {
        TaskState::Pending => "pending",
        TaskState::Running => "running",
        TaskState::Paused => "paused",
        TaskState::Waiting => "waiting",
        TaskState::Completed => "completed",
        TaskState::Failed => "failed",
        TaskState::Canceled => "canceled",
    }
}

fn invalid_state(cmd: &str, s: TaskState) -> TaskError {
    TaskError::new(
        ErrorCode::InvalidState,
        format!("cannot {cmd} a {} task", state_name(s)),
    )
}

fn unreachable_snapshot(id: &TaskId) -> TaskSnapshot {
    // Only reached if a caller asks for a task it just checked; keep a harmless value.
    TaskSnapshot {
        id: id.0.clone(),
        session: String::new(),
        kind: super::task::TaskKind::Download,
        url: String::new(),
        description: String::new(),
        state: TaskState::Failed,
        bytes_received: None,
        bytes_sent: None,
        bytes_expected: None,
        error: Some(TaskError::new(ErrorCode::Internal, "task vanished")),
        created_at: 0.0,
        updated_at: 0.0,
        retry_at: None,
        wait_reason: None,
        priority: super::task::DEFAULT_PRIORITY,
        earliest_begin: None,
    }
}

mod index;
mod lifecycle;
pub mod resume_data;
mod schedule;
pub mod upload;

#[cfg(test)]
mod tests;
#[cfg(test)]
use tests as tests_support;
#[cfg(test)]
mod upload_tests;
