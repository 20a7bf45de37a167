//! Responses: what a route decided ([`Reply`]) and how it goes on the wire
//! ([`send`]).
//!
//! Routes build a `Reply` without touching the socket; `send` writes the
//! head and streams the body in bounded buffers, through a
//! [`Tracker`](crate::log::Tracker) so the request log sees every byte as
//! it leaves. A write error (client gone) is returned to the caller, which
//! ends the connection.

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
}

impl Cut {
    /// Body bytes sent before the cut.
    pub fn at(self) -> u64 {
        match self {
            Cut::Reset(n) | Cut::Stall(n) => n,
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
    /// Send only part of the body, then reset or stall (a fault switch).
    pub cut: Option<Cut>,
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
/// `complete`); what happens to the connection next is up to the caller.
pub fn send(
    w: &mut impl Write,
    reply: Reply,
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
    let content_length = (!no_body_status).then_some(len);
    let head = render_head_with(
        reply.status,
        &reply.headers,
        content_length,
        keep_alive,
        reply.cors,
    );
    let body_follows = !head_only && len > 0;
    tracker.write(w, &head, false, !body_follows)?;
    if !body_follows {
        return Ok(());
    }
    let send_len = reply.cut.map_or(len, |c| c.at().min(len));
    let finishes = send_len == len;
    if send_len == 0 {
        return Ok(());
    }
    match reply.body {
        Body::Empty => Ok(()),
        Body::Bytes(bytes) => tracker.write(w, &bytes[..send_len as usize], true, finishes),
        Body::Shared(bytes) => tracker.write(w, &bytes[..send_len as usize], true, finishes),
        Body::Generated {
            seed, start, rate, ..
        } => send_generated(w, tracker, seed, start, send_len, rate, finishes),
        Body::File { file, .. } => send_file(w, tracker, file, send_len, finishes),
    }
}

fn send_generated(
    w: &mut impl Write,
    tracker: &Tracker,
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
        tracker.write(w, chunk, true, finishes && sent == len)?;
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
    tracker: &Tracker,
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
        tracker.write(w, &buf[..n], true, finishes && sent == len)?;
    }
    Ok(())
}
