//! The HTTP resume rules (RFC 9110 §13.1.5 If-Range, §14 ranges, §15.5.17 416).
//!
//! - Resume only what provably has not changed: `If-Range` carries a strong ETag, or
//!   lacking one the Last-Modified date; with neither there is nothing to prove the
//!   stored bytes still belong to the resource, so the download starts over.
//! - A `206` must start exactly at the committed offset and carry the same complete
//!   length and validator as before; one that does not fit is never appended.
//! - A `200` answering a Range request means the whole representation follows: start
//!   over from byte 0, never append.
//! - A `416` is read through its `Content-Range: bytes */N`: if N is what is already
//!   stored, the download was complete.
//! - Weak ETags are useless for ranges. A compressed body (`Content-Encoding`) is
//!   decoded by `fetch`, so its bytes cannot be matched to ranges: such a download is
//!   not resumable and restarts from zero after an interruption.
//! - Byte counts above 2^53 (the largest integer a JavaScript number holds exactly)
//!   are rejected.
//!
//! ## A body that does not match its head
//!
//! Every body gets a limit ([`HeadDecision::Stream`]'s `limit`): the end of the
//! range a `206` declares, or a `200`'s `Content-Length`. No byte past it is ever
//! stored or counted, so `bytesReceived ≤ bytesExpected` holds at every moment.
//!
//! A `206` whose framing disagrees with its `Content-Range` (a `Content-Length` that
//! is not the range's length, or a body that runs on past the range's end) is
//! **distrusted**, not trimmed: when the body is longer than the range it claims,
//! nothing says which of its bytes are the range's (extra bytes after it, a prefix
//! before it, a range computed from the request while the body came from elsewhere
//! all look the same), so keeping "the first bytes" could store wrong bytes with
//! nothing to notice it. A distrusted answer is never appended ([`HeadDecision::Distrust`]):
//! the engine asks again from the committed offset, and a server that answers a
//! second range of the task that way is taken as one that cannot serve ranges: the
//! download starts over as one whole response (a `200`, whose length its framing
//! gives). A body with no `Content-Length` that runs past its range is only seen
//! once it does: the commit that would cross the range's end is dropped, and the
//! bytes of that answer committed before it (inside its declared range, under its
//! validator) stay; integrity metadata, where given, checks them with the rest.
//!
//! ## A body of unknown length that ends
//!
//! A `200` without `Content-Length` (chunked) that ends cleanly may still be cut
//! short (a proxy, a server that closed its stream early): nothing in the response
//! says. Where the server gave a validator and `Accept-Ranges: bytes`, the end is
//! confirmed before the task completes (`confirm_end`): the engine asks for the range
//! that starts at the end offset, with the validator as `If-Range`. A `416` with
//! `bytes */N`, N being what is stored, confirms it; a `206` from there means the
//! body was cut short, and the download goes on from there; anything else follows
//! the rules above (a `200`: start over). Without a validator or `Accept-Ranges`
//! nothing can tell a cut body from a whole one, and the task completes with what
//! arrived (README, "What it cannot promise").
//!
//! ## Windows
//!
//! A request may ask for a window of the representation (`Range: bytes=a-b`) rather
//! than all of it from its offset (`bytes=a-`, or no `Range` at all for a fresh
//! start), with the same `If-Range` as a resume; the engine chains the next window
//! where one ends ([`EngineConfig::fetch_window`](super::engine::EngineConfig); the
//! shell asks for it a little ahead, to hide its round trip). It
//! bounds what the browser can buffer of a response the worker has not read yet, and
//! so what a crash makes it fetch twice. The rules above hold per window, and:
//! - a fresh start asks for its first window without `If-Range` (nothing is stored
//!   yet); its `206` gives the validator the next windows send. Without a usable
//!   validator the windows cannot be chained: the engine asks for the rest as one
//!   response (starting over, as for any resume without a validator);
//! - a `206` may end before the total only where a window was asked, and not after
//!   the window's end;
//! - a `206` of an encoded body is never taken for a window (its range is of bytes
//!   `fetch` never shows); the engine asks again without one;
//! - a `200` means the server ignores ranges: its whole body streams, as before.
//!
//! The next window is asked for a little before the current one ends
//! ([`ask_ahead`]): its head then comes back about when the current body ends, so
//! no round trip stops the transfer at a window's edge, and a task has two requests
//! open only for about a round trip per window (what `maxConnectionsPerHost` then
//! counts loosely). Asked for a fixed amount ahead instead, a slow link would keep
//! two open for long, splitting its bandwidth, and the browser could hold the second
//! behind its own per-host connection limit until the stall timeout.

use super::error::{ErrorCode, TaskError};
use std::time::{Duration, UNIX_EPOCH};

/// Largest byte count or offset accepted: 2^53, the limit of exact JS numbers
/// ([`MAX_SAFE_INTEGER`](super::validate::MAX_SAFE_INTEGER)).
pub const MAX_SAFE: u64 = super::validate::MAX_SAFE_INTEGER;

/// Within this many bytes of a window's end, the next window is asked for whatever
/// the rate (one piece of a body may bring the end).
pub const ASK_AHEAD_MIN: u64 = 256 << 10;

/// Whether to ask for the next window now ("Windows" above): `remaining` bytes of
/// the current one are still to read, which come at `rate` bytes per ms, and a
/// request's head took `head_ms` to come back. Yes once the rest takes no longer
/// than two such round trips, or within [`ASK_AHEAD_MIN`] of the end.
pub fn ask_ahead(remaining: u64, rate: f64, head_ms: f64) -> bool {
    remaining <= ASK_AHEAD_MIN || (remaining as f64) <= rate * 2.0 * head_ms
}

/// A parsed `Content-Range` header of a byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentRange {
    /// `bytes first-last/complete` (`complete` is `None` for `*`).
    Bytes {
        /// First byte position.
        first: u64,
        /// Last byte position, inclusive.
        last: u64,
        /// Complete length, if known.
        complete: Option<u64>,
    },
    /// `bytes */complete`, as sent with a `416`.
    Unsatisfied {
        /// Complete length.
        complete: u64,
    },
}

fn parse_num(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok().filter(|&n| n <= MAX_SAFE)
}

impl ContentRange {
    /// Parse a `Content-Range` value; `None` if malformed, overflowing or inconsistent.
    pub fn parse(v: &str) -> Option<ContentRange> {
        let rest = v.trim().strip_prefix("bytes ")?.trim_start();
        let (range, complete) = rest.split_once('/')?;
        if range == "*" {
            return Some(ContentRange::Unsatisfied {
                complete: parse_num(complete)?,
            });
        }
        let (a, b) = range.split_once('-')?;
        let (first, last) = (parse_num(a)?, parse_num(b)?);
        if last < first {
            return None;
        }
        let complete = if complete == "*" {
            None
        } else {
            Some(parse_num(complete)?)
        };
        if let Some(c) = complete {
            if last >= c {
                return None;
            }
        }
        Some(ContentRange::Bytes {
            first,
            last,
            complete,
        })
    }
}

/// Is this ETag strong (not `W/`-prefixed, quoted)?
pub fn is_strong_etag(etag: &str) -> bool {
    let e = etag.trim();
    !e.starts_with("W/") && e.len() >= 2 && e.starts_with('"') && e.ends_with('"')
}

/// What the server said, as much of it as the rules need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseHead {
    /// HTTP status.
    pub status: u16,
    /// `Content-Length`, if present and valid.
    pub content_length: Option<u64>,
    /// `Content-Range`, raw.
    pub content_range: Option<String>,
    /// `ETag`, raw.
    pub etag: Option<String>,
    /// `Last-Modified`, raw.
    pub last_modified: Option<String>,
    /// `Content-Encoding`, raw.
    pub content_encoding: Option<String>,
    /// `Retry-After`, raw.
    pub retry_after: Option<String>,
    /// `Accept-Ranges`, raw.
    pub accept_ranges: Option<String>,
}

impl ResponseHead {
    /// Whether the server says it serves byte ranges (`Accept-Ranges: bytes`).
    pub fn accepts_byte_ranges(&self) -> bool {
        self.accept_ranges.as_deref().is_some_and(|v| {
            v.split(',')
                .any(|unit| unit.trim().eq_ignore_ascii_case("bytes"))
        })
    }
}

/// What a task knows about the bytes it already stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResumePoint {
    /// Bytes committed.
    pub offset: u64,
    /// Complete length learnt earlier, if any.
    pub expected: Option<u64>,
    /// Strong ETag learnt earlier.
    pub etag: Option<String>,
    /// Last-Modified learnt earlier.
    pub last_modified: Option<String>,
}

impl ResumePoint {
    /// The validator to send as `If-Range`, if the stored bytes can be resumed at all.
    pub fn if_range(&self) -> Option<&str> {
        self.etag.as_deref().or(self.last_modified.as_deref())
    }

    /// The `Range` and `If-Range` header values for the next request, or `None` to
    /// request the whole resource (nothing stored, or nothing to prove it unchanged).
    /// With a `window` (bytes, at least 1), at most that many bytes are asked for, and
    /// a fresh start asks for its first window with no `If-Range`.
    pub fn range_headers(&self, window: Option<u64>) -> Option<(String, Option<String>)> {
        let end = |from: u64| match window {
            Some(w) => format!("bytes={from}-{}", from.saturating_add(w.max(1) - 1)),
            None => format!("bytes={from}-"),
        };
        if self.offset == 0 {
            return window.map(|_| (end(0), None));
        }
        self.if_range()
            .map(|v| (end(self.offset), Some(v.to_owned())))
    }
}

/// Validators of a fresh representation: what a later resume may rely on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Representation {
    /// Complete length, if known.
    pub total: Option<u64>,
    /// Strong ETag, if any.
    pub etag: Option<String>,
    /// Last-Modified, if any (only kept when there is no strong ETag... and no encoding).
    pub last_modified: Option<String>,
}

/// The decision on a response head.
#[derive(Debug, Clone, PartialEq)]
pub enum HeadDecision {
    /// Stream the body and append it at `offset`. With `restart`, every stored byte
    /// is dropped first (`offset` is then 0) and `rep` replaces what was known.
    Stream {
        /// Where the body's first byte goes.
        offset: u64,
        /// Drop stored bytes first.
        restart: bool,
        /// The representation's length and validators.
        rep: Representation,
        /// Where the body ends, if it is a window that ends before the total
        /// (exclusive).
        end: Option<u64>,
        /// The offset no byte of this body may reach past (exclusive): the end of a
        /// `206`'s range, or a `200`'s `Content-Length`; `None` if the head gives
        /// none. A body that runs past it is distrusted ("A body that does not
        /// match its head").
        limit: Option<u64>,
        /// The body's length is not known, and the server offers ranges with a
        /// validator: when it ends, confirm that end with a range request from
        /// there before completing ("A body of unknown length that ends").
        confirm_end: bool,
    },
    /// The stored bytes are already the whole representation (a `416` saying so).
    AlreadyComplete,
    /// The answer does not fit the stored bytes: drop them and ask again without a
    /// range. `reason` says why, for logs.
    Restart {
        /// Why.
        reason: &'static str,
    },
    /// A transient status: try again later (after `retry_after_ms` if the server said).
    Retry {
        /// The status.
        status: u16,
        /// The server's `Retry-After`, in ms from `now`, if it gave a usable one.
        retry_after_ms: Option<f64>,
    },
    /// A `206` whose framing disagrees with its `Content-Range`: append nothing of
    /// it ("A body that does not match its head").
    Distrust {
        /// Why.
        reason: &'static str,
    },
    /// The task cannot succeed.
    Fail(TaskError),
}

/// Whether the body is encoded (`fetch` decodes it, so its bytes are not the range's).
fn encoded(head: &ResponseHead) -> bool {
    head.content_encoding
        .as_deref()
        .is_some_and(|e| !e.trim().is_empty() && !e.trim().eq_ignore_ascii_case("identity"))
}

fn representation(head: &ResponseHead, total: Option<u64>) -> Representation {
    if encoded(head) {
        // Ranges would be ranges of the encoded bytes, which fetch never shows us.
        return Representation {
            total: None,
            etag: None,
            last_modified: None,
        };
    }
    let etag = head.etag.clone().filter(|e| is_strong_etag(e));
    let last_modified = if etag.is_none() {
        head.last_modified.clone()
    } else {
        None
    };
    Representation {
        total,
        etag,
        last_modified,
    }
}

/// Decide what to do with a response to a request made from `resume` with
/// `window` (with `Range`/`If-Range` exactly when [`ResumePoint::range_headers`] of
/// that window gave them).
pub fn decide(
    resume: &ResumePoint,
    window: Option<u64>,
    head: &ResponseHead,
    now_ms: f64,
) -> HeadDecision {
    let asked = resume.range_headers(window);
    // A resume: stored bytes, and a validator to prove they still belong.
    let asked_range = asked.as_ref().is_some_and(|(_, v)| v.is_some());
    // The last byte a window may reach (inclusive).
    let window_last = window
        .filter(|_| asked.is_some())
        .map(|w| resume.offset.saturating_add(w.max(1) - 1));
    match head.status {
        200 => {
            if head.content_length.is_some_and(|n| n > MAX_SAFE) {
                return HeadDecision::Fail(TaskError::new(
                    ErrorCode::NotResumable,
                    "the Content-Length exceeds 2^53",
                ));
            }
            let rep = representation(head, head.content_length);
            let confirm_end = rep.total.is_none()
                && (rep.etag.is_some() || rep.last_modified.is_some())
                && head.accepts_byte_ranges();
            HeadDecision::Stream {
                offset: 0,
                restart: resume.offset > 0 || !asked_range,
                limit: rep.total,
                rep,
                end: None,
                confirm_end,
            }
        }
        206 => {
            let Some(raw) = head.content_range.as_deref() else {
                // Most often a cross-origin server that does not expose Content-Range
                // (Access-Control-Expose-Headers): the range cannot be checked, so
                // nothing is appended, and the download starts over without one.
                return HeadDecision::Restart {
                    reason: "the 206 has no readable Content-Range (not exposed to CORS?)",
                };
            };
            let Some(cr) = ContentRange::parse(raw) else {
                return HeadDecision::Fail(TaskError::new(
                    ErrorCode::NotResumable,
                    "the server sent a 206 with a malformed Content-Range",
                ));
            };
            let ContentRange::Bytes {
                first,
                last,
                complete,
            } = cr
            else {
                return HeadDecision::Fail(TaskError::new(
                    ErrorCode::NotResumable,
                    "a 206 without a byte range",
                ));
            };
            let want = if asked_range { resume.offset } else { 0 };
            if first != want {
                return HeadDecision::Restart {
                    reason: "the 206 does not start at the committed offset",
                };
            }
            let Some(total) = complete else {
                return HeadDecision::Restart {
                    reason: "the 206 does not give the complete length",
                };
            };
            let end = if last + 1 == total {
                None
            } else if window_last.is_some_and(|w| last <= w) {
                Some(last + 1)
            } else {
                return HeadDecision::Restart {
                    reason: "the 206 does not run to the end",
                };
            };
            if head.content_length.is_some_and(|n| n != last - first + 1) {
                return HeadDecision::Distrust {
                    reason: "the 206's Content-Length is not its Content-Range's length",
                };
            }
            // A window or a resume of an encoded body: its range is of bytes `fetch`
            // never shows, so nothing of it fits the stored bytes.
            if (window_last.is_some() || asked_range) && encoded(head) {
                return HeadDecision::Restart {
                    reason: "a range of an encoded body",
                };
            }
            if asked_range {
                if resume.expected.is_some_and(|e| e != total) {
                    return HeadDecision::Restart {
                        reason: "the complete length changed",
                    };
                }
                if let (Some(old), Some(new)) = (&resume.etag, &head.etag) {
                    if old != new {
                        return HeadDecision::Restart {
                            reason: "the ETag changed",
                        };
                    }
                }
            }
            let rep = representation(head, Some(total));
            if rep.etag.is_none()
                && rep.last_modified.is_none()
                && asked_range
                && head.etag.is_some()
            {
                return HeadDecision::Restart {
                    reason: "the 206 carries a weak validator",
                };
            }
            HeadDecision::Stream {
                offset: want,
                restart: !asked_range,
                rep,
                end,
                limit: Some(last + 1),
                confirm_end: false,
            }
        }
        416 => match head.content_range.as_deref().and_then(ContentRange::parse) {
            Some(ContentRange::Unsatisfied { complete })
                if asked.is_some()
                    && complete == resume.offset
                    && resume.expected.is_none_or(|e| e == complete) =>
            {
                HeadDecision::AlreadyComplete
            }
            _ => HeadDecision::Restart {
                reason: "416: the stored bytes do not fit the resource",
            },
        },
        408 | 429 | 500..=599 => HeadDecision::Retry {
            status: head.status,
            retry_after_ms: head
                .retry_after
                .as_deref()
                .and_then(|v| retry_after_ms(v, now_ms)),
        },
        s => HeadDecision::Fail(TaskError::http(s)),
    }
}

/// Parse `Retry-After` (seconds, or an HTTP date) into ms from `now_ms`;
/// `None` for garbage. Dates in the past give 0.
pub fn retry_after_ms(v: &str, now_ms: f64) -> Option<f64> {
    let v = v.trim();
    if let Some(secs) = parse_num(v) {
        return Some(secs as f64 * 1000.0);
    }
    let when = httpdate::parse_http_date(v).ok()?;
    let ms = when
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as f64;
    Some((ms - now_ms).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_table() {
        use ContentRange::*;
        let cases: &[(&str, Option<ContentRange>)] = &[
            (
                "bytes 0-99/100",
                Some(Bytes {
                    first: 0,
                    last: 99,
                    complete: Some(100),
                }),
            ),
            (
                "bytes 10-19/*",
                Some(Bytes {
                    first: 10,
                    last: 19,
                    complete: None,
                }),
            ),
            ("bytes */500", Some(Unsatisfied { complete: 500 })),
            ("bytes 5-4/100", None),
            ("bytes 0-100/100", None),
            ("bytes 0-9007199254740993/9007199254740994", None),
            ("bytes 0-1/99999999999999999999", None),
            ("bytes -1-5/10", None),
            ("bytes 0-5", None),
            ("items 0-5/10", None),
            ("bytes a-b/10", None),
            ("", None),
            ("bytes */*", None),
        ];
        for (s, want) in cases {
            assert_eq!(ContentRange::parse(s), *want, "{s}");
        }
    }

    fn rp(offset: u64, expected: Option<u64>, etag: Option<&str>) -> ResumePoint {
        ResumePoint {
            offset,
            expected,
            etag: etag.map(Into::into),
            last_modified: None,
        }
    }

    fn head(status: u16, cr: Option<&str>, etag: Option<&str>, len: Option<u64>) -> ResponseHead {
        ResponseHead {
            status,
            content_length: len,
            content_range: cr.map(Into::into),
            etag: etag.map(Into::into),
            ..Default::default()
        }
    }

    const E: &str = "\"v1\"";

    #[test]
    fn range_headers() {
        assert_eq!(rp(0, None, Some(E)).range_headers(None), None);
        assert_eq!(
            rp(5, Some(10), Some(E)).range_headers(None),
            Some(("bytes=5-".into(), Some(E.into())))
        );
        assert_eq!(
            rp(5, Some(10), None).range_headers(None),
            None,
            "no validator: no resume"
        );
        // Windows: the first from a fresh start without If-Range, later ones with it.
        assert_eq!(
            rp(0, None, None).range_headers(Some(4)),
            Some(("bytes=0-3".into(), None))
        );
        assert_eq!(
            rp(5, Some(10), Some(E)).range_headers(Some(4)),
            Some(("bytes=5-8".into(), Some(E.into())))
        );
        assert_eq!(rp(5, Some(10), None).range_headers(Some(4)), None);
        let lm = ResumePoint {
            offset: 5,
            last_modified: Some("Thu, 01 Jan 2026 00:00:00 GMT".into()),
            ..Default::default()
        };
        assert_eq!(
            lm.range_headers(None).and_then(|h| h.1),
            Some("Thu, 01 Jan 2026 00:00:00 GMT".into())
        );
    }

    #[test]
    fn decisions_table() {
        use HeadDecision::*;
        let rep = |t: Option<u64>, e: Option<&str>| Representation {
            total: t,
            etag: e.map(Into::into),
            last_modified: None,
        };
        let cases: Vec<(&str, ResumePoint, ResponseHead, HeadDecision)> = vec![
            (
                "fresh 200",
                rp(0, None, None),
                head(200, None, Some(E), Some(100)),
                Stream {
                    offset: 0,
                    restart: true,
                    rep: rep(Some(100), Some(E)),
                    end: None,
                    limit: Some(100),
                    confirm_end: false,
                },
            ),
            (
                "weak etag dropped",
                rp(0, None, None),
                head(200, None, Some("W/\"x\""), Some(100)),
                Stream {
                    offset: 0,
                    restart: true,
                    rep: rep(Some(100), None),
                    end: None,
                    limit: Some(100),
                    confirm_end: false,
                },
            ),
            (
                "resume 206",
                rp(40, Some(100), Some(E)),
                head(206, Some("bytes 40-99/100"), Some(E), Some(60)),
                Stream {
                    offset: 40,
                    restart: false,
                    rep: rep(Some(100), Some(E)),
                    end: None,
                    limit: Some(100),
                    confirm_end: false,
                },
            ),
            (
                "200 to a range: start over",
                rp(40, Some(100), Some(E)),
                head(200, None, Some(E), Some(100)),
                Stream {
                    offset: 0,
                    restart: true,
                    rep: rep(Some(100), Some(E)),
                    end: None,
                    limit: Some(100),
                    confirm_end: false,
                },
            ),
            (
                "206 at the wrong offset",
                rp(40, Some(100), Some(E)),
                head(206, Some("bytes 0-99/100"), Some(E), None),
                Restart {
                    reason: "the 206 does not start at the committed offset",
                },
            ),
            (
                "206 new length",
                rp(40, Some(100), Some(E)),
                head(206, Some("bytes 40-119/120"), Some(E), None),
                Restart {
                    reason: "the complete length changed",
                },
            ),
            (
                "206 new etag",
                rp(40, Some(100), Some(E)),
                head(206, Some("bytes 40-99/100"), Some("\"v2\""), None),
                Restart {
                    reason: "the ETag changed",
                },
            ),
            (
                "206 short",
                rp(40, Some(100), Some(E)),
                head(206, Some("bytes 40-49/100"), Some(E), None),
                Restart {
                    reason: "the 206 does not run to the end",
                },
            ),
            (
                "206 unknown length",
                rp(40, Some(100), Some(E)),
                head(206, Some("bytes 40-99/*"), Some(E), None),
                Restart {
                    reason: "the 206 does not give the complete length",
                },
            ),
            (
                "416 complete",
                rp(100, Some(100), Some(E)),
                head(416, Some("bytes */100"), None, None),
                AlreadyComplete,
            ),
            (
                "416 changed",
                rp(100, Some(100), Some(E)),
                head(416, Some("bytes */50"), None, None),
                Restart {
                    reason: "416: the stored bytes do not fit the resource",
                },
            ),
            (
                "416 garbage",
                rp(100, Some(100), Some(E)),
                head(416, None, None, None),
                Restart {
                    reason: "416: the stored bytes do not fit the resource",
                },
            ),
            (
                "503",
                rp(0, None, None),
                head(503, None, None, None),
                Retry {
                    status: 503,
                    retry_after_ms: None,
                },
            ),
            (
                "429",
                rp(0, None, None),
                head(429, None, None, None),
                Retry {
                    status: 429,
                    retry_after_ms: None,
                },
            ),
            (
                "404",
                rp(0, None, None),
                head(404, None, None, None),
                Fail(TaskError::http(404)),
            ),
            (
                "410",
                rp(0, None, None),
                head(410, None, None, None),
                Fail(TaskError::http(410)),
            ),
            (
                "403",
                rp(0, None, None),
                head(403, None, None, None),
                Fail(TaskError::http(403)),
            ),
        ];
        for (name, r, h, want) in cases {
            assert_eq!(decide(&r, None, &h, 0.0), want, "{name}");
        }
    }

    #[test]
    fn malformed_content_range_is_refused() {
        for cr in [
            Some("bytes 50-40/100"),
            Some("bytes 40-99/18014398509481984"),
            Some("bytes */100"),
        ] {
            let d = decide(
                &rp(40, Some(100), Some(E)),
                None,
                &head(206, cr, Some(E), None),
                0.0,
            );
            assert!(
                matches!(d, HeadDecision::Fail(ref e) if e.code == ErrorCode::NotResumable),
                "{cr:?}: {d:?}"
            );
        }
    }

    #[test]
    fn a_206_without_a_readable_content_range_starts_over() {
        let d = decide(
            &rp(40, Some(100), Some(E)),
            None,
            &head(206, None, Some(E), None),
            0.0,
        );
        assert!(matches!(d, HeadDecision::Restart { .. }), "{d:?}");
    }

    #[test]
    fn a_206_whose_content_length_is_not_its_range_is_distrusted() {
        // The range says 60 bytes; the framing carries 64 KiB more.
        for (resume, window, cr, len) in [
            (
                rp(40, Some(100), Some(E)),
                None,
                "bytes 40-99/100",
                60 + 65_536,
            ),
            (rp(40, Some(100), Some(E)), None, "bytes 40-99/100", 59),
            (rp(0, None, None), Some(40), "bytes 0-39/100", 41),
        ] {
            let d = decide(
                &resume,
                window,
                &head(206, Some(cr), Some(E), Some(len)),
                0.0,
            );
            assert!(
                matches!(d, HeadDecision::Distrust { .. }),
                "{cr} {len}: {d:?}"
            );
        }
        // A body with no Content-Length is limited to its range's end.
        let d = decide(
            &rp(40, Some(100), Some(E)),
            None,
            &head(206, Some("bytes 40-99/100"), Some(E), None),
            0.0,
        );
        assert!(
            matches!(
                d,
                HeadDecision::Stream {
                    limit: Some(100),
                    ..
                }
            ),
            "{d:?}"
        );
    }

    #[test]
    fn a_body_of_unknown_length_is_confirmed_only_with_a_validator_and_ranges() {
        let chunked = |etag: Option<&str>, ranges: Option<&str>| ResponseHead {
            accept_ranges: ranges.map(Into::into),
            ..head(200, None, etag, None)
        };
        let confirm = |h: &ResponseHead| match decide(&rp(0, None, None), None, h, 0.0) {
            HeadDecision::Stream {
                confirm_end, limit, ..
            } => {
                assert_eq!(limit, None);
                confirm_end
            }
            d => panic!("{d:?}"),
        };
        assert!(confirm(&chunked(Some(E), Some("bytes"))));
        assert!(confirm(&chunked(Some(E), Some("none, Bytes"))));
        assert!(!confirm(&chunked(Some(E), None)), "no Accept-Ranges");
        assert!(!confirm(&chunked(Some(E), Some("none"))));
        assert!(!confirm(&chunked(None, Some("bytes"))), "no validator");
        assert!(
            !confirm(&chunked(Some("W/\"x\""), Some("bytes"))),
            "a weak one"
        );
        let lm = ResponseHead {
            last_modified: Some("Thu, 01 Jan 2026 00:00:00 GMT".into()),
            ..chunked(None, Some("bytes"))
        };
        assert!(confirm(&lm));
        let mut gz = chunked(Some(E), Some("bytes"));
        gz.content_encoding = Some("gzip".into());
        assert!(!confirm(&gz), "an encoded body has no ranges to ask");
        // A known length needs no confirmation.
        let known = ResponseHead {
            content_length: Some(10),
            ..chunked(Some(E), Some("bytes"))
        };
        assert!(matches!(
            decide(&rp(0, None, None), None, &known, 0.0),
            HeadDecision::Stream {
                confirm_end: false,
                limit: Some(10),
                ..
            }
        ));
        // The confirmation: a 416 naming what is stored completes the task.
        assert_eq!(
            decide(
                &rp(70, None, Some(E)),
                None,
                &head(416, Some("bytes */70"), None, None),
                0.0
            ),
            HeadDecision::AlreadyComplete
        );
    }

    #[test]
    fn encoded_bodies_are_not_resumable() {
        let mut h = head(200, None, Some(E), Some(10));
        h.content_encoding = Some("gzip".into());
        let HeadDecision::Stream { rep, .. } = decide(&rp(0, None, None), None, &h, 0.0) else {
            panic!()
        };
        assert_eq!(rep, Representation::default());
    }

    #[test]
    fn the_next_window_is_asked_for_two_round_trips_ahead() {
        // (remaining bytes, bytes per ms, head ms): asked?
        for (remaining, rate, head_ms, asked) in [
            (ASK_AHEAD_MIN, 0.0, 0.0, true), // the last piece, whatever the rate
            (ASK_AHEAD_MIN + 1, 1e9, 0.0, false), // an instant round trip: the end
            (1_000_000, 10_000.0, 50.0, true), // 10 MB/s, 50 ms heads: 100 ms left
            (1_000_001, 10_000.0, 50.0, false), // a byte more: later
            (8 << 20, 150_000.0, 30.0, true), // loopback-fast, a slow first head
            (8 << 20, 150_000.0, 1.0, false),
            (u64::MAX, f64::INFINITY, 1.0, true), // no overflow, no NaN
        ] {
            assert_eq!(
                ask_ahead(remaining, rate, head_ms),
                asked,
                "{remaining} bytes at {rate}/ms, head {head_ms} ms"
            );
        }
    }

    #[test]
    fn windows() {
        use HeadDecision::*;
        let rep = |t: u64| Representation {
            total: Some(t),
            etag: Some(E.into()),
            last_modified: None,
        };
        // A fresh first window: its 206 gives the total and the validator.
        assert_eq!(
            decide(
                &rp(0, None, None),
                Some(40),
                &head(206, Some("bytes 0-39/100"), Some(E), Some(40)),
                0.0
            ),
            Stream {
                offset: 0,
                restart: true,
                rep: rep(100),
                end: Some(40),
                limit: Some(40),
                confirm_end: false,
            }
        );
        // A later window, and the last one, which reaches the total.
        assert_eq!(
            decide(
                &rp(40, Some(100), Some(E)),
                Some(40),
                &head(206, Some("bytes 40-79/100"), Some(E), Some(40)),
                0.0
            ),
            Stream {
                offset: 40,
                restart: false,
                rep: rep(100),
                end: Some(80),
                limit: Some(80),
                confirm_end: false,
            }
        );
        assert_eq!(
            decide(
                &rp(80, Some(100), Some(E)),
                Some(40),
                &head(206, Some("bytes 80-99/100"), Some(E), Some(20)),
                0.0
            ),
            Stream {
                offset: 80,
                restart: false,
                rep: rep(100),
                end: None,
                limit: Some(100),
                confirm_end: false,
            }
        );
        // A server that sends less than the window is followed from where it stops.
        assert!(matches!(
            decide(
                &rp(40, Some(100), Some(E)),
                Some(40),
                &head(206, Some("bytes 40-49/100"), Some(E), Some(10)),
                0.0
            ),
            Stream { end: Some(50), .. }
        ));
        // Past the window's end but short of the total: not what was asked.
        assert!(matches!(
            decide(
                &rp(40, Some(100), Some(E)),
                Some(40),
                &head(206, Some("bytes 40-89/100"), Some(E), Some(50)),
                0.0
            ),
            Restart { .. }
        ));
        // Without a window, a short 206 is refused as before.
        assert!(matches!(
            decide(
                &rp(40, Some(100), Some(E)),
                None,
                &head(206, Some("bytes 40-79/100"), Some(E), Some(40)),
                0.0
            ),
            Restart { .. }
        ));
        // An encoded body's range is never a window.
        let mut h = head(206, Some("bytes 0-39/100"), Some(E), Some(40));
        h.content_encoding = Some("gzip".into());
        assert!(matches!(
            decide(&rp(0, None, None), Some(40), &h, 0.0),
            Restart { .. }
        ));
        // A server that ignores ranges: the whole body, from byte 0.
        assert!(matches!(
            decide(
                &rp(0, None, None),
                Some(40),
                &head(200, None, Some(E), Some(100)),
                0.0
            ),
            Stream {
                offset: 0,
                restart: true,
                end: None,
                ..
            }
        ));
        // An empty representation answers the first window with a 416.
        assert_eq!(
            decide(
                &rp(0, None, None),
                Some(40),
                &head(416, Some("bytes */0"), None, None),
                0.0
            ),
            AlreadyComplete
        );
    }

    #[test]
    fn retry_after() {
        assert_eq!(retry_after_ms("120", 0.0), Some(120_000.0));
        assert_eq!(retry_after_ms("soon", 0.0), None);
        assert_eq!(retry_after_ms("-5", 0.0), None);
        // 2026-01-01T00:00:10Z is 10 s after now.
        let now = 1_767_225_600_000.0;
        assert_eq!(
            retry_after_ms("Thu, 01 Jan 2026 00:00:10 GMT", now),
            Some(10_000.0)
        );
        assert_eq!(
            retry_after_ms("Wed, 31 Dec 2025 00:00:00 GMT", now),
            Some(0.0)
        );
    }
}
