//! Session lifecycle: URLSession's `finishTasksAndInvalidate`, `invalidateAndCancel`
//! and `urlSessionDidFinishEvents`, in the web's idiom.
//!
//! - `finishTasksAndInvalidate`: the session takes no new task; its tasks run to
//!   their end; it is then no longer listed by `identifiers()`. Its ended tasks stay
//!   readable (a completed download's bytes are the app's) until removed; opening the
//!   identifier again makes it a live session again.
//! - `invalidateAndCancel`: every task is canceled and forgotten, every byte freed,
//!   the session's record deleted.
//! - `finish`: when the last unfinished task of a session ends, the session gets one
//!   `finish` event ([`Output::Finished`]); the shell stores it as pending so that a
//!   page opening the session later receives it once.

use super::{Engine, Output};
use crate::error::{ErrorCode, TaskError};
use crate::task::TaskId;
use crate::validate::SessionId;

impl Engine {
    /// Whether `session` shows notifications when tasks end with no page open.
    pub fn notifies(&self, session: &SessionId) -> bool {
        self.session_config(session)
            .is_some_and(|c| c.notifications)
    }

    /// Whether `session` still takes new tasks.
    pub fn accepts(&self, session: &SessionId) -> Result<(), TaskError> {
        if self.invalidated.contains(session) {
            return Err(TaskError::new(
                ErrorCode::InvalidState,
                "the session was invalidated (finishTasksAndInvalidate); open it again to add tasks",
            ));
        }
        Ok(())
    }

    /// Mark `session` invalidated or live again (as stored, at start-up and `open`).
    pub fn set_invalidated(&mut self, session: &SessionId, invalidated: bool) {
        self.invalidated.retain(|s| s != session);
        if invalidated {
            self.invalidated.push(session.clone());
        }
    }

    /// Whether `session` has a task that has not ended (pending, running, waiting or
    /// paused).
    pub fn has_unfinished(&self, session: &SessionId) -> bool {
        self.tasks.has_unfinished(session)
    }

    /// `finishTasksAndInvalidate`: no new tasks; `finish` once the last one ends (at
    /// once if none is unfinished).
    pub fn finish_and_invalidate(&mut self, session: &SessionId) {
        self.set_invalidated(session, true);
        self.check_finished(session);
    }

    /// `invalidateAndCancel`: cancel and forget every task of `session`, freeing every
    /// byte, and forget the session.
    pub fn invalidate_and_cancel(&mut self, session: &SessionId, now: f64) {
        let ids: Vec<TaskId> = self
            .tasks
            .values()
            .filter(|s| &s.rec.session == session)
            .map(|s| s.rec.id.clone())
            .collect();
        for id in &ids {
            self.stop_request(id);
            if self.tasks.get(id).is_some_and(|s| !s.rec.state.is_final()) {
                self.terminate_upload(id);
            }
            self.tasks.remove(id);
            self.out.push_back(Output::Forget(id.clone()));
        }
        self.invalidated.retain(|s| s != session);
        self.sessions.retain(|(s, _)| s != session);
        self.out.push_back(Output::ForgetSession(session.clone()));
        self.schedule(now);
    }

    /// The session's `finish`, if no task of it is left unfinished (called when one
    /// of its tasks reached a final state, and at `finishTasksAndInvalidate`).
    pub(super) fn check_finished(&mut self, session: &SessionId) {
        if !self.has_unfinished(session) {
            self.out.push_back(Output::Finished(session.clone()));
        }
    }
}
