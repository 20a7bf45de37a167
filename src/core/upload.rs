//! Uploads: the tus 1.0 protocol and plain `PUT`/`POST`, as pure decisions.
//!
//! A service worker cannot stream a request body (see the design notes: Chromium
//! refuses it on HTTP/1.1, Firefox sends garbage), so an upload is a sequence of
//! bounded requests whose bodies are read from the bytes stored when the page handed
//! the file over. The page may close at once; nothing needs the file again.
//!
//! tus (<https://tus.io/protocols/resumable-upload>), core protocol plus the
//! creation and termination extensions:
//! - no upload URL yet → `POST` to the endpoint with `Upload-Length` and
//!   `Upload-Metadata`; a `201` gives the upload URL (`Location`), which is stored
//!   before any byte is sent, so a restart finds the same upload;
//! - the server's offset unknown (after a restart, a failure or a `409`) → `HEAD` the
//!   upload URL; its `Upload-Offset` is the truth, whatever was stored locally;
//! - then `PATCH` one chunk at `Upload-Offset`; a `204` with the new `Upload-Offset`
//!   commits it; the last one completes the task;
//! - a `404`/`410` (the server forgot the upload) → create a new one, from byte 0;
//! - cancel → `DELETE` the upload URL (best effort).
//!
//! `PUT`/`POST`: one request with the whole body; any failure restarts it from zero,
//! so it is only safe where repeating the request is harmless (an idempotent `PUT`
//! of the same bytes, not a `POST` that appends or creates).

use super::error::{ErrorCode, TaskError};
use super::http::MAX_SAFE;
use serde::{Deserialize, Serialize};

/// The tus protocol version spoken.
pub const TUS_VERSION: &str = "1.0.0";

/// How an upload talks to its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadProtocol {
    /// tus 1.0: resumable, chunked.
    Tus,
    /// One `PUT` of the whole body, restarted from zero on failure.
    Put,
    /// One `POST` of the whole body, restarted from zero on failure.
    Post,
}

impl UploadProtocol {
    /// Parse `options.protocol`.
    pub fn parse(s: &str) -> Result<UploadProtocol, TaskError> {
        match s {
            "tus" => Ok(UploadProtocol::Tus),
            "put" => Ok(UploadProtocol::Put),
            "post" => Ok(UploadProtocol::Post),
            _ => Err(TaskError::invalid(format!(
                "upload protocol \"{s}\" is not one of 'tus', 'put', 'post'"
            ))),
        }
    }
}

/// Default bytes per tus `PATCH`.
pub const DEFAULT_CHUNK: u64 = 8 << 20;
/// Smallest and largest chunk size accepted.
pub const CHUNK_RANGE: (u64, u64) = (64 << 10, 256 << 20);

/// What is persisted about an upload besides the common task fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadInfo {
    /// Protocol.
    pub protocol: UploadProtocol,
    /// The body's size in bytes.
    pub size: u64,
    /// The tus upload URL, once created.
    pub location: Option<String>,
    /// tus `Upload-Metadata` pairs (keys and values as given; values are sent in base64).
    pub metadata: Vec<(String, String)>,
    /// `Content-Type` of a `PUT`/`POST` body.
    pub content_type: String,
    /// Bytes per tus `PATCH`.
    pub chunk_size: u64,
}

/// One request of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// tus creation (`POST` to the endpoint).
    Create,
    /// tus offset probe (`HEAD` the upload URL).
    Probe,
    /// tus `PATCH` of `[from, to)`.
    Patch {
        /// First byte.
        from: u64,
        /// One past the last byte.
        to: u64,
    },
    /// The whole body in one `PUT`/`POST`.
    Whole,
}

/// What the server answered, as the rules read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadResponse {
    /// Status code.
    pub status: u16,
    /// `Location`, resolved against the request URL by the shell.
    pub location: Option<String>,
    /// `Upload-Offset`.
    pub upload_offset: Option<String>,
    /// `Retry-After`.
    pub retry_after: Option<String>,
}

/// What to do after a response.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// The upload URL is known and the server holds `offset` bytes.
    At {
        /// A new upload URL to store (after creation).
        location: Option<String>,
        /// The server's offset.
        offset: u64,
    },
    /// The server lost the upload: create a new one from byte 0.
    Recreate,
    /// The offset is unknown (a `409`): probe it.
    Probe,
    /// Every byte arrived: the upload is complete.
    Done,
    /// A transient failure (`408`, `429`, `5xx`): retry, after `Retry-After` if given.
    Retry {
        /// The status.
        status: u16,
    },
    /// The task fails.
    Fail(TaskError),
}

fn parse_offset(v: Option<&str>) -> Option<u64> {
    let v = v?.trim();
    if v.is_empty() || v.len() > 16 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|&n| n <= MAX_SAFE)
}

fn transient(status: u16) -> bool {
    status == 408 || status == 429 || (500..600).contains(&status)
}

fn protocol_error(msg: String) -> Next {
    Next::Fail(TaskError::new(ErrorCode::NotResumable, msg))
}

/// Decide what follows `resp` to request `step` of an upload of `size` bytes.
pub fn decide(step: Step, size: u64, resp: &UploadResponse) -> Next {
    let s = resp.status;
    if transient(s) {
        return Next::Retry { status: s };
    }
    match step {
        Step::Whole if (200..300).contains(&s) => Next::Done,
        Step::Create if s == 201 || s == 200 => match &resp.location {
            Some(l) if !l.is_empty() => Next::At {
                location: Some(l.clone()),
                offset: 0,
            },
            _ => protocol_error("the tus server created an upload without a Location".into()),
        },
        Step::Probe | Step::Patch { .. } if s == 404 || s == 410 => Next::Recreate,
        Step::Probe if s == 200 || s == 204 => match parse_offset(resp.upload_offset.as_deref()) {
            Some(o) if o == size => Next::Done,
            Some(o) if o < size => Next::At {
                location: None,
                offset: o,
            },
            Some(o) => protocol_error(format!(
                "the tus server holds {o} bytes of a {size}-byte upload"
            )),
            None => protocol_error(
                "the tus server sent no readable Upload-Offset (is it exposed through CORS?)"
                    .into(),
            ),
        },
        Step::Patch { from, to } if s == 204 || s == 200 => {
            match parse_offset(resp.upload_offset.as_deref()) {
                Some(o) if o == size => Next::Done,
                // A server may keep part of a chunk; it says where it stands.
                Some(o) if o > from && o <= to => Next::At {
                    location: None,
                    offset: o,
                },
                _ => Next::Probe,
            }
        }
        Step::Patch { .. } if s == 409 => Next::Probe,
        _ => Next::Fail(TaskError::http(s)),
    }
}

/// Attempts at deleting a canceled tus upload on its server (the termination
/// extension) within one worker life; the shell waits 1 s, then 2 s, between them.
/// Best effort: what is left on a server that never answers expires there.
pub const TERMINATE_ATTEMPTS: u32 = 3;

/// What a termination's answer (`None`: no answer, a network failure) means: done
/// (`Some(true)`: deleted, or already gone with `404`/`410`), refused for good
/// (`Some(false)`), or worth another attempt (`None`).
pub fn terminated(status: Option<u16>) -> Option<bool> {
    match status {
        Some(200..=299 | 404 | 410) => Some(true),
        None | Some(408 | 429 | 500..=599) => None,
        Some(_) => Some(false),
    }
}

/// The headers of a tus request (besides the app's own).
pub fn tus_headers(step: Step, info: &UploadInfo) -> Vec<(String, String)> {
    let mut h = vec![("tus-resumable".to_owned(), TUS_VERSION.to_owned())];
    match step {
        Step::Create => {
            h.push(("upload-length".into(), info.size.to_string()));
            if !info.metadata.is_empty() {
                h.push(("upload-metadata".into(), encode_metadata(&info.metadata)));
            }
        }
        Step::Patch { from, .. } => {
            h.push(("upload-offset".into(), from.to_string()));
            h.push((
                "content-type".into(),
                "application/offset+octet-stream".into(),
            ));
        }
        Step::Probe => {}
        Step::Whole => {
            return vec![("content-type".into(), info.content_type.clone())];
        }
    }
    h
}

/// `Upload-Metadata`: `key base64(value)` pairs separated by commas.
pub fn encode_metadata(pairs: &[(String, String)]) -> String {
    use base64::Engine as _;
    pairs
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                k.clone()
            } else {
                format!(
                    "{k} {}",
                    base64::engine::general_purpose::STANDARD.encode(v.as_bytes())
                )
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Validate tus metadata: keys are non-empty ASCII without spaces or commas; values
/// any text; at most 64 pairs and 16 KiB in all.
pub fn validate_metadata(pairs: Vec<(String, String)>) -> Result<Vec<(String, String)>, TaskError> {
    if pairs.len() > 64 {
        return Err(TaskError::invalid("at most 64 metadata entries"));
    }
    let total: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > 16 * 1024 {
        return Err(TaskError::invalid("the metadata exceed 16 KiB"));
    }
    for (k, _) in &pairs {
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return Err(TaskError::invalid(format!(
                "\"{k}\" is not a tus metadata key (ASCII, no spaces or commas)"
            )));
        }
    }
    Ok(pairs)
}

/// The next request of a tus upload, given what is known: no upload URL → create;
/// the server's offset unknown → probe; else the next chunk from `offset`.
pub fn next_tus_step(info: &UploadInfo, offset_known: bool, offset: u64) -> Step {
    if info.location.is_none() {
        Step::Create
    } else if !offset_known {
        Step::Probe
    } else {
        Step::Patch {
            from: offset,
            to: (offset + info.chunk_size).min(info.size),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, offset: Option<&str>, location: Option<&str>) -> UploadResponse {
        UploadResponse {
            status,
            location: location.map(Into::into),
            upload_offset: offset.map(Into::into),
            retry_after: None,
        }
    }

    fn info() -> UploadInfo {
        UploadInfo {
            protocol: UploadProtocol::Tus,
            size: 100,
            location: None,
            metadata: vec![("filename".into(), "a.bin".into())],
            content_type: "application/octet-stream".into(),
            chunk_size: 40,
        }
    }

    #[test]
    fn the_tus_rules_as_a_table() {
        let p = Step::Patch { from: 40, to: 80 };
        let cases: Vec<(Step, UploadResponse, Next)> = vec![
            (
                Step::Create,
                resp(201, None, Some("http://h/u/1")),
                Next::At {
                    location: Some("http://h/u/1".into()),
                    offset: 0,
                },
            ),
            (
                Step::Create,
                resp(201, None, None),
                Next::Fail(TaskError::new(ErrorCode::NotResumable, "x")),
            ),
            (
                Step::Create,
                resp(413, None, None),
                Next::Fail(TaskError::http(413)),
            ),
            (
                Step::Create,
                resp(503, None, None),
                Next::Retry { status: 503 },
            ),
            (
                Step::Probe,
                resp(200, Some("40"), None),
                Next::At {
                    location: None,
                    offset: 40,
                },
            ),
            (Step::Probe, resp(204, Some("100"), None), Next::Done),
            (
                Step::Probe,
                resp(200, Some("101"), None),
                Next::Fail(TaskError::new(ErrorCode::NotResumable, "x")),
            ),
            (
                Step::Probe,
                resp(200, None, None),
                Next::Fail(TaskError::new(ErrorCode::NotResumable, "x")),
            ),
            (
                Step::Probe,
                resp(200, Some("-1"), None),
                Next::Fail(TaskError::new(ErrorCode::NotResumable, "x")),
            ),
            (Step::Probe, resp(404, None, None), Next::Recreate),
            (Step::Probe, resp(410, None, None), Next::Recreate),
            (
                Step::Probe,
                resp(403, None, None),
                Next::Fail(TaskError::http(403)),
            ),
            (
                p,
                resp(204, Some("80"), None),
                Next::At {
                    location: None,
                    offset: 80,
                },
            ),
            (
                p,
                resp(204, Some("60"), None),
                Next::At {
                    location: None,
                    offset: 60,
                },
            ),
            (p, resp(204, Some("40"), None), Next::Probe),
            (p, resp(204, Some("90"), None), Next::Probe),
            (p, resp(204, None, None), Next::Probe),
            (
                Step::Patch { from: 80, to: 100 },
                resp(204, Some("100"), None),
                Next::Done,
            ),
            (p, resp(409, None, None), Next::Probe),
            (p, resp(410, None, None), Next::Recreate),
            (p, resp(429, None, None), Next::Retry { status: 429 }),
            (p, resp(460, None, None), Next::Fail(TaskError::http(460))),
            (Step::Whole, resp(201, None, None), Next::Done),
            (
                Step::Whole,
                resp(500, None, None),
                Next::Retry { status: 500 },
            ),
            (
                Step::Whole,
                resp(404, None, None),
                Next::Fail(TaskError::http(404)),
            ),
        ];
        for (step, r, want) in cases {
            let got = decide(step, 100, &r);
            match (&got, &want) {
                (Next::Fail(a), Next::Fail(b)) => assert_eq!(a.code, b.code, "{step:?} {r:?}"),
                _ => assert_eq!(got, want, "{step:?} {r:?}"),
            }
        }
    }

    #[test]
    fn steps_follow_what_is_known() {
        let mut i = info();
        assert_eq!(next_tus_step(&i, false, 0), Step::Create);
        i.location = Some("http://h/u/1".into());
        assert_eq!(next_tus_step(&i, false, 40), Step::Probe);
        assert_eq!(
            next_tus_step(&i, true, 40),
            Step::Patch { from: 40, to: 80 }
        );
        assert_eq!(
            next_tus_step(&i, true, 80),
            Step::Patch { from: 80, to: 100 }
        );
    }

    #[test]
    fn headers_and_metadata() {
        let i = info();
        let h = tus_headers(Step::Create, &i);
        assert!(h.contains(&("tus-resumable".into(), "1.0.0".into())));
        assert!(h.contains(&("upload-length".into(), "100".into())));
        assert!(h.contains(&("upload-metadata".into(), "filename YS5iaW4=".into())));
        let h = tus_headers(Step::Patch { from: 40, to: 80 }, &i);
        assert!(h.contains(&("upload-offset".into(), "40".into())));
        assert!(h.contains(&(
            "content-type".into(),
            "application/offset+octet-stream".into()
        )));
        assert_eq!(
            encode_metadata(&[("a".into(), String::new()), ("b".into(), "é".into())]),
            "a,b w6k="
        );
        assert!(validate_metadata(vec![("ok".into(), "v".into())]).is_ok());
        for bad in ["", "a b", "a,b", "é"] {
            assert!(
                validate_metadata(vec![(bad.into(), "v".into())]).is_err(),
                "{bad:?}"
            );
        }
        assert!(UploadProtocol::parse("tus").is_ok());
        assert!(UploadProtocol::parse("ftp").is_err());
    }

    #[test]
    fn a_termination_is_tried_again_only_when_it_may_still_succeed() {
        for (status, want) in [
            (Some(204), Some(true)),
            (Some(200), Some(true)),
            (Some(404), Some(true)),
            (Some(410), Some(true)),
            (None, None),
            (Some(503), None),
            (Some(429), None),
            (Some(408), None),
            (Some(403), Some(false)),
            (Some(401), Some(false)),
            (Some(412), Some(false)),
        ] {
            assert_eq!(terminated(status), want, "{status:?}");
        }
    }
}
