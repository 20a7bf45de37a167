//! Fault switches: query parameters that make `/files/<name>` (and uploads
//! to `/sink/<name>`) misbehave on purpose, so tests can see how a client
//! copes with resets, stalls, changed files, bad headers and errors.
//!
//! This module holds the parts that do no I/O, so they can be unit tested:
//!
//! * parsing and validating the switches ([`FileFaults`], [`SinkFaults`]);
//!   a bad value is an `Err` with a short message naming the parameter;
//! * the per-key counters ([`FaultState`], [`KeyState`]): a *key* is the
//!   request path plus its whole query string, so every distinct URL has
//!   its own counters;
//! * the request-level decisions ([`KeyState::begin`]): whether
//!   `fault_times` is used up, redirects, `status`, and the seeded
//!   `fail_rate` draw;
//! * the small replies those decisions produce.
//!
//! What a switch does to a file answer (ranges, overlong bodies, chunked
//! framing, resets, stalls, early ends) is decided in [`crate::files`], and
//! carried out on the socket by [`crate::reply::send`] and the connection
//! loop.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::files::{fnv1a64, parse_amount, splitmix64};
use crate::http::{decode_query_part, Request};
use crate::reply::Reply;

/// Longest a `stall` keeps a connection open.
pub const STALL_LIMIT: Duration = Duration::from_secs(600);
/// How far before the requested start `bad_content_range=wrong_start` goes.
pub const WRONG_START_SHIFT: u64 = 1000;
/// 2^53: JavaScript numbers are exact only below this.
pub const JS_SAFE_LIMIT: u64 = 1 << 53;
/// Keys whose counters are kept; past this the counters are all dropped
/// (a fresh start) before a new key is added.
pub const MAX_KEYS: usize = 100_000;

/// A query parameter, percent-decoded. `Ok(None)` when absent; `Err` (a
/// message naming it) when present but not decodable.
pub fn param(req: &Request, key: &str) -> Result<Option<String>, String> {
    let Some(query) = req.query.as_deref() else {
        return Ok(None);
    };
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if decode_query_part(k).as_deref() == Some(key) {
            return decode_query_part(v)
                .map(Some)
                .ok_or_else(|| format!("invalid {key}: bad percent-encoding"));
        }
    }
    Ok(None)
}

/// The key fault counters are kept under: path (as sent) `?` query.
pub fn key(req: &Request) -> String {
    format!("{}?{}", req.path, req.query.as_deref().unwrap_or(""))
}

/// A byte count such as `64K` (see [`parse_amount`]).
fn amount(req: &Request, key: &str) -> Result<Option<u64>, String> {
    match param(req, key)? {
        None => Ok(None),
        Some(v) => parse_amount(&v)
            .map(Some)
            .ok_or_else(|| format!("invalid {key}: a byte count is needed, e.g. {key}=64K")),
    }
}

/// A plain decimal number.
fn number<T: FromStr>(req: &Request, key: &str, what: &str) -> Result<Option<T>, String> {
    match param(req, key)? {
        None => Ok(None),
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("invalid {key}: {what}")),
        Some(_) => Err(format!("invalid {key}: {what}")),
    }
}

/// `status=<200..599>`.
fn status(req: &Request) -> Result<Option<u16>, String> {
    const WHAT: &str = "a status code from 200 to 599 is needed";
    match number::<u16>(req, "status", WHAT)? {
        Some(code) if !(200..=599).contains(&code) => Err(format!("invalid status: {WHAT}")),
        other => Ok(other),
    }
}

/// `0` or `1`.
fn flag(req: &Request, key: &str) -> Result<bool, String> {
    match param(req, key)?.as_deref() {
        None | Some("0") => Ok(false),
        Some("1") => Ok(true),
        Some(_) => Err(format!("invalid {key}: 0 or 1")),
    }
}

/// The `Retry-After` value to send with `status` or `fail_rate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryAfter {
    /// Sent as given (`2`, an HTTP date, or garbage such as `soon`).
    Verbatim(String),
    /// `date:<seconds>`: an HTTP date that many seconds after the answer.
    DateIn(u64),
}

impl RetryAfter {
    /// Parses the `retry_after` parameter value.
    pub fn parse(v: &str) -> Result<Self, String> {
        if let Some(secs) = v.strip_prefix("date:") {
            return secs
                .parse::<u64>()
                .ok()
                .filter(|s| *s <= 100 * 365 * 86_400)
                .map(RetryAfter::DateIn)
                .ok_or_else(|| {
                    "invalid retry_after: date:<seconds> needs a number of seconds".into()
                });
        }
        if v.chars().any(|c| c.is_control() && c != '\t') {
            return Err("invalid retry_after: control characters are not allowed".into());
        }
        Ok(RetryAfter::Verbatim(v.to_string()))
    }

    /// The header value, for an answer sent at `now`.
    pub fn value(&self, now: SystemTime) -> String {
        match self {
            RetryAfter::Verbatim(v) => v.clone(),
            RetryAfter::DateIn(secs) => httpdate::fmt_http_date(now + Duration::from_secs(*secs)),
        }
    }
}

fn retry_after(req: &Request) -> Result<Option<RetryAfter>, String> {
    param(req, "retry_after")?
        .map(|v| RetryAfter::parse(&v))
        .transpose()
}

/// How `bad_content_range` breaks a 206 answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadContentRange {
    /// `Content-Range: bytes x-y/z`.
    Garbage,
    /// Every number above 2^53.
    Overflow,
    /// The last position below the first.
    Inverted,
    /// No `Content-Range` at all.
    Missing,
    /// A valid range (and matching body) that starts 1000 bytes early.
    WrongStart,
}

impl BadContentRange {
    pub const ALL: [BadContentRange; 5] = [
        BadContentRange::Garbage,
        BadContentRange::Overflow,
        BadContentRange::Inverted,
        BadContentRange::Missing,
        BadContentRange::WrongStart,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BadContentRange::Garbage => "garbage",
            BadContentRange::Overflow => "overflow",
            BadContentRange::Inverted => "inverted",
            BadContentRange::Missing => "missing",
            BadContentRange::WrongStart => "wrong_start",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// The fault switches of one `/files/` request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileFaults {
    /// `reset=<bytes>`: close the connection after this many body bytes.
    pub reset: Option<u64>,
    /// `stall=<bytes>`: stop sending after this many body bytes.
    pub stall: Option<u64>,
    /// `ignore_range=1`: answer a Range request with 200 and everything.
    pub ignore_range: bool,
    /// `etag=rotate`: a new version of the file for every request.
    pub rotate: bool,
    /// `grow=<bytes>`: each new version is this much longer.
    pub grow: u64,
    /// `bad_content_range=<kind>`.
    pub bad_content_range: Option<BadContentRange>,
    /// `overlong=<bytes>`: a 206 body carries this many bytes past the
    /// range's last byte (and its `Content-Length` counts them).
    pub overlong: Option<u64>,
    /// `chunked=1`: a 200 or 206 goes out with `Transfer-Encoding: chunked`
    /// and no `Content-Length`.
    pub chunked: bool,
    /// `end_early=<bytes>` (with `chunked` only): the chunked body ends
    /// cleanly after this many body bytes.
    pub end_early: Option<u64>,
    /// `status=<code>`: answer this instead of the file.
    pub status: Option<u16>,
    /// `retry_after=<value>` (with `status` or `fail_rate`).
    pub retry_after: Option<RetryAfter>,
    /// `redirect=<n>`: 302 to the same URL with `redirect=n-1`.
    pub redirect: Option<u32>,
    /// `fail_rate=<0..1>`: this fraction of requests answer 503.
    pub fail_rate: Option<f64>,
    /// `seed=<u64>` for `fail_rate`.
    pub seed: u64,
    /// `fault_times=<n>`: only the first n faulted responses per key.
    pub fault_times: Option<u64>,
}

impl FileFaults {
    /// Reads the switches from the query string.
    pub fn parse(req: &Request) -> Result<Self, String> {
        let reset = amount(req, "reset")?;
        let stall = amount(req, "stall")?;
        if reset.is_some() && stall.is_some() {
            return Err("invalid stall: reset and stall cannot be combined".into());
        }
        let rotate = match param(req, "etag")?.as_deref() {
            None => false,
            Some("rotate") => true,
            Some(_) => return Err("invalid etag: only etag=rotate is known".into()),
        };
        let grow = amount(req, "grow")?;
        if grow.is_some() && !rotate {
            return Err("invalid grow: it needs etag=rotate".into());
        }
        let bad_content_range = match param(req, "bad_content_range")? {
            None => None,
            Some(kind) => Some(BadContentRange::parse(&kind).ok_or(
                "invalid bad_content_range: garbage, overflow, inverted, missing or wrong_start",
            )?),
        };
        let overlong = amount(req, "overlong")?;
        if overlong.is_some() && bad_content_range.is_some() {
            return Err("invalid overlong: it cannot be combined with bad_content_range".into());
        }
        let chunked = flag(req, "chunked")?;
        let end_early = amount(req, "end_early")?;
        if end_early.is_some() && !chunked {
            return Err("invalid end_early: it needs chunked=1".into());
        }
        if end_early.is_some() && (reset.is_some() || stall.is_some()) {
            return Err("invalid end_early: it cannot be combined with reset or stall".into());
        }
        let fail_rate = match param(req, "fail_rate")? {
            None => None,
            Some(v) => match v.parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => Some(r),
                _ => return Err("invalid fail_rate: a number from 0 to 1 is needed".into()),
            },
        };
        let seed = number::<u64>(req, "seed", "an unsigned 64-bit number is needed")?;
        if seed.is_some() && fail_rate.is_none() {
            return Err("invalid seed: it needs fail_rate".into());
        }
        let status = status(req)?;
        let retry_after = retry_after(req)?;
        if retry_after.is_some() && status.is_none() && fail_rate.is_none() {
            return Err("invalid retry_after: it needs status or fail_rate".into());
        }
        Ok(FileFaults {
            reset,
            stall,
            ignore_range: flag(req, "ignore_range")?,
            rotate,
            grow: grow.unwrap_or(0),
            bad_content_range,
            overlong,
            chunked,
            end_early,
            status,
            retry_after,
            redirect: number(req, "redirect", "a number of redirects is needed")?,
            fail_rate,
            seed: seed.unwrap_or(0),
            fault_times: number(req, "fault_times", "a number of responses is needed")?,
        })
    }

    /// Whether any switch is on (`fault_times` alone is not a switch).
    pub fn any(&self) -> bool {
        self.reset.is_some()
            || self.stall.is_some()
            || self.ignore_range
            || self.rotate
            || self.bad_content_range.is_some()
            || self.overlong.is_some()
            || self.chunked
            || self.status.is_some()
            || self.redirect.is_some()
            || self.fail_rate.is_some()
    }
}

/// The fault switches of one upload to `/sink/`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SinkFaults {
    /// `reset=<bytes>`: read this much of the body, then drop the
    /// connection without storing anything.
    pub reset: Option<u64>,
    pub status: Option<u16>,
    pub retry_after: Option<RetryAfter>,
    pub fault_times: Option<u64>,
}

impl SinkFaults {
    pub fn parse(req: &Request) -> Result<Self, String> {
        let status = status(req)?;
        let retry_after = retry_after(req)?;
        if retry_after.is_some() && status.is_none() {
            return Err("invalid retry_after: it needs status".into());
        }
        Ok(SinkFaults {
            reset: amount(req, "reset")?,
            status,
            retry_after,
            fault_times: number(req, "fault_times", "a number of responses is needed")?,
        })
    }

    pub fn any(&self) -> bool {
        self.reset.is_some() || self.status.is_some()
    }
}

/// What a request-level decision says to do with a `/files/` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `fault_times` is used up: serve the file as if no switch was given.
    Clean,
    /// Answer 302 to the same URL with `redirect=n-1`.
    Redirect(u32),
    /// Answer this status with an empty body.
    Status(u16),
    /// The `fail_rate` draw failed: answer 503.
    Fail,
    /// Serve the file (version `Some(v)` with `etag=rotate`), applying the
    /// body switches that fit the request.
    Serve { version: Option<u64> },
}

/// What to do with an upload to `/sink/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkStep {
    Clean,
    Status(u16),
    /// Read this many body bytes, then drop the connection.
    Reset(u64),
}

/// Counters of one key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyState {
    /// Requests seen (the index of the next `fail_rate` draw).
    pub requests: u64,
    /// Responses a fault was applied to (compared with `fault_times`).
    pub faulted: u64,
    /// Versions handed out by `etag=rotate`.
    pub rotations: u64,
}

impl KeyState {
    fn used_up(&self, fault_times: Option<u64>) -> bool {
        fault_times.is_some_and(|n| self.faulted >= n)
    }

    /// Counts a `/files/` request and takes the request-level decision.
    /// The caller then calls [`KeyState::finish`] with whether a fault was
    /// applied in the end.
    pub fn begin(&mut self, f: &FileFaults, key: &str) -> Step {
        let index = self.requests;
        self.requests += 1;
        if self.used_up(f.fault_times) {
            return Step::Clean;
        }
        if let Some(n) = f.redirect.filter(|n| *n > 0) {
            return Step::Redirect(n);
        }
        if let Some(code) = f.status {
            return Step::Status(code);
        }
        if let Some(rate) = f.fail_rate {
            if fails(key, f.seed, index, rate) {
                return Step::Fail;
            }
        }
        let version = f.rotate.then(|| {
            self.rotations += 1;
            self.rotations
        });
        Step::Serve { version }
    }

    /// Records whether the response had a fault applied.
    pub fn finish(&mut self, faulted: bool) {
        if faulted {
            self.faulted += 1;
        }
    }

    /// Counts an upload of `body_len` bytes and decides its fault (which
    /// is then counted).
    pub fn begin_sink(&mut self, f: &SinkFaults, body_len: u64) -> SinkStep {
        self.requests += 1;
        if self.used_up(f.fault_times) {
            return SinkStep::Clean;
        }
        let step = match (f.status, f.reset) {
            (Some(code), _) => SinkStep::Status(code),
            (None, Some(n)) if n < body_len => SinkStep::Reset(n),
            _ => SinkStep::Clean,
        };
        self.finish(step != SinkStep::Clean);
        step
    }
}

/// Whether request number `index` (0, 1, …) for `key` fails under
/// `fail_rate=rate&seed=seed`: a uniform draw in [0, 1) from
/// `splitmix64(splitmix64(fnv1a64(key) ^ seed) ^ index)`, compared with
/// `rate`. The same key, seed and index always give the same answer.
pub fn fails(key: &str, seed: u64, index: u64, rate: f64) -> bool {
    let h = splitmix64(splitmix64(fnv1a64(key.as_bytes()) ^ seed) ^ index);
    let draw = (h >> 11) as f64 / JS_SAFE_LIMIT as f64;
    draw < rate
}

/// Fault counters of every key, shared by both origins.
#[derive(Debug, Default)]
pub struct FaultState {
    keys: Mutex<HashMap<String, KeyState>>,
}

impl FaultState {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, KeyState>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the counters of `key`, holding the lock, so concurrent
    /// requests for one key are decided one after the other.
    pub fn with_key<R>(&self, key: &str, f: impl FnOnce(&mut KeyState) -> R) -> R {
        let mut keys = self.lock();
        if keys.len() >= MAX_KEYS && !keys.contains_key(key) {
            keys.clear();
        }
        f(keys.entry(key.to_string()).or_default())
    }

    /// A copy of the counters of `key`.
    pub fn get(&self, key: &str) -> Option<KeyState> {
        self.lock().get(key).cloned()
    }
}

/// An empty answer with `status` (and `Retry-After` if asked for).
pub fn status_reply(status: u16, retry_after: Option<&RetryAfter>) -> Reply {
    let reply = Reply::new(status).header("Cache-Control", "no-store");
    match retry_after {
        Some(ra) => reply.header("Retry-After", ra.value(SystemTime::now())),
        None => reply,
    }
}

/// The target of `redirect=n`: the same path and query, with the first
/// `redirect` parameter replaced by `redirect=n-1`; all other parameters
/// are kept as sent.
pub fn redirect_location(path: &str, query: &str, n: u32) -> String {
    let mut replaced = false;
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| {
            let k = pair.split_once('=').map_or(pair, |(k, _)| k);
            if !replaced && decode_query_part(k).as_deref() == Some("redirect") {
                replaced = true;
                format!("redirect={}", n.saturating_sub(1))
            } else {
                pair.to_string()
            }
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

/// `302 Found` to the next hop of a `redirect=n` chain.
pub fn redirect_reply(req: &Request, n: u32) -> Reply {
    let location = redirect_location(&req.path, req.query.as_deref().unwrap_or(""), n);
    Reply::new(302)
        .header("Location", location)
        .header("Cache-Control", "no-store")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse_head;

    fn req(target: &str) -> Request {
        let raw = format!("GET {target} HTTP/1.1\r\n\r\n");
        match parse_head(raw.as_bytes()) {
            Ok(Some((r, _))) => r,
            other => panic!("parse failed: {other:?}"),
        }
    }

    fn faults(query: &str) -> Result<FileFaults, String> {
        FileFaults::parse(&req(&format!("/files/x?size=10&{query}")))
    }

    #[test]
    fn parses_every_switch() {
        let f = faults(
            "reset=64K&ignore_range=1&etag=rotate&grow=1K&bad_content_range=wrong_start\
             &status=503&retry_after=Wed,+21+Oct+2015+07:28:00+GMT&redirect=3\
             &fail_rate=0.25&seed=42&fault_times=2",
        );
        let want = FileFaults {
            reset: Some(65536),
            stall: None,
            ignore_range: true,
            rotate: true,
            grow: 1024,
            bad_content_range: Some(BadContentRange::WrongStart),
            overlong: None,
            chunked: false,
            end_early: None,
            status: Some(503),
            retry_after: Some(RetryAfter::Verbatim("Wed, 21 Oct 2015 07:28:00 GMT".into())),
            redirect: Some(3),
            fail_rate: Some(0.25),
            seed: 42,
            fault_times: Some(2),
        };
        assert_eq!(f, Ok(want));
        assert_eq!(faults("stall=10").map(|f| f.stall), Ok(Some(10)));
        assert_eq!(
            faults("overlong=64K&chunked=1&end_early=1k&fault_times=1").map(|f| (
                f.overlong,
                f.chunked,
                f.end_early,
                f.fault_times
            )),
            Ok((Some(65536), true, Some(1024), Some(1)))
        );
        assert_eq!(
            faults("overlong=0&ignore_range=1&chunked=0").map(|f| (f.overlong, f.chunked)),
            Ok((Some(0), false))
        );
        for q in ["overlong=1", "chunked=1", "chunked=1&end_early=0"] {
            assert!(faults(q).is_ok_and(|f| f.any()), "{q}");
        }
        for kind in BadContentRange::ALL {
            let f = faults(&format!("bad_content_range={}", kind.name()));
            assert_eq!(f.map(|f| f.bad_content_range), Ok(Some(kind)));
        }
        assert_eq!(
            faults("status=429&retry_after=date:30").map(|f| f.retry_after),
            Ok(Some(RetryAfter::DateIn(30)))
        );
        assert_eq!(
            faults("fail_rate=1").map(|f| (f.fail_rate, f.seed)),
            Ok((Some(1.0), 0))
        );
    }

    #[test]
    fn no_switch_means_nothing_changes() {
        for q in [
            "",
            "rate=1M",
            "e2e-verify=1",
            "fault_times=3",
            "ignore_range=0",
            "chunked=0",
        ] {
            let f = faults(q);
            assert!(f.as_ref().is_ok_and(|f| !f.any()), "{q}: {f:?}");
        }
        assert_eq!(faults(""), Ok(FileFaults::default()));
    }

    #[test]
    fn bad_values_name_the_parameter() {
        let table = [
            ("reset=", "reset"),
            ("reset=-1", "reset"),
            ("reset=1x", "reset"),
            ("reset=%zz", "reset"),
            ("stall=abc", "stall"),
            ("reset=1&stall=2", "stall"),
            ("ignore_range=yes", "ignore_range"),
            ("etag=strong", "etag"),
            ("grow=1K", "grow"),
            ("etag=rotate&grow=big", "grow"),
            ("bad_content_range=weird", "bad_content_range"),
            ("overlong=", "overlong"),
            ("overlong=-5", "overlong"),
            ("overlong=1.5K", "overlong"),
            ("overlong=1&bad_content_range=garbage", "overlong"),
            ("chunked=yes", "chunked"),
            ("chunked=", "chunked"),
            ("end_early=10", "end_early"),
            ("chunked=0&end_early=10", "end_early"),
            ("chunked=1&end_early=x", "end_early"),
            ("chunked=1&end_early=10&reset=5", "end_early"),
            ("chunked=1&end_early=10&stall=5", "end_early"),
            ("status=99", "status"),
            ("status=600", "status"),
            ("status=abc", "status"),
            ("status=+200", "status"),
            ("status=70000", "status"),
            ("retry_after=2", "retry_after"),
            ("status=503&retry_after=date:soon", "retry_after"),
            ("status=503&retry_after=a%0Db", "retry_after"),
            ("redirect=-1", "redirect"),
            ("redirect=x", "redirect"),
            ("redirect=99999999999", "redirect"),
            ("fail_rate=1.5", "fail_rate"),
            ("fail_rate=-0.1", "fail_rate"),
            ("fail_rate=NaN", "fail_rate"),
            ("fail_rate=", "fail_rate"),
            ("seed=3", "seed"),
            ("fail_rate=0.5&seed=-3", "seed"),
            ("fail_rate=0.5&seed=18446744073709551616", "seed"),
            ("status=500&fault_times=x", "fault_times"),
        ];
        for (query, name) in table {
            match faults(query) {
                Err(msg) => assert!(
                    msg.starts_with(&format!("invalid {name}:")),
                    "{query}: {msg}"
                ),
                Ok(f) => panic!("{query} was accepted: {f:?}"),
            }
        }
    }

    #[test]
    fn sink_switches() {
        let p = |q: &str| SinkFaults::parse(&req(&format!("/sink/a?{q}")));
        assert_eq!(
            p("reset=1K&fault_times=1"),
            Ok(SinkFaults {
                reset: Some(1024),
                status: None,
                retry_after: None,
                fault_times: Some(1),
            })
        );
        assert!(p("status=507&retry_after=soon").is_ok_and(|f| f.any()));
        assert!(p("").is_ok_and(|f| !f.any()));
        assert!(p("reset=x").is_err_and(|m| m.starts_with("invalid reset")));
        assert!(p("retry_after=1").is_err_and(|m| m.starts_with("invalid retry_after")));
    }

    #[test]
    fn retry_after_values() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        assert_eq!(
            RetryAfter::parse("soon").map(|r| r.value(now)).as_deref(),
            Ok("soon")
        );
        assert_eq!(
            RetryAfter::parse("date:90")
                .map(|r| r.value(now))
                .as_deref(),
            Ok("Thu, 01 Jan 2026 00:01:30 GMT")
        );
        assert!(RetryAfter::parse("date:").is_err());
        assert!(RetryAfter::parse("date:99999999999999").is_err());
        assert!(RetryAfter::parse("a\nb").is_err());
        assert!(RetryAfter::parse("").is_ok());
    }

    #[test]
    fn fault_times_counts_faulted_responses_per_key() {
        let f = faults("status=500&fault_times=2").unwrap_or_default();
        let mut ks = KeyState::default();
        for want in [
            Step::Status(500),
            Step::Status(500),
            Step::Clean,
            Step::Clean,
        ] {
            let step = ks.begin(&f, "k");
            assert_eq!(step, want);
            ks.finish(step != Step::Clean);
        }
        assert_eq!((ks.requests, ks.faulted), (4, 2));

        // Without fault_times, every request is faulted.
        let f = faults("status=500").unwrap_or_default();
        let mut ks = KeyState::default();
        for _ in 0..5 {
            assert_eq!(ks.begin(&f, "k"), Step::Status(500));
            ks.finish(true);
        }

        // A response the switch did not change is not counted: only
        // finish(true) uses up fault_times.
        let f = faults("reset=10&fault_times=1").unwrap_or_default();
        let mut ks = KeyState::default();
        assert_eq!(ks.begin(&f, "k"), Step::Serve { version: None });
        ks.finish(false);
        assert_eq!(ks.begin(&f, "k"), Step::Serve { version: None });
        ks.finish(true);
        assert_eq!(ks.begin(&f, "k"), Step::Clean);

        // Keys are counted apart, and by the whole query string.
        let state = FaultState::default();
        let f = faults("status=503&fault_times=1").unwrap_or_default();
        let a = key(&req("/files/a?size=1&status=503&fault_times=1"));
        let b = key(&req("/files/a?size=2&status=503&fault_times=1"));
        assert_ne!(a, b);
        for k in [&a, &b] {
            let step = state.with_key(k, |ks| {
                let s = ks.begin(&f, k);
                ks.finish(s != Step::Clean);
                s
            });
            assert_eq!(step, Step::Status(503));
        }
        assert_eq!(state.get(&a).map(|s| s.faulted), Some(1));
        assert_eq!(state.with_key(&a, |ks| ks.begin(&f, &a)), Step::Clean);
    }

    #[test]
    fn sink_decisions() {
        let mut ks = KeyState::default();
        let f = SinkFaults {
            reset: Some(100),
            fault_times: Some(1),
            ..SinkFaults::default()
        };
        // A body no longer than the reset point is stored, not counted.
        assert_eq!(ks.begin_sink(&f, 100), SinkStep::Clean);
        assert_eq!(ks.begin_sink(&f, 101), SinkStep::Reset(100));
        assert_eq!(ks.begin_sink(&f, 101), SinkStep::Clean);
        assert_eq!((ks.requests, ks.faulted), (3, 1));
        let f = SinkFaults {
            reset: Some(1),
            status: Some(503),
            ..SinkFaults::default()
        };
        assert_eq!(
            KeyState::default().begin_sink(&f, 50),
            SinkStep::Status(503)
        );
    }

    #[test]
    fn precedence_redirect_status_fail_rate() {
        let mut ks = KeyState::default();
        let all = faults("redirect=2&status=500&fail_rate=1").unwrap_or_default();
        assert_eq!(ks.begin(&all, "k"), Step::Redirect(2));
        let last_hop = faults("redirect=0&status=500&fail_rate=1").unwrap_or_default();
        assert_eq!(ks.begin(&last_hop, "k"), Step::Status(500));
        let fail = faults("redirect=0&fail_rate=1").unwrap_or_default();
        assert_eq!(ks.begin(&fail, "k"), Step::Fail);
    }

    #[test]
    fn fail_rate_is_deterministic_per_key_and_seed() {
        let run = |key: &str, seed: u64, rate: f64| -> Vec<bool> {
            let f = FileFaults {
                fail_rate: Some(rate),
                seed,
                ..FileFaults::default()
            };
            let mut ks = KeyState::default();
            (0..200).map(|_| ks.begin(&f, key) == Step::Fail).collect()
        };
        let a = run("/files/x?size=1&fail_rate=0.3&seed=7", 7, 0.3);
        assert_eq!(a, run("/files/x?size=1&fail_rate=0.3&seed=7", 7, 0.3));
        assert_ne!(a, run("/files/x?size=1&fail_rate=0.3&seed=7", 8, 0.3));
        assert_ne!(a, run("/files/y?size=1&fail_rate=0.3&seed=7", 7, 0.3));
        assert!(run("k", 1, 0.0).iter().all(|f| !f));
        assert!(run("k", 1, 1.0).iter().all(|f| *f));
        // The fraction is close to the rate.
        let failed = (0..10_000).filter(|i| fails("k", 5, *i, 0.3)).count();
        assert!((2_700..3_300).contains(&failed), "{failed}");
        // The documented formula.
        let h = splitmix64(splitmix64(fnv1a64(b"k") ^ 5) ^ 9);
        let draw = (h >> 11) as f64 / (1u64 << 53) as f64;
        assert_eq!(fails("k", 5, 9, 0.5), draw < 0.5);
    }

    #[test]
    fn rotation_counts_versions() {
        let f = faults("etag=rotate&fault_times=2").unwrap_or_default();
        let mut ks = KeyState::default();
        assert_eq!(ks.begin(&f, "k"), Step::Serve { version: Some(1) });
        ks.finish(true);
        assert_eq!(ks.begin(&f, "k"), Step::Serve { version: Some(2) });
        ks.finish(true);
        assert_eq!(ks.begin(&f, "k"), Step::Clean);
    }

    #[test]
    fn redirect_keeps_other_parameters() {
        assert_eq!(
            redirect_location("/files/a%20b", "size=1K&redirect=3&x=%2F&redirect=9", 3),
            "/files/a%20b?size=1K&redirect=2&x=%2F&redirect=9"
        );
        assert_eq!(redirect_location("/f", "redirect=1", 1), "/f?redirect=0");
        let r = redirect_reply(&req("/files/q?redirect=2&size=5"), 2);
        assert_eq!(r.status, 302);
        assert!(r
            .headers
            .iter()
            .any(|(n, v)| *n == "Location" && v == "/files/q?redirect=1&size=5"));
    }

    #[test]
    fn params_are_decoded_strictly() {
        let r = req("/files/x?a=1&b=%zz&c+d=e+f&reset");
        assert_eq!(param(&r, "a"), Ok(Some("1".into())));
        assert!(param(&r, "b").is_err());
        assert_eq!(param(&r, "c d"), Ok(Some("e f".into())));
        assert_eq!(param(&r, "reset"), Ok(Some(String::new())));
        assert_eq!(param(&r, "zz"), Ok(None));
    }
}
