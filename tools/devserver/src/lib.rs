//! `longhaul-devserver`: the HTTP/1.1 server behind the longhaul demo and
//! tests.
//!
//! # Design
//!
//! Deliberately small and synchronous: `std::net::TcpListener`, one thread
//! per connection, `httparse` for request heads and `httpdate` for dates.
//! No async runtime, so it compiles in seconds. Each connection thread
//! loops over requests (HTTP/1.1 keep-alive and pipelining) until the
//! client closes, sends `Connection: close`, or an I/O error occurs.
//!
//! A request goes through three steps:
//!
//! 1. [`http`] reads and parses the head; malformed input gets a 400/431
//!    and the connection is closed. Request bodies are read and dropped.
//! 2. [`route`] turns the request into a [`reply::Reply`] without touching
//!    the socket: generated files ([`files`]), the request log ([`log`]),
//!    CORS preflight, or static files ([`static_files`]).
//! 3. [`reply::send`] writes the head and streams the body, recording each
//!    written byte in the request log entry.
//!
//! Every response carries permissive CORS headers, so pages on any origin
//! (and service workers) can read them. Nothing a client sends can make the
//! server panic: client errors become 4xx, I/O errors end the connection.
//!
//! See `README.md` next to `Cargo.toml` for the routes and log format.

#![forbid(unsafe_code)]

pub mod files;
pub mod http;
pub mod log;
pub mod reply;
pub mod static_files;

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use http::{Connection, ReadError, Request};
use log::{Log, Tracker};
use reply::Reply;

/// How long a connection may sit idle, or block on a write, before it is
/// dropped.
pub const IO_TIMEOUT: Duration = Duration::from_secs(120);

/// Methods listed in CORS preflight answers.
pub const ALLOW_METHODS: &str = "GET, HEAD, PUT, POST, PATCH, DELETE, OPTIONS";

/// Where static content comes from.
#[derive(Debug, Clone)]
pub struct Config {
    /// Site root, served at `/`.
    pub root: PathBuf,
    /// Built wasm package, served at `/pkg/`.
    pub pkg: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            root: PathBuf::from("www"),
            pkg: PathBuf::from("pkg"),
        }
    }
}

/// State shared by all connections.
struct Shared {
    config: Config,
    log: Log,
    next_conn: AtomicU64,
}

/// Serves `listener` forever, one thread per connection.
pub fn serve(listener: TcpListener, config: Config) {
    let shared = Arc::new(Shared {
        config,
        log: Log::default(),
        next_conn: AtomicU64::new(1),
    });
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(_) => {
                // E.g. out of file descriptors: back off, keep serving.
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let shared = Arc::clone(&shared);
        let conn_id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
        // If no thread can be spawned the stream is dropped (closed).
        let _ = thread::Builder::new()
            .name(format!("conn-{conn_id}"))
            .spawn(move || handle_connection(stream, conn_id, &shared));
    }
}

/// Binds `127.0.0.1:0`, serves it on a background thread and returns the
/// address. Meant for tests.
pub fn spawn(config: Config) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    let addr = listener.local_addr()?;
    thread::Builder::new()
        .name("devserver".into())
        .spawn(move || serve(listener, config))?;
    Ok(addr)
}

fn handle_connection(stream: TcpStream, conn_id: u64, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let mut conn = Connection::new(stream);
    loop {
        let req = match conn.read_request() {
            Ok(req) => req,
            Err(ReadError::Closed) => return,
            Err(ReadError::Bad(status)) => {
                let reply = Reply::text(status, "bad request\n");
                let _ = reply::send(
                    conn.stream(),
                    reply,
                    false,
                    false,
                    &Tracker::new(&shared.log, None),
                );
                conn.close_gracefully();
                return;
            }
        };
        match respond(&mut conn, &req, conn_id, shared) {
            Ok(true) => continue,
            Ok(false) => return conn.close_gracefully(),
            Err(_) => return,
        }
    }
}

/// Answers one request; `Ok(true)` if the connection stays open.
fn respond(
    conn: &mut Connection,
    req: &Request,
    conn_id: u64,
    shared: &Shared,
) -> io::Result<bool> {
    let reply = match read_body(conn, req) {
        Ok(()) => route(req, &shared.config, &shared.log),
        Err(ReadError::Closed) => return Ok(false),
        Err(ReadError::Bad(status)) => Reply::text(status, "bad request body\n").closing(),
    };
    let keep_alive = !req.wants_close() && !reply.close;
    let entry = (!is_log_route(&req.path)).then(|| shared.log.record(conn_id, req, reply.status));
    let tracker = Tracker::new(&shared.log, entry);
    reply::send(
        conn.stream(),
        reply,
        req.method == "HEAD",
        keep_alive,
        &tracker,
    )?;
    Ok(keep_alive)
}

/// Reads and drops the request body, answering `Expect: 100-continue`.
fn read_body(conn: &mut Connection, req: &Request) -> Result<(), ReadError> {
    if req.header("transfer-encoding").is_some() {
        return Err(ReadError::Bad(501));
    }
    let len = match req.header("content-length") {
        None => 0,
        Some(v) if req.header_count("content-length") == 1 => {
            v.parse::<u64>().map_err(|_| ReadError::Bad(400))?
        }
        Some(_) => return Err(ReadError::Bad(400)),
    };
    let expects = req
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expects && len > 0 && http::write_continue(conn.stream()).is_err() {
        return Err(ReadError::Closed);
    }
    conn.discard_body(len)
}

fn is_log_route(path: &str) -> bool {
    path == "/__log" || path.starts_with("/__log/")
}

/// Decides the reply to a request.
pub fn route(req: &Request, config: &Config, log: &Log) -> Reply {
    if req.method == "OPTIONS" {
        return preflight(req);
    }
    if is_log_route(&req.path) {
        return log::handle(req, log);
    }
    match req.method.as_str() {
        "GET" | "HEAD" => match req.path.strip_prefix("/files/") {
            Some(name) => files::handle(req, name),
            None => static_files::handle(&req.path, config),
        },
        _ => Reply::text(405, "method not allowed\n").header("Allow", "GET, HEAD, OPTIONS"),
    }
}

/// Answers a CORS preflight (`OPTIONS` on any path).
fn preflight(req: &Request) -> Reply {
    let allow_headers = match req.header("access-control-request-headers") {
        Some(h) if !h.is_empty() => format!("*, {h}"),
        _ => "*".to_string(),
    };
    Reply::new(204)
        .header("Access-Control-Allow-Methods", ALLOW_METHODS)
        .header("Access-Control-Allow-Headers", allow_headers)
        .header("Access-Control-Max-Age", "600")
}
