//! The messages pages send the worker, validated once here.
//!
//! A page posts `{ longhaul: 1, op, session, ... }` with a `MessagePort` for the reply;
//! the worker reads it into a [`RawCommand`] and [`RawCommand::validate`]s it
//! into a [`Command`] whose fields cannot hold invalid values.
//!
//! Pages of one version can talk to a worker of another across an update (a page
//! stays open while the worker is replaced), so the version stays 1 and a change of
//! answer is asked for by a new optional field, which an older worker ignores: a
//! page's `blob` asks for the stored `pieces` (see `RawCommand::pieces`).

use super::config::SessionConfig;
use super::engine::resume_data::ResumeData;
use super::error::TaskError;
use super::integrity::Integrity;
use super::task::TaskId;
use super::upload::{self, UploadProtocol};
use super::validate::{self, HeaderList, SessionId, UrlParts};

/// The protocol version pages speak (`longhaul: 1`).
pub const PROTOCOL: u32 = 1;

/// The `BroadcastChannel` the worker publishes task events on and pages listen on.
pub const CHANNEL: &str = "longhaul";

/// A command as it arrives, before validation. The worker reads it out of the
/// page's message (`from_js::command`); its fields are the message's properties in
/// camelCase (`max_bytes` is `maxBytes`), each absent when `undefined` or `null`.
#[derive(Debug, Clone, Default)]
pub struct RawCommand {
    /// Protocol version.
    pub longhaul: u32,
    /// Operation name.
    pub op: String,
    /// Session identifier.
    pub session: String,
    /// Task id, for task commands.
    pub id: Option<String>,
    /// URL, for `download` (already resolved against the page's URL).
    pub url: Option<String>,
    /// Request headers, for `download`.
    pub headers: Vec<(String, String)>,
    /// Description, for `download`.
    pub description: Option<String>,
    /// `maxBytes`, for `download`: a positive integer up to 2^53.
    pub max_bytes: Option<f64>,
    /// Session configuration, for `open`.
    pub config: Option<SessionConfig>,
    /// Whether the page's browser is online, for `network`.
    pub online: Option<bool>,
    /// Subresource Integrity metadata, for `download`.
    pub integrity: Option<String>,
    /// Names of headers to treat as credentials besides `authorization`, for
    /// `download`.
    pub sensitive_headers: Option<Vec<String>>,
    /// Store credential headers with the task (off by default), for `download` and
    /// `upload`.
    pub persist_credentials: Option<bool>,
    /// `'tus'` (default), `'put'` or `'post'`, for `upload`.
    pub protocol: Option<String>,
    /// tus `Upload-Metadata` pairs, for `upload`.
    pub metadata: Option<Vec<(String, String)>>,
    /// Bytes per tus `PATCH`, for `upload`.
    pub chunk_size: Option<f64>,
    /// `Content-Type` of a `put`/`post` body, for `upload`.
    pub content_type: Option<String>,
    /// 0 to 1, for `download` and `upload`.
    pub priority: Option<f64>,
    /// ms since the epoch, for `download` and `upload`.
    pub earliest_begin: Option<f64>,
    /// Bytes the app expects, for `download`.
    pub expected_bytes: Option<f64>,
    /// Keep the bytes and return resume data, for `cancel`.
    pub produce_resume_data: Option<bool>,
    /// Resume data to continue from, for `download` (instead of a URL).
    pub resume_data: Option<ResumeData>,
    /// Cancel every task too, for `invalidate`.
    pub cancel: Option<bool>,
    /// What `navigator.connection` says, for `network`.
    pub connection: Option<crate::network::NetworkReport>,
    /// Refuse to create the session, for `open`.
    pub must_exist: Option<bool>,
    /// For `blob`: answer the stored pieces for the page to compose, not one Blob.
    /// Pages since the pieces were introduced ask for them; an older page's `blob`
    /// still gets the one Blob it expects.
    pub pieces: Option<bool>,
}

/// Scheduling options every new task takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// 0 to 1.
    pub priority: f64,
    /// Not before this, ms since the epoch.
    pub earliest_begin: Option<f64>,
}

/// A validated command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Open (create if needed, unless `must_exist`) the session; with a
    /// configuration, set it.
    Open {
        /// The configuration to store, if given.
        config: Option<SessionConfig>,
        /// Refuse (`not-found`) instead of creating a session that is not stored.
        must_exist: bool,
    },
    /// Keep the worker alive; no effect otherwise.
    Ping,
    /// A page's `online`/`offline` event.
    Network(bool),
    /// A page's report of `navigator.connection`.
    Connection(crate::network::NetworkReport),
    /// List the session's tasks.
    Tasks,
    /// One task.
    Task(TaskId),
    /// A completed download's bytes, as a Blob composed of the stored chunks, or
    /// (`pieces`) as those chunks in order, for the page to compose.
    Blob {
        /// The task.
        id: TaskId,
        /// Answer the pieces.
        pieces: bool,
    },
    /// Start a download (the URL still needs the browser's parser: see [`Download`]).
    Download(Download),
    /// Start an upload of the body that came with the command.
    Upload(Upload),
    /// Pause.
    Pause(TaskId),
    /// Resume.
    Resume(TaskId),
    /// Cancel.
    Cancel(TaskId),
    /// Cancel a download, keeping its bytes, and return resume data.
    CancelForResume(TaskId),
    /// Revive a download from resume data.
    ResumeFrom(Box<ResumeData>),
    /// Forget an ended task.
    Remove(TaskId),
    /// `finishTasksAndInvalidate` (`cancel: false`) or `invalidateAndCancel`.
    Invalidate {
        /// Cancel and forget every task at once.
        cancel: bool,
    },
}

/// A download command's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Download {
    /// The absolute URL string; the shell parses it into [`UrlParts`].
    pub url: String,
    /// Validated headers that are stored with the task.
    pub headers: HeaderList,
    /// Validated credential headers, kept in the worker's memory only (empty when
    /// the app asked for them to be stored).
    pub secrets: HeaderList,
    /// What the stored file must match.
    pub integrity: Option<Integrity>,
    /// Validated description.
    pub description: String,
    /// Most bytes the task may store.
    pub max_bytes: Option<u64>,
    /// Bytes the app expects (checked against the budget and quota up front).
    pub expected_bytes: Option<u64>,
    /// Priority and earliest begin.
    pub schedule: Schedule,
}

/// An upload command's arguments (the body itself travels beside the command).
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    /// The absolute URL string (the tus endpoint, or where to `PUT`/`POST`).
    pub url: String,
    /// Validated headers that are stored with the task.
    pub headers: HeaderList,
    /// Credential headers, kept in memory only.
    pub secrets: HeaderList,
    /// Validated description.
    pub description: String,
    /// Protocol.
    pub protocol: UploadProtocol,
    /// tus metadata.
    pub metadata: Vec<(String, String)>,
    /// Bytes per `PATCH`.
    pub chunk_size: u64,
    /// Body type for `PUT`/`POST`.
    pub content_type: String,
    /// Priority and earliest begin.
    pub schedule: Schedule,
}

/// Parse the URL parts the browser gave into a validated URL, for a worker whose
/// origin has the scheme `origin_protocol` (`"https:"`).
pub fn download_url(
    parts: UrlParts,
    origin_protocol: &str,
) -> Result<validate::HttpUrl, TaskError> {
    validate::HttpUrl::for_origin(parts, origin_protocol)
}

impl RawCommand {
    fn checked_url(&self) -> Result<String, TaskError> {
        let url = self
            .url
            .clone()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| TaskError::invalid("a URL is required"))?;
        if url.len() > 64 * 1024 {
            return Err(TaskError::invalid("the URL is longer than 64 KiB"));
        }
        Ok(url)
    }

    fn checked_schedule(&self) -> Result<Schedule, TaskError> {
        let priority = self.priority.unwrap_or(super::task::DEFAULT_PRIORITY);
        if !(0.0..=1.0).contains(&priority) {
            return Err(TaskError::invalid("priority must be a number from 0 to 1"));
        }
        if let Some(t) = self.earliest_begin {
            if !t.is_finite() || t.abs() > 8.64e15 {
                return Err(TaskError::invalid(
                    "earliestBegin must be a valid Date (or ms since the epoch)",
                ));
            }
        }
        Ok(Schedule {
            priority,
            earliest_begin: self.earliest_begin,
        })
    }

    /// The headers to store and the credentials to keep in memory only.
    fn checked_headers(&self) -> Result<(HeaderList, HeaderList), TaskError> {
        let headers = HeaderList::parse(self.headers.clone())?;
        let sensitive = validate::header_names(self.sensitive_headers.as_deref().unwrap_or(&[]))?;
        Ok(if self.persist_credentials == Some(true) {
            (headers, HeaderList::default())
        } else {
            headers.split_sensitive(&sensitive)
        })
    }

    /// Validate into a session and a command.
    pub fn validate(self) -> Result<(SessionId, Command), TaskError> {
        if self.longhaul != PROTOCOL {
            return Err(TaskError::invalid(format!(
                "protocol {} is not spoken here (expected {PROTOCOL})",
                self.longhaul
            )));
        }
        let session = SessionId::parse(&self.session)?;
        let id = || -> Result<TaskId, TaskError> {
            match self.id.as_deref() {
                Some(s) if !s.is_empty() && s.len() <= 128 => Ok(TaskId(s.to_owned())),
                _ => Err(TaskError::invalid(
                    "a task id (a non-empty string) is required",
                )),
            }
        };
        let cmd = match self.op.as_str() {
            "open" => Command::Open {
                config: self
                    .config
                    .clone()
                    .map(SessionConfig::validated)
                    .transpose()?,
                must_exist: self.must_exist == Some(true),
            },
            "ping" => Command::Ping,
            "network" if self.connection.is_some() => Command::Connection(
                self.connection
                    .clone()
                    .ok_or_else(|| TaskError::invalid("a connection report is missing"))?,
            ),
            "network" => Command::Network(
                self.online
                    .ok_or_else(|| TaskError::invalid("network needs online: true or false"))?,
            ),
            "tasks" => Command::Tasks,
            "task" => Command::Task(id()?),
            "blob" => Command::Blob {
                id: id()?,
                pieces: self.pieces == Some(true),
            },
            "pause" => Command::Pause(id()?),
            "resume" => Command::Resume(id()?),
            "cancel" if self.produce_resume_data == Some(true) => Command::CancelForResume(id()?),
            "cancel" => Command::Cancel(id()?),
            "download" if self.resume_data.is_some() => Command::ResumeFrom(Box::new(
                self.resume_data
                    .clone()
                    .ok_or_else(|| TaskError::invalid("resume data is missing"))?,
            )),
            "remove" => Command::Remove(id()?),
            "invalidate" => Command::Invalidate {
                cancel: self.cancel == Some(true),
            },
            "upload" => {
                let url = self.checked_url()?;
                let (headers, secrets) = self.checked_headers()?;
                let protocol = UploadProtocol::parse(self.protocol.as_deref().unwrap_or("tus"))?;
                let chunk_size = match self.chunk_size {
                    None => upload::DEFAULT_CHUNK,
                    Some(c) => {
                        let c = validate::byte_count(c).map_err(|_| {
                            TaskError::invalid("chunkSize must be a whole number of bytes")
                        })?;
                        let (lo, hi) = upload::CHUNK_RANGE;
                        if !(lo..=hi).contains(&c) {
                            return Err(TaskError::invalid(format!(
                                "chunkSize must be from {lo} to {hi} bytes"
                            )));
                        }
                        c
                    }
                };
                let content_type = self
                    .content_type
                    .clone()
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| "application/octet-stream".into());
                if content_type.len() > 256 || content_type.bytes().any(|b| b < 0x20 || b == 0x7f) {
                    return Err(TaskError::invalid("contentType is not a valid media type"));
                }
                Command::Upload(Upload {
                    url,
                    headers,
                    secrets,
                    description: validate::description(self.description.clone())?,
                    protocol,
                    metadata: upload::validate_metadata(self.metadata.clone().unwrap_or_default())?,
                    chunk_size,
                    content_type,
                    schedule: self.checked_schedule()?,
                })
            }
            "download" => {
                let url = self.checked_url()?;
                let (headers, secrets) = self.checked_headers()?;
                Command::Download(Download {
                    url,
                    headers,
                    secrets,
                    integrity: self
                        .integrity
                        .as_deref()
                        .map(Integrity::parse)
                        .transpose()?,
                    description: validate::description(self.description.clone())?,
                    max_bytes: self.max_bytes.map(validate::byte_count).transpose()?,
                    expected_bytes: self.expected_bytes.map(validate::byte_count).transpose()?,
                    schedule: self.checked_schedule()?,
                })
            }
            other => return Err(TaskError::invalid(format!("unknown operation \"{other}\""))),
        };
        Ok((session, cmd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn raw(op: &str) -> RawCommand {
        RawCommand {
            longhaul: 1,
            op: op.into(),
            session: "s".into(),
            ..RawCommand::default()
        }
    }

    #[test]
    fn blob_answers_pieces_only_when_asked() {
        let mut b = raw("blob");
        b.id = Some("t".into());
        let of = |b: &RawCommand| match b.clone().validate() {
            Ok((_, Command::Blob { id, pieces })) => (id.0, pieces),
            other => panic!("{other:?}"),
        };
        assert_eq!(of(&b), ("t".into(), false), "an older page gets one Blob");
        b.pieces = Some(true);
        assert_eq!(of(&b), ("t".into(), true));
    }

    #[test]
    fn schedules_validate() {
        let mut d = raw("download");
        d.url = Some("https://a.test/f".into());
        for bad in [-0.1, 1.5, f64::NAN] {
            d.priority = Some(bad);
            assert!(d.clone().validate().is_err(), "priority {bad}");
        }
        d.priority = Some(1.0);
        for bad in [f64::NAN, f64::INFINITY, 1e16] {
            d.earliest_begin = Some(bad);
            assert!(d.clone().validate().is_err(), "earliestBegin {bad}");
        }
        d.earliest_begin = Some(1.8e12);
        d.expected_bytes = Some(-3.0);
        assert!(d.clone().validate().is_err());
        d.expected_bytes = Some(1e6);
        let (_, Command::Download(dl)) = d.validate().unwrap() else {
            panic!()
        };
        assert_eq!(
            (
                dl.schedule.priority,
                dl.schedule.earliest_begin,
                dl.expected_bytes
            ),
            (1.0, Some(1.8e12), Some(1_000_000))
        );
    }

    #[test]
    fn uploads_validate() {
        let mut u = raw("upload");
        u.url = Some("https://a.test/files/".into());
        let (_, Command::Upload(up)) = u.clone().validate().unwrap() else {
            panic!()
        };
        assert_eq!(up.protocol, UploadProtocol::Tus);
        assert_eq!(up.chunk_size, upload::DEFAULT_CHUNK);
        for (field, bad) in [
            ("protocol", "ftp"),
            ("chunk", "0"),
            ("chunk", "1.5"),
            ("chunk", "1000"),
            ("meta", "bad key"),
            ("type", "a\nb"),
        ] {
            let mut b = u.clone();
            match field {
                "protocol" => b.protocol = Some(bad.into()),
                "chunk" => b.chunk_size = Some(bad.parse().unwrap()),
                "meta" => b.metadata = Some(vec![(bad.into(), "v".into())]),
                _ => b.content_type = Some(bad.into()),
            }
            assert_eq!(
                b.validate().unwrap_err().code,
                crate::ErrorCode::InvalidInput,
                "{field} {bad}"
            );
        }
        u.protocol = Some("put".into());
        u.chunk_size = Some(1_048_576.0);
        let (_, Command::Upload(up)) = u.validate().unwrap() else {
            panic!()
        };
        assert_eq!((up.protocol, up.chunk_size), (UploadProtocol::Put, 1 << 20));
    }

    #[test]
    fn commands_validate() {
        assert_eq!(raw("tasks").validate().unwrap().1, Command::Tasks);
        let mut c = raw("pause");
        assert_eq!(
            c.clone().validate().unwrap_err().code,
            ErrorCode::InvalidInput
        );
        c.id = Some("t1".into());
        assert_eq!(c.validate().unwrap().1, Command::Pause(TaskId("t1".into())));
        assert!(raw("explode").validate().is_err());
        let mut v = raw("tasks");
        v.longhaul = 2;
        assert!(v.validate().is_err());
        let mut s = raw("tasks");
        s.session = String::new();
        assert!(s.validate().is_err());
    }

    #[test]
    fn sizes_and_configs_validate() {
        let mut d = raw("download");
        d.url = Some("https://a.test/f".into());
        for bad in [
            -1.0,
            0.0,
            1.5,
            f64::NAN,
            f64::INFINITY,
            9_007_199_254_740_994.0,
        ] {
            d.max_bytes = Some(bad);
            assert!(d.clone().validate().is_err(), "{bad}");
        }
        d.max_bytes = Some(4096.0);
        let (_, Command::Download(dl)) = d.validate().unwrap() else {
            panic!()
        };
        assert_eq!(dl.max_bytes, Some(4096));
        let mut o = raw("open");
        o.config = Some(SessionConfig::default());
        assert!(o.clone().validate().is_ok());
        o.config = Some(SessionConfig {
            retry: crate::retry::RetryPolicy {
                jitter: 2.0,
                ..Default::default()
            },
            ..Default::default()
        });
        assert!(o.clone().validate().is_err());
        for bad in [0.0, 99.0, f64::NAN, 86_400_001.0] {
            o.config = Some(SessionConfig {
                request_timeout: bad,
                ..Default::default()
            });
            assert!(o.clone().validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn downloads_validate() {
        let mut d = raw("download");
        assert!(d.clone().validate().is_err(), "no URL");
        d.url = Some("https://a.test/f".into());
        d.headers = vec![("X-A".into(), "1".into())];
        let (_, Command::Download(dl)) = d.clone().validate().unwrap() else {
            panic!()
        };
        assert_eq!(dl.headers.pairs(), &[("x-a".into(), "1".into())]);
        d.headers = vec![("X-A".into(), "1\r\nX-B: 2".into())];
        assert!(d.validate().is_err());
    }

    #[test]
    fn credentials_stay_out_of_the_record_unless_asked_for() {
        let mut d = raw("download");
        d.url = Some("https://a.test/f".into());
        d.headers = vec![
            ("Authorization".into(), "Bearer t".into()),
            ("X-Api-Key".into(), "k".into()),
            ("X-Plain".into(), "p".into()),
        ];
        d.sensitive_headers = Some(vec!["x-API-key".into()]);
        let (_, Command::Download(dl)) = d.clone().validate().unwrap() else {
            panic!()
        };
        assert_eq!(dl.headers.pairs(), &[("x-plain".into(), "p".into())]);
        assert_eq!(
            dl.secrets.pairs(),
            &[
                ("authorization".into(), "Bearer t".into()),
                ("x-api-key".into(), "k".into())
            ]
        );
        d.persist_credentials = Some(true);
        let (_, Command::Download(dl)) = d.clone().validate().unwrap() else {
            panic!()
        };
        assert_eq!(dl.headers.pairs().len(), 3);
        assert!(dl.secrets.pairs().is_empty());
        d.sensitive_headers = Some(vec!["bad name".into()]);
        assert!(d.validate().is_err());
    }

    #[test]
    fn integrity_is_parsed_at_the_edge() {
        let mut d = raw("download");
        d.url = Some("https://a.test/f".into());
        d.integrity = Some("sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=".into());
        let (_, Command::Download(dl)) = d.clone().validate().unwrap() else {
            panic!()
        };
        assert!(dl.integrity.is_some());
        d.integrity = Some("sha256-nope".into());
        assert_eq!(
            d.validate().unwrap_err().code,
            crate::ErrorCode::InvalidInput
        );
    }
}
