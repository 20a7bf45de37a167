//! Scheduling: which task starts when. Called after every input.
//!
//! - Offline, nothing starts: candidates wait with `offline`.
//! - A task whose `earliestBegin` is still ahead waits with `earliest-begin` until
//!   then (its `retryAt`); the timer, or the first wake after it, moves it on.
//! - Candidates (pending, or waiting for a connection) start in order of priority
//!   (higher first), then age, while their session has fewer than
//!   `maxConnectionsPerHost` requests in flight to their host; the others wait with
//!   `connection-limit` and start as requests end.
//! - A session's network policy holds its tasks back while pages report a network
//!   it does not want (see [`crate::network`]): `discretionary`,
//!   `expensive-network`, `constrained-network`; a new report re-decides. Requests
//!   already running are left to finish.
//! - A task not finished `resourceTimeout` after it was created fails with
//!   `timeout`; a paused one is left alone.

use super::{Engine, TaskState, WaitReason};
use crate::config::{DEFAULT_CONNECTIONS_PER_HOST, DEFAULT_RESOURCE_TIMEOUT};
use crate::error::{ErrorCode, TaskError};
use crate::task::TaskId;
use crate::validate::SessionId;

impl Engine {
    /// Start what may start now; see the module docs.
    ///
    /// Its cost does not grow with the tasks it leaves alone (see
    /// `engine::index`): per (session, host) group it walks the candidates in start
    /// order only while the group has free connections, and then marks the tasks
    /// that became candidates since the last call. A group whose network hold
    /// changed (a new report, a new configuration) is walked whole, once.
    pub fn schedule(&mut self, now: f64) {
        self.expire(now);
        let fresh = std::mem::take(&mut self.tasks.index.fresh);
        if !self.online {
            for id in self.tasks.candidate_ids() {
                self.wait_offline(&id, None, now);
            }
            return;
        }
        for g in 0..self.tasks.groups().len() {
            let (session, _) = self.tasks.groups()[g].clone();
            let hold = self.network_hold(&session);
            let whole = self.tasks.index.holds[g] != Some(hold);
            self.tasks.index.holds[g] = Some(hold);
            let limit = self.connections_per_host(&session);
            let mut cursor = None;
            while whole || (hold.is_none() && self.tasks.busy(g) < limit) {
                let Some(key) = self.tasks.next_candidate(g, cursor.as_ref()) else {
                    break;
                };
                self.decide(&key.3, hold, self.tasks.busy(g) < limit, now);
                cursor = Some(key);
            }
        }
        for id in fresh {
            let Some((session, host)) = self
                .tasks
                .get(&id)
                .filter(|s| super::index::is_candidate(s))
                .map(|s| (s.rec.session.clone(), s.rec.url.host.clone()))
            else {
                continue;
            };
            let hold = self.network_hold(&session);
            let free = self.tasks.busy_at(&session, &host) < self.connections_per_host(&session);
            self.decide(&id, hold, free, now);
        }
    }

    /// Decide about candidate `id`: wait for its `earliestBegin`, for the network
    /// policy (`hold`), or start it if its group has a `free` connection, or wait for
    /// one.
    fn decide(&mut self, id: &TaskId, hold: Option<WaitReason>, free: bool, now: f64) {
        let later = self
            .tasks
            .get(id)
            .and_then(|s| s.rec.earliest_begin)
            .filter(|&t| t > now);
        match (later, hold) {
            (Some(t), _) => self.set_state(id, TaskState::Waiting, now, |r| {
                r.wait_reason = Some(WaitReason::EarliestBegin);
                r.retry_at = Some(t);
            }),
            (None, Some(reason)) => self.wait_for(id, reason, now),
            (None, None) if free => self.start(id, now),
            (None, None) => self.wait_for(id, WaitReason::ConnectionLimit, now),
        }
    }

    /// A new report of the network from a page: re-decide what waits for it.
    pub fn set_network_report(&mut self, report: crate::network::NetworkReport, now: f64) {
        self.network = Some(report);
        self.schedule(now);
    }

    /// Why `session`'s network policy holds its tasks back now, if it does.
    fn network_hold(&self, session: &SessionId) -> Option<WaitReason> {
        let c = self.session_config(session)?;
        let r = self.network.as_ref();
        if c.discretionary && !r.is_some_and(|r| r.good()) {
            Some(WaitReason::Discretionary)
        } else if !c.allows_expensive_network_access && r.is_some_and(|r| r.expensive()) {
            Some(WaitReason::ExpensiveNetwork)
        } else if !c.allows_constrained_network_access && r.is_some_and(|r| r.constrained()) {
            Some(WaitReason::ConstrainedNetwork)
        } else {
            None
        }
    }

    /// Make task `id` wait for `reason` (no event if it already does).
    fn wait_for(&mut self, id: &TaskId, reason: WaitReason, now: f64) {
        let same = self.tasks.get(id).is_some_and(|s| {
            s.rec.state == TaskState::Waiting && s.rec.wait_reason == Some(reason)
        });
        if !same {
            self.set_state(id, TaskState::Waiting, now, |r| {
                r.wait_reason = Some(reason);
                r.retry_at = None;
            });
        }
    }

    fn connections_per_host(&self, session: &SessionId) -> u32 {
        self.session_config(session)
            .map_or(DEFAULT_CONNECTIONS_PER_HOST, |c| c.max_connections_per_host)
            .min(self.config.max_connections_per_host as u32)
    }

    fn resource_timeout_of(&self, session: &SessionId) -> f64 {
        self.session_config(session)
            .map_or(DEFAULT_RESOURCE_TIMEOUT, |c| c.resource_timeout)
    }

    /// When the first task with work left runs out of its session's
    /// `resourceTimeout`.
    pub(super) fn next_deadline(&self) -> Option<f64> {
        let sessions = self.tasks.sessions();
        (0..sessions.len())
            .filter_map(|i| {
                let (created, _) = self.tasks.aged(i).next()?;
                Some(created + self.resource_timeout_of(&sessions[i]))
            })
            .min_by(f64::total_cmp)
    }

    /// Fail the unfinished tasks whose `resourceTimeout` passed.
    fn expire(&mut self, now: f64) {
        let sessions = self.tasks.sessions();
        let late: Vec<(TaskId, f64)> = (0..sessions.len())
            .flat_map(|i| {
                let limit = self.resource_timeout_of(&sessions[i]);
                self.tasks
                    .aged(i)
                    .take_while(move |&(created, _)| now >= created + limit)
                    .map(move |(_, id)| (id.clone(), limit))
            })
            .collect();
        for (id, limit) in late {
            self.stop_request(&id);
            let err = TaskError::new(
                ErrorCode::Timeout,
                format!(
                    "the task did not finish within the session's resourceTimeout ({} s)",
                    (limit / 1000.0) as u64
                ),
            );
            self.set_state(&id, TaskState::Failed, now, |r| {
                r.error = Some(err);
                r.retry_at = None;
            });
        }
    }
}
