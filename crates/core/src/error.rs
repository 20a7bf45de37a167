//! Typed errors with stable codes a program can switch on.
//!
//! The `code` strings are part of the public API (they reach pages as
//! `snapshot.error.code` and as the `code` property of rejected promises); never
//! rename one, only add.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A stable, machine-readable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The caller passed something invalid (identifier, URL, header, option).
    InvalidInput,
    /// The network failed (connection refused or reset, DNS, CORS) after every retry.
    Network,
    /// The server answered with an HTTP status that ends the task (`status` is set).
    HttpStatus,
    /// No byte arrived for longer than the stall timeout, after every retry.
    Timeout,
    /// The server's answer cannot be used to continue (a malformed `Content-Range`,
    /// more bytes than declared), or it changed too often to finish.
    NotResumable,
    /// Storage refused to hold the bytes (`QuotaExceededError`).
    Quota,
    /// IndexedDB failed in another way.
    Storage,
    /// The task was canceled.
    Canceled,
    /// The resource is larger than the task's `maxBytes`.
    TooLarge,
    /// The bytes do not match the task's `integrity` metadata, or an upload's stored
    /// copy no longer matches the digests taken as it was copied in; they were
    /// discarded (nothing of a damaged upload copy is sent).
    Integrity,
    /// The session's `byteBudget` has no room for the resource.
    OverBudget,
    /// No task with that id exists in this session.
    NotFound,
    /// The command does not apply to the task in its current state.
    InvalidState,
    /// No service worker runs longhaul for this page.
    NoWorker,
    /// A bug or an unexpected browser answer.
    Internal,
}

impl ErrorCode {
    /// The code as the string pages see.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidInput => "invalid-input",
            ErrorCode::Network => "network",
            ErrorCode::HttpStatus => "http-status",
            ErrorCode::Timeout => "timeout",
            ErrorCode::NotResumable => "not-resumable",
            ErrorCode::Quota => "quota",
            ErrorCode::Storage => "storage",
            ErrorCode::Canceled => "canceled",
            ErrorCode::TooLarge => "too-large",
            ErrorCode::Integrity => "integrity",
            ErrorCode::OverBudget => "over-budget",
            ErrorCode::NotFound => "not-found",
            ErrorCode::InvalidState => "invalid-state",
            ErrorCode::NoWorker => "no-worker",
            ErrorCode::Internal => "internal",
        }
    }
}

impl ErrorCode {
    /// Every code, for parsing and documentation.
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::InvalidInput,
        ErrorCode::Network,
        ErrorCode::HttpStatus,
        ErrorCode::Timeout,
        ErrorCode::NotResumable,
        ErrorCode::Quota,
        ErrorCode::Storage,
        ErrorCode::Canceled,
        ErrorCode::TooLarge,
        ErrorCode::Integrity,
        ErrorCode::OverBudget,
        ErrorCode::NotFound,
        ErrorCode::InvalidState,
        ErrorCode::NoWorker,
        ErrorCode::Internal,
    ];

    /// The code whose string is `s`.
    pub fn parse(s: &str) -> Option<ErrorCode> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with a code, a message a person can act on, and the HTTP status if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskError {
    /// The stable code.
    pub code: ErrorCode,
    /// What happened and, where possible, what to do about it.
    pub message: String,
    /// The HTTP status that caused the error, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

impl TaskError {
    /// A new error without a status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        TaskError {
            code,
            message: message.into(),
            status: None,
        }
    }

    /// An `invalid-input` error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    /// An `http-status` error for `status`.
    pub fn http(status: u16) -> Self {
        TaskError {
            code: ErrorCode::HttpStatus,
            message: format!("the server answered HTTP {status}"),
            status: Some(status),
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for TaskError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_strings_and_serde() {
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(c.as_str()), Some(c));
            let quoted = format!("{:?}", c.as_str());
            let via_serde: ErrorCode =
                serde::de::Deserialize::deserialize(serde::de::value::StrDeserializer::<
                    serde::de::value::Error,
                >::new(c.as_str()))
                .unwrap();
            assert_eq!(via_serde, c, "{quoted}");
        }
        assert_eq!(ErrorCode::parse("nope"), None);
    }
}
