//! The pure core: every decision longhaul makes, with no I/O and no clock.
//!
//! The shell (service-worker runtime) feeds inputs into an [`engine::Engine`] through
//! its `handle_*` methods (a user command, a response head, a committed chunk, a body
//! that ended, a failure, a timer) and drains outputs with [`engine::Engine::poll_output`]
//! (a request to start, a request to abort, a record to persist, bytes to drop, an
//! event to publish) and [`engine::Engine::poll_timeout`] (when to wake it next).
//! Time is always a parameter (milliseconds since the Unix epoch, as `f64`, the web's
//! clock), randomness for jitter comes from a seeded generator, so every behaviour is
//! reproducible in native tests.
//!
//! Input from pages is parsed once at the edge ([`validate`]) into types that cannot
//! hold invalid values ([`validate::SessionId`], [`validate::HttpUrl`],
//! [`validate::HeaderList`]).
//!
//! A crate of its own, with no wasm-bindgen, web-sys or js-sys among its
//! dependencies, so that the compiler keeps it pure; the `longhaul` crate (the
//! browser shell) re-exports it as `longhaul::core`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod commit;
pub mod config;
pub mod engine;
pub mod error;
pub mod http;
pub mod integrity;
pub mod network;
pub mod profile;
pub mod protocol;
pub mod retry;
pub mod task;
pub mod transfer;
pub mod upload;
pub mod validate;

pub use engine::{Engine, EngineConfig, Output};
pub use error::{ErrorCode, TaskError};
pub use task::{TaskId, TaskKind, TaskRecord, TaskSnapshot, TaskState};
