//! Generated files: `GET /files/<name>?size=<n>[&rate=<r>][&latency=<ms>]`.
//!
//! The content is a pure function of `(name, size, offset)`, so any byte
//! range can be produced on demand without storing anything:
//!
//! * `seed = fnv1a64(name) ^ size`
//! * block `k` (8 bytes) = `splitmix64(seed ^ k)`, little-endian
//! * byte `i` = `block(i / 8)[i % 8]`
//!
//! Tests can recompute any slice with [`fill`]. This module also holds the
//! pure decision logic for `Range` and `If-Range`, and for what the fault
//! switches do to a file answer ([`bad_content_range`], [`overlong_extra`],
//! [`body_cut`]), kept free of I/O so it can be unit tested as tables.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::faults::{self, BadContentRange, FaultState, FileFaults, Step};
use crate::http::{percent_decode, Request};
use crate::reply::{Body, Cut, Reply};

/// `Last-Modified` of every generated file: 2026-01-01 00:00:00 GMT.
pub const LAST_MODIFIED_UNIX: u64 = 1_767_225_600;

/// The fixed modification time of generated files.
pub fn last_modified() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(LAST_MODIFIED_UNIX)
}

/// FNV-1a, 64-bit.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// SplitMix64 finaliser.
#[inline(always)]
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Seed of the file called `name` with `size` bytes.
pub fn seed(name: &[u8], size: u64) -> u64 {
    fnv1a64(name) ^ size
}

/// Strong entity tag (with quotes) of a generated file.
pub fn etag(seed: u64, size: u64) -> String {
    format!("\"{seed:016x}-{size}\"")
}

/// Size of version `version` (1, 2, …) of a file rotated by `etag=rotate`
/// with `grow=<grow>`: `size + grow * (version - 1)`. `None` on overflow.
pub fn version_size(size: u64, grow: u64, version: u64) -> Option<u64> {
    grow.checked_mul(version.saturating_sub(1))
        .and_then(|extra| size.checked_add(extra))
}

/// Seed of version `version` (1, 2, …) of a rotated file whose size is now
/// `size`: `seed(name, size) ^ splitmix64(version)`, so every version has
/// other bytes, even at an unchanged size.
pub fn version_seed(name: &[u8], size: u64, version: u64) -> u64 {
    seed(name, size) ^ splitmix64(version)
}

/// Strong entity tag of version `version` of a rotated file.
pub fn version_etag(seed: u64, size: u64, version: u64) -> String {
    format!("\"{seed:016x}-{size}-r{version}\"")
}

/// Block `k` of the file with `seed`, as bytes.
#[inline(always)]
fn block(seed: u64, k: u64) -> [u8; 8] {
    splitmix64(seed ^ k).to_le_bytes()
}

/// Fills `buf` with the file's bytes starting at `offset`.
pub fn fill(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut i = 0;
    let mut pos = offset;
    let skew = (pos % 8) as usize;
    if skew != 0 && !buf.is_empty() {
        let b = block(seed, pos / 8);
        let n = (8 - skew).min(buf.len());
        buf[..n].copy_from_slice(&b[skew..skew + n]);
        i = n;
        pos += n as u64;
    }
    let mut k = pos / 8;
    let mut chunks = buf[i..].chunks_exact_mut(8);
    for c in &mut chunks {
        // Assigning a whole array (not copy_from_slice) keeps this loop
        // fast even at the workspace's opt-level "z".
        if let Ok(c) = <&mut [u8; 8]>::try_from(c) {
            *c = block(seed, k);
        }
        k += 1;
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let n = rest.len();
        rest.copy_from_slice(&block(seed, k)[..n]);
    }
}

/// Parses a byte count or rate: plain digits, or digits followed by
/// `K`/`M`/`G` or `KiB`/`MiB`/`GiB` (binary, any case).
pub fn parse_amount(s: &str) -> Option<u64> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, suffix) = s.split_at(split);
    if digits.is_empty() {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let mult: u64 = match suffix.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// What to do with a `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeDecision {
    /// Ignore it and send the whole file (absent, malformed, multi-range).
    Full,
    /// Send bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// Answer 416.
    Unsatisfiable,
}

/// Interprets a `Range` header value against a file of `size` bytes.
pub fn parse_range(header: &str, size: u64) -> RangeDecision {
    let header = header.trim();
    let Some((unit, spec)) = header.split_once('=') else {
        return RangeDecision::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return RangeDecision::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeDecision::Full;
    };
    match (digits(first), digits(last)) {
        // bytes=-n: the last n bytes.
        (None, Some(n)) if first.is_empty() => {
            if n == 0 || size == 0 {
                RangeDecision::Unsatisfiable
            } else {
                RangeDecision::Partial {
                    start: size - n.min(size),
                    end: size - 1,
                }
            }
        }
        // bytes=a-
        (Some(a), None) if last.is_empty() => open_range(a, u64::MAX, size),
        // bytes=a-b
        (Some(a), Some(b)) if a <= b => open_range(a, b, size),
        _ => RangeDecision::Full,
    }
}

fn open_range(start: u64, end: u64, size: u64) -> RangeDecision {
    if start >= size {
        RangeDecision::Unsatisfiable
    } else {
        RangeDecision::Partial {
            start,
            end: end.min(size - 1),
        }
    }
}

/// Non-empty ASCII digits, saturating at `u64::MAX` (a huge position is
/// still a valid one; it is just past the end).
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(u64::MAX))
}

/// Whether an `If-Range` value lets the `Range` header apply: it must be
/// exactly the current strong ETag, or an HTTP date equal to
/// `last_modified`. Weak tags never match.
pub fn if_range_allows(value: &str, etag: &str, last_modified: SystemTime) -> bool {
    let value = value.trim();
    if value.starts_with('"') || value.starts_with("W/") {
        return value == etag;
    }
    httpdate::parse_http_date(value).is_ok_and(|t| t == last_modified)
}

/// Longest `latency` a request may ask for.
pub const LATENCY_LIMIT_MS: u64 = 10_000;

/// Wait out `latency=<ms>`, if the request asks for one, as a link's round trip
/// would delay the head (the connection's thread sleeps; each request, each Range
/// window, waits anew); `Err` (a 400) if the value is invalid.
fn wait_latency(req: &Request) -> Result<(), Reply> {
    let Some(v) = req.query_param("latency") else {
        return Ok(());
    };
    match v.parse::<u64>() {
        Ok(ms) if ms <= LATENCY_LIMIT_MS => {
            std::thread::sleep(Duration::from_millis(ms));
            Ok(())
        }
        _ => Err(Reply::text(
            400,
            "invalid latency (milliseconds before the head, 0 to 10000)\n",
        )),
    }
}

/// Name, size and rate of a `/files/` request, or the 4xx answer; its `latency`, if
/// any, is waited out here, before either handler answers.
fn file_params(req: &Request, raw_name: &str) -> Result<(Vec<u8>, u64, Option<u64>), Reply> {
    let name = match percent_decode(raw_name) {
        Some(n) if !n.is_empty() => n,
        _ => {
            return Err(Reply::text(
                404,
                "not found: a file name is needed after /files/\n",
            ))
        }
    };
    let Some(size) = req.query_param("size").as_deref().and_then(parse_amount) else {
        return Err(Reply::text(
            400,
            "missing or invalid size (e.g. size=1048576 or size=10M)\n",
        ));
    };
    let rate = match req.query_param("rate") {
        None => None,
        Some(r) => match parse_amount(&r) {
            Some(r) if r > 0 => Some(r),
            _ => {
                return Err(Reply::text(
                    400,
                    "invalid rate (bytes per second, e.g. rate=2M)\n",
                ))
            }
        },
    };
    wait_latency(req)?;
    Ok((name, size, rate))
}

/// Handles `GET`/`HEAD /files/<name>`; `raw_name` is still percent-encoded.
/// Fault switches are not looked at (see [`handle_with_faults`]).
pub fn handle(req: &Request, raw_name: &str) -> Reply {
    match file_params(req, raw_name) {
        Ok((name, size, rate)) => serve(req, &name, size, rate, None, &FileFaults::default()).0,
        Err(reply) => reply,
    }
}

/// Handles `GET`/`HEAD /files/<name>` with the fault switches of its query
/// string, counting them in `state`. Without any switch the answer is the
/// same as [`handle`]'s.
pub fn handle_with_faults(req: &Request, raw_name: &str, state: &FaultState) -> Reply {
    let (name, size, rate) = match file_params(req, raw_name) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    let f = match FileFaults::parse(req) {
        Ok(f) => f,
        Err(msg) => return Reply::text(400, &format!("{msg}\n")),
    };
    if !f.any() {
        return serve(req, &name, size, rate, None, &f).0;
    }
    let key = faults::key(req);
    state.with_key(&key, |ks| {
        let (reply, applied) = match ks.begin(&f, &key) {
            Step::Clean => serve(req, &name, size, rate, None, &FileFaults::default()),
            Step::Redirect(n) => (faults::redirect_reply(req, n), vec!["redirect"]),
            Step::Status(code) => (
                faults::status_reply(code, f.retry_after.as_ref()),
                vec!["status"],
            ),
            Step::Fail => (
                faults::status_reply(503, f.retry_after.as_ref()),
                vec!["fail_rate"],
            ),
            Step::Serve { version } => serve(req, &name, size, rate, version, &f),
        };
        ks.finish(!applied.is_empty());
        if applied.is_empty() {
            reply
        } else {
            reply.faulted(applied.join("+"))
        }
    })
}

/// Builds the answer for the file `name` of `size` bytes (or its rotated
/// `version`), applying the body switches of `f` that fit this request.
/// Returns the reply and the names of the switches applied.
fn serve(
    req: &Request,
    name: &[u8],
    size: u64,
    rate: Option<u64>,
    version: Option<u64>,
    f: &FileFaults,
) -> (Reply, Vec<&'static str>) {
    let mut applied = Vec::new();
    let (size, seed, tag) = match version {
        None => {
            let seed = seed(name, size);
            (size, seed, etag(seed, size))
        }
        Some(v) => {
            let Some(size) = version_size(size, f.grow, v) else {
                let msg = "invalid grow: the size of the next version overflows\n";
                return (Reply::text(400, msg), applied);
            };
            let seed = version_seed(name, size, v);
            applied.push("etag");
            (size, seed, version_etag(seed, size, v))
        }
    };
    let modified = last_modified();
    let mut decision = match req.header("range") {
        Some(_) if req.header_count("range") > 1 => RangeDecision::Full,
        Some(range) => match req.header("if-range") {
            Some(ir) if !if_range_allows(ir, &tag, modified) => RangeDecision::Full,
            _ => parse_range(range, size),
        },
        None => RangeDecision::Full,
    };
    if f.ignore_range && decision != RangeDecision::Full {
        decision = RangeDecision::Full;
        applied.push("ignore_range");
    }
    let base = |status| {
        Reply::new(status)
            .header("ETag", tag.clone())
            .header("Last-Modified", httpdate::fmt_http_date(modified))
            .header("Accept-Ranges", "bytes")
            .header("Cache-Control", "no-store")
    };
    let body = |start, len| Body::Generated {
        seed,
        start,
        len,
        rate,
    };
    // `len` is the body's length: the range's, or more with `overlong`.
    let partial = |start: u64, len: u64, content_range: Option<String>| {
        let reply = base(206).header("Content-Type", "application/octet-stream");
        let reply = match content_range {
            Some(cr) => reply.header("Content-Range", cr),
            None => reply,
        };
        reply.body(body(start, len))
    };
    let mut reply = match decision {
        RangeDecision::Full => base(200)
            .header("Content-Type", "application/octet-stream")
            .body(body(0, size)),
        RangeDecision::Partial { start, end } => {
            match bad_content_range(f.bad_content_range, start, end, size) {
                Some((start, content_range)) => {
                    applied.push("bad_content_range");
                    partial(start, end - start + 1, content_range)
                }
                None => {
                    let extra = overlong_extra(f.overlong, end);
                    if extra > 0 {
                        applied.push("overlong");
                    }
                    let content_range = format!("bytes {start}-{end}/{size}");
                    partial(start, end - start + 1 + extra, Some(content_range))
                }
            }
        }
        RangeDecision::Unsatisfiable => {
            base(416).header("Content-Range", format!("bytes */{size}"))
        }
    };
    if f.chunked && matches!(reply.status, 200 | 206) {
        reply.chunked = true;
        applied.push("chunked");
    }
    if req.method != "HEAD" {
        if let Some((cut, name)) = body_cut(f, reply.body.byte_len()) {
            reply.cut = Some(cut);
            applied.push(name);
        }
    }
    (reply, applied)
}

/// How many bytes `overlong=<extra>` adds after the last byte `end` of a
/// 206 body: `extra`, but never past byte `u64::MAX - 1` (so positions and
/// the `Content-Length` still fit in a `u64`). 0 without the switch.
pub fn overlong_extra(extra: Option<u64>, end: u64) -> u64 {
    extra.map_or(0, |n| n.min((u64::MAX - 1).saturating_sub(end)))
}

/// Where `reset`, `stall` or `end_early` cut a body of `len` bytes, and the
/// switch's name; `None` when no cut is asked for or the body is not longer
/// than the cut point. (`HEAD` answers have no body to cut: not called.)
pub fn body_cut(f: &FileFaults, len: u64) -> Option<(Cut, &'static str)> {
    let fits = |n: &u64| *n < len;
    if let Some(n) = f.reset.filter(fits) {
        Some((Cut::Reset(n), "reset"))
    } else if let Some(n) = f.stall.filter(fits) {
        Some((Cut::Stall(n), "stall"))
    } else {
        f.end_early
            .filter(|n| f.chunked && fits(n))
            .map(|n| (Cut::EndEarly(n), "end_early"))
    }
}

/// For a 206 of `start..=end` of a `size`-byte file under
/// `bad_content_range=kind`: the first byte actually sent and the
/// `Content-Range` value (`None`: no header). `None` overall when the kind
/// does not apply (no switch, or `wrong_start` at position 0).
pub fn bad_content_range(
    kind: Option<BadContentRange>,
    start: u64,
    end: u64,
    size: u64,
) -> Option<(u64, Option<String>)> {
    let over = |n: u64| n.saturating_add(faults::JS_SAFE_LIMIT + 1);
    let header = match kind? {
        BadContentRange::Garbage => "bytes x-y/z".to_string(),
        BadContentRange::Overflow => {
            format!("bytes {}-{}/{}", over(start), over(end), over(size))
        }
        BadContentRange::Inverted => format!("bytes {}-{start}/{size}", end.saturating_add(1)),
        BadContentRange::Missing => return Some((start, None)),
        BadContentRange::WrongStart => {
            if start == 0 {
                return None;
            }
            let early = start.saturating_sub(faults::WRONG_START_SHIFT);
            return Some((early, Some(format!("bytes {early}-{end}/{size}"))));
        }
    };
    Some((start, Some(header)))
}

#[cfg(test)]
mod tests {
    use super::RangeDecision::{Full, Partial, Unsatisfiable};
    use super::*;

    #[test]
    fn amounts() {
        let table: &[(&str, Option<u64>)] = &[
            ("0", Some(0)),
            ("1234", Some(1234)),
            ("1K", Some(1024)),
            ("1k", Some(1024)),
            ("2KiB", Some(2048)),
            ("2kib", Some(2048)),
            ("10M", Some(10 << 20)),
            ("3MiB", Some(3 << 20)),
            ("1G", Some(1 << 30)),
            ("4gib", Some(4 << 30)),
            ("", None),
            ("K", None),
            ("-1", None),
            ("1.5M", None),
            ("1KB", None),
            ("1 K", None),
            ("12x", None),
            ("18446744073709551616", None),
            ("17179869184G", None),
        ];
        for (input, want) in table {
            assert_eq!(parse_amount(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn ranges() {
        let p = |start, end| Partial { start, end };
        let table: &[(&str, u64, RangeDecision)] = &[
            ("bytes=0-0", 1000, p(0, 0)),
            ("bytes=100-199", 1000, p(100, 199)),
            ("bytes=100-", 1000, p(100, 999)),
            ("bytes=-100", 1000, p(900, 999)),
            ("bytes=-5000", 1000, p(0, 999)),
            ("bytes=900-5000", 1000, p(900, 999)),
            ("bytes=0-99999999999999999999999", 1000, p(0, 999)),
            ("Bytes = 5-6", 1000, p(5, 6)),
            ("bytes=999-", 1000, p(999, 999)),
            ("bytes=1000-", 1000, Unsatisfiable),
            ("bytes=1000-2000", 1000, Unsatisfiable),
            ("bytes=99999999999999999999999-", 1000, Unsatisfiable),
            ("bytes=-0", 1000, Unsatisfiable),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=-10", 0, Unsatisfiable),
            ("bytes=200-100", 1000, Full),
            ("bytes=0-1,5-6", 1000, Full),
            ("bytes=0-1,", 1000, Full),
            ("bytes=", 1000, Full),
            ("bytes=-", 1000, Full),
            ("bytes=a-b", 1000, Full),
            ("bytes=+1-2", 1000, Full),
            ("bytes=1-2-3", 1000, Full),
            ("items=0-1", 1000, Full),
            ("0-1", 1000, Full),
            ("", 1000, Full),
        ];
        for (header, size, want) in table {
            assert_eq!(parse_range(header, *size), *want, "{header:?} size {size}");
        }
    }

    #[test]
    fn if_range() {
        let tag = etag(seed(b"a", 10), 10);
        let lm = last_modified();
        assert!(if_range_allows(&tag, &tag, lm));
        assert!(if_range_allows(&format!(" {tag} "), &tag, lm));
        assert!(!if_range_allows(&format!("W/{tag}"), &tag, lm));
        assert!(!if_range_allows("\"other\"", &tag, lm));
        assert!(!if_range_allows(tag.trim_matches('"'), &tag, lm));
        assert!(if_range_allows("Thu, 01 Jan 2026 00:00:00 GMT", &tag, lm));
        assert!(!if_range_allows("Thu, 01 Jan 2026 00:00:01 GMT", &tag, lm));
        assert!(!if_range_allows("Wed, 31 Dec 2025 23:59:59 GMT", &tag, lm));
        assert!(!if_range_allows("yesterday", &tag, lm));
        assert!(!if_range_allows("", &tag, lm));
    }

    #[test]
    fn last_modified_is_2026() {
        assert_eq!(
            httpdate::fmt_http_date(last_modified()),
            "Thu, 01 Jan 2026 00:00:00 GMT"
        );
    }

    fn whole(name: &[u8], size: u64) -> Vec<u8> {
        let mut v = vec![0; size as usize];
        fill(seed(name, size), 0, &mut v);
        v
    }

    #[test]
    fn generator_is_deterministic_and_sliceable() {
        let size = 1000;
        let all = whole(b"alpha", size);
        assert_eq!(all, whole(b"alpha", size));
        // Bytes follow the documented formula.
        let s = seed(b"alpha", size);
        for i in [0usize, 7, 8, 13, 999] {
            assert_eq!(all[i], splitmix64(s ^ (i as u64 / 8)).to_le_bytes()[i % 8]);
        }
        // Every sub-range equals the same slice of the whole.
        for (start, len) in [
            (0, 1),
            (1, 7),
            (3, 20),
            (8, 8),
            (100, 100),
            (995, 5),
            (5, 0),
        ] {
            let mut part = vec![0; len];
            fill(s, start as u64, &mut part);
            assert_eq!(part, all[start..start + len], "range {start}+{len}");
        }
    }

    #[test]
    fn different_names_and_sizes_differ() {
        assert_ne!(whole(b"alpha", 64), whole(b"beta", 64));
        assert_ne!(whole(b"alpha", 64)[..32], whole(b"alpha", 65)[..32]);
        assert_ne!(etag(seed(b"alpha", 64), 64), etag(seed(b"beta", 64), 64));
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn rotated_versions_differ_and_grow() {
        let name = b"rot.bin";
        assert_eq!(version_size(1000, 100, 1), Some(1000));
        assert_eq!(version_size(1000, 100, 3), Some(1200));
        assert_eq!(version_size(1000, 0, 9), Some(1000));
        assert_eq!(version_size(u64::MAX, 1, 2), None);
        for grow in [0u64, 100] {
            // Each version differs from the plain file and from the others.
            let mut seen_tags = vec![etag(seed(name, 1000), 1000)];
            let mut seen_bytes = vec![whole(name, 1000)];
            for v in 1..=3 {
                let size = version_size(1000, grow, v).unwrap_or(0);
                let s = version_seed(name, size, v);
                let tag = version_etag(s, size, v);
                let mut bytes = vec![0; size as usize];
                fill(s, 0, &mut bytes);
                assert_eq!(bytes.len() as u64, 1000 + grow * (v - 1));
                assert!(!seen_tags.contains(&tag), "{tag} repeats");
                // Not just longer: the common prefix differs too.
                for old in &seen_bytes {
                    let n = old.len().min(bytes.len());
                    assert_ne!(old[..n], bytes[..n], "grow {grow} v{v}");
                }
                seen_tags.push(tag);
                seen_bytes.push(bytes);
            }
        }
    }

    #[test]
    fn bad_content_range_kinds() {
        use BadContentRange::*;
        let big = 1u64 << 53;
        assert_eq!(bad_content_range(None, 5, 9, 100), None);
        assert_eq!(
            bad_content_range(Some(Garbage), 5, 9, 100),
            Some((5, Some("bytes x-y/z".into())))
        );
        assert_eq!(
            bad_content_range(Some(Overflow), 5, 9, 100),
            Some((
                5,
                Some(format!("bytes {}-{}/{}", big + 6, big + 10, big + 101))
            ))
        );
        assert_eq!(
            bad_content_range(Some(Inverted), 5, 9, 100),
            Some((5, Some("bytes 10-5/100".into())))
        );
        assert_eq!(bad_content_range(Some(Missing), 5, 9, 100), Some((5, None)));
        assert_eq!(
            bad_content_range(Some(WrongStart), 5000, 5999, 10_000),
            Some((4000, Some("bytes 4000-5999/10000".into())))
        );
        assert_eq!(
            bad_content_range(Some(WrongStart), 300, 999, 1000),
            Some((0, Some("bytes 0-999/1000".into())))
        );
        assert_eq!(bad_content_range(Some(WrongStart), 0, 9, 100), None);
    }

    #[test]
    fn overlong_extra_bytes() {
        assert_eq!(overlong_extra(None, 999), 0);
        assert_eq!(overlong_extra(Some(0), 999), 0);
        assert_eq!(overlong_extra(Some(65536), 999), 65536);
        assert_eq!(overlong_extra(Some(u64::MAX), 0), u64::MAX - 1);
        assert_eq!(overlong_extra(Some(10), u64::MAX - 5), 4);
        assert_eq!(overlong_extra(Some(10), u64::MAX - 1), 0);
        assert_eq!(overlong_extra(Some(10), u64::MAX), 0);
    }

    #[test]
    fn body_cuts() {
        let f = |reset, stall, end_early, chunked| FileFaults {
            reset,
            stall,
            end_early,
            chunked,
            ..FileFaults::default()
        };
        // The switches, the body's length, and the cut expected.
        type Case = (FileFaults, u64, Option<(Cut, &'static str)>);
        let table: &[Case] = &[
            (f(None, None, None, false), 100, None),
            (f(None, None, None, true), 100, None),
            (
                f(Some(10), None, None, false),
                100,
                Some((Cut::Reset(10), "reset")),
            ),
            (
                f(Some(0), None, None, true),
                100,
                Some((Cut::Reset(0), "reset")),
            ),
            (f(Some(100), None, None, false), 100, None),
            (
                f(None, Some(99), None, false),
                100,
                Some((Cut::Stall(99), "stall")),
            ),
            (f(None, Some(100), None, false), 100, None),
            (
                f(None, None, Some(10), true),
                100,
                Some((Cut::EndEarly(10), "end_early")),
            ),
            (
                f(None, None, Some(0), true),
                100,
                Some((Cut::EndEarly(0), "end_early")),
            ),
            (f(None, None, Some(100), true), 100, None),
            (f(None, None, Some(0), true), 0, None),
            // end_early needs chunked (parsing refuses it without).
            (f(None, None, Some(10), false), 100, None),
        ];
        for (faults, len, want) in table {
            assert_eq!(body_cut(faults, *len), *want, "{faults:?} len {len}");
        }
    }
}
