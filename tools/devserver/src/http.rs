//! HTTP/1.1 plumbing: reading requests off a connection and writing
//! response heads.
//!
//! A [`Connection`] owns the socket and a read buffer. Bytes that arrive
//! after one request head (a pipelined request, or a request body) stay in
//! the buffer for the next call, so keep-alive and pipelining both work.
//! Parsing is done by `httparse`; everything a client sends is treated as
//! untrusted, so every failure becomes a [`ReadError`] rather than a panic.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::SystemTime;

/// Largest request head (request line + headers) accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// How long a closing connection keeps draining client bytes.
const LINGER: std::time::Duration = std::time::Duration::from_secs(1);
/// Most header lines accepted in one request.
const MAX_HEADERS: usize = 100;

/// Headers a browser script may read on a cross-origin response.
pub const EXPOSE_HEADERS: &str =
    "ETag, Last-Modified, Content-Range, Content-Length, Accept-Ranges, Retry-After";

/// One parsed request head.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method as sent, e.g. `GET`.
    pub method: String,
    /// Path part of the request target, still percent-encoded.
    pub path: String,
    /// Query string without the `?`, if the target had one.
    pub query: Option<String>,
    /// Minor HTTP version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// Header names in lower case, values as text (lossy UTF-8).
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// First value of a header; `name` must be lower case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// How many times a header occurs; `name` must be lower case.
    pub fn header_count(&self, name: &str) -> usize {
        self.headers.iter().filter(|(n, _)| n == name).count()
    }

    /// Whether the client asked for the connection to end after this
    /// request (`Connection: close`, or HTTP/1.0 without keep-alive).
    pub fn wants_close(&self) -> bool {
        let tokens: Vec<String> = self
            .headers
            .iter()
            .filter(|(n, _)| n == "connection")
            .flat_map(|(_, v)| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .collect();
        if tokens.iter().any(|t| t == "close") {
            return true;
        }
        self.version == 0 && !tokens.iter().any(|t| t == "keep-alive")
    }

    /// A query parameter, percent-decoded (`+` is a space). `None` when
    /// absent or not valid UTF-8 after decoding.
    pub fn query_param(&self, key: &str) -> Option<String> {
        let query = self.query.as_deref()?;
        query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = decode_query_part(k)?;
            if k == key {
                decode_query_part(v)
            } else {
                None
            }
        })
    }
}

/// Decodes one side of a `key=value` query pair: `+` is a space, then `%XX`
/// escapes. `None` when malformed or not UTF-8.
pub fn decode_query_part(s: &str) -> Option<String> {
    let spaced = s.replace('+', " ");
    String::from_utf8(percent_decode(&spaced)?).ok()
}

/// Decodes `%XX` escapes. `None` if an escape is malformed.
pub fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex_val(*bytes.get(i + 1)?)?;
            let lo = hex_val(*bytes.get(i + 2)?)?;
            out.push(hi * 16 + lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Why no request could be read.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The peer closed the connection or an I/O error occurred: end quietly.
    Closed,
    /// The request was malformed: answer with this status, then close.
    Bad(u16),
}

/// A client connection with its read buffer.
pub struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Connection {
    pub fn new(stream: TcpStream) -> Self {
        Connection {
            stream,
            buf: Vec::new(),
        }
    }

    /// The socket, for writing responses.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Reads the next request head.
    pub fn read_request(&mut self) -> Result<Request, ReadError> {
        loop {
            if !self.buf.is_empty() {
                if let Some((req, used)) = parse_head(&self.buf)? {
                    self.buf.drain(..used);
                    return Ok(req);
                }
                if self.buf.len() >= MAX_HEAD {
                    return Err(ReadError::Bad(431));
                }
            }
            self.fill()?;
        }
    }

    /// Reads and drops `len` bytes of request body.
    pub fn discard_body(&mut self, len: u64) -> Result<(), ReadError> {
        self.consume_body(len, |_| {})
    }

    /// Reads exactly `len` bytes of request body and appends them to `out`.
    pub fn read_body_into(&mut self, len: u64, out: &mut Vec<u8>) -> Result<(), ReadError> {
        self.consume_body(len, |bytes| out.extend_from_slice(bytes))
    }

    /// Reads exactly `len` bytes of request body, handing each buffered piece to `sink`.
    fn consume_body(&mut self, mut len: u64, mut sink: impl FnMut(&[u8])) -> Result<(), ReadError> {
        while len > 0 {
            if self.buf.is_empty() {
                self.fill()?;
            }
            let take = usize::try_from(len)
                .unwrap_or(usize::MAX)
                .min(self.buf.len());
            sink(&self.buf[..take]);
            self.buf.drain(..take);
            len -= take as u64;
        }
        Ok(())
    }

    /// Keeps the connection open without sending anything until the client
    /// goes away (EOF or error) or `limit` passes; whatever it sends is
    /// dropped. Used by the `stall` fault.
    pub fn stall(&mut self, limit: std::time::Duration) {
        let _ = self
            .stream
            .set_read_timeout(Some(std::time::Duration::from_millis(250)));
        let began = std::time::Instant::now();
        let mut chunk = [0u8; 16 * 1024];
        while began.elapsed() < limit {
            match self.stream.read(&mut chunk) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => return,
            }
        }
    }

    /// Ends the connection after a final response: stops sending, then
    /// drains what the client still sends (briefly), so that unread
    /// request bytes do not make the kernel reset the connection before
    /// the client has read the response.
    pub fn close_gracefully(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        let _ = self.stream.set_read_timeout(Some(LINGER));
        let began = std::time::Instant::now();
        let mut chunk = [0u8; 16 * 1024];
        let mut drained = 0;
        while began.elapsed() < LINGER && drained < MAX_HEAD * 16 {
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => drained += n,
            }
        }
    }

    fn fill(&mut self) -> Result<(), ReadError> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ReadError::Closed),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(ReadError::Closed),
            }
        }
    }
}

/// Parses a request head from the start of `buf`. `Ok(None)` means more
/// bytes are needed; on success returns the request and the head length.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Request, usize)>, ReadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let used = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(ReadError::Bad(431)),
        Err(_) => return Err(ReadError::Bad(400)),
    };
    let (Some(method), Some(target), Some(version)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(ReadError::Bad(400));
    };
    let target = strip_absolute_form(target).ok_or(ReadError::Bad(400))?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target.to_string(), None),
    };
    let headers = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();
    let req = Request {
        method: method.to_string(),
        path,
        query,
        version,
        headers,
    };
    Ok(Some((req, used)))
}

/// Turns `http://host/x?y` into `/x?y`; origin-form and `*` pass through.
fn strip_absolute_form(target: &str) -> Option<&str> {
    if target.starts_with('/') || target == "*" {
        return Some(target);
    }
    let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &target[7..]
    } else if lower.starts_with("https://") {
        &target[8..]
    } else {
        return None;
    };
    Some(rest.find('/').map_or("/", |i| &rest[i..]))
}

/// Standard reason phrase for the statuses this server uses.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// Which CORS headers a response carries (chosen per request by the
/// `cors` and `expose` query parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cors {
    /// `Access-Control-Allow-Origin: *` and `Access-Control-Expose-Headers`
    /// (the default).
    #[default]
    Full,
    /// `Access-Control-Allow-Origin: *` only (`expose=0`): a browser hides
    /// `ETag`, `Content-Range`, … from scripts.
    NoExpose,
    /// No `Access-Control-*` header at all (`cors=0`), not even one the
    /// route added (a preflight's): a browser's cross-origin fetch fails.
    Off,
}

/// Renders a response head: status line, `Date`, CORS headers, the given
/// headers, `Content-Length` (unless `None`) and `Connection`.
pub fn render_head(
    status: u16,
    headers: &[(&str, String)],
    content_length: Option<u64>,
    keep_alive: bool,
) -> Vec<u8> {
    render_head_with(status, headers, content_length, keep_alive, Cors::Full)
}

/// [`render_head`] with the CORS headers `cors` asks for. With
/// [`Cors::Off`], `Access-Control-*` headers in `headers` are left out too.
pub fn render_head_with(
    status: u16,
    headers: &[(&str, String)],
    content_length: Option<u64>,
    keep_alive: bool,
    cors: Cors,
) -> Vec<u8> {
    let mut s = format!("HTTP/1.1 {} {}\r\n", status, reason(status));
    let mut push = |name: &str, value: &str| {
        s.push_str(name);
        s.push_str(": ");
        s.push_str(value);
        s.push_str("\r\n");
    };
    push("Date", &httpdate::fmt_http_date(SystemTime::now()));
    if cors != Cors::Off {
        push("Access-Control-Allow-Origin", "*");
    }
    if cors == Cors::Full {
        push("Access-Control-Expose-Headers", EXPOSE_HEADERS);
    }
    for (name, value) in headers {
        if cors == Cors::Off && is_cors_header(name) {
            continue;
        }
        push(name, value);
    }
    if let Some(len) = content_length {
        push("Content-Length", &len.to_string());
    }
    push(
        "Connection",
        if keep_alive { "keep-alive" } else { "close" },
    );
    s.push_str("\r\n");
    s.into_bytes()
}

/// Whether `name` is an `Access-Control-*` header (any case).
fn is_cors_header(name: &str) -> bool {
    const PREFIX: &str = "access-control-";
    name.get(..PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(PREFIX))
}

/// Writes an interim `100 Continue`.
pub fn write_continue(w: &mut impl Write) -> io::Result<()> {
    w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(raw: &str) -> Request {
        match parse_head(raw.as_bytes()) {
            Ok(Some((r, _))) => r,
            other => panic!("parse failed: {other:?}"),
        }
    }

    #[test]
    fn parses_target_and_headers() {
        let r =
            req("GET /files/a?size=1K&rate=2M HTTP/1.1\r\nHost: x\r\nRange:  bytes=0-9 \r\n\r\n");
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/files/a");
        assert_eq!(r.query.as_deref(), Some("size=1K&rate=2M"));
        assert_eq!(r.header("range"), Some("bytes=0-9"));
        assert_eq!(r.query_param("rate").as_deref(), Some("2M"));
        assert_eq!(r.query_param("nope"), None);
    }

    #[test]
    fn partial_and_bad_heads() {
        assert!(matches!(parse_head(b"GET / HTTP/1.1\r\nHost"), Ok(None)));
        assert_eq!(
            parse_head(b"G@T / HTTP/1.1\r\n\r\n").err(),
            Some(ReadError::Bad(400))
        );
        assert_eq!(
            parse_head(b"GET nope HTTP/1.1\r\n\r\n").err(),
            Some(ReadError::Bad(400))
        );
    }

    #[test]
    fn absolute_form_is_reduced_to_path() {
        let r = req("GET http://127.0.0.1:1/x/y?z=1 HTTP/1.1\r\n\r\n");
        assert_eq!(r.path, "/x/y");
        assert_eq!(r.query.as_deref(), Some("z=1"));
    }

    #[test]
    fn connection_close_rules() {
        assert!(!req("GET / HTTP/1.1\r\n\r\n").wants_close());
        assert!(req("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").wants_close());
        assert!(req("GET / HTTP/1.1\r\nConnection: te, close\r\n\r\n").wants_close());
        assert!(req("GET / HTTP/1.0\r\n\r\n").wants_close());
        assert!(!req("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").wants_close());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb%2e").as_deref(), Some(&b"a/b."[..]));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        let r = req("GET /__log?path=%2Ffiles%2Fa+b HTTP/1.1\r\n\r\n");
        assert_eq!(r.query_param("path").as_deref(), Some("/files/a b"));
    }

    #[test]
    fn head_rendering() {
        let head = render_head(206, &[("X-A", "1".into())], Some(10), true);
        let text = String::from_utf8(head).unwrap_or_default();
        assert!(text.starts_with("HTTP/1.1 206 Partial Content\r\n"));
        assert!(text.contains("\r\nAccess-Control-Allow-Origin: *\r\n"));
        assert!(text.contains("\r\nX-A: 1\r\n"));
        assert!(text.contains("\r\nContent-Length: 10\r\n"));
        assert!(text.ends_with("Connection: keep-alive\r\n\r\n"));
        let none = render_head(204, &[], None, false);
        assert!(!String::from_utf8_lossy(&none).contains("\r\nContent-Length:"));
        let full = render_head_with(200, &[], Some(0), true, Cors::Full);
        let full = String::from_utf8_lossy(&full);
        assert!(full.contains("\r\nAccess-Control-Allow-Origin: *\r\n"));
        assert!(full.contains(&format!(
            "\r\nAccess-Control-Expose-Headers: {EXPOSE_HEADERS}\r\n"
        )));
        let hidden = render_head_with(200, &[], Some(0), true, Cors::NoExpose);
        let hidden = String::from_utf8_lossy(&hidden);
        assert!(!hidden.contains("Access-Control-Expose-Headers"));
        assert!(hidden.contains("\r\nAccess-Control-Allow-Origin: *\r\n"));
    }

    #[test]
    fn cors_off_leaves_out_every_access_control_header() {
        let headers = [
            ("Access-Control-Allow-Methods", "GET".to_string()),
            ("access-control-max-age", "600".to_string()),
            ("X-Access-Control-Not", "kept".to_string()),
            ("ETag", "\"e\"".to_string()),
        ];
        let off = render_head_with(204, &headers, None, true, Cors::Off);
        let off = String::from_utf8_lossy(&off);
        assert!(
            !off.to_ascii_lowercase().contains("\r\naccess-control-"),
            "{off}"
        );
        assert!(off.contains("\r\nX-Access-Control-Not: kept\r\n"), "{off}");
        assert!(off.contains("\r\nETag: \"e\"\r\n"), "{off}");
        assert!(
            off.starts_with("HTTP/1.1 204 No Content\r\nDate: "),
            "{off}"
        );
        let on = render_head_with(204, &headers, None, true, Cors::NoExpose);
        let on = String::from_utf8_lossy(&on);
        assert!(
            on.contains("\r\nAccess-Control-Allow-Methods: GET\r\n"),
            "{on}"
        );
        assert!(on.contains("\r\naccess-control-max-age: 600\r\n"), "{on}");
        assert!(!is_cors_header("Access-Control"));
        assert!(is_cors_header("ACCESS-CONTROL-ALLOW-ORIGIN"));
        assert!(!is_cors_header("é"));
    }
}
