//! One download request's body, sans-IO: bytes in, commits and next windows out.
//!
//! The shell (`worker::transfer`) reads the body and writes storage; this decides
//! everything in between, from counts and times alone: when a commit starts and of
//! which kind ([`CommitPolicy`]), where each commit starts and ends (so the committed
//! offset only moves forward, through commits that end in the order they started),
//! which commit drops the bytes stored beyond the body's start (the first), whether to
//! read on (what waits stays bounded), when to ask for the next Range window ahead of
//! the current one's end ([`ask_ahead`], on the rate read so far in the window and
//! the head's round trip), and when the body is done (it ended, and every byte read is
//! committed).
//!
//! The engine gives the next window to chain ([`Engine::window_after`]); the shell
//! asks for it when [`Transfer::handle_piece`] or [`Transfer::handle_body_end`] says,
//! and goes on with it, through [`Transfer::continue_with`], only where the body ended
//! at its start.
//!
//! [`Engine::window_after`]: crate::Engine::window_after

use crate::commit::{CommitKind, CommitPolicy};
use crate::http::ask_ahead;
use std::collections::VecDeque;

/// The next Range window of a transfer: where it starts, and its `range` and
/// `if-range` header values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextWindow {
    /// Its first byte: where the current window ends.
    pub at: u64,
    /// The `Range` value.
    pub range: String,
    /// The `If-Range` value.
    pub if_range: String,
}

impl From<(u64, String, String)> for NextWindow {
    fn from((at, range, if_range): (u64, String, String)) -> Self {
        NextWindow {
            at,
            range,
            if_range,
        }
    }
}

/// A commit to start: the `len` bytes buffered, written from `at`, bringing the
/// committed offset to `new_pos` once it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit {
    /// Chunk records or a segment file.
    pub kind: CommitKind,
    /// Where its first byte goes.
    pub at: u64,
    /// How many bytes: every byte buffered.
    pub len: u32,
    /// The committed offset once it ends.
    pub new_pos: u64,
    /// The first commit of a body drops the stored bytes from here first (what a
    /// restart or an earlier attempt left beyond the body's start).
    pub drop_from: Option<u64>,
}

/// One request's body, from its head to its end (several windows, chained).
#[derive(Debug)]
pub struct Transfer {
    policy: CommitPolicy,
    /// The end of the last commit started.
    issued: u64,
    /// Bytes read and not yet in a commit.
    buffered: u32,
    /// The body being read ended (and no next window goes on from its end).
    done: bool,
    drop_from: Option<u64>,
    /// The offsets commits in flight bring the task to, oldest first.
    in_flight: VecDeque<u64>,
    /// Where the current window's body began, and when: the rate read in it.
    window_from: (u64, f64),
    /// The head's round trip, ms: the next window is asked that far ahead.
    head_ms: f64,
    /// The next window, not yet asked for.
    plan: Option<NextWindow>,
}

impl Transfer {
    /// A body that goes at `offset`, its head back after `head_ms`; `segmented` if the
    /// store writes segment files; `plan`, the window to chain after this one.
    pub fn new(
        offset: u64,
        segmented: bool,
        head_ms: f64,
        plan: Option<NextWindow>,
        now: f64,
    ) -> Transfer {
        Transfer {
            policy: CommitPolicy::new(segmented, now),
            issued: offset,
            buffered: 0,
            done: false,
            drop_from: Some(offset),
            in_flight: VecDeque::new(),
            window_from: (offset, now),
            head_ms,
            plan,
        }
    }

    /// The commit to start now, if one is due: every byte buffered goes into it.
    pub fn poll_commit(&mut self, now: f64) -> Option<Commit> {
        let kind = self
            .policy
            .due(self.in_flight.len(), self.buffered, self.done, now)?;
        let commit = Commit {
            kind,
            at: self.issued,
            len: self.buffered,
            new_pos: self.issued + u64::from(self.buffered),
            drop_from: self.drop_from.take(),
        };
        self.policy.started(kind, self.buffered, now);
        self.issued = commit.new_pos;
        self.buffered = 0;
        self.in_flight.push_back(commit.new_pos);
        Some(commit)
    }

    /// Whether to read the next piece: the body goes on and what waits is bounded.
    pub fn wants_read(&self) -> bool {
        !self.done && self.buffered < self.policy.max_buffered()
    }

    /// Whether the body is done: it ended and every byte read is committed.
    pub fn finished(&self) -> bool {
        self.done && self.in_flight.is_empty() && self.buffered == 0
    }

    /// Where the bytes read so far end.
    pub fn read_to(&self) -> u64 {
        self.issued + u64::from(self.buffered)
    }

    /// A piece of `len` bytes was read: the next window to ask for now, if its time
    /// came (the rest of this one takes no longer than two round trips).
    pub fn handle_piece(&mut self, len: u32, now: f64) -> Option<NextWindow> {
        self.buffered += len;
        let pos = self.read_to();
        let (from, since) = self.window_from;
        let rate = pos.saturating_sub(from) as f64 / (now - since).max(1.0);
        let head_ms = self.head_ms;
        self.plan
            .take_if(|next| ask_ahead(next.at.saturating_sub(pos), rate, head_ms))
    }

    /// The body ended where the bytes read end: that offset, and the next window to
    /// ask for now if it starts there and was not asked for yet. The shell goes on
    /// with the window asked for at that offset, if any ([`Transfer::continue_with`]).
    pub fn handle_body_end(&mut self) -> (u64, Option<NextWindow>) {
        self.done = true;
        let at = self.read_to();
        (at, self.plan.take_if(|next| next.at == at))
    }

    /// The next window's body goes on from `at` (where the last one ended), and
    /// `plan` is the one after it.
    pub fn continue_with(&mut self, at: u64, plan: Option<NextWindow>, now: f64) {
        self.done = false;
        self.window_from = (at, now);
        self.plan = plan;
    }

    /// The oldest commit in flight ended: the committed offset it brought.
    pub fn handle_written(&mut self, now: f64) -> Option<u64> {
        let pos = self.in_flight.pop_front()?;
        self.policy.ended(now);
        Some(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commit::{COMMIT_BYTES, FLUSH_MS};

    fn window(at: u64) -> NextWindow {
        NextWindow {
            at,
            range: format!("bytes={at}-"),
            if_range: "\"v1\"".into(),
        }
    }

    #[test]
    fn commits_take_what_was_read_in_order_and_only_the_first_drops() {
        let mut t = Transfer::new(1_000, false, 10.0, None, 0.0);
        assert_eq!(t.poll_commit(0.0), None, "nothing read");
        assert!(t.wants_read());
        assert_eq!(t.handle_piece(COMMIT_BYTES, 1.0), None);
        let a = t.poll_commit(1.0).expect("a commit once COMMIT_BYTES wait");
        assert_eq!(
            (a.at, a.len, a.drop_from),
            (1_000, COMMIT_BYTES, Some(1_000))
        );
        assert_eq!(a.new_pos, 1_000 + u64::from(COMMIT_BYTES));
        t.handle_piece(100, 2.0);
        // One commit in flight: the next waits for it (or for a batch).
        assert_eq!(t.poll_commit(2.0), None);
        assert_eq!(t.handle_written(3.0), Some(a.new_pos));
        assert_eq!(
            t.poll_commit(3.0),
            None,
            "100 bytes wait for more, or the end"
        );
        assert!(!t.finished(), "the body goes on");
        assert_eq!(t.handle_body_end(), (a.new_pos + 100, None));
        let b = t.poll_commit(4.0).expect("the rest at the body's end");
        assert_eq!((b.at, b.len, b.drop_from), (a.new_pos, 100, None));
        assert!(!t.finished(), "a commit in flight");
        assert_eq!(t.handle_written(4.0), Some(b.new_pos));
        assert!(t.finished());
        assert_eq!(t.handle_written(5.0), None);
    }

    #[test]
    fn a_slow_link_commits_what_it_has_after_the_flush_time() {
        let mut t = Transfer::new(0, false, 10.0, None, 0.0);
        t.handle_piece(10, 1.0);
        assert_eq!(t.poll_commit(1.0), None);
        let c = t.poll_commit(FLUSH_MS + 1.0).expect("flushed");
        assert_eq!(c.len, 10);
    }

    #[test]
    fn reading_waits_once_the_buffer_is_full_and_stops_at_the_end() {
        let mut t = Transfer::new(0, false, 10.0, None, 0.0);
        t.handle_piece(1, 0.0);
        while t.wants_read() {
            t.handle_piece(1 << 20, 0.5);
        }
        assert!(t.read_to() >= u64::from(crate::commit::MAX_BUFFERED));
        let mut t = Transfer::new(0, false, 10.0, None, 0.0);
        t.handle_body_end();
        assert!(!t.wants_read());
        assert!(t.finished(), "an empty body is done at once");
    }

    #[test]
    fn the_next_window_is_asked_once_two_round_trips_are_left() {
        // 4 MiB windows at 1 KiB per ms (1 MiB/s), heads taking 100 ms: asked once
        // 200 KiB of the window are left, at most ASK_AHEAD_MIN before its end.
        let w = 4u64 << 20;
        let mut t = Transfer::new(0, false, 100.0, Some(window(w)), 0.0);
        let mut asked = None;
        let mut now = 0.0;
        while t.read_to() < w && asked.is_none() {
            now += 64.0;
            asked = t.handle_piece(64 << 10, now);
            let _ = t.poll_commit(now).map(|_| t.handle_written(now));
        }
        let asked = asked.expect("asked ahead");
        assert_eq!(asked, window(w));
        let left = w - t.read_to();
        assert!(left <= crate::http::ASK_AHEAD_MIN, "{left} bytes left");
        assert_eq!(t.handle_piece(1, now + 1.0), None, "asked once");
    }

    #[test]
    fn a_window_not_asked_ahead_is_asked_at_its_start_and_the_transfer_goes_on() {
        // The last piece of a window always asks for the next (it is within
        // ASK_AHEAD_MIN of its end); a body with no piece asks at its end.
        let mut t = Transfer::new(100, false, 0.0, Some(window(100)), 0.0);
        assert_eq!(t.handle_body_end(), (100, Some(window(100))));
        assert!(!t.wants_read());
        t.continue_with(100, Some(window(200)), 2.0);
        assert!(t.wants_read() && !t.finished());
        assert_eq!(t.handle_piece(100, 3.0), Some(window(200)));
        // A body that ended short of the next window's start does not chain it.
        let far = 1u64 << 30;
        let mut short = Transfer::new(0, false, 0.0, Some(window(far)), 0.0);
        assert_eq!(short.handle_piece(60, 1.0), None, "far from its end");
        assert_eq!(short.handle_body_end(), (60, None));
    }

    #[test]
    fn segment_files_are_commits_like_any_other() {
        let mut t = Transfer::new(0, true, 10.0, None, 0.0);
        let mut kinds = vec![];
        let mut now = 0.0;
        for _ in 0..64 {
            now += 1.0;
            t.handle_piece(1 << 20, now);
            while let Some(c) = t.poll_commit(now) {
                kinds.push(c.kind);
                t.handle_written(now);
            }
        }
        assert!(kinds.contains(&CommitKind::Segment), "{kinds:?}");
        assert_eq!(
            t.read_to(),
            64 << 20,
            "every byte went into a commit or waits"
        );
    }
}
