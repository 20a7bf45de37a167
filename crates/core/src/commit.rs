//! When a download's bytes are committed, and how: the transfer loop's group
//! commit, decided here and asked by [`crate::transfer::Transfer`] after every piece
//! read and every commit ended (the worker's `worker::transfer` carries it out).
//!
//! Group commit: a commit (bytes and the offset that covers them) starts once
//! [`COMMIT_BYTES`] are gathered, and reading goes on while it is in flight; what
//! arrives meanwhile goes into the next commit, as chunk records of [`CHUNK_BYTES`]
//! in one transaction, started when the one in flight ends or once [`BATCH_BYTES`]
//! wait (at most [`MAX_IN_FLIGHT`] commits in flight, [`MAX_BUFFERED`] bytes
//! waiting). A slow link thus commits often and little (a crash loses the commit in
//! flight and less than [`COMMIT_BYTES`] behind it), while on a fast one, where
//! IndexedDB's cost per transaction would be the limit, each commit takes what
//! arrived during the last, several chunks per transaction, and reading seldom
//! stops for a commit.
//!
//! Where the store can write segment files (Firefox, `store::segments`), commits
//! become files while the link is fast ([`SEGMENT_RATE`], measured over each
//! [`BATCH_BYTES`] or more committed): the chunk commits in flight end, then each
//! file is written alone once [`SEGMENT_BYTES`] bytes wait, then its record is
//! committed, while reading goes on (up to [`SEGMENT_BUFFERED`]). A slower link
//! never makes one, so what a crash loses stays as small as above; a fast one gets
//! Firefox's fastest store, and a crash there loses the file in flight and what
//! waits (a fraction of a second of the transfer).

/// A chunk record's size, at most (a commit's last record takes up to twice it).
pub const CHUNK_BYTES: u32 = 1 << 20;
/// Bytes gathered before a commit starts when none is in flight: what a crash can
/// lose, beyond the commit in flight (a link slower than this per [`FLUSH_MS`]
/// commits what it has then).
pub const COMMIT_BYTES: u32 = 256 << 10;
/// ... or once this long passed since the last commit (slow links still make progress).
pub const FLUSH_MS: f64 = 1_000.0;
/// Bytes read while commits are in flight, at most; then reading waits for them.
pub const MAX_BUFFERED: u32 = 8 * CHUNK_BYTES;
/// Commits in flight at once, at most.
pub const MAX_IN_FLIGHT: usize = 2;
/// While a commit is in flight, the next one starts once this many bytes wait.
pub const BATCH_BYTES: u32 = 4 * CHUNK_BYTES;
/// Where the store can write segment files (Firefox), a file starts once this many
/// bytes wait: each file costs a `createWritable` and a `close`. Measured in Firefox
/// (`make bench`, throughput section, 4 runs each, 2026-12-01) against the
/// crash-consistent plain-JS layout (a file per 8 MiB, its offset in IndexedDB, in
/// 16 MiB Range windows): files of 16 MiB or more ran at 1.00 and 0.99 of it (0.92
/// and 0.86 of one plain OPFS file), files of 8 MiB or more at 0.94 and 0.91 (0.84
/// and 0.75).
pub const SEGMENT_BYTES: u32 = 2 * MAX_BUFFERED;
/// ... and reading goes on while one is written until this many bytes wait, all of
/// which the next file takes (measured in Firefox, 6 runs each against OPFS written
/// by plain JS, with 8 MiB files: 16 MiB waiting gave 0.99 and 0.91 of it, 8 MiB
/// gave 0.81 in 3 runs).
pub const SEGMENT_BUFFERED: u32 = 2 * SEGMENT_BYTES;
/// ... and commits are segment files of [`SEGMENT_BYTES`] or more while the link
/// delivers this fast or faster (bytes per second, measured over each
/// [`BATCH_BYTES`] or more committed): where a record per MiB costs the worker as
/// much time as reading (longhaul with chunk records stores 70-95 MiB/s in Firefox
/// at loopback speed). Slower links keep chunk records, and their small loss to a
/// crash.
pub const SEGMENT_RATE: f64 = 48.0 * 1024.0 * 1024.0;

/// What a commit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitKind {
    /// Chunk records and the offset, in one transaction.
    Records,
    /// A segment file, then its record and the offset (alone in flight).
    Segment,
}

/// The group-commit state of one transfer.
#[derive(Debug)]
pub struct CommitPolicy {
    /// Whether the store can write segment files.
    segmented: bool,
    /// Whether the link was fast over the last window.
    fast_link: bool,
    /// Bytes committed in the current window, and when it began (ms).
    window: (u32, f64),
    /// Whether the commit in flight is a segment file.
    segment_in_flight: bool,
    /// When the last commit ended (or the transfer began), ms.
    last_commit: f64,
}

impl CommitPolicy {
    /// A transfer starting at `now`, on a store that can (`segmented`) or cannot
    /// write segment files.
    pub fn new(segmented: bool, now: f64) -> Self {
        CommitPolicy {
            segmented,
            fast_link: false,
            window: (0, now),
            segment_in_flight: false,
            last_commit: now,
        }
    }

    /// Bytes that may wait while commits are in flight; reading stops there.
    pub fn max_buffered(&self) -> u32 {
        if self.segmented {
            SEGMENT_BUFFERED
        } else {
            MAX_BUFFERED
        }
    }

    /// The commit to start now, if any: `in_flight` commits are in flight,
    /// `buffered` bytes wait, `done` says the body ended.
    pub fn due(&self, in_flight: usize, buffered: u32, done: bool, now: f64) -> Option<CommitKind> {
        let flush = now - self.last_commit >= FLUSH_MS;
        let as_segment = self.segmented && self.fast_link;
        let due = match in_flight {
            _ if self.segment_in_flight => false,
            0 if as_segment => done || buffered >= SEGMENT_BYTES || flush,
            _ if as_segment => false, // (the chunk commits in flight end first)
            0 => done || buffered >= COMMIT_BYTES || flush,
            n if n < MAX_IN_FLIGHT => done || buffered >= BATCH_BYTES,
            _ => false,
        };
        (buffered > 0 && due).then_some(if as_segment {
            CommitKind::Segment
        } else {
            CommitKind::Records
        })
    }

    /// A commit of `kind` holding `bytes` started at `now`.
    pub fn started(&mut self, kind: CommitKind, bytes: u32, now: f64) {
        self.segment_in_flight = kind == CommitKind::Segment;
        if self.segmented {
            let (sum, since) = (self.window.0 + bytes, self.window.1);
            self.window.0 = sum;
            if sum >= BATCH_BYTES {
                let rate = f64::from(sum) * 1000.0 / (now - since).max(1.0);
                self.fast_link = rate >= SEGMENT_RATE;
                self.window = (0, now);
            }
        }
    }

    /// The oldest commit in flight ended at `now`.
    pub fn ended(&mut self, now: f64) {
        self.segment_in_flight = false;
        self.last_commit = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const MIB: u32 = 1 << 20;

    #[test]
    fn records_commit_small_alone_and_in_batches_behind_one() {
        let p = CommitPolicy::new(false, 0.0);
        assert_eq!(p.max_buffered(), MAX_BUFFERED);
        assert_eq!(p.due(0, 0, true, 0.0), None, "nothing to commit");
        assert_eq!(p.due(0, COMMIT_BYTES - 1, false, 10.0), None);
        assert_eq!(
            p.due(0, COMMIT_BYTES, false, 10.0),
            Some(CommitKind::Records)
        );
        assert_eq!(
            p.due(0, 1, false, FLUSH_MS),
            Some(CommitKind::Records),
            "a slow link flushes"
        );
        assert_eq!(
            p.due(0, 1, true, 10.0),
            Some(CommitKind::Records),
            "the body's end"
        );
        assert_eq!(p.due(1, BATCH_BYTES - 1, false, 10.0), None);
        assert_eq!(
            p.due(1, BATCH_BYTES, false, 10.0),
            Some(CommitKind::Records)
        );
        assert_eq!(
            p.due(MAX_IN_FLIGHT, 8 * MIB, true, 10.0),
            None,
            "at most two in flight"
        );
    }

    #[test]
    fn a_store_without_segments_never_makes_one_however_fast() {
        let mut p = CommitPolicy::new(false, 0.0);
        p.started(CommitKind::Records, 8 * MIB, 1.0);
        p.ended(2.0);
        assert_eq!(p.due(0, 8 * MIB, false, 3.0), Some(CommitKind::Records));
    }

    #[test]
    fn segments_only_while_the_link_is_fast() {
        let mut p = CommitPolicy::new(true, 0.0);
        assert_eq!(p.max_buffered(), SEGMENT_BUFFERED);
        // 4 MiB in 125 ms: 32 MiB/s, a slow link: chunk records.
        p.started(CommitKind::Records, 4 * MIB, 125.0);
        p.ended(130.0);
        assert_eq!(p.due(0, 4 * MIB, false, 131.0), Some(CommitKind::Records));
        // The next 4 MiB in 50 ms: 80 MiB/s, fast: the records in flight end first,
        // then a file once 16 MiB wait.
        p.started(CommitKind::Records, 4 * MIB, 175.0);
        assert_eq!(p.due(1, 9 * MIB, false, 176.0), None);
        p.ended(180.0);
        assert_eq!(
            p.due(0, SEGMENT_BYTES - 1, false, 181.0),
            None,
            "a file waits for 16 MiB"
        );
        assert_eq!(
            p.due(0, SEGMENT_BYTES, false, 190.0),
            Some(CommitKind::Segment)
        );
        p.started(CommitKind::Segment, SEGMENT_BYTES, 190.0);
        assert_eq!(
            p.due(1, SEGMENT_BUFFERED, true, 200.0),
            None,
            "one file at a time"
        );
        p.ended(260.0);
        assert_eq!(
            p.due(0, 1, true, 261.0),
            Some(CommitKind::Segment),
            "the end's file"
        );
        // 16 MiB over 1 s: slow again, back to records.
        p.started(CommitKind::Segment, SEGMENT_BYTES, 1_190.0);
        p.ended(1_200.0);
        assert_eq!(
            p.due(0, COMMIT_BYTES, false, 1_201.0),
            Some(CommitKind::Records)
        );
    }
}
