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
//! - [`core`] (the crate `longhaul-core`, `crates/core`): pure Rust, sans-IO. Task states, HTTP resume rules, retry and backoff,
//!   scheduling and input validation. No clock reads, no I/O; tested natively.
//! - `store` (wasm only): IndexedDB schema and transactions.
//! - `net` (wasm only): `fetch`, body streaming, abort.
//! - `worker` (wasm only): the service-worker runtime that owns every task.
//! - `client` (wasm only): the page-side `BackgroundSession` API.
//!
//! Only `core` is compiled for native targets; everything else needs a browser.
//!
//! ## Features and size
//!
//! The cargo features `page` (`client`) and `worker` (`worker`, `net`) are both on by
//! default, as the browser tests need both sides in one module. The package is built
//! with one of them at a time (tools/build-pkg.sh): `longhaul.js` for pages and
//! `longhaul-worker.js` for the service worker, so a page never downloads the
//! engine, the HTTP rules, SHA-2 or the transfer loop, and the worker never
//! downloads `BackgroundSession`. `store` and `js` serve both sides; what one side
//! does not use of them is dropped at link time.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// A build of one side leaves the other side's helpers in `store` and `js` unused.
#![cfg_attr(not(all(feature = "page", feature = "worker")), allow(dead_code))]

/// The pure core (the `longhaul-core` crate of this workspace, `crates/core`).
pub use longhaul_core as core;

#[cfg(all(target_arch = "wasm32", feature = "page"))]
mod client;
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod from_js;
#[cfg(target_arch = "wasm32")]
mod js;
#[cfg(all(target_arch = "wasm32", feature = "worker"))]
mod net;
#[cfg(target_arch = "wasm32")]
pub mod store;
#[cfg(all(target_arch = "wasm32", feature = "worker"))]
mod worker;

#[cfg(all(target_arch = "wasm32", feature = "page"))]
pub use client::BackgroundSession;
#[cfg(all(target_arch = "wasm32", feature = "worker"))]
pub use worker::testing;
