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
//!   it does not want (see [`crate::core::network`]): `discretionary`,
//!   `expensive-network`, `constrained-network`; a new report re-decides. Requests
//!   already running are left to finish.
//! - A task not finished `resourceTimeout` after it was created fails with
//!   `timeout`; a paused one is left alone.

use super::{Engine, TaskState, WaitReason};
use crate::core::config::{DEFAULT_CONNECTIONS_PER_HOST, DEFAULT_RESOURCE_TIMEOUT};
use crate::core::error::{ErrorCode, TaskError};
use crate::core::task::TaskId;
use crate::core::validate::SessionId;

impl Engine {
    /// Start what may start now; see the module docs.
    pub fn schedule(&mut self, now: f64) {
        self.expire(now);
        let candidates: Vec<(f64, f64, TaskId)> = self
            .tasks
            .values()
            .filter(|s| {
                s.rec.state == TaskState::Pending
                    || (s.rec.state == TaskState::Waiting
                        && matches!(
                            s.rec.wait_reason,
                            Some(
                                WaitReason::ConnectionLimit
                                    | WaitReason::Discretionary
                                    | WaitReason::ExpensiveNetwork
                                    | WaitReason::ConstrainedNetwork
                            )
                        ))
            })
            .map(|s| (s.rec.priority, s.rec.created_at, s.rec.id.clone()))
            .collect();
        if !self.online {
            for (_, _, id) in candidates {
                self.wait_offline(&id, None, now);
            }
            return;
        }
        let mut ready = Vec::with_capacity(candidates.len());
        for (p, c, id) in candidates {
            let later = self
                .tasks
                .get(&id)
                .and_then(|s| s.rec.earliest_begin)
                .filter(|&t| t > now);
            let held = self
                .tasks
                .get(&id)
                .and_then(|s| self.network_hold(&s.rec.session));
            match (later, held) {
                (Some(t), _) => self.set_state(&id, TaskState::Waiting, now, |r| {
                    r.wait_reason = Some(WaitReason::EarliestBegin);
                    r.retry_at = Some(t);
                }),
                (None, Some(reason)) => self.wait_for(&id, reason, now),
                (None, None) => ready.push((p, c, id)),
            }
        }
        ready.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| a.1.total_cmp(&b.1))
                .then_with(|| a.2.cmp(&b.2))
        });
        // Few (session, host) pairs are ever busy at once: a small vector beats
        // another map type (each map type costs kilobytes of wasm).
        let mut busy: Vec<(SessionId, String, u32)> = Vec::new();
        for s in self.tasks.values().filter(|s| s.active) {
            let key = (&s.rec.session, &s.rec.url.host);
            match busy.iter_mut().find(|(a, b, _)| (a, b) == key) {
                Some((_, _, n)) => *n += 1,
                None => busy.push((s.rec.session.clone(), s.rec.url.host.clone(), 1)),
            }
        }
        for (_, _, id) in ready {
            let Some((session, host, state)) = self
                .tasks
                .get(&id)
                .map(|s| (s.rec.session.clone(), s.rec.url.host.clone(), s.rec.state))
            else {
                continue;
            };
            let limit = self.connections_per_host(&session);
            let i = match busy
                .iter()
                .position(|(a, b, _)| *a == session && *b == host)
            {
                Some(i) => i,
                None => {
                    busy.push((session, host, 0));
                    busy.len() - 1
                }
            };
            if busy[i].2 < limit {
                busy[i].2 += 1;
                self.start(&id, now);
            } else if state == TaskState::Pending || state == TaskState::Waiting {
                self.wait_for(&id, WaitReason::ConnectionLimit, now);
            }
        }
    }

    /// A new report of the network from a page: re-decide what waits for it.
    pub fn set_network_report(&mut self, report: crate::core::network::NetworkReport, now: f64) {
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

    /// Each task with work left, with when it runs out of `resourceTimeout` and
    /// that timeout.
    pub(super) fn resource_deadlines(&self) -> impl Iterator<Item = (&TaskId, f64, f64)> + '_ {
        self.tasks
            .values()
            .filter(|s| s.rec.state.has_work())
            .map(|s| {
                let limit = self.resource_timeout_of(&s.rec.session);
                (&s.rec.id, s.rec.created_at + limit, limit)
            })
    }

    /// Fail the unfinished tasks whose `resourceTimeout` passed.
    fn expire(&mut self, now: f64) {
        let late: Vec<(TaskId, f64)> = self
            .resource_deadlines()
            .filter(|&(_, deadline, _)| now >= deadline)
            .map(|(id, _, limit)| (id.clone(), limit))
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
