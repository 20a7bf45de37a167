//! # longhaul
//!
//! Background download sessions for the web, in the spirit of
//! `URLSessionConfiguration.background(withIdentifier:)`: a page opens a session by
//! identifier and hands it downloads; a service worker runs them, keeping every task's
//! state and bytes in IndexedDB, so transfers continue when tabs close and resume from
//! the last committed byte after the worker is stopped or the browser is killed.
//!
//! ## Layers
//!
//! - [`core`]: pure Rust, sans-IO. Task states, HTTP resume rules, retry and backoff,
//!   scheduling and input validation. No clock reads, no I/O; tested natively.
//! - `store` (wasm only): IndexedDB schema and transactions.
//! - `net` (wasm only): `fetch`, body streaming, abort.
//! - `worker` (wasm only): the service-worker runtime that owns every task.
//! - `client` (wasm only): the page-side `BackgroundSession` API.
//!
//! Only `core` is compiled for native targets; everything else needs a browser.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod core;

#[cfg(target_arch = "wasm32")]
mod client;
#[cfg(target_arch = "wasm32")]
mod js;
#[cfg(target_arch = "wasm32")]
mod net;
#[cfg(target_arch = "wasm32")]
pub mod store;
#[cfg(target_arch = "wasm32")]
mod worker;

#[cfg(target_arch = "wasm32")]
pub use client::BackgroundSession;
#[cfg(target_arch = "wasm32")]
pub use worker::testing;
