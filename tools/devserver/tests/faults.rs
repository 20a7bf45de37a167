//! End-to-end tests of the fault switches, the second (CORS) origin and
//! the upload sink: a real server on ephemeral ports, raw HTTP over
//! `TcpStream`.

mod support;

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use longhaul_devserver::faults;
use longhaul_devserver::files::{self, fill, splitmix64, version_etag, version_seed};
use support::{
    dechunk, expected, expected_at, get, json_field, log_entries, start, start_with_cors, Client,
    Response,
};

/// The single log entry for `path`.
fn only_entry(addr: SocketAddr, path: &str) -> String {
    let lines = log_entries(addr, path);
    assert_eq!(lines.len(), 1, "{lines:?}");
    lines[0].clone()
}

fn fault_of(line: &str) -> &str {
    json_field(line, "fault")
}

#[test]
fn reset_ends_the_body_early() {
    let s = start();
    let mut c = Client::connect(s.addr);
    c.send_raw(b"GET /files/reset.bin?size=100K&reset=10000 HTTP/1.1\r\n\r\n");
    let head = c.read_head();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("102400"));
    let body = c.read_to_close();
    assert_eq!(body.len(), 10_000, "body shorter than Content-Length");
    assert_eq!(body, expected("reset.bin", 102_400)[..10_000]);
    let line = only_entry(s.addr, "/files/reset.bin");
    assert_eq!(json_field(&line, "status"), "200");
    assert_eq!(json_field(&line, "bytes_sent"), "10000");
    assert_eq!(json_field(&line, "complete"), "false");
    assert_eq!(fault_of(&line), "\"reset\"");

    // reset=0: the head, then nothing.
    let mut c = Client::connect(s.addr);
    c.send_raw(b"GET /files/reset0.bin?size=1K&reset=0 HTTP/1.1\r\n\r\n");
    assert_eq!(c.read_head().status, 200);
    assert!(c.read_to_close().is_empty());

    // A body no longer than the reset point is sent whole, and HEAD has no
    // body to cut: neither is faulted, and the connection stays usable.
    let mut c = Client::connect(s.addr);
    let short = c.request(
        "GET",
        "/files/reset-short.bin?size=100K&reset=10000",
        &["Range: bytes=100000-"],
    );
    assert_eq!((short.status, short.body.len()), (206, 2400));
    let head = c.request("HEAD", "/files/reset-short.bin?size=100K&reset=10000", &[]);
    assert_eq!(head.header("content-length"), Some("102400"));
    let next = c.request("GET", "/files/reset-short.bin?size=10", &[]);
    assert_eq!(next.body, expected("reset-short.bin", 10));
    for line in log_entries(s.addr, "/files/reset-short.bin") {
        assert_eq!(fault_of(&line), "null", "{line}");
        assert_eq!(json_field(&line, "complete"), "true", "{line}");
    }
}

#[test]
fn stall_keeps_the_socket_open_without_sending() {
    let s = start();
    let mut c = Client::connect(s.addr);
    c.send_raw(b"GET /files/stall.bin?size=100K&stall=5000 HTTP/1.1\r\n\r\n");
    let head = c.read_head();
    assert_eq!(head.header("content-length"), Some("102400"));
    assert_eq!(c.read_some(5000), expected("stall.bin", 102_400)[..5000]);
    // Nothing more arrives, yet the connection is not closed either.
    match c.poll_byte(Duration::from_millis(300)) {
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{e}"
        ),
        Ok(got) => panic!("expected silence, got {got:?}"),
    }
    let line = only_entry(s.addr, "/files/stall.bin");
    assert_eq!(json_field(&line, "bytes_sent"), "5000");
    assert_eq!(json_field(&line, "complete"), "false");
    assert_eq!(fault_of(&line), "\"stall\"");
    // Still open after the log was read.
    assert!(c.poll_byte(Duration::from_millis(100)).is_err());
}

#[test]
fn ignore_range_answers_200_with_everything() {
    let s = start();
    let target = "/files/ign.bin?size=1000&ignore_range=1";
    let r = get(s.addr, target, &["Range: bytes=100-199"]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-range"), None);
    assert_eq!(r.body, expected("ign.bin", 1000));
    // Without a Range header there is nothing to ignore.
    let plain = get(s.addr, target, &[]);
    assert_eq!((plain.status, plain.body.len()), (200, 1000));
    let lines = log_entries(s.addr, "/files/ign.bin");
    assert_eq!(fault_of(&lines[0]), "\"ignore_range\"");
    assert_eq!(fault_of(&lines[1]), "null");
}

#[test]
fn etag_rotate_gives_a_new_version_every_time() {
    let s = start();
    let target = "/files/rot.bin?size=1000&etag=rotate";
    let plain_tag = get(s.addr, "/files/rot.bin?size=1000", &[])
        .header("etag")
        .map(str::to_string);
    let mut tags = vec![plain_tag];
    let mut bodies = vec![expected("rot.bin", 1000)];
    for v in 1..=3u64 {
        let r = get(s.addr, target, &[]);
        assert_eq!(r.status, 200);
        let seed = version_seed(b"rot.bin", 1000, v);
        let want_tag = version_etag(seed, 1000, v);
        assert_eq!(r.header("etag"), Some(want_tag.as_str()));
        let mut want = vec![0; 1000];
        fill(seed, 0, &mut want);
        assert_eq!(r.body, want);
        assert!(!tags.contains(&Some(want_tag.clone())));
        assert!(!bodies.contains(&r.body));
        tags.push(Some(want_tag));
        bodies.push(r.body);
    }
    // Resuming with the last tag fails: the file changed again.
    let last = tags.last().cloned().flatten().unwrap_or_default();
    let resumed = get(
        s.addr,
        target,
        &["Range: bytes=500-", &format!("If-Range: {last}")],
    );
    assert_eq!((resumed.status, resumed.body.len()), (200, 1000));
    let lines = log_entries(s.addr, "/files/rot.bin");
    assert_eq!(fault_of(&lines[0]), "null");
    assert_eq!(fault_of(&lines[1]), "\"etag\"");
}

#[test]
fn etag_rotate_with_grow_and_fault_times() {
    let s = start();
    let target = "/files/grow.bin?size=1000&etag=rotate&grow=100&fault_times=3";
    let mut prev: Vec<u8> = expected("grow.bin", 1000);
    for v in 1..=3u64 {
        let r = get(s.addr, target, &[]);
        let size = 1000 + 100 * (v - 1);
        assert_eq!(r.body.len() as u64, size);
        let etag = r.header("etag").unwrap_or_default();
        assert!(etag.ends_with(&format!("-{size}-r{v}\"")), "{etag}");
        assert_ne!(
            r.body[..prev.len().min(r.body.len())],
            prev[..prev.len().min(r.body.len())]
        );
        prev = r.body;
    }
    // fault_times=3 is used up: the plain file again, with its plain tag.
    let r = get(s.addr, target, &[]);
    assert_eq!(r.body, expected("grow.bin", 1000));
    let seed = longhaul_devserver::files::seed(b"grow.bin", 1000);
    let plain_tag = format!("\"{seed:016x}-1000\"");
    assert_eq!(r.header("etag"), Some(plain_tag.as_str()));
    // Ranges apply to the current version.
    let s2 = start();
    let grown = get(
        s2.addr,
        "/files/g2?size=10&etag=rotate&grow=10",
        &["Range: bytes=15-"],
    );
    assert_eq!(grown.status, 416, "version 1 has 10 bytes");
    let grown = get(
        s2.addr,
        "/files/g2?size=10&etag=rotate&grow=10",
        &["Range: bytes=15-"],
    );
    assert_eq!(grown.status, 206);
    assert_eq!(grown.header("content-range"), Some("bytes 15-19/20"));
}

#[test]
fn bad_content_range_kinds() {
    let s = start();
    let full = expected("bcr.bin", 10_000);
    let big = 1u64 << 53;
    let cases: [(&str, Option<String>, usize); 5] = [
        ("garbage", Some("bytes x-y/z".into()), 2000),
        (
            "overflow",
            Some(format!(
                "bytes {}-{}/{}",
                big + 2001,
                big + 3000,
                big + 10_001
            )),
            2000,
        ),
        ("inverted", Some("bytes 3000-2000/10000".into()), 2000),
        ("missing", None, 2000),
        ("wrong_start", Some("bytes 1000-2999/10000".into()), 1000),
    ];
    for (kind, want_cr, first) in cases {
        let target = format!("/files/bcr.bin?size=10000&bad_content_range={kind}");
        let r = get(s.addr, &target, &["Range: bytes=2000-2999"]);
        assert_eq!(r.status, 206, "{kind}");
        assert_eq!(r.header("content-range"), want_cr.as_deref(), "{kind}");
        assert_eq!(r.body, full[first..3000], "{kind}");
        assert_eq!(
            r.header("content-length"),
            Some((3000 - first).to_string().as_str()),
            "{kind}"
        );
        // A request without Range is answered normally.
        let plain = get(s.addr, &target, &[]);
        assert_eq!((plain.status, plain.body.len()), (200, 10_000), "{kind}");
    }
    let lines = log_entries(s.addr, "/files/bcr.bin");
    assert_eq!(lines.len(), 10);
    for (i, line) in lines.iter().enumerate() {
        let want = if i % 2 == 0 {
            "\"bad_content_range\""
        } else {
            "null"
        };
        assert_eq!(fault_of(line), want, "{line}");
    }
    assert_eq!(
        get(s.addr, "/files/bcr.bin?size=1&bad_content_range=nope", &[]).status,
        400
    );
}

/// Byte `i` of the file with `seed` by the documented formula, computed
/// apart from `fill`: `block(i / 8)[i % 8]`.
fn formula_byte(seed: u64, i: u64) -> u8 {
    splitmix64(seed ^ (i / 8)).to_le_bytes()[(i % 8) as usize]
}

#[test]
fn overlong_sends_more_than_the_range() {
    let s = start();
    let seed = files::seed(b"ol.bin", 10_000);
    let target = "/files/ol.bin?size=10000&overlong=5000";
    let mut c = Client::connect(s.addr);
    // Inside the file: the body goes on with the file's own bytes.
    let r = c.request("GET", target, &["Range: bytes=2000-2999"]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 2000-2999/10000"));
    assert_eq!(r.header("content-length"), Some("6000"));
    assert_eq!(r.body.len(), 6000);
    assert_eq!(r.body, expected_at("ol.bin", 10_000, 2000, 6000));
    // Up to the end: the extra bytes go past it, by the same formula.
    let r = c.request("GET", target, &["Range: bytes=9000-"]);
    assert_eq!(r.header("content-range"), Some("bytes 9000-9999/10000"));
    assert_eq!(r.header("content-length"), Some("6000"));
    assert_eq!(r.body[..1000], expected("ol.bin", 10_000)[9000..]);
    let extra: Vec<u8> = (10_000..15_000).map(|i| formula_byte(seed, i)).collect();
    assert_eq!(r.body[1000..], extra[..]);
    // Content-Length agreed with the body: the connection is still in step.
    let plain = c.request("GET", target, &[]);
    assert_eq!(plain.status, 200, "a 200 is untouched");
    assert_eq!(plain.header("content-length"), Some("10000"));
    assert_eq!(plain.body, expected("ol.bin", 10_000));
    let last = c.request("GET", target, &["Range: bytes=-10"]);
    assert_eq!(last.header("content-range"), Some("bytes 9990-9999/10000"));
    assert_eq!(last.body, expected_at("ol.bin", 10_000, 9990, 5010));
    // HEAD gets the head a GET would.
    let head = c.request("HEAD", target, &["Range: bytes=0-99"]);
    assert_eq!(head.header("content-length"), Some("5100"));
    // A 416 and overlong=0 are not changed.
    let past = c.request("GET", target, &["Range: bytes=10000-"]);
    assert_eq!((past.status, past.body.len()), (416, 0));
    let zero = c.request(
        "GET",
        "/files/ol.bin?size=10000&overlong=0",
        &["Range: bytes=0-9"],
    );
    assert_eq!(zero.body, expected("ol.bin", 10_000)[..10]);
    let faults: Vec<String> = log_entries(s.addr, "/files/ol.bin")
        .iter()
        .map(|l| fault_of(l).to_string())
        .collect();
    let ol = "\"overlong\"";
    assert_eq!(faults, [ol, ol, "null", ol, ol, "null", "null"]);
    let lines = log_entries(s.addr, "/files/ol.bin");
    assert_eq!(json_field(&lines[1], "bytes_sent"), "6000");
    assert_eq!(json_field(&lines[1], "complete"), "true");
}

#[test]
fn overlong_combines_with_other_switches() {
    let s = start();
    let name = "olc.bin";
    let want = expected_at(name, 100_000, 99_000, 1000 + 65_536);
    // Parsed like reset (64K), throttled by rate.
    let began = std::time::Instant::now();
    let r = get(
        s.addr,
        "/files/olc.bin?size=100000&overlong=64K&rate=1M",
        &["Range: bytes=99000-"],
    );
    assert!(began.elapsed() >= Duration::from_millis(40), "throttled");
    assert_eq!(r.header("content-length"), Some("66536"));
    assert_eq!(r.body, want);
    // reset counts the extra bytes as body.
    let mut c = Client::connect(s.addr);
    c.send_raw(
        b"GET /files/olc.bin?size=100000&overlong=64K&reset=30000 HTTP/1.1\r\n\
          Range: bytes=99000-\r\n\r\n",
    );
    assert_eq!(c.read_head().header("content-length"), Some("66536"));
    assert_eq!(c.read_to_close(), want[..30_000]);
    // stall likewise.
    let mut c = Client::connect(s.addr);
    c.send_raw(
        b"GET /files/olc.bin?size=100000&overlong=64K&stall=2000 HTTP/1.1\r\n\
          Range: bytes=99000-\r\n\r\n",
    );
    assert_eq!(c.read_head().status, 206);
    assert_eq!(c.read_some(2000), want[..2000]);
    assert!(c.poll_byte(Duration::from_millis(200)).is_err(), "stalled");
    // chunked: the same bytes, framed by chunks.
    let mut c = Client::connect(s.addr);
    let r = c.request(
        "GET",
        "/files/olc.bin?size=100000&overlong=64K&chunked=1",
        &["Range: bytes=99000-"],
    );
    assert_eq!(r.header("content-range"), Some("bytes 99000-99999/100000"));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.body, want);
    // fault_times: the first 206 is overlong, the next is not.
    let target = "/files/olc.bin?size=100000&overlong=64K&fault_times=1";
    let first = c.request("GET", target, &["Range: bytes=99000-"]);
    assert_eq!(first.body.len(), 66_536);
    let second = c.request("GET", target, &["Range: bytes=99000-"]);
    assert_eq!(second.header("content-length"), Some("1000"));
    assert_eq!(second.body, want[..1000]);
    let faults: Vec<String> = log_entries(s.addr, "/files/olc.bin")
        .iter()
        .map(|l| fault_of(l).to_string())
        .collect();
    assert_eq!(
        faults,
        [
            "\"overlong\"",
            "\"overlong+reset\"",
            "\"overlong+stall\"",
            "\"overlong+chunked\"",
            "\"overlong\"",
            "null"
        ]
    );
    // Bad values name the parameter.
    for bad in [
        "overlong=lots",
        "overlong=-1",
        "overlong=1&bad_content_range=missing",
    ] {
        let r = get(s.addr, &format!("/files/olc.bin?size=10&{bad}"), &[]);
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.text().starts_with("invalid overlong: "), "{}", r.text());
    }
}

#[test]
fn chunked_frames_the_answer_and_keeps_the_connection() {
    let s = start();
    let size = 200_000;
    let target = "/files/ch.bin?size=200000&chunked=1";
    let all = expected("ch.bin", size);
    let plain = get(s.addr, "/files/ch.bin?size=200000", &[]);
    let mut c = Client::connect(s.addr);
    let r = c.request("GET", target, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.header("content-length"), None);
    for h in ["etag", "last-modified", "accept-ranges"] {
        assert!(r.header(h).is_some(), "{h}");
        assert_eq!(r.header(h), plain.header(h), "{h}");
    }
    assert_eq!(r.body, all);
    // A 206 keeps its Content-Range.
    let r = c.request("GET", target, &["Range: bytes=1000-1999"]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 1000-1999/200000"));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.body, all[1000..2000]);
    // HEAD: no Content-Length either, and no body.
    let head = c.request("HEAD", target, &[]);
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    assert_eq!(head.header("content-length"), None);
    // A 416 is not a file answer: it keeps its Content-Length.
    let past = c.request("GET", target, &["Range: bytes=200000-"]);
    assert_eq!(past.status, 416);
    assert_eq!(past.header("content-length"), Some("0"));
    assert_eq!(past.header("transfer-encoding"), None);
    // Throttled: more, smaller chunks, the same bytes.
    let slow = c.request("GET", "/files/ch.bin?size=200000&chunked=1&rate=4M", &[]);
    assert_eq!(slow.body, all);
    // The connection is still in step for a plain request.
    let next = c.request("GET", "/files/ch.bin?size=10", &[]);
    assert_eq!(next.body, expected("ch.bin", 10));
    let lines = log_entries(s.addr, "/files/ch.bin");
    let faults: Vec<&str> = lines.iter().map(|l| fault_of(l)).collect();
    let ch = "\"chunked\"";
    assert_eq!(faults, ["null", ch, ch, ch, "null", ch, "null"]);
    // bytes_sent counts the data, not the framing.
    assert_eq!(json_field(&lines[1], "bytes_sent"), "200000");
    assert_eq!(json_field(&lines[1], "complete"), "true");
    assert_eq!(json_field(&lines[2], "bytes_sent"), "1000");
    let conns: Vec<&str> = lines[1..].iter().map(|l| json_field(l, "conn")).collect();
    assert!(conns.iter().all(|c| *c == conns[0]), "one connection");

    // The wire bytes, exactly: one chunk, then the last chunk.
    let mut c = Client::connect(s.addr);
    c.send_raw(b"GET /files/ch.bin?size=10&chunked=1 HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(c.read_head().header("transfer-encoding"), Some("chunked"));
    let mut want = b"a\r\n".to_vec();
    want.extend_from_slice(&expected("ch.bin", 10));
    want.extend_from_slice(b"\r\n0\r\n\r\n");
    assert_eq!(c.read_to_close(), want);
    // An empty file: only the last chunk.
    let mut c = Client::connect(s.addr);
    c.send_raw(b"GET /files/ch.bin?size=0&chunked=1 HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(c.read_head().status, 200);
    assert_eq!(c.read_to_close(), b"0\r\n\r\n");
    // A reset leaves out the last chunk: the client sees a cut body.
    let mut c = Client::connect(s.addr);
    c.send_raw(b"GET /files/ch.bin?size=200000&chunked=1&reset=70000 HTTP/1.1\r\n\r\n");
    assert_eq!(c.read_head().header("content-length"), None);
    assert_eq!(dechunk(&c.read_to_close()), (all[..70_000].to_vec(), false));

    for bad in ["chunked=2", "chunked=", "chunked=yes"] {
        let r = get(s.addr, &format!("/files/ch.bin?size=10&{bad}"), &[]);
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.text().starts_with("invalid chunked: "), "{}", r.text());
    }
}

#[test]
fn end_early_ends_a_chunked_body_cleanly() {
    let s = start();
    let size = 100 * 1024;
    let all = expected("ee.bin", size);
    let target = "/files/ee.bin?size=100K&chunked=1&end_early=10000";
    let mut c = Client::connect(s.addr);
    let r = c.request("GET", target, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.body, all[..10_000], "a well-framed, short body");
    // The connection serves the next request.
    let next = c.request("GET", "/files/ee.bin?size=10", &[]);
    assert_eq!(next.body, expected("ee.bin", 10));
    // A body not longer than end_early is whole (chunked, not cut).
    let short = c.request("GET", target, &["Range: bytes=95000-"]);
    assert_eq!(short.status, 206);
    assert_eq!(short.body, all[95_000..]);
    // HEAD has no body to end.
    let head = c.request("HEAD", target, &[]);
    assert_eq!(head.header("content-length"), None);
    // end_early=0: the last chunk at once.
    let mut c0 = Client::connect(s.addr);
    c0.send_raw(
        b"GET /files/ee.bin?size=100K&chunked=1&end_early=0 HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(c0.read_head().status, 200);
    assert_eq!(c0.read_to_close(), b"0\r\n\r\n");
    let lines = log_entries(s.addr, "/files/ee.bin");
    let faults: Vec<&str> = lines.iter().map(|l| fault_of(l)).collect();
    let ee = "\"chunked+end_early\"";
    assert_eq!(faults, [ee, "null", "\"chunked\"", "\"chunked\"", ee]);
    assert_eq!(json_field(&lines[0], "bytes_sent"), "10000");
    assert_eq!(json_field(&lines[0], "complete"), "false");
    assert_ne!(json_field(&lines[0], "end_ms"), "null");
    assert_eq!(json_field(&lines[2], "complete"), "true");

    // fault_times=1: the first answer ends early, the resume is a plain 206.
    let target = "/files/ee2.bin?size=100K&chunked=1&end_early=30000&fault_times=1";
    let all = expected("ee2.bin", size);
    let mut c = Client::connect(s.addr);
    let first = c.request("GET", target, &[]);
    assert_eq!(first.body.len(), 30_000);
    let etag = first.header("etag").unwrap_or_default().to_string();
    let rest = c.request(
        "GET",
        target,
        &["Range: bytes=30000-", &format!("If-Range: {etag}")],
    );
    assert_eq!(rest.status, 206);
    assert_eq!(
        rest.header("content-range"),
        Some("bytes 30000-102399/102400")
    );
    assert_eq!(rest.header("content-length"), Some("72400"));
    assert_eq!(rest.header("transfer-encoding"), None);
    let mut whole = first.body;
    whole.extend_from_slice(&rest.body);
    assert_eq!(whole, all);
    let faults: Vec<String> = log_entries(s.addr, "/files/ee2.bin")
        .iter()
        .map(|l| fault_of(l).to_string())
        .collect();
    assert_eq!(faults, [ee, "null"]);

    for bad in [
        "end_early=10",
        "chunked=0&end_early=10",
        "chunked=1&end_early=ten",
        "chunked=1&end_early=10&reset=5",
        "chunked=1&end_early=10&stall=5",
    ] {
        let r = get(s.addr, &format!("/files/ee.bin?size=10&{bad}"), &[]);
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.text().starts_with("invalid end_early: "), "{}", r.text());
    }
}

#[test]
fn status_and_retry_after() {
    let s = start();
    let mut c = Client::connect(s.addr);
    let r = c.request("GET", "/files/st.bin?size=1K&status=503", &[]);
    assert_eq!((r.status, r.body.len()), (503, 0));
    assert_eq!(r.header("content-length"), Some("0"));
    assert_eq!(r.header("retry-after"), None);
    // The connection stays usable.
    let ok = c.request("GET", "/files/st.bin?size=10", &[]);
    assert_eq!(ok.body, expected("st.bin", 10));

    let ra = |value: &str| -> Response {
        get(
            s.addr,
            &format!("/files/st.bin?size=1K&status=429&retry_after={value}"),
            &[],
        )
    };
    assert_eq!(ra("2").header("retry-after"), Some("2"));
    assert_eq!(ra("soon").header("retry-after"), Some("soon"));
    let date = ra("Wed,%2021%20Oct%202015%2007:28:00%20GMT");
    assert_eq!(date.status, 429);
    assert_eq!(
        date.header("retry-after"),
        Some("Wed, 21 Oct 2015 07:28:00 GMT")
    );
    let future = ra("date:60");
    let when = future
        .header("retry-after")
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .and_then(|t| t.duration_since(SystemTime::now()).ok())
        .unwrap_or_default();
    assert!(
        (Duration::from_secs(55)..=Duration::from_secs(61)).contains(&when),
        "{when:?}"
    );
    let head = Client::connect(s.addr).request("HEAD", "/files/st.bin?size=1K&status=500", &[]);
    assert_eq!(head.status, 500);

    for bad in [
        "status=99",
        "status=x",
        "retry_after=2",
        "status=503&retry_after=date:x",
    ] {
        let r = get(s.addr, &format!("/files/st.bin?size=1&{bad}"), &[]);
        assert_eq!(r.status, 400, "{bad}");
        let name = bad.rsplit('&').next().and_then(|p| p.split('=').next());
        assert!(
            r.text().contains(name.unwrap_or("?")),
            "{bad}: {}",
            r.text()
        );
    }
    let lines = log_entries(s.addr, "/files/st.bin");
    assert_eq!(fault_of(&lines[0]), "\"status\"");
    assert_eq!(json_field(&lines[0], "status"), "503");
    assert_eq!(fault_of(&lines[1]), "null");
}

#[test]
fn redirect_chain_ends_in_the_file() {
    let s = start();
    let mut c = Client::connect(s.addr);
    let mut target = "/files/rd.bin?size=100&redirect=2&x=%2F".to_string();
    let mut statuses = Vec::new();
    let body = loop {
        let r = c.request("GET", &target, &[]);
        statuses.push(r.status);
        if r.status != 302 {
            break r.body;
        }
        assert_eq!(r.header("content-length"), Some("0"));
        target = r.header("location").unwrap_or_default().to_string();
        assert!(statuses.len() < 5, "endless redirects");
    };
    assert_eq!(statuses, [302, 302, 200]);
    assert_eq!(target, "/files/rd.bin?size=100&redirect=0&x=%2F");
    assert_eq!(body, expected("rd.bin", 100));
    let faults: Vec<String> = log_entries(s.addr, "/files/rd.bin")
        .iter()
        .map(|l| fault_of(l).to_string())
        .collect();
    assert_eq!(faults, ["\"redirect\"", "\"redirect\"", "null"]);
}

#[test]
fn fail_rate_is_reproducible() {
    let query = "size=10&fail_rate=0.5&seed=7";
    let key = format!("/files/fr.bin?{query}");
    let want: Vec<u16> = (0..20)
        .map(|i| {
            if faults::fails(&key, 7, i, 0.5) {
                503
            } else {
                200
            }
        })
        .collect();
    assert!(want.contains(&503) && want.contains(&200), "{want:?}");
    for _ in 0..2 {
        // A fresh server gives the same sequence.
        let s = start();
        let mut c = Client::connect(s.addr);
        let got: Vec<u16> = (0..20)
            .map(|_| c.request("GET", &key, &[]).status)
            .collect();
        assert_eq!(got, want);
        let faulted = log_entries(s.addr, "/files/fr.bin")
            .iter()
            .filter(|l| fault_of(l) == "\"fail_rate\"")
            .count();
        assert_eq!(faulted, want.iter().filter(|s| **s == 503).count());
    }
    let s = start();
    let other_seed: Vec<u16> = (0..20)
        .map(|_| get(s.addr, "/files/fr.bin?size=10&fail_rate=0.5&seed=8", &[]).status)
        .collect();
    assert_ne!(other_seed, want);
    let r = get(
        s.addr,
        "/files/fr.bin?size=10&fail_rate=1&retry_after=1",
        &[],
    );
    assert_eq!((r.status, r.header("retry-after")), (503, Some("1")));
}

#[test]
fn fault_times_fails_first_then_succeeds() {
    let s = start();
    let target = "/files/ft.bin?size=1K&status=500&fault_times=1";
    assert_eq!(get(s.addr, target, &[]).status, 500);
    let second = get(s.addr, target, &[]);
    assert_eq!(second.status, 200);
    assert_eq!(second.body, expected("ft.bin", 1024));

    // The typical resume test: the first download is cut, the retry with a
    // Range gets the rest.
    let target = "/files/ft2.bin?size=100K&reset=30000&fault_times=1";
    let mut c = Client::connect(s.addr);
    c.send_raw(format!("GET {target} HTTP/1.1\r\n\r\n").as_bytes());
    let etag = c.read_head().header("etag").map(str::to_string);
    let first = c.read_to_close();
    assert_eq!(first.len(), 30_000);
    let rest = get(
        s.addr,
        target,
        &[
            "Range: bytes=30000-",
            &format!("If-Range: {}", etag.unwrap_or_default()),
        ],
    );
    assert_eq!(rest.status, 206);
    let mut whole = first;
    whole.extend_from_slice(&rest.body);
    assert_eq!(whole, expected("ft2.bin", 102_400));
    let lines = log_entries(s.addr, "/files/ft2.bin");
    assert_eq!(fault_of(&lines[0]), "\"reset\"");
    assert_eq!(fault_of(&lines[1]), "null");
}

#[test]
fn cors_origin_shares_state_and_both_can_hide_exposed_headers() {
    let s = start_with_cors();
    let cors = s.cors.unwrap_or(s.addr);
    assert_ne!(cors, s.addr);

    let normal = get(
        cors,
        "/files/co.bin?size=10",
        &["Origin: http://other.test"],
    );
    assert_eq!(normal.body, expected("co.bin", 10));
    assert_eq!(normal.header("access-control-allow-origin"), Some("*"));
    assert!(normal
        .header("access-control-expose-headers")
        .is_some_and(|h| h.contains("ETag")));

    let hidden = get(cors, "/files/co.bin?size=10&expose=0", &[]);
    assert_eq!(hidden.body, expected("co.bin", 10));
    assert_eq!(hidden.header("access-control-allow-origin"), Some("*"));
    assert_eq!(hidden.header("access-control-expose-headers"), None);
    assert!(hidden.header("etag").is_some());
    let shown = get(cors, "/files/co.bin?size=10&expose=1", &[]);
    assert!(shown.header("access-control-expose-headers").is_some());
    assert_eq!(
        get(cors, "/files/co.bin?size=10&expose=no", &[]).status,
        400
    );
    // Static files too.
    let page = get(cors, "/?expose=0", &[]);
    assert!(page.text().contains("<title>home</title>"));
    assert_eq!(page.header("access-control-expose-headers"), None);

    // The main origin is cross-origin to test pages too: `expose` works
    // the same there.
    let main = get(s.addr, "/files/co.bin?size=10&expose=0", &[]);
    assert_eq!(main.body, expected("co.bin", 10));
    assert_eq!(main.header("access-control-allow-origin"), Some("*"));
    assert_eq!(main.header("access-control-expose-headers"), None);
    let bad = get(s.addr, "/files/co3.bin?size=10&expose=2", &[]);
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("invalid expose"), "{}", bad.text());
    assert!(bad.header("access-control-expose-headers").is_some());
    let main_page = get(s.addr, "/?expose=0", &[]);
    assert!(main_page.text().contains("<title>home</title>"));
    assert_eq!(main_page.header("access-control-expose-headers"), None);

    // One log for both origins.
    assert_eq!(log_entries(s.addr, "/files/co.bin").len(), 5);
    assert_eq!(log_entries(cors, "/files/co.bin").len(), 5);
    // One set of fault counters.
    let target = "/files/co2.bin?size=10&status=503&fault_times=1";
    assert_eq!(get(s.addr, target, &[]).status, 503);
    assert_eq!(get(cors, target, &[]).status, 200);
}

/// Names of the `Access-Control-*` headers of a response.
fn cors_headers(r: &Response) -> Vec<&str> {
    r.headers
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| n.to_ascii_lowercase().starts_with("access-control-"))
        .collect()
}

#[test]
fn cors_0_sends_no_cors_headers_on_either_origin() {
    let s = start_with_cors();
    let cors = s.cors.unwrap_or(s.addr);
    for addr in [s.addr, cors] {
        let r = get(
            addr,
            "/files/nc.bin?size=10&cors=0",
            &["Origin: http://other.test"],
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.body, expected("nc.bin", 10));
        assert!(r.header("etag").is_some());
        assert_eq!(cors_headers(&r), Vec::<&str>::new(), "{r:?}");
        // `cors=0` wins over `expose`.
        let r = get(addr, "/files/nc.bin?size=10&expose=1&cors=0", &[]);
        assert_eq!(cors_headers(&r), Vec::<&str>::new(), "{r:?}");
        // Any route: static files, 404s, the sink, faults.
        let page = get(addr, "/?cors=0", &[]);
        assert!(page.text().contains("<title>home</title>"));
        assert_eq!(cors_headers(&page), Vec::<&str>::new());
        assert_eq!(
            cors_headers(&get(addr, "/nope?cors=0", &[])),
            Vec::<&str>::new()
        );
        let put = upload(addr, "PUT", "/sink/nc?cors=0", b"abc");
        assert_eq!(put.status, 201);
        assert_eq!(cors_headers(&put), Vec::<&str>::new());
        let failed = get(addr, "/files/nc.bin?size=10&status=503&cors=0", &[]);
        assert_eq!(failed.status, 503);
        assert_eq!(cors_headers(&failed), Vec::<&str>::new());

        // A preflight with `cors=0` gets its 204 without any of them.
        let pre = Client::connect(addr).request(
            "OPTIONS",
            "/files/nc.bin?size=10&cors=0",
            &[
                "Origin: http://other.test",
                "Access-Control-Request-Method: GET",
                "Access-Control-Request-Headers: range",
            ],
        );
        assert_eq!(pre.status, 204);
        assert_eq!(cors_headers(&pre), Vec::<&str>::new(), "{pre:?}");

        // `cors=1` is the default.
        let on = get(addr, "/files/nc.bin?size=10&cors=1", &[]);
        assert_eq!(on.header("access-control-allow-origin"), Some("*"));
        assert!(on.header("access-control-expose-headers").is_some());
        // Another value is a 400 that names the parameter.
        for bad in ["2", "", "no", "%zz"] {
            let r = get(addr, &format!("/files/nc.bin?size=10&cors={bad}"), &[]);
            assert_eq!(r.status, 400, "cors={bad}");
            assert!(r.text().starts_with("invalid cors: "), "{}", r.text());
        }
        let r = get(addr, "/?cors=yes", &[]);
        assert_eq!(
            (r.status, r.text().as_str()),
            (400, "invalid cors: 0 or 1\n")
        );
    }
    // Still logged as usual, preflights too, from both origins.
    let lines = log_entries(s.addr, "/files/nc.bin");
    assert_eq!(lines.len(), 2 * 9, "{lines:?}");
    assert_eq!(json_field(&lines[0], "query"), r#""size=10&cors=0""#);
    assert_eq!(json_field(&lines[0], "status"), "200");
    assert_eq!(json_field(&lines[0], "bytes_sent"), "10");
    assert_eq!(json_field(&lines[0], "complete"), "true");
    assert_eq!(json_field(&lines[2], "fault"), r#""status""#);
    assert_eq!(json_field(&lines[3], "method"), r#""OPTIONS""#);
    assert_eq!(json_field(&lines[3], "status"), "204");
    assert_eq!(json_field(&lines[5], "status"), "400");
    assert_eq!(json_field(&lines[9], "query"), r#""size=10&cors=0""#);
    assert_ne!(json_field(&lines[0], "conn"), json_field(&lines[9], "conn"));
}

/// `PUT`/`POST` with a body; returns the response.
fn upload(addr: SocketAddr, method: &str, target: &str, body: &[u8]) -> Response {
    let mut c = Client::connect(addr);
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.send_raw(head.as_bytes());
    c.send_raw(body);
    c.read_response(false)
}

#[test]
fn sink_stores_and_returns_uploads() {
    let s = start();
    let r = upload(s.addr, "PUT", "/sink/hello.txt", b"hello world");
    assert_eq!(r.status, 201);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.text().trim_end(),
        r#"{"name":"hello.txt","bytes":11,"sha256":"b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"}"#
    );
    let back = get(s.addr, "/sink/hello.txt", &[]);
    assert_eq!(
        (back.status, back.body.as_slice()),
        (200, &b"hello world"[..])
    );

    // POST replaces; a bigger body arrives intact.
    let big = expected("sink-big", 3 << 20);
    let r = upload(s.addr, "POST", "/sink/hello.txt", &big);
    assert_eq!(r.status, 201);
    assert!(r.text().contains(&format!("\"bytes\":{}", 3 << 20)));
    assert!(r
        .text()
        .contains(&longhaul_devserver::sink::sha256_hex(&big)));
    assert_eq!(get(s.addr, "/sink/hello.txt", &[]).body, big);

    // Several uploads and an empty one on one connection.
    let mut c = Client::connect(s.addr);
    c.send_raw(b"PUT /sink/a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcPUT /sink/b HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(c.read_response(false).status, 201);
    let empty = c.read_response(false);
    assert!(empty.text().contains("\"bytes\":0"), "{}", empty.text());
    assert_eq!(c.request("GET", "/sink/a", &[]).body, b"abc");

    let del = Client::connect(s.addr).request("DELETE", "/sink/a", &[]);
    assert_eq!(del.status, 204);
    assert_eq!(get(s.addr, "/sink/a", &[]).status, 404);
    assert_eq!(
        Client::connect(s.addr)
            .request("DELETE", "/sink/a", &[])
            .status,
        404
    );
    assert_eq!(get(s.addr, "/sink/never", &[]).status, 404);
    let patch = Client::connect(s.addr).request("PATCH", "/sink/a", &[]);
    assert_eq!(patch.status, 405);
    let no_name = upload(s.addr, "PUT", "/sink/", b"x");
    assert_eq!(no_name.status, 404);
}

#[test]
fn sink_needs_content_length() {
    let s = start();
    let mut c = Client::connect(s.addr);
    let r = c.request("POST", "/sink/nolen", &[]);
    assert_eq!(r.status, 411);
    // Still in sync afterwards.
    assert_eq!(c.request("GET", "/sink/nolen", &[]).status, 404);
    let mut c = Client::connect(s.addr);
    c.send_raw(
        b"PUT /sink/chunked HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!(c.read_response(false).status, 411);
    assert!(c.is_closed());
    let huge =
        Client::connect(s.addr).request("PUT", "/sink/huge", &["Content-Length: 2147483649"]);
    assert_eq!(huge.status, 413);
}

#[test]
fn sink_faults() {
    let s = start();
    let body = expected("up", 64 * 1024);
    // reset: the connection drops mid-body, nothing is stored, no answer.
    let target = "/sink/up?reset=1000&fault_times=1";
    let mut c = Client::connect(s.addr);
    c.send_raw(
        format!(
            "PUT {target} HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    c.send_raw(&body[..2000]);
    assert!(c.read_to_close().is_empty(), "no response");
    assert_eq!(get(s.addr, "/sink/up", &[]).status, 404);
    let line = &log_entries(s.addr, "/sink/up")[0];
    assert_eq!(json_field(line, "status"), "0");
    assert_eq!(fault_of(line), "\"reset\"");
    // fault_times=1 is used up: the retry is stored.
    let r = upload(s.addr, "PUT", target, &body);
    assert_eq!(r.status, 201);
    assert_eq!(get(s.addr, "/sink/up", &[]).body, body);

    // status (with Retry-After): the body is read and dropped.
    let mut c = Client::connect(s.addr);
    c.send_raw(b"PUT /sink/st?status=503&retry_after=3 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
    let r = c.read_response(false);
    assert_eq!((r.status, r.header("retry-after")), (503, Some("3")));
    assert_eq!(c.request("GET", "/sink/st", &[]).status, 404);
    let bad = upload(s.addr, "PUT", "/sink/st?reset=lots", b"x");
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("reset"));
}

#[test]
fn binary_prints_the_cors_origin_second() {
    let s = start();
    let mut child = Command::new(env!("CARGO_BIN_EXE_devserver"))
        .args(["--root", "www", "--pkg", "pkg", "--cors-port", "0"])
        .current_dir(&s.dir)
        .env("PORT", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start devserver binary");
    let mut lines = [String::new(), String::new()];
    if let Some(out) = child.stdout.take() {
        let mut out = std::io::BufReader::new(out);
        for line in &mut lines {
            out.read_line(line).expect("ready line");
        }
    }
    let port = |line: &str, prefix: &str| -> Option<u16> {
        line.trim_end()
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix('/'))
            .and_then(|p| p.parse().ok())
    };
    let main = port(&lines[0], "longhaul devserver: http://127.0.0.1:");
    let cors = port(
        &lines[1],
        "longhaul devserver cors origin: http://127.0.0.1:",
    );
    let results = main.zip(cors).map(|(m, c)| {
        let addr = |p| SocketAddr::from(([127, 0, 0, 1], p));
        (
            get(addr(m), "/pkg/x.d.ts", &[]).text(),
            get(addr(c), "/pkg/x.d.ts?expose=0", &[]),
        )
    });
    let _ = child.kill();
    let _ = child.wait();
    let (main_text, cors_resp) = results.unwrap_or_else(|| panic!("bad ready lines {lines:?}"));
    assert_ne!(main, cors);
    assert_eq!(main_text, "export {};");
    assert_eq!(cors_resp.text(), "export {};");
    assert_eq!(cors_resp.header("access-control-expose-headers"), None);
}
