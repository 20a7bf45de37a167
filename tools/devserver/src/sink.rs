//! The upload sink: `PUT`/`POST /sink/<name>` stores a request body in
//! memory, `GET`/`HEAD` gives it back, `DELETE` drops it.
//!
//! Uploads need the socket (the body is read here, not discarded), so
//! [`upload`] is called by the connection loop before routing; the other
//! methods are plain routes. Fault switches on uploads: `reset`, `status`
//! (with `retry_after`) and `fault_times`, see [`crate::faults`].

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};

use sha2::{Digest, Sha256};

use crate::faults::{self, FaultState, SinkFaults, SinkStep};
use crate::http::{self, percent_decode, Connection, ReadError, Request};
use crate::log::json_str;
use crate::reply::{Body, Reply};

/// Largest body stored: 2 GiB.
pub const MAX_BODY: u64 = 2 << 30;

/// Methods allowed on `/sink/<name>`.
pub const ALLOW: &str = "GET, HEAD, PUT, POST, DELETE, OPTIONS";

/// Stored bodies by (percent-decoded) name.
#[derive(Debug, Default)]
pub struct Sinks {
    map: Mutex<HashMap<Vec<u8>, Arc<Vec<u8>>>>,
}

impl Sinks {
    fn lock(&self) -> MutexGuard<'_, HashMap<Vec<u8>, Arc<Vec<u8>>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores `data` under `name`, replacing what was there.
    pub fn put(&self, name: Vec<u8>, data: Vec<u8>) {
        self.lock().insert(name, Arc::new(data));
    }

    pub fn get(&self, name: &[u8]) -> Option<Arc<Vec<u8>>> {
        self.lock().get(name).cloned()
    }

    /// Drops `name`; whether it was there.
    pub fn remove(&self, name: &[u8]) -> bool {
        self.lock().remove(name).is_some()
    }
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    let mut hex = String::with_capacity(64);
    for b in Sha256::digest(data) {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// The part of the path after `/sink/`, if the request is for the sink.
pub fn raw_name(path: &str) -> Option<&str> {
    path.strip_prefix("/sink/")
}

/// Whether `req` is an upload (its body is read by [`upload`]).
pub fn is_upload(req: &Request) -> bool {
    matches!(req.method.as_str(), "PUT" | "POST") && raw_name(&req.path).is_some()
}

fn decode_name(raw: &str) -> Option<Vec<u8>> {
    percent_decode(raw).filter(|n| !n.is_empty())
}

fn no_name() -> Reply {
    Reply::text(404, "not found: a name is needed after /sink/\n")
}

/// How an upload ended.
#[derive(Debug)]
pub enum Upload {
    /// Answer this (the body has been read, or the reply closes).
    Reply(Reply),
    /// The client went away while sending the body.
    Gone,
    /// The `reset` switch: the body was read up to the reset point; drop
    /// the connection without answering.
    Reset,
}

/// Handles `PUT`/`POST /sink/<name>`, reading the body from `conn`.
pub fn upload(
    conn: &mut Connection,
    req: &Request,
    fault_state: &FaultState,
    sinks: &Sinks,
) -> Upload {
    if req.header("transfer-encoding").is_some() {
        let msg = "Content-Length required (chunked uploads are not supported)\n";
        return Upload::Reply(Reply::text(411, msg).closing());
    }
    let len = match req.header("content-length") {
        None => return Upload::Reply(Reply::text(411, "Content-Length required\n")),
        Some(v) if req.header_count("content-length") == 1 => match v.parse::<u64>() {
            Ok(n) => n,
            Err(_) => return Upload::Reply(Reply::text(400, "bad request body\n").closing()),
        },
        Some(_) => return Upload::Reply(Reply::text(400, "bad request body\n").closing()),
    };
    if len > MAX_BODY {
        let msg = "body too large: at most 2 GiB\n";
        return Upload::Reply(Reply::text(413, msg).closing());
    }
    let expects = req
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expects && len > 0 && http::write_continue(conn.stream()).is_err() {
        return Upload::Gone;
    }
    // From here on the body is read, whatever the answer.
    let answer_after_body = |conn: &mut Connection, reply: Reply| match conn.discard_body(len) {
        Ok(()) => Upload::Reply(reply),
        Err(ReadError::Closed) => Upload::Gone,
        Err(ReadError::Bad(status)) => Upload::Reply(Reply::text(status, "bad request body\n")),
    };
    let Some(name) = raw_name(&req.path).and_then(decode_name) else {
        return answer_after_body(conn, no_name());
    };
    let f = match SinkFaults::parse(req) {
        Ok(f) => f,
        Err(msg) => return answer_after_body(conn, Reply::text(400, &format!("{msg}\n"))),
    };
    let step = if f.any() {
        let key = faults::key(req);
        fault_state.with_key(&key, |ks| ks.begin_sink(&f, len))
    } else {
        SinkStep::Clean
    };
    match step {
        SinkStep::Reset(n) => match conn.discard_body(n) {
            Ok(()) => Upload::Reset,
            Err(_) => Upload::Gone,
        },
        SinkStep::Status(code) => answer_after_body(
            conn,
            faults::status_reply(code, f.retry_after.as_ref()).faulted("status"),
        ),
        SinkStep::Clean => {
            let mut data = Vec::new();
            let fits = usize::try_from(len)
                .ok()
                .is_some_and(|n| data.try_reserve_exact(n).is_ok());
            if !fits {
                let msg = "body too large for memory\n";
                return Upload::Reply(Reply::text(413, msg).closing());
            }
            if conn.read_body_into(len, &mut data).is_err() {
                return Upload::Gone;
            }
            let mut json = String::from("{\"name\":");
            json_str(&mut json, &String::from_utf8_lossy(&name));
            let _ = writeln!(
                json,
                ",\"bytes\":{},\"sha256\":\"{}\"}}",
                data.len(),
                sha256_hex(&data)
            );
            sinks.put(name, data);
            let mut reply = Reply::json(json);
            reply.status = 201;
            Upload::Reply(reply)
        }
    }
}

/// Handles `GET`/`HEAD`/`DELETE /sink/<name>` (uploads go to [`upload`]).
pub fn handle(req: &Request, raw: &str, sinks: &Sinks) -> Reply {
    let Some(name) = decode_name(raw) else {
        return no_name();
    };
    let missing = || Reply::text(404, "not found: nothing stored under this name\n");
    match req.method.as_str() {
        "GET" | "HEAD" => match sinks.get(&name) {
            Some(data) => Reply::new(200)
                .header("Content-Type", "application/octet-stream")
                .header("Cache-Control", "no-store")
                .body(Body::Shared(data)),
            None => missing(),
        },
        "DELETE" => {
            if sinks.remove(&name) {
                Reply::new(204)
            } else {
                missing()
            }
        }
        _ => Reply::text(405, "method not allowed\n").header("Allow", ALLOW),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_values() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn store_replace_remove() {
        let s = Sinks::default();
        assert!(s.get(b"a").is_none());
        s.put(b"a".to_vec(), b"one".to_vec());
        s.put(b"a".to_vec(), b"two".to_vec());
        assert_eq!(s.get(b"a").as_deref().map(Vec::as_slice), Some(&b"two"[..]));
        assert!(s.remove(b"a"));
        assert!(!s.remove(b"a"));
    }

    #[test]
    fn names() {
        assert_eq!(raw_name("/sink/a%20b"), Some("a%20b"));
        assert_eq!(raw_name("/sink"), None);
        assert_eq!(decode_name("a%20b"), Some(b"a b".to_vec()));
        assert_eq!(decode_name(""), None);
        assert_eq!(decode_name("%zz"), None);
    }
}
