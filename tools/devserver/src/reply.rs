//! Responses: what a route decided ([`Reply`]) and how it goes on the wire
//! ([`send`]).
//!
//! Routes build a `Reply` without touching the socket; `send` writes the
//! head and streams the body in bounded buffers, through a
//! [`Tracker`](crate::log::Tracker) so the request log sees every byte as
//! it leaves. A body is framed by its `Content-Length`, or (with
//! [`Reply::chunked`], the `chunked` fault switch) sent with
//! `Transfer-Encoding: chunked`: one chunk per buffer written, then the
//! zero-length last chunk. A write error (client gone) is returned to the
//! caller, which ends the connection.

use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::files;
use crate::http::{render_head_with, Cors};
use crate::log::Tracker;

/// Size of the buffers bodies are produced and written in.
pub const CHUNK: usize = 64 * 1024;
/// Largest slice written at once when a body is throttled.
pub const THROTTLE_SLICE: u64 = 16 * 1024;
/// The last chunk of a chunked body (no trailers).
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// A response body.
#[derive(Debug)]
pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// Bytes shared with a store (the upload sink), not copied.
    Shared(Arc<Vec<u8>>),
    /// `len` bytes of the generated file with `seed`, from `start`,
    /// optionally throttled to `rate` bytes per second.
    Generated {
        seed: u64,
        start: u64,
        len: u64,
        rate: Option<u64>,
    },
    /// `len` bytes read from an open file.
    File {
        file: File,
        len: u64,
    },
}

impl Body {
    pub fn byte_len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::Shared(b) => b.len() as u64,
            Body::Generated { len, .. } | Body::File { len, .. } => *len,
        }
    }
}

/// Where a faulted body stops (see [`crate::faults`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// After this many body bytes, close the connection at once.
    Reset(u64),
    /// After this many body bytes, send nothing more but keep the
    /// connection open until the client goes away.
    Stall(u64),
    /// After this many body bytes, end a chunked body cleanly with its last
    /// chunk, and go on with the connection as usual (only meaningful with
    /// [`Reply::chunked`]).
    EndEarly(u64),
}

impl Cut {
    /// Body bytes sent before the cut.
    pub fn at(self) -> u64 {
        match self {
            Cut::Reset(n) | Cut::Stall(n) | Cut::EndEarly(n) => n,
        }
    }
}

/// A response decided by a route.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
    /// Close the connection after this response.
    pub close: bool,
    /// Send only part of the body, then reset, stall or end it early (a
    /// fault switch).
    pub cut: Option<Cut>,
    /// Send the body with `Transfer-Encoding: chunked` and no
    /// `Content-Length` (the `chunked` fault switch). Ignored for 204/304.
    pub chunked: bool,
    /// Which CORS headers to send ([`Cors::Full`] by default).
    pub cors: Cors,
    /// Fault switch(es) applied, for the request log.
    pub fault: Option<String>,
}

impl Reply {
    pub fn new(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: Body::Empty,
            close: false,
            cut: None,
            chunked: false,
            cors: Cors::Full,
            fault: None,
        }
    }

    /// A short plain-text response.
    pub fn text(status: u16, message: &str) -> Self {
        Reply::new(status)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(Body::Bytes(message.as_bytes().to_vec()))
    }

    /// A JSON response that is never cached.
    pub fn json(json: String) -> Self {
        Reply::new(200)
            .header("Content-Type", "application/json")
            .header("Cache-Control", "no-store")
            .body(Body::Bytes(json.into_bytes()))
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }

    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    /// Marks the reply as faulted by `fault` (names joined with `+`).
    pub fn faulted(mut self, fault: impl Into<String>) -> Self {
        self.fault = Some(fault.into());
        self
    }
}

/// Writes `reply` (its head only when `head_only`, as for `HEAD`). With a
/// [`Cut`], the body stops after that many bytes (the log entry is then not
/// `complete`); a chunked body then gets its last chunk only for
/// [`Cut::EndEarly`]. What happens to the connection next is up to the
/// caller.
pub fn send(
    w: &mut impl Write,
    mut reply: Reply,
    head_only: bool,
    keep_alive: bool,
    tracker: &Tracker,
) -> io::Result<()> {
    // 204 and 304 carry neither a body nor a Content-Length.
    let no_body_status = matches!(reply.status, 204 | 304);
    let len = if no_body_status {
        0
    } else {
        reply.body.byte_len()
    };
    let chunked = reply.chunked && !no_body_status;
    if chunked {
        reply.headers.push(("Transfer-Encoding", "chunked".into()));
    }
    let content_length = (!no_body_status && !chunked).then_some(len);
    let head = render_head_with(
        reply.status,
        &reply.headers,
        content_length,
        keep_alive,
        reply.cors,
    );
    // A chunked body ends with its last chunk, even when it is empty.
    let body_follows = !head_only && (len > 0 || chunked);
    tracker.write(w, &head, false, !body_follows)?;
    if !body_follows {
        return Ok(());
    }
    let send_len = reply.cut.map_or(len, |c| c.at().min(len));
    let finishes = send_len == len;
    // A reset or stall leaves a chunked body without its last chunk.
    let last_chunk = chunked && (finishes || matches!(reply.cut, Some(Cut::EndEarly(_))));
    // The entry is complete once the body's last byte (or last chunk) is out.
    let data_finishes = finishes && !last_chunk;
    let out = BodyOut { tracker, chunked };
    if send_len > 0 {
        match reply.body {
            Body::Empty => {}
            Body::Bytes(bytes) => out.write(w, &bytes[..send_len as usize], data_finishes)?,
            Body::Shared(bytes) => out.write(w, &bytes[..send_len as usize], data_finishes)?,
            Body::Generated {
                seed, start, rate, ..
            } => send_generated(w, &out, seed, start, send_len, rate, data_finishes)?,
            Body::File { file, .. } => send_file(w, &out, file, send_len, data_finishes)?,
        }
    }
    if last_chunk {
        tracker.write(w, LAST_CHUNK, false, finishes)?;
    }
    Ok(())
}

/// Writes body bytes through a [`Tracker`], each piece as one chunk when
/// the body is chunked (only the data counts as `bytes_sent`, not the
/// framing).
struct BodyOut<'t, 'l> {
    tracker: &'t Tracker<'l>,
    chunked: bool,
}

impl BodyOut<'_, '_> {
    /// Writes `data`; with `last`, the log entry is complete after it.
    fn write(&self, w: &mut impl Write, data: &[u8], last: bool) -> io::Result<()> {
        // An empty chunk would end the body: nothing to frame.
        if !self.chunked || data.is_empty() {
            return self.tracker.write(w, data, true, last);
        }
        let size_line = format!("{:x}\r\n", data.len());
        self.tracker.write(w, size_line.as_bytes(), false, false)?;
        self.tracker.write(w, data, true, false)?;
        self.tracker.write(w, b"\r\n", false, last)
    }
}

fn send_generated(
    w: &mut impl Write,
    out: &BodyOut,
    seed: u64,
    start: u64,
    len: u64,
    rate: Option<u64>,
    finishes: bool,
) -> io::Result<()> {
    let slice = match rate {
        // Aim for about ten writes a second, within [1, 16 KiB].
        Some(r) => (r / 10).clamp(1, THROTTLE_SLICE) as usize,
        None => CHUNK,
    };
    let mut buf = vec![0u8; slice];
    let began = Instant::now();
    let mut sent = 0u64;
    while sent < len {
        let n = (len - sent).min(slice as u64) as usize;
        let chunk = &mut buf[..n];
        files::fill(seed, start + sent, chunk);
        sent += n as u64;
        out.write(w, chunk, finishes && sent == len)?;
        if let (Some(r), true) = (rate, sent < len) {
            let ahead = Duration::try_from_secs_f64(sent as f64 / r as f64).ok();
            if let Some(due) = ahead.and_then(|d| began.checked_add(d)) {
                let now = Instant::now();
                if due > now {
                    thread::sleep(due - now);
                }
            }
        }
    }
    Ok(())
}

fn send_file(
    w: &mut impl Write,
    out: &BodyOut,
    mut file: File,
    len: u64,
    finishes: bool,
) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut sent = 0u64;
    while sent < len {
        let want = (len - sent).min(CHUNK as u64) as usize;
        let n = match file.read(&mut buf[..want]) {
            // The file shrank under us: the promised length cannot be met.
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        sent += n as u64;
        out.write(w, &buf[..n], finishes && sent == len)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse_head;
    use crate::log::Log;

    /// The generated bytes `start..start + len` of the file with `seed`.
    fn generated(seed: u64, start: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        files::fill(seed, start, &mut v);
        v
    }

    /// Sends `reply` into a buffer; returns the head (as text), what
    /// followed it, and the log entry's `(bytes_sent, complete)`.
    fn sent(reply: Reply, head_only: bool) -> (String, Vec<u8>, (u64, bool)) {
        let log = Log::default();
        let req = match parse_head(b"GET /files/x?size=1 HTTP/1.1\r\n\r\n") {
            Ok(Some((r, _))) => r,
            other => panic!("parse failed: {other:?}"),
        };
        let entry = log.record(1, &req, reply.status);
        let mut out = Vec::new();
        let tracker = Tracker::new(&log, Some(Arc::clone(&entry)));
        assert!(send(&mut out, reply, head_only, true, &tracker).is_ok());
        let end = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(out.len(), |i| i + 4);
        let rest = out.split_off(end);
        let head = String::from_utf8_lossy(&out).into_owned();
        (head, rest, (entry.bytes_sent(), entry.complete()))
    }

    /// Decodes a chunked body strictly: lower-case hex sizes without
    /// extensions, CRLF after each. Returns the data and whether the last
    /// chunk (`0\r\n\r\n`) ended it, with nothing after it.
    fn dechunk(mut raw: &[u8]) -> (Vec<u8>, bool) {
        let mut data = Vec::new();
        loop {
            let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
                assert!(raw.is_empty(), "partial size line {raw:?}");
                return (data, false);
            };
            let line = std::str::from_utf8(&raw[..eol]).unwrap_or("?");
            assert!(line
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            let n = usize::from_str_radix(line, 16).unwrap_or(usize::MAX);
            raw = &raw[eol + 2..];
            if n == 0 {
                assert_eq!(raw, b"\r\n", "last chunk, no trailers");
                return (data, true);
            }
            assert!(n > 0 && raw.len() >= n + 2, "chunk of {n} cut short");
            data.extend_from_slice(&raw[..n]);
            assert_eq!(&raw[n..n + 2], b"\r\n");
            raw = &raw[n + 2..];
        }
    }

    fn file(len: u64, start: u64, chunked: bool) -> Reply {
        let mut reply = Reply::new(200).body(Body::Generated {
            seed: 7,
            start,
            len,
            rate: None,
        });
        reply.chunked = chunked;
        reply
    }

    #[test]
    fn chunked_body_has_no_content_length_and_ends_with_the_last_chunk() {
        let len = 2 * CHUNK as u64 + 5;
        let (head, rest, log) = sent(file(len, 3, true), false);
        assert!(
            head.contains("\r\nTransfer-Encoding: chunked\r\n"),
            "{head}"
        );
        assert!(!head.contains("\r\nContent-Length:"), "{head}");
        assert!(rest.starts_with(b"10000\r\n"), "one chunk per buffer");
        assert_eq!(dechunk(&rest), (generated(7, 3, len as usize), true));
        // bytes_sent counts the data only, not the framing.
        assert_eq!(log, (len, true));

        // The same reply without chunked: Content-Length, the bytes as they are.
        let (head, rest, log) = sent(file(len, 3, false), false);
        assert!(head.contains(&format!("\r\nContent-Length: {len}\r\n")));
        assert!(!head.contains("Transfer-Encoding"));
        assert_eq!(rest, generated(7, 3, len as usize));
        assert_eq!(log, (len, true));
    }

    #[test]
    fn chunked_empty_head_and_no_body_statuses() {
        let (head, rest, log) = sent(file(0, 0, true), false);
        assert!(head.contains("Transfer-Encoding: chunked"));
        assert_eq!(rest, LAST_CHUNK);
        assert_eq!(log, (0, true));
        let (head, rest, log) = sent(file(100, 0, true), true);
        assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
        assert!(!head.contains("\r\nContent-Length:"), "{head}");
        assert!(rest.is_empty());
        assert_eq!(log, (0, true));
        let mut not_modified = Reply::new(304);
        not_modified.chunked = true;
        let (head, rest, _) = sent(not_modified, false);
        assert!(!head.contains("Transfer-Encoding") && !head.contains("\r\nContent-Length:"));
        assert!(rest.is_empty());
    }

    #[test]
    fn cuts_of_a_chunked_body() {
        let mut early = file(100_000, 0, true);
        early.cut = Some(Cut::EndEarly(1000));
        let (_, rest, log) = sent(early, false);
        assert_eq!(dechunk(&rest), (generated(7, 0, 1000), true));
        assert_eq!(log, (1000, false), "not the whole body");
        let mut at_zero = file(100, 0, true);
        at_zero.cut = Some(Cut::EndEarly(0));
        assert_eq!(sent(at_zero, false).1, LAST_CHUNK);
        // A reset or stall leaves out the last chunk.
        for cut in [Cut::Reset(1000), Cut::Stall(1000)] {
            let mut reply = file(100_000, 0, true);
            reply.cut = Some(cut);
            let (_, rest, log) = sent(reply, false);
            assert_eq!(dechunk(&rest), (generated(7, 0, 1000), false), "{cut:?}");
            assert_eq!(log, (1000, false));
        }
        let mut reset0 = file(100, 0, true);
        reset0.cut = Some(Cut::Reset(0));
        assert!(sent(reset0, false).1.is_empty());
    }

    #[test]
    fn chunked_bytes_body() {
        let mut reply = Reply::text(200, "hello");
        reply.chunked = true;
        let (_, rest, log) = sent(reply, false);
        assert_eq!(rest, b"5\r\nhello\r\n0\r\n\r\n");
        assert_eq!(log, (5, true));
    }
}
