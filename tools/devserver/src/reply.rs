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
use std::thread;
use std::time::{Duration, Instant};

use crate::files;
use crate::http::render_head;
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
            Body::Generated { len, .. } | Body::File { len, .. } => *len,
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
}

impl Reply {
    pub fn new(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: Body::Empty,
            close: false,
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
}

/// Writes `reply` (its head only when `head_only`, as for `HEAD`).
pub fn send(
    w: &mut impl Write,
    reply: Reply,
    head_only: bool,
    keep_alive: bool,
    tracker: &Tracker,
) -> io::Result<()> {
    // 204 carries neither a body nor a Content-Length.
    let no_body_status = reply.status == 204;
    let len = if no_body_status {
        0
    } else {
        reply.body.byte_len()
    };
    let content_length = (!no_body_status).then_some(len);
    let head = render_head(reply.status, &reply.headers, content_length, keep_alive);
    let body_follows = !head_only && len > 0;
    tracker.write(w, &head, false, !body_follows)?;
    if !body_follows {
        return Ok(());
    }
    match reply.body {
        Body::Empty => Ok(()),
        Body::Bytes(bytes) => tracker.write(w, &bytes, true, true),
        Body::Generated {
            seed,
            start,
            len,
            rate,
        } => send_generated(w, tracker, seed, start, len, rate),
        Body::File { file, len } => send_file(w, tracker, file, len),
    }
}

fn send_generated(
    w: &mut impl Write,
    tracker: &Tracker,
    seed: u64,
    start: u64,
    len: u64,
    rate: Option<u64>,
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
        tracker.write(w, chunk, true, sent == len)?;
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

fn send_file(w: &mut impl Write, tracker: &Tracker, mut file: File, len: u64) -> io::Result<()> {
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
        tracker.write(w, &buf[..n], true, sent == len)?;
    }
    Ok(())
}
