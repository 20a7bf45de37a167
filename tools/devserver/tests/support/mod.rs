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
    let addr = longhaul_devserver::spawn(config).expect("spawn server");
    Server { addr, dir }
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

    pub fn read_response(&mut self, head_only: bool) -> Response {
        let mut resp = self.read_head();
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

    pub fn read_some(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        self.reader.read_exact(&mut buf).expect("read");
        buf
    }

    /// True when the server has closed the connection (read gives EOF).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0))
    }
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
