//! Parsing untrusted input at the edge into types that cannot hold invalid values.
//!
//! URLs are split into their parts by the browser's own URL parser (the shell hands
//! over a [`UrlParts`]); this module decides whether those parts are acceptable, so
//! the rules are tested natively and no URL crate weighs on the wasm size.

use super::error::TaskError;
use serde::{Deserialize, Serialize};

/// Longest session identifier accepted, in characters.
pub const MAX_IDENTIFIER_CHARS: usize = 1024;
/// Largest total size of a task's request headers (names and values), in bytes.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most request headers a task may carry.
pub const MAX_HEADERS: usize = 64;

/// A validated session identifier: 1 to 1024 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    /// Validate an identifier.
    pub fn parse(s: &str) -> Result<SessionId, TaskError> {
        if s.is_empty() {
            return Err(TaskError::invalid("the session identifier is empty"));
        }
        let n = s.chars().count();
        if n > MAX_IDENTIFIER_CHARS {
            return Err(TaskError::invalid(format!(
                "the session identifier has {n} characters; at most {MAX_IDENTIFIER_CHARS} are allowed"
            )));
        }
        if s.chars().any(char::is_control) {
            return Err(TaskError::invalid(
                "the session identifier contains control characters",
            ));
        }
        Ok(SessionId(s.to_owned()))
    }

    /// The identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A URL as the browser's URL parser split it (`new URL(input, base)`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlParts {
    /// The serialized URL (`href`).
    pub href: String,
    /// The scheme with its colon, as `URL.protocol` gives it (`"https:"`).
    pub protocol: String,
    /// `URL.username`.
    pub username: String,
    /// `URL.password`.
    pub password: String,
    /// `URL.host` (host and port if not the default).
    pub host: String,
}

/// A validated http(s) URL without credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpUrl {
    /// The serialized URL.
    pub href: String,
    /// Host and port: the key for per-host connection limits.
    pub host: String,
}

impl HttpUrl {
    /// Accept only http(s) URLs that carry no credentials and have a host.
    pub fn from_parts(p: UrlParts) -> Result<HttpUrl, TaskError> {
        if p.protocol != "http:" && p.protocol != "https:" {
            return Err(TaskError::invalid(format!(
                "only http and https URLs can be downloaded, not \"{}\"",
                p.protocol.trim_end_matches(':')
            )));
        }
        if !p.username.is_empty() || !p.password.is_empty() {
            return Err(TaskError::invalid(
                "URLs with credentials (user:pass@) are refused; pass an Authorization header instead",
            ));
        }
        if p.host.is_empty() {
            return Err(TaskError::invalid("the URL has no host"));
        }
        Ok(HttpUrl {
            href: p.href,
            host: p.host,
        })
    }

    /// [`HttpUrl::from_parts`], also refusing mixed content: from an https origin,
    /// plain http is refused unless it goes to this machine (browsers treat
    /// `localhost` and loopback addresses as potentially trustworthy), which the
    /// browser would block anyway, only later and as a network error.
    pub fn for_origin(p: UrlParts, origin_protocol: &str) -> Result<HttpUrl, TaskError> {
        let url = Self::from_parts(p.clone())?;
        if origin_protocol == "https:" && p.protocol == "http:" && !is_loopback_host(&p.host) {
            return Err(TaskError::invalid(format!(
                "{} is plain http from an https origin (mixed content); use https",
                url.href
            )));
        }
        Ok(url)
    }
}

/// `localhost`, `*.localhost`, 127.0.0.0/8 or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name == "::1"
        || (name.starts_with("127.") && name.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
}

/// Request headers a page may not set: the browser forbids them, or longhaul sets
/// them itself to resume (`range`, `if-range`).
const FORBIDDEN_HEADERS: &[&str] = &[
    "accept-charset",
    "accept-encoding",
    "access-control-request-headers",
    "access-control-request-method",
    "connection",
    "content-length",
    "cookie",
    "cookie2",
    "date",
    "dnt",
    "expect",
    "host",
    "keep-alive",
    "origin",
    "referer",
    "set-cookie",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "via",
    "range",
    "if-range",
];

/// Validated request headers: token names, no CR/LF/NUL in values, no forbidden names,
/// bounded in count and size. Names are kept lower-case.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HeaderList(Vec<(String, String)>);

impl HeaderList {
    /// Validate a list of `(name, value)` pairs.
    pub fn parse(pairs: Vec<(String, String)>) -> Result<HeaderList, TaskError> {
        if pairs.len() > MAX_HEADERS {
            return Err(TaskError::invalid(format!(
                "{} headers given; at most {MAX_HEADERS}",
                pairs.len()
            )));
        }
        let mut total = 0usize;
        let mut out = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(TaskError::invalid(format!(
                    "\"{name}\" is not a valid header name"
                )));
            }
            if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(TaskError::invalid(format!(
                    "the value of header \"{name}\" contains CR, LF or NUL"
                )));
            }
            let lower = name.to_ascii_lowercase();
            if FORBIDDEN_HEADERS.contains(&lower.as_str())
                || lower.starts_with("proxy-")
                || lower.starts_with("sec-")
            {
                return Err(TaskError::invalid(format!(
                    "header \"{name}\" cannot be set by a page"
                )));
            }
            total += lower.len() + value.len();
            if total > MAX_HEADER_BYTES {
                return Err(TaskError::invalid(format!(
                    "the headers exceed {MAX_HEADER_BYTES} bytes"
                )));
            }
            out.push((lower, value.trim().to_owned()));
        }
        Ok(HeaderList(out))
    }

    /// The headers, names lower-case.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// Split off the credentials: `authorization` and the `extra` names (already
    /// lower-case), which are kept in memory only unless the app asks to store them.
    pub fn split_sensitive(self, extra: &[String]) -> (HeaderList, HeaderList) {
        let (secret, plain): (Vec<_>, Vec<_>) = self
            .0
            .into_iter()
            .partition(|(n, _)| SENSITIVE_HEADERS.contains(&n.as_str()) || extra.contains(n));
        (HeaderList(plain), HeaderList(secret))
    }

    /// These headers, then `more`, whose names replace the same names here.
    pub fn merged(&self, more: &HeaderList) -> HeaderList {
        HeaderList(merge_headers(&self.0, &more.0))
    }
}

/// `base` then `extra`, leaving out the headers of `base` that `extra` names: every
/// layering of request headers (session and task, task and protocol, stored and
/// credentials) goes through here. Names are lower-case on both sides.
pub fn merge_headers(
    base: &[(String, String)],
    extra: &[(String, String)],
) -> Vec<(String, String)> {
    base.iter()
        .filter(|(n, _)| !extra.iter().any(|(m, _)| m == n))
        .chain(extra)
        .cloned()
        .collect()
}

/// Headers that are credentials whatever the app says: never stored unless the app
/// passes `persistCredentials: true`.
pub const SENSITIVE_HEADERS: &[&str] = &["authorization"];

/// Validate a list of header names (`sensitiveHeaders`), lower-cased.
pub fn header_names(names: &[String]) -> Result<Vec<String>, TaskError> {
    if names.len() > MAX_HEADERS {
        return Err(TaskError::invalid(format!(
            "{} header names given; at most {MAX_HEADERS}",
            names.len()
        )));
    }
    names
        .iter()
        .map(|n| {
            if n.is_empty() || !n.bytes().all(is_token_byte) {
                Err(TaskError::invalid(format!(
                    "\"{n}\" is not a valid header name"
                )))
            } else {
                Ok(n.to_ascii_lowercase())
            }
        })
        .collect()
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// 2^53: the largest byte count a JS number holds exactly.
pub const MAX_SAFE_INTEGER: u64 = 1 << 53;

/// A byte count given by a page (a JS number): a positive integer up to 2^53.
///
/// The message shows a whole number as it is and any other as "that number":
/// formatting an `f64` would bring `core`'s float formatting (about 20 KB of wasm)
/// into the worker for this one message (README, "Package size").
pub fn byte_count(v: f64) -> Result<u64, TaskError> {
    if !v.is_finite() || v.fract() != 0.0 || !(1.0..=MAX_SAFE_INTEGER as f64).contains(&v) {
        // (`fract` of an infinity or NaN is NaN: those are "that number".)
        let shown = if v.fract() == 0.0 && v.abs() < 1e18 {
            (v as i64).to_string()
        } else {
            "that number".to_string()
        };
        return Err(TaskError::invalid(format!(
            "{shown} is not a byte count (a positive integer up to 2^53)"
        )));
    }
    Ok(v as u64)
}

/// Longest task description accepted, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 4096;

/// Validate a task description.
pub fn description(s: Option<String>) -> Result<String, TaskError> {
    let s = s.unwrap_or_default();
    if s.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(TaskError::invalid(format!(
            "the description exceeds {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids() {
        assert!(SessionId::parse("downloads").is_ok());
        assert!(SessionId::parse("ünïcödé ✓").is_ok());
        assert!(SessionId::parse(&"x".repeat(1024)).is_ok());
        for bad in ["", "a\nb", "\u{0}"] {
            assert!(SessionId::parse(bad).is_err(), "{bad:?}");
        }
        let e = SessionId::parse(&"x".repeat(1025)).unwrap_err();
        assert!(e.message.contains("1025"));
    }

    fn parts(href: &str, protocol: &str, user: &str, pass: &str, host: &str) -> UrlParts {
        UrlParts {
            href: href.into(),
            protocol: protocol.into(),
            username: user.into(),
            password: pass.into(),
            host: host.into(),
        }
    }

    #[test]
    fn urls() {
        let ok =
            HttpUrl::from_parts(parts("https://a.test/x", "https:", "", "", "a.test")).unwrap();
        assert_eq!(ok.host, "a.test");
        assert!(HttpUrl::from_parts(parts("http://a:81/", "http:", "", "", "a:81")).is_ok());
        let cases = [
            parts("ftp://a/x", "ftp:", "", "", "a"),
            parts("data:,x", "data:", "", "", ""),
            parts("blob:x", "blob:", "", "", ""),
            parts("https://u:p@a/", "https:", "u", "p", "a"),
            parts("https://u@a/", "https:", "u", "", "a"),
            parts("https:///x", "https:", "", "", ""),
        ];
        for c in cases {
            assert!(HttpUrl::from_parts(c.clone()).is_err(), "{c:?}");
        }
    }

    #[test]
    fn mixed_content_is_refused_except_to_this_machine() {
        let http = |host: &str| parts(&format!("http://{host}/x"), "http:", "", "", host);
        assert!(HttpUrl::for_origin(http("cdn.test"), "https:").is_err());
        assert!(HttpUrl::for_origin(http("cdn.test:8080"), "https:").is_err());
        for ok in [
            "localhost",
            "localhost:8080",
            "a.localhost",
            "127.0.0.1:9",
            "[::1]:80",
            "[::1]",
        ] {
            assert!(HttpUrl::for_origin(http(ok), "https:").is_ok(), "{ok}");
        }
        assert!(HttpUrl::for_origin(http("cdn.test"), "http:").is_ok());
        let https = parts("https://cdn.test/x", "https:", "", "", "cdn.test");
        assert!(HttpUrl::for_origin(https, "https:").is_ok());
    }

    #[test]
    fn headers() {
        let h = |n: &str, v: &str| vec![(n.to_owned(), v.to_owned())];
        assert_eq!(
            HeaderList::parse(h("X-Token", " abc ")).unwrap().pairs(),
            &[("x-token".into(), "abc".into())]
        );
        for (n, v) in [
            ("X-A", "a\r\nInjected: 1"),
            ("X-A", "a\nb"),
            ("Bad Name", "v"),
            ("", "v"),
            ("Range", "bytes=0-"),
            ("If-Range", "x"),
            ("Cookie", "a=b"),
            ("Host", "x"),
            ("Proxy-Authorization", "x"),
            ("Sec-Fetch-Mode", "x"),
        ] {
            assert!(HeaderList::parse(h(n, v)).is_err(), "{n}: {v}");
        }
        assert!(HeaderList::parse(h("X-Big", &"v".repeat(MAX_HEADER_BYTES))).is_err());
        let many: Vec<_> = (0..=MAX_HEADERS)
            .map(|i| (format!("x-{i}"), "v".into()))
            .collect();
        assert!(HeaderList::parse(many).is_err());
    }

    #[test]
    fn descriptions() {
        assert_eq!(description(None).unwrap(), "");
        assert!(description(Some("x".repeat(MAX_DESCRIPTION_CHARS + 1))).is_err());
    }
}
