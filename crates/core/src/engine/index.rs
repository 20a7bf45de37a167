//! The task table and the indexes that keep each input's cost independent of the
//! number of tasks it does not touch.
//!
//! The engine decides after every input what starts, what times out and when to
//! wake next. Done by scanning every task, each input cost O(n) or worse: measured
//! natively (`examples/engine_scale.rs`), adding 10,000 tasks to one session took
//! 7.3 s when they waited for an `earliestBegin` (about 2 ms per add at the end)
//! and 100 s when they queued behind the connection limit (every schedule sorted
//! them all), and a browser took over a minute for the first case. With the
//! indexes both take under 0.15 s, and an add costs the same at any size. So
//! [`Tasks`] keeps, next to the map, what those decisions look up:
//!
//! - the candidates to start (pending, or waiting for a connection or for the
//!   network policy), per (session, host) group in start order (priority, then
//!   age), so scheduling walks only as far as the group has free connections;
//! - the waiting tasks with a time to move on (`retryAt`), by that time;
//! - the tasks with work left, per session by age (for `resourceTimeout`);
//! - counts: requests in flight per group, unfinished tasks per session, tasks
//!   with work, tasks waiting for the network;
//! - the tasks that became candidates since the last schedule (`fresh`), which it
//!   must mark `connection-limit` if they cannot start.
//!
//! Every change of what the indexes hold goes through [`Tasks::edit`], which
//! re-indexes the task; the engine's tests compare the indexes with a rebuild after
//! every step ([`Tasks::check`]). A task's session, host, priority and creation
//! time never change once inserted.
//!
//! Groups and sessions are numbered in the order first seen and not forgotten
//! while the worker lives (a worker lives minutes; an app has a handful of
//! sessions and hosts). Scheduling visits every group, so an app that made a
//! session per task would make it O(sessions) again. All keys share one type, so
//! the three ordered sets cost one instance of the B-tree code in the wasm.

use super::Slot;
use crate::task::{TaskId, TaskRecord, TaskState, WaitReason};
use crate::validate::SessionId;
use std::collections::btree_map::{BTreeMap, Values};
use std::collections::BTreeSet;
use std::ops::Bound;

/// An index key: three ordered numbers, then the task.
pub(super) type Key = (u64, u64, u64, TaskId);

/// `f` as a `u64` ordered as `f64::total_cmp` orders the floats (and back, exactly).
pub(super) fn ordered(f: f64) -> u64 {
    let b = f.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | 1 << 63
    }
}

/// The inverse of [`ordered`].
pub(super) fn unordered(u: u64) -> f64 {
    f64::from_bits(if u >> 63 == 1 { u & !(1 << 63) } else { !u })
}

/// Whether task `s` is a candidate to start (pending, or waiting for a connection or
/// for the network policy).
pub(super) fn is_candidate(s: &Slot) -> bool {
    Entry::of(s).candidate.is_some()
}

/// What the indexes hold of one task; compared before and after each change.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// Pending, running or waiting.
    work: bool,
    /// Not completed, failed or canceled.
    unfinished: bool,
    /// Waiting for the network to come back.
    offline: bool,
    /// A request is in flight.
    active: bool,
    /// Waiting with a time to move on (its `retryAt`; at once if it has none).
    timed: Option<u64>,
    /// A candidate to start: 0 pending, else 1 + the wait reason.
    candidate: Option<u8>,
}

impl Entry {
    fn of(s: &Slot) -> Entry {
        let state = s.rec.state;
        let reason = s.rec.wait_reason;
        let waiting = state == TaskState::Waiting;
        Entry {
            work: state.has_work(),
            unfinished: !state.is_final(),
            offline: reason == Some(WaitReason::Offline),
            active: s.active,
            timed: match reason {
                Some(WaitReason::RetryAt | WaitReason::EarliestBegin) | None if waiting => {
                    Some(ordered(s.rec.retry_at.unwrap_or(f64::NEG_INFINITY)))
                }
                _ => None,
            },
            candidate: match (state, reason) {
                (TaskState::Pending, _) => Some(0),
                (
                    TaskState::Waiting,
                    Some(
                        r @ (WaitReason::ConnectionLimit
                        | WaitReason::Discretionary
                        | WaitReason::ExpensiveNetwork
                        | WaitReason::ConstrainedNetwork),
                    ),
                ) => Some(1 + r as u8),
                _ => None,
            },
        }
    }
}

/// The indexes; see the module docs.
#[derive(Default)]
pub(super) struct Index {
    /// (session, host) groups by number.
    groups: Vec<(SessionId, String)>,
    /// Requests in flight per group.
    busy: Vec<u32>,
    /// The network hold last applied to each group's candidates (`None`: never).
    pub(super) holds: Vec<Option<Option<WaitReason>>>,
    /// Sessions by number.
    sessions: Vec<SessionId>,
    /// Unfinished tasks per session.
    unfinished: Vec<u32>,
    /// Tasks with work left.
    work: usize,
    /// Tasks waiting for the network.
    offline: usize,
    /// (group, !priority, created, id) of every candidate.
    candidates: BTreeSet<Key>,
    /// (retryAt, 0, 0, id) of every waiting task with a time to move on.
    timed: BTreeSet<Key>,
    /// (session, created, 0, id) of every task with work left.
    aged: BTreeSet<Key>,
    /// Tasks that became candidates since the last schedule.
    pub(super) fresh: Vec<TaskId>,
}

fn number<T: PartialEq + Clone>(list: &mut Vec<T>, item: &T, grow: impl FnOnce(usize)) -> u64 {
    match list.iter().position(|x| x == item) {
        Some(i) => i as u64,
        None => {
            list.push(item.clone());
            grow(list.len());
            (list.len() - 1) as u64
        }
    }
}

impl Index {
    fn group_of(&mut self, rec: &TaskRecord) -> u64 {
        let key = (rec.session.clone(), rec.url.host.clone());
        let (busy, holds) = (&mut self.busy, &mut self.holds);
        number(&mut self.groups, &key, |n| {
            busy.resize(n, 0);
            holds.resize(n, None);
        })
    }

    fn session_of(&mut self, session: &SessionId) -> u64 {
        let unfinished = &mut self.unfinished;
        number(&mut self.sessions, session, |n| unfinished.resize(n, 0))
    }

    /// Move task `s` from `before` to `after` (`None`: not in the table).
    fn update(&mut self, s: &Slot, before: Option<Entry>, after: Option<Entry>) {
        if before == after {
            return;
        }
        let rec = &s.rec;
        let id = &rec.id;
        let (b, a) = (before.unwrap_or(GONE), after.unwrap_or(GONE));
        let count = |n: &mut usize, was: bool, is: bool| {
            *n = *n + usize::from(is) - usize::from(was);
        };
        count(&mut self.work, b.work, a.work);
        count(&mut self.offline, b.offline, a.offline);
        if b.active != a.active {
            let g = self.group_of(rec) as usize;
            self.busy[g] = self.busy[g] + u32::from(a.active) - u32::from(b.active);
        }
        if b.unfinished != a.unfinished {
            let i = self.session_of(&rec.session) as usize;
            self.unfinished[i] =
                self.unfinished[i] + u32::from(a.unfinished) - u32::from(b.unfinished);
        }
        if b.timed != a.timed {
            if let Some(t) = b.timed {
                self.timed.remove(&(t, 0, 0, id.clone()));
            }
            if let Some(t) = a.timed {
                self.timed.insert((t, 0, 0, id.clone()));
            }
        }
        if b.work != a.work {
            let key = (
                self.session_of(&rec.session),
                ordered(rec.created_at),
                0,
                id.clone(),
            );
            if a.work {
                self.aged.insert(key);
            } else {
                self.aged.remove(&key);
            }
        }
        if b.candidate != a.candidate {
            let key = (
                self.group_of(rec),
                !ordered(rec.priority),
                ordered(rec.created_at),
                id.clone(),
            );
            match (b.candidate, a.candidate) {
                (Some(_), None) => {
                    self.candidates.remove(&key);
                }
                (None, Some(_)) => {
                    self.candidates.insert(key);
                }
                _ => {}
            }
            if a.candidate.is_some() {
                self.fresh.push(id.clone());
            }
        }
    }
}

/// A task outside the table.
const GONE: Entry = Entry {
    work: false,
    unfinished: false,
    offline: false,
    active: false,
    timed: None,
    candidate: None,
};

/// The tasks by id, with their indexes.
#[derive(Default)]
pub(super) struct Tasks {
    map: BTreeMap<TaskId, Slot>,
    pub(super) index: Index,
}

impl Tasks {
    pub(super) fn get(&self, id: &TaskId) -> Option<&Slot> {
        self.map.get(id)
    }

    /// Task `id`, to change what the indexes do not hold (bytes, generation,
    /// flags); its state, wait reason, `retryAt` and `active` change only through
    /// [`Tasks::edit`]. The engine's tests rebuild the indexes after every step and
    /// compare ([`Tasks::check`]), so a change that bypasses `edit` fails them.
    pub(super) fn get_mut(&mut self, id: &TaskId) -> Option<&mut Slot> {
        self.map.get_mut(id)
    }

    /// Change task `id` with `f`, and re-index it.
    pub(super) fn edit<R>(&mut self, id: &TaskId, f: impl FnOnce(&mut Slot) -> R) -> Option<R> {
        let slot = self.map.get_mut(id)?;
        let before = Entry::of(slot);
        let r = f(slot);
        self.index.update(slot, Some(before), Some(Entry::of(slot)));
        Some(r)
    }

    /// Panic unless the indexes are what rebuilding them from the tasks gives (for
    /// tests: a change that bypassed [`Tasks::edit`]).
    #[cfg(test)]
    pub(super) fn check(&self) {
        let mut fresh = Index::default();
        for s in self.map.values() {
            fresh.update(s, None, Some(Entry::of(s)));
        }
        let i = &self.index;
        assert_eq!(i.work, fresh.work, "tasks with work");
        assert_eq!(i.offline, fresh.offline, "tasks offline");
        assert_eq!(i.timed, fresh.timed, "timed tasks");
        // Numbers follow first sight, which rebuilding may order differently: compare
        // by name.
        let named =
            |x: &Index, set: &BTreeSet<Key>| -> Vec<(SessionId, String, u64, u64, TaskId)> {
                let mut v: Vec<_> = set
                    .iter()
                    .map(|k| {
                        let (s, h) = x.groups[k.0 as usize].clone();
                        (s, h, k.1, k.2, k.3.clone())
                    })
                    .collect();
                v.sort();
                v
            };
        assert_eq!(
            named(i, &i.candidates),
            named(&fresh, &fresh.candidates),
            "candidates"
        );
        let aged = |x: &Index| -> Vec<(SessionId, u64, TaskId)> {
            let mut v: Vec<_> = x
                .aged
                .iter()
                .map(|k| (x.sessions[k.0 as usize].clone(), k.1, k.3.clone()))
                .collect();
            v.sort();
            v
        };
        assert_eq!(aged(i), aged(&fresh), "tasks by age");
        // A count kept per key, looked up by key.
        fn count<K: PartialEq>(keys: &[K], counts: &[u32], key: &K) -> u32 {
            keys.iter().position(|k| k == key).map_or(0, |n| counts[n])
        }
        for (g, key) in fresh.groups.iter().enumerate() {
            let mine = count(&i.groups, &i.busy, key);
            assert_eq!(mine, fresh.busy[g], "requests in flight of {key:?}");
        }
        for (n, s) in fresh.sessions.iter().enumerate() {
            let mine = count(&i.sessions, &i.unfinished, s);
            assert_eq!(mine, fresh.unfinished[n], "unfinished tasks of {s:?}");
        }
    }

    pub(super) fn values(&self) -> Values<'_, TaskId, Slot> {
        self.map.values()
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = &TaskId> + '_ {
        self.map.keys()
    }

    pub(super) fn insert(&mut self, slot: Slot) {
        let id = slot.rec.id.clone();
        if let Some(old) = self.map.remove(&id) {
            self.index.update(&old, Some(Entry::of(&old)), None);
        }
        self.index.update(&slot, None, Some(Entry::of(&slot)));
        self.map.insert(id, slot);
    }

    pub(super) fn remove(&mut self, id: &TaskId) -> Option<Slot> {
        let old = self.map.remove(id)?;
        self.index.update(&old, Some(Entry::of(&old)), None);
        Some(old)
    }

    /// Whether any task has work left.
    pub(super) fn has_work(&self) -> bool {
        self.index.work > 0
    }

    /// Whether any task waits for the network.
    pub(super) fn any_offline(&self) -> bool {
        self.index.offline > 0
    }

    /// Whether `session` has a task that has not ended.
    pub(super) fn has_unfinished(&self, session: &SessionId) -> bool {
        let i = self.index.sessions.iter().position(|s| s == session);
        i.is_some_and(|i| self.index.unfinished[i] > 0)
    }

    /// The (session, host) groups, by number.
    pub(super) fn groups(&self) -> &[(SessionId, String)] {
        &self.index.groups
    }

    /// Requests in flight in group `g`.
    pub(super) fn busy(&self, g: usize) -> u32 {
        self.index.busy[g]
    }

    /// Requests of `session` in flight to `host`.
    pub(super) fn busy_at(&self, session: &SessionId, host: &str) -> u32 {
        let g = self
            .index
            .groups
            .iter()
            .position(|(s, h)| s == session && h == host);
        g.map_or(0, |g| self.index.busy[g])
    }

    /// The candidate of group `g` that starts first after `after` (from the first if
    /// `None`).
    pub(super) fn next_candidate(&self, g: usize, after: Option<&Key>) -> Option<Key> {
        let g = g as u64;
        let from = match after {
            Some(k) => Bound::Excluded(k.clone()),
            None => Bound::Included((g, 0, 0, TaskId(String::new()))),
        };
        self.index
            .candidates
            .range((from, Bound::Unbounded))
            .next()
            .filter(|k| k.0 == g)
            .cloned()
    }

    /// Every candidate, in no particular order.
    pub(super) fn candidate_ids(&self) -> Vec<TaskId> {
        self.index.candidates.iter().map(|k| k.3.clone()).collect()
    }

    /// Waiting tasks whose time to move on came by `now`.
    pub(super) fn due(&self, now: f64) -> Vec<TaskId> {
        self.index
            .timed
            .iter()
            .take_while(|k| unordered(k.0) <= now)
            .map(|k| k.3.clone())
            .collect()
    }

    /// The earliest `retryAt` of a waiting task.
    pub(super) fn next_due(&self) -> Option<f64> {
        self.index.timed.first().map(|k| unordered(k.0))
    }

    /// The sessions by number.
    pub(super) fn sessions(&self) -> &[SessionId] {
        &self.index.sessions
    }

    /// The tasks with work left of session number `i`, oldest first, with their
    /// creation times.
    pub(super) fn aged(&self, i: usize) -> impl Iterator<Item = (f64, &TaskId)> + '_ {
        let i = i as u64;
        self.index
            .aged
            .range((i, 0, 0, TaskId(String::new()))..)
            .take_while(move |k| k.0 == i)
            .map(|k| (unordered(k.1), &k.3))
    }
}
