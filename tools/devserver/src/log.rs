//! The request log behind `GET /__log`.
//!
//! Every request except those to the log routes gets an [`Entry`] before
//! its response head is written. The entry's `bytes_sent` and `complete`
//! fields are atomics shared with the [`Tracker`] that writes the body, so
//! they advance while the body goes out and an aborted body shows what was
//! really written.
//!
//! A client can read the last body byte an instant before the writing
//! thread records it. To keep "read the response, then fetch the log"
//! race-free, every socket write runs inside a *busy* guard that also
//! covers the bookkeeping, and the log route waits (at most
//! [`SETTLE_LIMIT`]) until no write is in progress before taking its
//! snapshot. Throttled bodies sleep outside the guard, so they do not delay
//! the log.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crate::http::Request;
use crate::reply::Reply;

/// Entries kept; older ones are dropped first.
pub const MAX_ENTRIES: usize = 100_000;
/// Longest the log route waits for in-progress writes to settle.
pub const SETTLE_LIMIT: Duration = Duration::from_millis(50);

/// One logged request.
#[derive(Debug)]
pub struct Entry {
    pub seq: u64,
    pub t_ms: u64,
    pub conn: u64,
    pub method: String,
    pub path: String,
    pub query: String,
    pub range: Option<String>,
    pub if_range: Option<String>,
    /// The `Authorization` header value, as sent.
    pub authorization: Option<String>,
    pub status: u16,
    /// Fault switch(es) applied to the response, if any.
    pub fault: Option<String>,
    bytes_sent: AtomicU64,
    complete: AtomicBool,
    /// When the response ended (written whole, failed or dropped), in ms since
    /// the server started; [`NOT_ENDED`] until then.
    end_ms: AtomicU64,
}

/// `end_ms` of a response still going out.
const NOT_ENDED: u64 = u64::MAX;

impl Entry {
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(SeqCst)
    }

    pub fn complete(&self) -> bool {
        self.complete.load(SeqCst)
    }

    /// When the response ended, if it has.
    pub fn end_ms(&self) -> Option<u64> {
        Some(self.end_ms.load(SeqCst)).filter(|&t| t != NOT_ENDED)
    }

    fn write_json(&self, out: &mut String) {
        let _ = write!(
            out,
            "{{\"seq\":{},\"t_ms\":{},\"conn\":{},\"method\":",
            self.seq, self.t_ms, self.conn
        );
        json_str(out, &self.method);
        out.push_str(",\"path\":");
        json_str(out, &self.path);
        out.push_str(",\"query\":");
        json_str(out, &self.query);
        out.push_str(",\"range\":");
        json_opt(out, self.range.as_deref());
        out.push_str(",\"if_range\":");
        json_opt(out, self.if_range.as_deref());
        out.push_str(",\"authorization\":");
        json_opt(out, self.authorization.as_deref());
        let _ = write!(
            out,
            ",\"status\":{},\"bytes_sent\":{},\"complete\":{},\"end_ms\":",
            self.status,
            self.bytes_sent(),
            self.complete()
        );
        match self.end_ms() {
            Some(t) => {
                let _ = write!(out, "{t}");
            }
            None => out.push_str("null"),
        }
        out.push_str(",\"fault\":");
        json_opt(out, self.fault.as_deref());
        out.push('}');
    }
}

/// Appends `s` as a JSON string literal.
pub fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_opt(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => json_str(out, s),
        None => out.push_str("null"),
    }
}

#[derive(Default)]
struct Inner {
    next_seq: u64,
    entries: VecDeque<Arc<Entry>>,
}

/// The shared request log.
pub struct Log {
    start: Instant,
    inner: Mutex<Inner>,
    busy: AtomicUsize,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            start: Instant::now(),
            inner: Mutex::new(Inner {
                next_seq: 1,
                entries: VecDeque::new(),
            }),
            busy: AtomicUsize::new(0),
        }
    }
}

impl Log {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not take the log down with it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an entry for `req` answered with `status`.
    pub fn record(&self, conn: u64, req: &Request, status: u16) -> Arc<Entry> {
        self.record_fault(conn, req, status, None)
    }

    /// Adds an entry for `req` answered with `status`, naming the fault
    /// switch(es) applied to the response.
    pub fn record_fault(
        &self,
        conn: u64,
        req: &Request,
        status: u16,
        fault: Option<String>,
    ) -> Arc<Entry> {
        let t_ms = self.start.elapsed().as_millis() as u64;
        let mut inner = self.lock();
        let entry = Arc::new(Entry {
            seq: inner.next_seq,
            t_ms,
            conn,
            method: req.method.clone(),
            path: req.path.clone(),
            query: req.query.clone().unwrap_or_default(),
            range: req.header("range").map(str::to_string),
            if_range: req.header("if-range").map(str::to_string),
            authorization: req.header("authorization").map(str::to_string),
            status,
            fault,
            bytes_sent: AtomicU64::new(0),
            complete: AtomicBool::new(false),
            end_ms: AtomicU64::new(NOT_ENDED),
        });
        inner.next_seq += 1;
        if inner.entries.len() >= MAX_ENTRIES {
            inner.entries.pop_front();
        }
        inner.entries.push_back(Arc::clone(&entry));
        entry
    }

    /// Snapshot of the entries, oldest first.
    pub fn entries(&self) -> Vec<Arc<Entry>> {
        self.lock().entries.iter().cloned().collect()
    }

    /// Empties the log; returns how many entries were dropped.
    pub fn clear(&self) -> usize {
        let mut inner = self.lock();
        let n = inner.entries.len();
        inner.entries.clear();
        n
    }

    /// Waits until no socket write is in progress, or `limit` passes.
    pub fn settle(&self, limit: Duration) {
        let began = Instant::now();
        while self.busy.load(SeqCst) > 0 && began.elapsed() < limit {
            thread::sleep(Duration::from_micros(200));
        }
    }

    /// The log (entries whose path equals one of `paths`, if given) as a
    /// JSON array.
    pub fn to_json(&self, paths: Option<&[&str]>) -> String {
        let mut out = String::from("[");
        let mut first = true;
        for e in self.entries() {
            if paths.is_some_and(|p| !p.contains(&e.path.as_str())) {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            out.push('\n');
            e.write_json(&mut out);
        }
        out.push_str("\n]\n");
        out
    }
}

struct Busy<'a>(&'a AtomicUsize);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

/// Writes a response to the socket and keeps its log entry (if any) up to
/// date; when dropped, the response has ended and the entry's `end_ms` is set.
pub struct Tracker<'a> {
    log: &'a Log,
    entry: Option<Arc<Entry>>,
}

impl Drop for Tracker<'_> {
    fn drop(&mut self) {
        if let Some(e) = &self.entry {
            let t = self.log.start.elapsed().as_millis() as u64;
            let _ = e.end_ms.compare_exchange(NOT_ENDED, t, SeqCst, SeqCst);
        }
    }
}

impl<'a> Tracker<'a> {
    pub fn new(log: &'a Log, entry: Option<Arc<Entry>>) -> Self {
        Tracker { log, entry }
    }

    /// Writes all of `data`. Body bytes (`counts`) are added to
    /// `bytes_sent` as each write succeeds; when `last` is set the entry is
    /// marked complete once everything went out.
    pub fn write(
        &self,
        w: &mut impl Write,
        data: &[u8],
        counts: bool,
        last: bool,
    ) -> io::Result<()> {
        self.log.busy.fetch_add(1, SeqCst);
        let _busy = Busy(&self.log.busy);
        let mut off = 0;
        while off < data.len() {
            match w.write(&data[off..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    off += n;
                    if let (Some(e), true) = (&self.entry, counts) {
                        e.bytes_sent.fetch_add(n as u64, SeqCst);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if let (Some(e), true) = (&self.entry, last) {
            e.complete.store(true, SeqCst);
        }
        Ok(())
    }
}

/// Handles the log routes (`/__log`, `/__log/clear`). These are not logged.
pub fn handle(req: &Request, log: &Log) -> Reply {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET" | "HEAD", "/__log") => {
            log.settle(SETTLE_LIMIT);
            let json = match (req.query_param("path"), req.query.as_deref()) {
                (Some(decoded), Some(raw)) => {
                    // Match the filter as written and as decoded, since
                    // logged paths are kept as the client sent them.
                    let raw = raw
                        .split('&')
                        .find_map(|p| p.strip_prefix("path="))
                        .unwrap_or(&decoded);
                    log.to_json(Some(&[decoded.as_str(), raw]))
                }
                _ => log.to_json(None),
            };
            Reply::json(json)
        }
        ("POST", "/__log/clear") | ("DELETE", "/__log") => {
            let n = log.clear();
            Reply::json(format!("{{\"cleared\":{n}}}\n"))
        }
        (_, "/__log") => {
            Reply::text(405, "method not allowed\n").header("Allow", "GET, HEAD, DELETE, OPTIONS")
        }
        (_, "/__log/clear") => {
            Reply::text(405, "method not allowed\n").header("Allow", "POST, OPTIONS")
        }
        _ => Reply::text(404, "not found\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse_head;

    fn req(raw: &str) -> Request {
        match parse_head(raw.as_bytes()) {
            Ok(Some((r, _))) => r,
            other => panic!("parse failed: {other:?}"),
        }
    }

    #[test]
    fn json_escaping() {
        let mut s = String::new();
        json_str(&mut s, "a\"b\\c\nd\u{1}é\u{2028}");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é\u2028""#);
    }

    #[test]
    fn records_and_filters() {
        let log = Log::default();
        let a = log.record(
            1,
            &req("GET /files/a?size=10 HTTP/1.1\r\nRange: bytes=0-1\r\n\r\n"),
            206,
        );
        log.record(1, &req("GET /x HTTP/1.1\r\nIf-Range: \"q\\\"\r\n\r\n"), 404);
        let mut sink = Vec::new();
        let t = Tracker::new(&log, Some(Arc::clone(&a)));
        assert!(t.write(&mut sink, b"head", false, false).is_ok());
        assert!(t.write(&mut sink, b"ab", true, true).is_ok());
        assert_eq!((a.bytes_sent(), a.complete()), (2, true));
        assert_eq!(a.end_ms(), None, "still going out while its tracker lives");
        drop(t);
        assert!(a.end_ms().is_some(), "ended once its tracker is dropped");
        let all = log.to_json(None);
        assert!(all.contains(r#""seq":1,"#), "{all}");
        assert!(all.contains(r#""path":"/files/a","query":"size=10","range":"bytes=0-1","if_range":null,"authorization":null,"status":206,"bytes_sent":2,"complete":true"#), "{all}");
        assert!(all.contains(r#""if_range":"\"q\\\"""#), "{all}");
        let only = log.to_json(Some(&["/x"]));
        assert!(
            !only.contains("/files/a") && only.contains("\"/x\""),
            "{only}"
        );
        assert_eq!(log.clear(), 2);
        assert_eq!(log.to_json(None), "[\n]\n");
        // Sequence numbers keep counting after a clear.
        assert_eq!(log.record(2, &req("GET / HTTP/1.1\r\n\r\n"), 200).seq, 3);
    }

    #[test]
    fn records_the_authorization_header() {
        let log = Log::default();
        let e = log.record(
            1,
            &req("GET /a HTTP/1.1\r\nAuthorization: Bearer t\"o\\k\r\n\r\n"),
            200,
        );
        assert_eq!(e.authorization.as_deref(), Some("Bearer t\"o\\k"));
        let a = log.to_json(Some(&["/a"]));
        assert!(
            a.contains(r#""if_range":null,"authorization":"Bearer t\"o\\k","status":200"#),
            "{a}"
        );
        let none = log.record(1, &req("GET /b HTTP/1.1\r\n\r\n"), 200);
        assert_eq!(none.authorization, None);
        let b = log.to_json(Some(&["/b"]));
        assert!(b.contains(r#""authorization":null,"#), "{b}");
    }

    #[test]
    fn fault_field_is_last() {
        let log = Log::default();
        log.record(1, &req("GET /a HTTP/1.1\r\n\r\n"), 200);
        let f = log.record_fault(
            1,
            &req("GET /f HTTP/1.1\r\n\r\n"),
            503,
            Some("fail_rate".into()),
        );
        assert_eq!(f.fault.as_deref(), Some("fail_rate"));
        let a = log.to_json(Some(&["/a"]));
        assert!(
            a.contains(r#""complete":false,"end_ms":null,"fault":null}"#),
            "{a}"
        );
        let f = log.to_json(Some(&["/f"]));
        assert!(
            f.contains(
                r#""status":503,"bytes_sent":0,"complete":false,"end_ms":null,"fault":"fail_rate"}"#
            ),
            "{f}"
        );
    }

    #[test]
    fn keeps_at_most_max_entries() {
        let log = Log::default();
        let r = req("GET / HTTP/1.1\r\n\r\n");
        for _ in 0..MAX_ENTRIES + 5 {
            log.record(0, &r, 200);
        }
        let entries = log.entries();
        assert_eq!(entries.len(), MAX_ENTRIES);
        assert_eq!(entries[0].seq, 6);
    }
}
