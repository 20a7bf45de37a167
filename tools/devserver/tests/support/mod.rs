//! A tiny HTTP/1.1 client over `std::net::TcpStream` for the tests, and a
//! helper that starts a server with a temporary site.

#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use longhaul_devserver::Config;

pub struct Server {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    /// The second (CORS) origin, when started with [`start_with_cors`].
    pub cors: Option<SocketAddr>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Starts a server on an ephemeral port with a small site:
/// `www/index.html`, `www/app.js`, `www/sub/index.html`, `pkg/x_bg.wasm`,
/// `pkg/x.d.ts`, and `secret.txt` beside (outside) both directories.
pub fn start() -> Server {
    start_server(false)
}

/// Like [`start`], with a second origin (`Server::cors`).
pub fn start_with_cors() -> Server {
    start_server(true)
}

fn start_server(with_cors: bool) -> Server {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "longhaul-devserver-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    let files: &[(&str, &[u8])] = &[
        ("www/index.html", b"<!doctype html><title>home</title>"),
        ("www/app.js", b"console.log('app');"),
        ("www/sub/index.html", b"<p>sub</p>"),
        ("pkg/x_bg.wasm", b"\0asm\x01\0\0\0"),
        ("pkg/x.d.ts", b"export {};"),
        ("secret.txt", b"TOP SECRET"),
    ];
    for (path, content) in files {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(&path, content).expect("write fixture");
    }
    let config = Config {
        root: dir.join("www"),
        pkg: dir.join("pkg"),
    };
    if with_cors {
        let (addr, cors) = longhaul_devserver::spawn_with_cors(config).expect("spawn server");
        return Server {
            addr,
            dir,
            cors: Some(cors),
        };
    }
    let addr = longhaul_devserver::spawn(config).expect("spawn server");
    Server {
        addr,
        dir,
        cors: None,
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One TCP connection; several requests may be sent on it.
pub struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        Client {
            reader: BufReader::new(stream),
        }
    }

    pub fn send_raw(&mut self, raw: &[u8]) {
        self.reader.get_mut().write_all(raw).expect("send request");
    }

    /// Sends `method target` with extra header lines (`"Name: value"`).
    pub fn request(&mut self, method: &str, target: &str, headers: &[&str]) -> Response {
        let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: test\r\n");
        for h in headers {
            raw.push_str(h);
            raw.push_str("\r\n");
        }
        raw.push_str("\r\n");
        self.send_raw(raw.as_bytes());
        self.read_response(method == "HEAD")
    }

    /// Reads the status line and headers only.
    pub fn read_head(&mut self) -> Response {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("header line");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (n, v) = line.split_once(':').expect("header colon");
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
        Response {
            status,
            headers,
            body: Vec::new(),
        }
    }

    /// Reads a response; a chunked body (`Transfer-Encoding: chunked`) is
    /// decoded with [`Client::read_chunked`].
    pub fn read_response(&mut self, head_only: bool) -> Response {
        let mut resp = self.read_head();
        if !head_only && resp.header("transfer-encoding") == Some("chunked") {
            assert_eq!(resp.header("content-length"), None, "chunked and sized");
            resp.body = self.read_chunked();
            return resp;
        }
        let len: usize = resp
            .header("content-length")
            .map(|v| v.parse().expect("content-length"))
            .unwrap_or(0);
        if !head_only {
            resp.body = vec![0; len];
            self.reader.read_exact(&mut resp.body).expect("body");
        }
        resp
    }

    /// Reads a chunked body up to and including its last chunk and returns
    /// the data, checking the framing byte for byte: each chunk is a size
    /// line of lower-case hex digits (no extensions) and CRLF, the data and
    /// CRLF; the last is `0\r\n\r\n` (no trailers). Panics otherwise, or
    /// if the connection ends first. Reads nothing past the last chunk.
    pub fn read_chunked(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let mut line = Vec::new();
            self.reader
                .read_until(b'\n', &mut line)
                .expect("chunk size line");
            let n = line
                .strip_suffix(b"\r\n")
                .and_then(chunk_size)
                .unwrap_or_else(|| panic!("bad chunk size line {line:?}"));
            let mut crlf = [0u8; 2];
            if n == 0 {
                self.reader
                    .read_exact(&mut crlf)
                    .expect("end of last chunk");
                assert_eq!(&crlf, b"\r\n", "last chunk without trailers");
                return body;
            }
            let at = body.len();
            body.resize(at + n, 0);
            self.reader.read_exact(&mut body[at..]).expect("chunk data");
            self.reader.read_exact(&mut crlf).expect("chunk end");
            assert_eq!(&crlf, b"\r\n", "CRLF after chunk data");
        }
    }

    pub fn read_some(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        self.reader.read_exact(&mut buf).expect("read");
        buf
    }

    /// Reads until the server closes the connection (or resets it).
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) | Err(_) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// Waits up to `wait` for one byte: `Ok(Some(b))` for data, `Ok(None)`
    /// for EOF, `Err` for a timeout (or another error).
    pub fn poll_byte(&mut self, wait: Duration) -> std::io::Result<Option<u8>> {
        self.reader.get_ref().set_read_timeout(Some(wait))?;
        let mut b = [0u8; 1];
        let got = self.reader.read(&mut b);
        self.reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(20)))?;
        got.map(|n| (n == 1).then_some(b[0]))
    }

    /// True when the server has closed the connection (read gives EOF).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0))
    }
}

/// The size of a chunk size line (without its CRLF): 1 to 16 lower-case
/// hex digits, nothing else.
fn chunk_size(line: &[u8]) -> Option<usize> {
    let ok = (1..=16).contains(&line.len())
        && line
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
    let text = std::str::from_utf8(line).ok().filter(|_| ok)?;
    usize::from_str_radix(text, 16).ok()
}

/// Decodes raw chunked body bytes (everything after the head) with the
/// same strict rules as [`Client::read_chunked`]: the data, and whether it
/// ended with the last chunk (`false`: the bytes stop after a whole chunk,
/// as when the connection was cut). Panics on bad framing, on a chunk cut
/// short, or on bytes after the last chunk.
pub fn dechunk(mut raw: &[u8]) -> (Vec<u8>, bool) {
    let mut data = Vec::new();
    while !raw.is_empty() {
        let eol = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or_else(|| panic!("no CRLF after chunk size in {raw:?}"));
        let n = chunk_size(&raw[..eol])
            .unwrap_or_else(|| panic!("bad chunk size line {:?}", &raw[..eol]));
        raw = &raw[eol + 2..];
        if n == 0 {
            assert_eq!(raw, b"\r\n", "last chunk, then nothing");
            return (data, true);
        }
        assert!(raw.len() >= n + 2, "chunk of {n} bytes cut short");
        data.extend_from_slice(&raw[..n]);
        assert_eq!(&raw[n..n + 2], b"\r\n", "CRLF after chunk data");
        raw = &raw[n + 2..];
    }
    (data, false)
}

/// One request on a fresh connection.
pub fn get(addr: SocketAddr, target: &str, headers: &[&str]) -> Response {
    Client::connect(addr).request("GET", target, headers)
}

/// The generated bytes of `/files/<name>?size=<size>`.
pub fn expected(name: &str, size: u64) -> Vec<u8> {
    let mut v = vec![0; size as usize];
    longhaul_devserver::files::fill(
        longhaul_devserver::files::seed(name.as_bytes(), size),
        0,
        &mut v,
    );
    v
}

/// `len` generated bytes of `/files/<name>?size=<size>` from `start` (any
/// position: past the end the sequence just goes on).
pub fn expected_at(name: &str, size: u64, start: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    longhaul_devserver::files::fill(
        longhaul_devserver::files::seed(name.as_bytes(), size),
        start,
        &mut v,
    );
    v
}

/// Entries of `GET /__log?path=<path>`, one JSON object per line.
pub fn log_entries(addr: SocketAddr, path: &str) -> Vec<String> {
    let resp = get(addr, &format!("/__log?path={path}"), &[]);
    assert_eq!(resp.status, 200);
    resp.text()
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| l.trim_end_matches(',').to_string())
        .collect()
}

/// The raw JSON value of a field (number, bool, null or a string without
/// commas) in a log line.
pub fn json_field<'a>(line: &'a str, name: &str) -> &'a str {
    let key = format!("\"{name}\":");
    let at = line
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {line}"))
        + key.len();
    let rest = &line[at..];
    &rest[..rest.find([',', '}']).unwrap_or(rest.len())]
}
