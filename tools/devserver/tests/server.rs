//! End-to-end tests: a real server on an ephemeral port, raw HTTP over
//! `TcpStream`.

mod support;

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::{expected, get, start, Client};

/// Entries of `GET /__log?path=<path>`, one JSON object per line.
fn log_lines(addr: SocketAddr, path: &str) -> Vec<String> {
    let resp = get(addr, &format!("/__log?path={path}"), &[]);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let text = resp.text();
    assert!(
        text.trim_start().starts_with('[') && text.trim_end().ends_with(']'),
        "{text}"
    );
    text.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| l.trim_end_matches(',').to_string())
        .collect()
}

/// The raw JSON value of a number/bool/null field in a log line.
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let key = format!("\"{name}\":");
    let at = line
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {line}"))
        + key.len();
    let rest = &line[at..];
    &rest[..rest.find([',', '}']).unwrap_or(rest.len())]
}

#[test]
fn plain_get_has_length_etag_and_bytes() {
    let s = start();
    let resp = get(s.addr, "/files/plain.bin?size=1000", &[]);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-length"), Some("1000"));
    assert_eq!(resp.body, expected("plain.bin", 1000));
    let seed = longhaul_devserver::files::seed(b"plain.bin", 1000);
    let etag = format!("\"{seed:016x}-1000\"");
    assert_eq!(resp.header("etag"), Some(etag.as_str()));
    assert_eq!(
        resp.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(resp.header("accept-ranges"), Some("bytes"));
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    assert_eq!(
        resp.header("last-modified"),
        Some("Thu, 01 Jan 2026 00:00:00 GMT")
    );
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    assert!(resp
        .header("access-control-expose-headers")
        .is_some_and(|h| h.contains("Content-Range") && h.contains("ETag")));

    // Suffixes, and the same file twice gives the same bytes.
    let big = get(s.addr, "/files/plain.bin?size=2K", &[]);
    assert_eq!(big.body.len(), 2048);
    assert_eq!(
        big.body,
        get(s.addr, "/files/plain.bin?size=2048", &[]).body
    );
    assert_ne!(
        big.body,
        get(s.addr, "/files/other.bin?size=2048", &[]).body
    );
}

#[test]
fn head_sends_headers_only() {
    let s = start();
    let mut c = Client::connect(s.addr);
    let resp = c.request("HEAD", "/files/h?size=1M", &[]);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-length"), Some("1048576"));
    // The connection is still in sync: the next response follows directly.
    let next = c.request("GET", "/files/h?size=10", &[]);
    assert_eq!(next.body, expected("h", 10));
}

#[test]
fn range_gives_206_with_content_range() {
    let s = start();
    let full = expected("r.bin", 1000);
    let resp = get(s.addr, "/files/r.bin?size=1000", &["Range: bytes=100-199"]);
    assert_eq!(resp.status, 206);
    assert_eq!(resp.header("content-range"), Some("bytes 100-199/1000"));
    assert_eq!(resp.header("content-length"), Some("100"));
    assert_eq!(resp.body, full[100..200]);

    let open = get(s.addr, "/files/r.bin?size=1000", &["Range: bytes=990-"]);
    assert_eq!(open.header("content-range"), Some("bytes 990-999/1000"));
    assert_eq!(open.body, full[990..]);

    let suffix = get(s.addr, "/files/r.bin?size=1000", &["Range: bytes=-3"]);
    assert_eq!(suffix.header("content-range"), Some("bytes 997-999/1000"));
    assert_eq!(suffix.body, full[997..]);

    let clamped = get(s.addr, "/files/r.bin?size=1000", &["Range: bytes=995-5000"]);
    assert_eq!(clamped.header("content-range"), Some("bytes 995-999/1000"));

    for ignored in ["bytes=0-1,5-6", "bytes=9-2", "lines=1-2"] {
        let r = get(
            s.addr,
            "/files/r.bin?size=1000",
            &[&format!("Range: {ignored}")],
        );
        assert_eq!((r.status, r.body.len()), (200, 1000), "{ignored}");
    }
}

#[test]
fn unsatisfiable_range_gives_416() {
    let s = start();
    let resp = get(s.addr, "/files/u?size=1000", &["Range: bytes=1000-"]);
    assert_eq!(resp.status, 416);
    assert_eq!(resp.header("content-range"), Some("bytes */1000"));
    let empty = get(s.addr, "/files/u?size=0", &["Range: bytes=0-"]);
    assert_eq!(empty.status, 416);
    assert_eq!(empty.header("content-range"), Some("bytes */0"));
}

#[test]
fn if_range_decides_whether_range_applies() {
    let s = start();
    let target = "/files/ir?size=500";
    let etag = get(s.addr, target, &[]).header("etag").map(str::to_string);
    let etag = etag.unwrap_or_default();

    let wrong = get(
        s.addr,
        target,
        &["Range: bytes=10-19", "If-Range: \"stale-etag\""],
    );
    assert_eq!(wrong.status, 200);
    assert_eq!(wrong.body.len(), 500);
    assert_eq!(wrong.header("content-range"), None);

    let right = get(
        s.addr,
        target,
        &["Range: bytes=10-19", &format!("If-Range: {etag}")],
    );
    assert_eq!(right.status, 206);
    assert_eq!(right.body, expected("ir", 500)[10..20]);

    let weak = get(
        s.addr,
        target,
        &["Range: bytes=10-19", &format!("If-Range: W/{etag}")],
    );
    assert_eq!(weak.status, 200);

    let date = get(
        s.addr,
        target,
        &[
            "Range: bytes=10-19",
            "If-Range: Thu, 01 Jan 2026 00:00:00 GMT",
        ],
    );
    assert_eq!(date.status, 206);
    let old = get(
        s.addr,
        target,
        &[
            "Range: bytes=10-19",
            "If-Range: Wed, 31 Dec 2025 00:00:00 GMT",
        ],
    );
    assert_eq!(old.status, 200);
}

#[test]
fn keep_alive_serves_several_requests_and_honours_close() {
    let s = start();
    let mut c = Client::connect(s.addr);
    let a = c.request("GET", "/files/k1?size=100", &[]);
    let b = c.request("GET", "/files/k2?size=300", &["Range: bytes=0-9"]);
    assert_eq!((a.status, a.body.len()), (200, 100));
    assert_eq!((b.status, b.body.len()), (206, 10));
    assert_eq!(b.header("connection"), Some("keep-alive"));

    // Pipelined: two requests in one write.
    c.send_raw(b"GET /files/p?size=5 HTTP/1.1\r\n\r\nGET /files/p?size=7 HTTP/1.1\r\n\r\n");
    assert_eq!(c.read_response(false).body.len(), 5);
    assert_eq!(c.read_response(false).body.len(), 7);

    // A request body is skipped, not taken for the next request.
    c.send_raw(
        b"PUT /files/p?size=1 HTTP/1.1\r\nContent-Length: 21\r\n\r\nGET /evil HTTP/1.1\r\n\r\n",
    );
    assert_eq!(c.read_response(false).status, 405);
    assert_eq!(c.request("GET", "/files/p?size=3", &[]).body.len(), 3);

    let last = c.request("GET", "/files/k3?size=1", &["Connection: close"]);
    assert_eq!(last.header("connection"), Some("close"));
    assert!(c.is_closed());

    // All of them came over one connection.
    let lines = log_lines(s.addr, "/files/k2");
    let conn = field(&lines[0], "conn");
    assert_eq!(field(&log_lines(s.addr, "/files/k3")[0], "conn"), conn);
}

#[test]
fn log_records_requests_ranges_and_bytes() {
    let s = start();
    get(
        s.addr,
        "/files/logged?size=1000",
        &["Range: bytes=100-199", "If-Range: \"x\""],
    );
    get(s.addr, "/files/logged?size=1000", &["Range: bytes=100-199"]);
    get(s.addr, "/files/logged?size=1000", &[]);
    get(s.addr, "/nowhere.txt", &[]);

    let lines = log_lines(s.addr, "/files/logged");
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].contains(
            r#""range":"bytes=100-199","if_range":"\"x\"","authorization":null,"status":200"#
        ),
        "{}",
        lines[0]
    );
    assert_eq!(field(&lines[0], "bytes_sent"), "1000");
    assert!(lines[1].contains(r#""method":"GET","path":"/files/logged","query":"size=1000","range":"bytes=100-199","if_range":null"#), "{}", lines[1]);
    assert_eq!(field(&lines[1], "status"), "206");
    assert_eq!(field(&lines[1], "bytes_sent"), "100");
    assert_eq!(field(&lines[1], "complete"), "true");
    assert_eq!(field(&lines[2], "range"), "null");
    let seqs: Vec<u64> = lines
        .iter()
        .map(|l| field(l, "seq").parse().unwrap_or(0))
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    // Unfiltered log has the 404 too, but not the log requests themselves.
    let all = get(s.addr, "/__log", &[]).text();
    assert!(all.contains(r#""path":"/nowhere.txt""#) && all.contains(r#""status":404"#));
    assert!(!all.contains("/__log"), "{all}");

    let cleared = Client::connect(s.addr).request("POST", "/__log/clear", &["Content-Length: 0"]);
    assert_eq!(cleared.status, 200);
    assert!(
        cleared.text().contains("\"cleared\":4"),
        "{}",
        cleared.text()
    );
    assert!(log_lines(s.addr, "/files/logged").is_empty());
    get(s.addr, "/files/logged?size=1", &[]);
    let deleted = Client::connect(s.addr).request("DELETE", "/__log", &[]);
    assert!(deleted.text().contains("\"cleared\":1"));
}

#[test]
fn log_records_the_authorization_header() {
    let s = start();
    get(
        s.addr,
        "/files/auth?size=10",
        &["Authorization: Bearer tok\"en\\1"],
    );
    get(
        s.addr,
        "/files/auth?size=10",
        &["Authorization: Basic dTpw"],
    );
    get(s.addr, "/files/auth?size=10", &[]);
    // Also on 4xx answers and uploads.
    let bad = get(s.addr, "/files/auth?size=x", &["Authorization: Bearer bad"]);
    assert_eq!(bad.status, 400);
    let put = Client::connect(s.addr).request(
        "PUT",
        "/sink/auth",
        &["Content-Length: 0", "Authorization: Bearer up"],
    );
    assert_eq!(put.status, 201);

    let lines = log_lines(s.addr, "/files/auth");
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(
        lines[0].contains(r#""if_range":null,"authorization":"Bearer tok\"en\\1","status":200"#),
        "{}",
        lines[0]
    );
    assert_eq!(field(&lines[1], "authorization"), r#""Basic dTpw""#);
    assert_eq!(field(&lines[2], "authorization"), "null");
    assert_eq!(field(&lines[3], "authorization"), r#""Bearer bad""#);
    assert_eq!(field(&lines[3], "status"), "400");
    let up = log_lines(s.addr, "/sink/auth");
    assert_eq!(field(&up[0], "authorization"), r#""Bearer up""#);
}

#[test]
fn aborted_body_is_logged_as_incomplete() {
    let s = start();
    let size = 1 << 20;
    let mut c = Client::connect(s.addr);
    c.send_raw(b"GET /files/abort?size=1M&rate=256K HTTP/1.1\r\n\r\n");
    let head = c.read_head();
    assert_eq!(head.status, 200);
    let got = c.read_some(10_000);
    assert_eq!(got, expected("abort", size)[..10_000]);
    drop(c);
    // Give the server time to notice the reset on its next write.
    thread::sleep(Duration::from_millis(500));
    let line = &log_lines(s.addr, "/files/abort")[0];
    assert_eq!(field(line, "complete"), "false");
    let sent: u64 = field(line, "bytes_sent").parse().unwrap_or(u64::MAX);
    assert!((10_000..size).contains(&sent), "bytes_sent {sent}");
    // The count has stopped moving: the server gave up on the connection.
    thread::sleep(Duration::from_millis(300));
    let again = &log_lines(s.addr, "/files/abort")[0];
    assert_eq!(field(again, "bytes_sent"), sent.to_string());
}

#[test]
fn rate_throttles_the_body() {
    let s = start();
    let began = Instant::now();
    let resp = get(s.addr, "/files/slow?size=64K&rate=256K", &[]);
    let took = began.elapsed();
    assert_eq!(resp.body, expected("slow", 65536));
    // 64 KiB at 256 KiB/s is 250 ms; the last slice is not waited for.
    assert!(took >= Duration::from_millis(150), "took {took:?}");
    // Each request starts its own budget: a second one is as slow.
    let began = Instant::now();
    get(s.addr, "/files/slow?size=64K&rate=256K", &[]);
    assert!(began.elapsed() >= Duration::from_millis(150));
}

#[test]
fn latency_holds_each_head_back() {
    let s = start();
    let began = Instant::now();
    let resp = get(s.addr, "/files/late?size=1K&latency=200", &[]);
    assert_eq!(resp.body, expected("late", 1024));
    assert!(began.elapsed() >= Duration::from_millis(200));
    // A Range request waits as long.
    let began = Instant::now();
    let resp = get(
        s.addr,
        "/files/late?size=1K&latency=200",
        &["Range: bytes=0-9"],
    );
    assert_eq!(resp.status, 206);
    assert!(began.elapsed() >= Duration::from_millis(200));
}

#[test]
fn bad_input_gets_4xx() {
    let s = start();
    for target in [
        "/files/x",
        "/files/x?size=",
        "/files/x?size=12Q",
        "/files/x?size=1&rate=0",
        "/files/x?size=1&rate=z",
        "/files/x?size=1&latency=-1",
        "/files/x?size=1&latency=10001",
        "/files/x?size=1&latency=fast",
    ] {
        assert_eq!(get(s.addr, target, &[]).status, 400, "{target}");
    }
    assert_eq!(get(s.addr, "/files/?size=1", &[]).status, 404);
    let put = Client::connect(s.addr).request("PUT", "/files/x?size=1", &[]);
    assert_eq!(put.status, 405);
    assert_eq!(put.header("access-control-allow-origin"), Some("*"));

    let mut c = Client::connect(s.addr);
    c.send_raw(b"THIS IS NOT HTTP\r\n\r\n");
    assert_eq!(c.read_response(false).status, 400);
    assert!(c.is_closed());
}

#[test]
fn options_preflight_gets_204_and_cors() {
    let s = start();
    let resp = Client::connect(s.addr).request(
        "OPTIONS",
        "/files/anything",
        &[
            "Origin: http://example.test",
            "Access-Control-Request-Method: GET",
            "Access-Control-Request-Headers: range, if-range",
        ],
    );
    assert_eq!(resp.status, 204);
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        resp.header("access-control-allow-methods"),
        Some("GET, HEAD, PUT, POST, PATCH, DELETE, OPTIONS")
    );
    assert_eq!(
        resp.header("access-control-allow-headers"),
        Some("*, range, if-range")
    );
    assert_eq!(resp.header("access-control-max-age"), Some("600"));
    assert_eq!(resp.header("content-length"), None);
    let plain = Client::connect(s.addr).request("OPTIONS", "/", &[]);
    assert_eq!(plain.header("access-control-allow-headers"), Some("*"));
}

#[test]
fn static_files_have_mime_types_and_refuse_traversal() {
    let s = start();
    let index = get(s.addr, "/", &[]);
    assert_eq!(index.status, 200);
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(index.header("cache-control"), Some("no-cache"));
    assert!(index.text().contains("<title>home</title>"));
    let js = get(s.addr, "/app.js", &[]);
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(js.text(), "console.log('app');");
    assert_eq!(get(s.addr, "/sub", &[]).text(), "<p>sub</p>");
    assert_eq!(get(s.addr, "/sub/", &[]).text(), "<p>sub</p>");
    let wasm = get(s.addr, "/pkg/x_bg.wasm", &[]);
    assert_eq!(wasm.header("content-type"), Some("application/wasm"));
    assert_eq!(wasm.body, b"\0asm\x01\0\0\0");
    assert_eq!(
        get(s.addr, "/pkg/x.d.ts", &[]).header("content-type"),
        Some("text/plain; charset=utf-8")
    );

    let missing = get(s.addr, "/missing.js", &[]);
    assert_eq!(missing.status, 404);
    assert!(missing.text().contains("not found"));

    for evil in [
        "/../secret.txt",
        "/pkg/../secret.txt",
        "/pkg/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/pkg/%2E%2E%2Fsecret.txt",
        "/sub/..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
    ] {
        let resp = get(s.addr, evil, &[]);
        assert_eq!(resp.status, 404, "{evil}");
        assert!(!resp.text().contains("TOP SECRET"), "{evil}");
    }
}

#[test]
fn static_files_answer_a_matching_if_none_match_with_304() {
    let s = start();
    let first = get(s.addr, "/pkg/x_bg.wasm", &[]);
    let tag = first.header("etag").expect("an ETag").to_string();
    assert!(tag.starts_with('"') && tag.ends_with('"'), "{tag}");
    // The same tag, alone, weak, or in a list: not modified, no body, same validator.
    for value in [
        tag.clone(),
        format!("W/{tag}"),
        format!("\"other\", {tag}"),
        "*".into(),
    ] {
        let mut c = Client::connect(s.addr);
        let header = format!("If-None-Match: {value}");
        let again = c.request("GET", "/pkg/x_bg.wasm", &[&header]);
        assert_eq!(again.status, 304, "{value}");
        assert_eq!(again.header("etag"), Some(tag.as_str()));
        assert_eq!(again.header("content-length"), None);
        assert!(again.body.is_empty());
        // The connection stays usable: the 304 carried no body.
        assert_eq!(
            c.request("GET", "/app.js", &[]).text(),
            "console.log('app');"
        );
    }
    // Another tag, or another file's: the file itself.
    let other = get(s.addr, "/pkg/x_bg.wasm", &["If-None-Match: \"nope\""]);
    assert_eq!(
        (other.status, other.body.as_slice()),
        (200, &b"\0asm\x01\0\0\0"[..])
    );
    let header = format!("If-None-Match: {tag}");
    assert_eq!(get(s.addr, "/app.js", &[&header]).status, 200);
}

#[test]
fn binary_prints_ready_line_on_ephemeral_port() {
    let s = start();
    let mut child = Command::new(env!("CARGO_BIN_EXE_devserver"))
        .args(["--root", "www", "--pkg", "pkg"])
        .current_dir(&s.dir)
        .env("PORT", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start devserver binary");
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        std::io::BufReader::new(out)
            .read_line(&mut line)
            .expect("ready line");
    }
    let port: Option<u16> = line
        .trim_end()
        .strip_prefix("longhaul devserver: http://127.0.0.1:")
        .and_then(|rest| rest.strip_suffix('/'))
        .and_then(|p| p.parse().ok());
    let result = port.map(|p| get(SocketAddr::from(([127, 0, 0, 1], p)), "/pkg/x.d.ts", &[]));
    let _ = child.kill();
    let _ = child.wait();
    let resp = result.unwrap_or_else(|| panic!("bad ready line {line:?}"));
    assert_ne!(port, Some(0));
    assert_eq!(resp.text(), "export {};");
}
