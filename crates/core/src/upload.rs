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
//!
//! The stored copy is checked, never trusted (see [`ChunkDigests`]): the SHA-256 of
//! each [`COPY_CHUNK`]-byte chunk is taken from the page's bytes as they are copied
//! in and kept with the task; every chunk is read back and checked after the copy,
//! and again, before each request, every chunk its body covers. A chunk that no
//! longer matches fails the task with `integrity` and frees the copy: the page must
//! hand the file over again; no byte of it is sent.
//!
//! tus checksum extension: where the server says it offers it with `sha256`, every
//! `PATCH` carries `Upload-Checksum: sha256 <base64>` of its exact body, and a `460`
//! (the bytes arrived damaged; the server kept none of them) sends the same bytes
//! again under the retry policy ([`Next::Resend`]). What the server offers is learnt
//! once per upload from an `OPTIONS` request to the endpoint ([`capabilities`]):
//! that is where the protocol puts `Tus-Extension` and `Tus-Checksum-Algorithm`
//! ("the Server MUST include them in the response to an OPTIONS request"), and where
//! `@tus/server` 2.4 sends `Tus-Extension` (its `POST`, `HEAD` and `PATCH` answers
//! carry neither header; its `FileStore` offers no `checksum` anyway); headers on
//! the creation or `HEAD` answers are not part of the protocol, so they are not read.
//! Where the headers are hidden by CORS (not in `Access-Control-Expose-Headers`) the
//! extension is not seen, and no checksum is sent: sending `Upload-Checksum` cross
//! origin needs the server to allow the header in its preflight answers, which a
//! server that exposes its checksum headers is taken to do.

use super::error::{ErrorCode, TaskError};
use super::http::MAX_SAFE;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
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
    /// The SHA-256 of each stored chunk of the copy, taken as it was copied in; empty
    /// in records written before longhaul took them (nothing to check those with).
    #[serde(default, skip_serializing_if = "ChunkDigests::is_empty")]
    pub chunk_sha256: ChunkDigests,
    /// Whether the tus server offers the checksum extension with `sha256`; `None`
    /// until asked ([`capabilities`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<bool>,
    /// The stored copy no longer matched its digests and was freed: the upload cannot
    /// go on (a `resume` fails it again, at once, without a request).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub discarded: bool,
}

/// Bytes per stored chunk of an upload's copy (the last one holds the remainder).
/// Each has its own digest, and requests read the chunks their range covers.
pub const COPY_CHUNK: u64 = 1 << 20;

/// How many chunks a copy of `size` bytes is stored as.
pub fn copy_chunks(size: u64) -> u64 {
    size.div_ceil(COPY_CHUNK)
}

/// The length of the stored chunk at `offset` (a multiple of [`COPY_CHUNK`] below
/// `size`) of a copy of `size` bytes.
pub fn copy_chunk_len(offset: u64, size: u64) -> u64 {
    size.saturating_sub(offset).min(COPY_CHUNK)
}

/// The stored chunks that hold bytes `[from, to)`: from the start of the chunk that
/// holds `from` to the end of the one that holds `to - 1` (`(from, from)` for an
/// empty range at a chunk's start), clipped to `size`.
pub fn covering_chunks(from: u64, to: u64, size: u64) -> (u64, u64) {
    let start = from - from % COPY_CHUNK;
    let end = to.div_ceil(COPY_CHUNK).saturating_mul(COPY_CHUNK).min(size);
    (start, end.max(start))
}

/// The SHA-256 of each stored chunk of an upload's copy, in order, taken from the
/// page's bytes as they were read (so they are the source's, not what storage gave
/// back). Stored in the task record as one base64 string of the digests end to end
/// (32 bytes, 44 characters per MiB of body: 43 KiB for a 1 GiB upload), so a check
/// after a restart has them.
///
/// Why: stored values are not proven faithful in any engine. Measured in WebKitGTK
/// 2.50.6, a `Blob.slice(a, b)` stored in IndexedDB is written as its whole source
/// file (each 1 MiB slice's `.blob` file held all 24 MiB), and once the slice object
/// is gone (a collection, a worker or browser restart) the record reads as the
/// source from byte 0: `size` 1 MiB, `slice(0, 1 MiB)` the source's first MiB,
/// `arrayBuffer()` all 24 MiB; every tus and `PUT` upload completed with the right
/// length and wrong bytes. The copy now stores real bytes, and these digests catch
/// whatever storage does to them later.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChunkDigests(Vec<[u8; 32]>);

impl ChunkDigests {
    /// No digests.
    pub fn new() -> ChunkDigests {
        ChunkDigests(Vec::new())
    }

    /// Append the next chunk's digest.
    pub fn push(&mut self, digest: [u8; 32]) {
        self.0.push(digest);
    }

    /// How many chunks they cover.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (an older record, or an empty body).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Check the stored chunk at `offset` of a copy of `size` bytes, read back as
    /// `len` bytes whose SHA-256 is `got`. With no digests (a record from before they
    /// were taken) nothing is checked. Every failure is `integrity`: the bytes are
    /// not the ones copied in.
    pub fn check(&self, size: u64, offset: u64, len: u64, got: &[u8; 32]) -> Result<(), TaskError> {
        if self.is_empty() {
            return Ok(());
        }
        if self.0.len() as u64 != copy_chunks(size) {
            return Err(copy_changed(format!(
                "its record holds {} chunk digests for {} chunks",
                self.0.len(),
                copy_chunks(size)
            )));
        }
        let want_len = copy_chunk_len(offset, size);
        if offset % COPY_CHUNK != 0 || offset >= size {
            return Err(copy_changed(format!("a chunk is stored at byte {offset}")));
        }
        if len != want_len {
            return Err(copy_changed(format!(
                "the chunk at byte {offset} reads as {len} bytes, not {want_len}"
            )));
        }
        if self.0[(offset / COPY_CHUNK) as usize] != *got {
            return Err(copy_changed(format!(
                "the chunk at byte {offset} no longer matches the SHA-256 taken when it was copied in"
            )));
        }
        Ok(())
    }
}

/// Check that the stored chunk at `offset`, which says it holds `claimed` bytes,
/// read as that many (`read`): any difference is damage (WebKit's stored slices
/// said 1 MiB and read as the whole source file), `integrity`.
pub fn check_read_len(offset: u64, claimed: u64, read: u64) -> Result<(), TaskError> {
    if claimed == read {
        return Ok(());
    }
    Err(copy_changed(format!(
        "the chunk at byte {offset} says it holds {claimed} bytes and reads as {read}"
    )))
}

/// The `integrity` error of a stored copy that is not what was copied in.
fn copy_changed(what: String) -> TaskError {
    TaskError::new(
        ErrorCode::Integrity,
        format!(
            "the stored copy of this upload is damaged ({what}); it was discarded and nothing of it was sent: hand the file over again"
        ),
    )
}

impl TryFrom<String> for ChunkDigests {
    type Error = TaskError;
    fn try_from(s: String) -> Result<ChunkDigests, TaskError> {
        let bytes = STANDARD
            .decode(s.as_bytes())
            .ok()
            .filter(|b| b.len() % 32 == 0)
            .ok_or_else(|| {
                TaskError::invalid("the chunk digests are not base64 of 32-byte digests")
            })?;
        Ok(ChunkDigests(
            bytes
                .chunks_exact(32)
                .map(|c| <[u8; 32]>::try_from(c).unwrap_or_default())
                .collect(),
        ))
    }
}

impl From<ChunkDigests> for String {
    fn from(d: ChunkDigests) -> String {
        STANDARD.encode(d.0.concat())
    }
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
    /// The server refused a `PATCH` whose bytes did not match its `Upload-Checksum`
    /// (`460`: damaged in transit; it kept none of them): send them again, under the
    /// retry policy, from the same offset.
    Resend {
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
        Step::Patch { .. } if s == CHECKSUM_MISMATCH => Next::Resend { status: s },
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

/// The status of a `PATCH` whose body did not match its `Upload-Checksum`.
pub const CHECKSUM_MISMATCH: u16 = 460;

/// Whether a tus server's `Tus-Extension` and `Tus-Checksum-Algorithm` headers say
/// it checks `Upload-Checksum: sha256 …` (both comma-separated lists, matched
/// without regard to case or spaces).
pub fn offers_sha256(extension: Option<&str>, algorithms: Option<&str>) -> bool {
    let lists = |v: Option<&str>, item: &str| {
        v.is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(item)))
    };
    lists(extension, "checksum") && lists(algorithms, "sha256")
}

/// What an `OPTIONS` request to a tus endpoint says about the checksum extension:
/// `answer` is its status and the two headers ([`offers_sha256`]), or `None` when
/// no answer came (a network failure, a timeout). `Some(offered)` is kept for the
/// rest of the upload; `None` (no answer, or a transient status) leaves it unknown,
/// so the next request asks again, unless `then_answered`: the request that followed
/// it got an answer from the same server, so `OPTIONS` alone fails there (as where
/// its CORS preflight is refused), and it is taken as not offered, for good.
pub fn capabilities(
    answer: Option<(u16, Option<&str>, Option<&str>)>,
    then_answered: bool,
) -> Option<bool> {
    match answer {
        Some((s, ext, alg)) if (200..300).contains(&s) => Some(offers_sha256(ext, alg)),
        Some((s, ..)) if !transient(s) => Some(false),
        _ => then_answered.then_some(false),
    }
}

/// Whether the shell asks the server what it offers (an `OPTIONS` to the endpoint)
/// before sending `step`: once per tus upload, before its creation (or, for one
/// created before longhaul asked, before its next `PATCH`).
pub fn asks_capabilities(step: Step, info: &UploadInfo) -> bool {
    info.protocol == UploadProtocol::Tus
        && info.checksum.is_none()
        && matches!(step, Step::Create | Step::Patch { .. })
}

/// Whether request `step` carries an `Upload-Checksum` of its body.
pub fn sends_checksum(step: Step, info: &UploadInfo) -> bool {
    info.protocol == UploadProtocol::Tus
        && info.checksum == Some(true)
        && matches!(step, Step::Patch { .. })
}

/// The headers of the `OPTIONS` request that asks a tus server what it offers:
/// `headers` (a request's: the app's, the credentials', the protocol's) without the
/// protocol's, which an `OPTIONS` does not take.
pub fn options_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    const PROTOCOL: [&str; 5] = [
        "tus-resumable",
        "upload-length",
        "upload-metadata",
        "upload-offset",
        "content-type",
    ];
    headers
        .iter()
        .filter(|(k, _)| !PROTOCOL.iter().any(|p| k.eq_ignore_ascii_case(p)))
        .cloned()
        .collect()
}

/// The `Upload-Checksum` header of a body whose SHA-256 is `digest`.
pub fn checksum_header(digest: &[u8; 32]) -> (String, String) {
    (
        "upload-checksum".into(),
        format!("sha256 {}", STANDARD.encode(digest)),
    )
}

/// `Upload-Metadata`: `key base64(value)` pairs separated by commas.
pub fn encode_metadata(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                k.clone()
            } else {
                format!("{k} {}", STANDARD.encode(v.as_bytes()))
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
            chunk_sha256: ChunkDigests::new(),
            checksum: None,
            discarded: false,
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
            (p, resp(460, None, None), Next::Resend { status: 460 }),
            (
                Step::Whole,
                resp(460, None, None),
                Next::Fail(TaskError::http(460)),
            ),
            (
                Step::Create,
                resp(460, None, None),
                Next::Fail(TaskError::http(460)),
            ),
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

    fn sha(data: &[u8]) -> [u8; 32] {
        use sha2::Digest as _;
        sha2::Sha256::digest(data).into()
    }

    #[test]
    fn a_copy_is_chunked_and_ranges_name_the_chunks_that_hold_them() {
        const C: u64 = COPY_CHUNK;
        assert_eq!(copy_chunks(0), 0);
        assert_eq!(copy_chunks(1), 1);
        assert_eq!(copy_chunks(C), 1);
        assert_eq!(copy_chunks(C + 1), 2);
        assert_eq!(copy_chunk_len(0, C + 5), C);
        assert_eq!(copy_chunk_len(C, C + 5), 5);
        assert_eq!(copy_chunk_len(2 * C, C + 5), 0);
        let size = 3 * C + 100;
        for (from, to, want) in [
            (0, 0, (0, 0)),
            (0, 1, (0, C)),
            (0, C, (0, C)),
            (0, C + 1, (0, 2 * C)),
            (C - 1, C + 1, (0, 2 * C)),
            (C, 2 * C, (C, 2 * C)),
            (C + 7, 3 * C + 100, (C, 3 * C + 100)),
            (3 * C + 100, 3 * C + 100, (3 * C, 3 * C + 100)),
            (2 * C, 2 * C, (2 * C, 2 * C)),
        ] {
            assert_eq!(covering_chunks(from, to, size), want, "{from}..{to}");
        }
    }

    #[test]
    fn a_stored_chunk_must_match_its_digest_length_and_place() {
        let size = COPY_CHUNK + 3;
        let (a, b) = (vec![7u8; COPY_CHUNK as usize], vec![1u8, 2, 3]);
        let mut d = ChunkDigests::new();
        d.push(sha(&a));
        d.push(sha(&b));
        assert!(d.check(size, 0, COPY_CHUNK, &sha(&a)).is_ok());
        assert!(d.check(size, COPY_CHUNK, 3, &sha(&b)).is_ok());
        let bad = [
            // Other bytes (WebKit's: the first chunk's bytes where the second's were).
            d.check(size, COPY_CHUNK, 3, &sha(&a[..3])),
            // The right bytes in the wrong place.
            d.check(size, 0, COPY_CHUNK, &sha(&b)),
            // A record that reads longer than it was written (WebKit's `arrayBuffer()`
            // of a stored slice gives the whole source).
            d.check(size, 0, size, &sha(&a)),
            d.check(size, 5, COPY_CHUNK, &sha(&a)),
            d.check(size, 2 * COPY_CHUNK, 3, &sha(&b)),
            // Digests of another size.
            d.check(3 * COPY_CHUNK, 0, COPY_CHUNK, &sha(&a)),
        ];
        for (i, r) in bad.into_iter().enumerate() {
            let e = r.unwrap_err();
            assert_eq!(e.code, ErrorCode::Integrity, "case {i}");
            assert!(e.message.contains("discarded"), "case {i}: {}", e.message);
        }
        // A record from before digests were taken: nothing to check against.
        assert!(ChunkDigests::new().check(size, 0, 1, &sha(b"x")).is_ok());
        // Whatever the digests, a record must read as long as it says it is.
        assert!(check_read_len(0, COPY_CHUNK, COPY_CHUNK).is_ok());
        let e = check_read_len(COPY_CHUNK, COPY_CHUNK, 24 * COPY_CHUNK).unwrap_err();
        assert_eq!(e.code, ErrorCode::Integrity);
        assert!(e.message.contains("reads as 25165824"), "{}", e.message);
    }

    #[test]
    fn digests_and_new_fields_round_trip_and_older_records_still_load() {
        let mut i = info();
        i.chunk_sha256.push(sha(b"a"));
        i.chunk_sha256.push(sha(b"b"));
        i.checksum = Some(true);
        i.discarded = true;
        let json = serde_json::to_string(&i).unwrap();
        assert!(json.contains("\"chunk_sha256\":\""), "one string: {json}");
        assert_eq!(serde_json::from_str::<UploadInfo>(&json).unwrap(), i);
        // An older record: none of the new fields.
        let old = r#"{"protocol":"tus","size":100,"location":null,"metadata":[],"content_type":"x","chunk_size":40}"#;
        let o: UploadInfo = serde_json::from_str(old).unwrap();
        assert!(o.chunk_sha256.is_empty());
        assert_eq!((o.checksum, o.discarded), (None, false));
        // And a new record without them writes none of them.
        let plain = serde_json::to_string(&info()).unwrap();
        for k in ["chunk_sha256", "checksum", "discarded"] {
            assert!(!plain.contains(k), "{plain}");
        }
        for bad in ["\"not base64!\"", "\"YWJj\""] {
            let j = old.replace(
                "\"chunk_size\":40",
                &format!("\"chunk_size\":40,\"chunk_sha256\":{bad}"),
            );
            assert!(serde_json::from_str::<UploadInfo>(&j).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_checksum_extension_is_read_from_the_servers_headers() {
        assert!(offers_sha256(
            Some("creation,termination,checksum"),
            Some("md5,sha1, SHA256")
        ));
        assert!(offers_sha256(Some(" Checksum "), Some("sha256")));
        for (ext, alg) in [
            (None, Some("sha256")),
            (Some("checksum"), None),
            (Some("creation,termination"), Some("sha256")),
            (Some("checksum-trailer"), Some("sha256")),
            (Some("checksum"), Some("sha1,md5")),
            (Some("checksum"), Some("sha2566")),
        ] {
            assert!(!offers_sha256(ext, alg), "{ext:?} {alg:?}");
        }
        let yes = Some((204, Some("checksum"), Some("sha256")));
        assert_eq!(capabilities(yes, false), Some(true));
        assert_eq!(
            capabilities(Some((200, Some("creation"), None)), false),
            Some(false)
        );
        // No OPTIONS route (or no right to it): not offered, for good.
        for s in [404, 405, 403, 401] {
            assert_eq!(capabilities(Some((s, None, None)), false), Some(false));
        }
        // No answer, or a transient one: asked again, unless the next request was
        // answered (then OPTIONS alone fails there).
        for a in [None, Some((503, None, None)), Some((429, None, None))] {
            assert_eq!(capabilities(a, false), None, "{a:?}");
            assert_eq!(capabilities(a, true), Some(false), "{a:?}");
        }
    }

    #[test]
    fn capabilities_are_asked_once_and_the_checksum_goes_on_patches_only() {
        let mut i = info();
        let patch = Step::Patch { from: 0, to: 40 };
        assert!(asks_capabilities(Step::Create, &i));
        assert!(asks_capabilities(patch, &i), "an upload created earlier");
        assert!(!asks_capabilities(Step::Probe, &i));
        assert!(!sends_checksum(patch, &i));
        i.checksum = Some(true);
        assert!(!asks_capabilities(Step::Create, &i));
        assert!(sends_checksum(patch, &i));
        assert!(!sends_checksum(Step::Create, &i));
        assert!(!sends_checksum(Step::Probe, &i));
        i.checksum = Some(false);
        assert!(!sends_checksum(patch, &i));
        let mut put = info();
        put.protocol = UploadProtocol::Put;
        assert!(!asks_capabilities(Step::Whole, &put));
        put.checksum = Some(true);
        assert!(!sends_checksum(Step::Whole, &put));
        let mut h = tus_headers(Step::Create, &info());
        h.insert(0, ("authorization".into(), "Bearer x".into()));
        h.push(("X-App".into(), "1".into()));
        assert_eq!(
            options_headers(&h),
            vec![
                ("authorization".to_string(), "Bearer x".to_string()),
                ("X-App".to_string(), "1".to_string())
            ]
        );
        // The SHA-256 of "hello world" (as `sha256sum | xxd -r -p | base64` gives it).
        let (k, v) = checksum_header(&sha(b"hello world"));
        assert_eq!(k, "upload-checksum");
        assert_eq!(v, "sha256 uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=");
    }
}
