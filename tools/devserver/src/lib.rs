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
//! Uploads to the sink ([`sink`]) read their body in step 1 instead of
//! dropping it. Fault switches ([`faults`]) in a `/files/` query string
//! are decided in step 2 against per-URL counters; a reply may be sent
//! chunked ([`reply::Reply::chunked`]) and carry a [`reply::Cut`], after
//! which step 3 resets or stalls the connection, or ends a chunked body
//! early and goes on.
//!
//! Every response carries permissive CORS headers, so pages on any origin
//! (and service workers) can read them, unless the query string asks for
//! less: `expose=0` leaves out `Access-Control-Expose-Headers`, `cors=0`
//! every `Access-Control-*` header ([`http::Cors`]). An optional second
//! listener (the *CORS origin*, see [`serve_origins`]) serves the same
//! routes with the same log, fault counters and sink, for cross-origin
//! tests. Nothing a client sends can make the server panic: client errors
//! become 4xx, I/O errors end the connection.
//!
//! See `README.md` next to `Cargo.toml` for the routes and log format.

#![forbid(unsafe_code)]

pub mod faults;
pub mod files;
pub mod http;
pub mod log;
pub mod reply;
pub mod sink;
pub mod static_files;

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use faults::FaultState;
use http::{Connection, Cors, ReadError, Request};
use log::{Log, Tracker};
use reply::{Cut, Reply};
use sink::{Sinks, Upload};

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

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The main listener (`PORT`).
    Main,
    /// The second origin (`--cors-port`): the same routes, answered the
    /// same way.
    Cors,
}

/// What routes may look at or change.
pub struct Ctx<'a> {
    pub config: &'a Config,
    pub log: &'a Log,
    pub faults: &'a FaultState,
    pub sinks: &'a Sinks,
    pub origin: Origin,
}

/// State shared by all connections, on both origins.
struct Shared {
    config: Config,
    log: Log,
    faults: FaultState,
    sinks: Sinks,
    next_conn: AtomicU64,
}

impl Shared {
    fn new(config: Config) -> Self {
        Shared {
            config,
            log: Log::default(),
            faults: FaultState::default(),
            sinks: Sinks::default(),
            next_conn: AtomicU64::new(1),
        }
    }

    fn ctx(&self, origin: Origin) -> Ctx<'_> {
        Ctx {
            config: &self.config,
            log: &self.log,
            faults: &self.faults,
            sinks: &self.sinks,
            origin,
        }
    }
}

/// Serves `listener` forever, one thread per connection.
pub fn serve(listener: TcpListener, config: Config) {
    serve_origins(listener, None, config);
}

/// Serves `main` and, if given, `cors` (a second origin) forever. Both
/// share one request log, one set of fault counters and one sink.
pub fn serve_origins(main: TcpListener, cors: Option<TcpListener>, config: Config) {
    let shared = Arc::new(Shared::new(config));
    if let Some(cors) = cors {
        let shared = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name("devserver-cors".into())
            .spawn(move || accept_loop(&cors, Origin::Cors, &shared));
        if let Err(e) = spawned {
            eprintln!("devserver: cannot start the cors origin: {e}");
        }
    }
    accept_loop(&main, Origin::Main, &shared);
}

fn accept_loop(listener: &TcpListener, origin: Origin, shared: &Arc<Shared>) {
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(_) => {
                // E.g. out of file descriptors: back off, keep serving.
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let shared = Arc::clone(shared);
        let conn_id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
        // If no thread can be spawned the stream is dropped (closed).
        let _ = thread::Builder::new()
            .name(format!("conn-{conn_id}"))
            .spawn(move || handle_connection(stream, conn_id, origin, &shared));
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

/// Like [`spawn`], with a second origin on another port of `127.0.0.1`.
/// Returns the main and the CORS origin's addresses.
pub fn spawn_with_cors(config: Config) -> io::Result<(SocketAddr, SocketAddr)> {
    let main = TcpListener::bind(("127.0.0.1", 0))?;
    let cors = TcpListener::bind(("127.0.0.1", 0))?;
    let addrs = (main.local_addr()?, cors.local_addr()?);
    thread::Builder::new()
        .name("devserver".into())
        .spawn(move || serve_origins(main, Some(cors), config))?;
    Ok(addrs)
}

/// What happens to a connection after a response.
enum Next {
    /// Read the next request.
    KeepAlive,
    /// Close it gracefully.
    Close,
    /// Drop it at once (after a `reset` or `stall`).
    Drop,
}

fn handle_connection(stream: TcpStream, conn_id: u64, origin: Origin, shared: &Shared) {
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
        match respond(&mut conn, &req, conn_id, origin, shared) {
            Ok(Next::KeepAlive) => continue,
            Ok(Next::Close) => return conn.close_gracefully(),
            Ok(Next::Drop) | Err(_) => return,
        }
    }
}

/// The CORS headers a request asks for with `cors` and `expose` in its
/// query string (any route, either origin): `cors=0` wins over `expose`.
/// `Err` names a parameter with a bad value.
fn cors_choice(req: &Request) -> Result<Cors, String> {
    let cors = switch(req, "cors")?;
    let expose = switch(req, "expose")?;
    Ok(match (cors, expose) {
        (false, _) => Cors::Off,
        (true, false) => Cors::NoExpose,
        (true, true) => Cors::Full,
    })
}

/// A `0`/`1` query parameter, `1` when absent.
fn switch(req: &Request, key: &str) -> Result<bool, String> {
    match faults::param(req, key)?.as_deref() {
        None | Some("1") => Ok(true),
        Some("0") => Ok(false),
        Some(_) => Err(format!("invalid {key}: 0 or 1")),
    }
}

/// Answers one request and says what to do with the connection next.
fn respond(
    conn: &mut Connection,
    req: &Request,
    conn_id: u64,
    origin: Origin,
    shared: &Shared,
) -> io::Result<Next> {
    let ctx = shared.ctx(origin);
    let cors = cors_choice(req);
    let mut reply = match &cors {
        Ok(_) if sink::is_upload(req) => {
            match sink::upload(conn, req, &shared.faults, &shared.sinks) {
                Upload::Reply(reply) => reply,
                Upload::Gone => return Ok(Next::Close),
                Upload::Reset => {
                    // Nothing is answered: status 0 in the log.
                    shared
                        .log
                        .record_fault(conn_id, req, 0, Some("reset".into()));
                    return Ok(Next::Drop);
                }
            }
        }
        _ => match read_body(conn, req) {
            Ok(()) => match &cors {
                Ok(_) => route_with(req, &ctx),
                Err(msg) => Reply::text(400, &format!("{msg}\n")),
            },
            Err(ReadError::Closed) => return Ok(Next::Close),
            Err(ReadError::Bad(status)) => Reply::text(status, "bad request body\n").closing(),
        },
    };
    // A bad `cors`/`expose` gets its 400 with the default CORS headers.
    if let Ok(cors) = cors {
        reply.cors = cors;
    }
    let keep_alive = !req.wants_close() && !reply.close;
    let head_only = req.method == "HEAD";
    let cut = if head_only { None } else { reply.cut };
    let fault = reply.fault.take();
    let entry = (!is_log_route(&req.path))
        .then(|| shared.log.record_fault(conn_id, req, reply.status, fault));
    let tracker = Tracker::new(&shared.log, entry);
    reply::send(conn.stream(), reply, head_only, keep_alive, &tracker)?;
    Ok(match cut {
        // An early end is a complete (chunked) response: go on as usual.
        None | Some(Cut::EndEarly(_)) if keep_alive => Next::KeepAlive,
        None | Some(Cut::EndEarly(_)) => Next::Close,
        Some(Cut::Reset(_)) => {
            // std has no stable SO_LINGER, so this is a plain close (FIN):
            // the client sees the body end before Content-Length.
            let _ = conn.stream().shutdown(Shutdown::Both);
            Next::Drop
        }
        Some(Cut::Stall(_)) => {
            conn.stall(faults::STALL_LIMIT);
            Next::Drop
        }
    })
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

/// Decides the reply to a request, on the main origin, with fault
/// counters and a sink of its own (so `fault_times` and the sink do not
/// carry over between calls). The server itself uses [`route_with`].
pub fn route(req: &Request, config: &Config, log: &Log) -> Reply {
    route_with(
        req,
        &Ctx {
            config,
            log,
            faults: &FaultState::default(),
            sinks: &Sinks::default(),
            origin: Origin::Main,
        },
    )
}

/// Decides the reply to a request (uploads to the sink excepted: their
/// body is read by [`sink::upload`]).
pub fn route_with(req: &Request, ctx: &Ctx) -> Reply {
    if req.method == "OPTIONS" {
        return preflight(req);
    }
    if is_log_route(&req.path) {
        return log::handle(req, ctx.log);
    }
    if let Some(name) = sink::raw_name(&req.path) {
        return sink::handle(req, name, ctx.sinks);
    }
    match req.method.as_str() {
        "GET" | "HEAD" => match req.path.strip_prefix("/files/") {
            Some(name) => files::handle_with_faults(req, name, ctx.faults),
            None => static_files::handle(req, ctx.config),
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::parse_head;

    fn req(target: &str) -> Request {
        let raw = format!("GET {target} HTTP/1.1\r\n\r\n");
        match parse_head(raw.as_bytes()) {
            Ok(Some((r, _))) => r,
            other => panic!("parse failed: {other:?}"),
        }
    }

    #[test]
    fn cors_and_expose_choose_the_cors_headers() {
        let choice = |target: &str| cors_choice(&req(target));
        assert_eq!(choice("/"), Ok(Cors::Full));
        assert_eq!(choice("/files/a?size=1&cors=1&expose=1"), Ok(Cors::Full));
        assert_eq!(choice("/files/a?size=1&expose=0"), Ok(Cors::NoExpose));
        assert_eq!(choice("/x?cors=0"), Ok(Cors::Off));
        assert_eq!(choice("/x?cors=0&expose=0"), Ok(Cors::Off));
        assert_eq!(choice("/x?expose=1&cors=0"), Ok(Cors::Off));
        assert_eq!(choice("/x?cors=%30"), Ok(Cors::Off));
        assert_eq!(choice("/x?cors=2"), Err("invalid cors: 0 or 1".into()));
        assert_eq!(choice("/x?cors="), Err("invalid cors: 0 or 1".into()));
        assert_eq!(
            choice("/x?cors=0&expose=no"),
            Err("invalid expose: 0 or 1".into())
        );
        assert!(choice("/x?cors=%zz").is_err_and(|m| m.starts_with("invalid cors")));
    }

    #[test]
    fn preflight_lists_methods_and_headers() {
        let reply = preflight(&req("/any?cors=0"));
        assert_eq!(reply.status, 204);
        let names: Vec<&str> = reply.headers.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "Access-Control-Allow-Methods",
                "Access-Control-Allow-Headers",
                "Access-Control-Max-Age"
            ]
        );
    }
}
