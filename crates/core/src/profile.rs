//! What longhaul does differently per browser engine, as data. The shell tells which
//! engine it runs in (it reads the user agent); [`Profile::of`] says what follows, so
//! every per-browser choice is made, and tested, here.
//!
//! ## Range windows (Firefox)
//!
//! Firefox asks for a download's bytes in windows of [`FETCH_WINDOW`]
//! ([`EngineConfig::fetch_window`](crate::EngineConfig::fetch_window)), the next
//! asked for a little before one ends ([`crate::http::ask_ahead`]), so that no round
//! trip stops the transfer at a window's edge.
//!
//! Why, as measured: docs/decisions.md, "Range windows in Firefox".
//!
//! ## Segment files (Firefox) and counted Blobs (Chromium)
//!
//! Firefox stores a fast download's bytes as segment files in OPFS (the shell's
//! `store::segments` says why and how it was measured); Chromium's Blob chunk
//! records are made with their size shown to its collector (the shell's store docs,
//! "Why Chromium's Blobs are counted"). Other engines keep plain Blob records (or
//! bytes, where Blobs cannot be stored), with no windows.

/// A download's Range window in Firefox, bytes (see the module docs).
pub const FETCH_WINDOW: u64 = 16 << 20;

/// The browser engine the shell runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrowserEngine {
    /// Chromium and the browsers built on it.
    Chromium,
    /// Firefox.
    Firefox,
    /// Any other (WebKit among them), given the choices measured to be safe anywhere.
    Other,
}

/// What longhaul does in one engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// The Range window a download asks for at a time, if any
    /// ([`EngineConfig::fetch_window`](crate::EngineConfig::fetch_window)).
    pub fetch_window: Option<u64>,
    /// Whether fast downloads' bytes go to segment files (where OPFS works).
    pub segment_files: bool,
    /// Whether Blob chunk records are made with their size shown to the collector.
    pub counted_blobs: bool,
}

impl Profile {
    /// The profile of `engine`.
    pub fn of(engine: BrowserEngine) -> Profile {
        match engine {
            BrowserEngine::Firefox => Profile {
                fetch_window: Some(FETCH_WINDOW),
                segment_files: true,
                counted_blobs: false,
            },
            BrowserEngine::Chromium => Profile {
                fetch_window: None,
                segment_files: false,
                counted_blobs: true,
            },
            BrowserEngine::Other => Profile {
                fetch_window: None,
                segment_files: false,
                counted_blobs: false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_engine_gets_what_was_measured_there() {
        let firefox = Profile::of(BrowserEngine::Firefox);
        assert_eq!(firefox.fetch_window, Some(16 << 20));
        assert!(firefox.segment_files && !firefox.counted_blobs);
        let chromium = Profile::of(BrowserEngine::Chromium);
        assert_eq!(chromium.fetch_window, None);
        assert!(!chromium.segment_files && chromium.counted_blobs);
        let other = Profile::of(BrowserEngine::Other);
        assert_eq!(
            (other.fetch_window, other.segment_files, other.counted_blobs),
            (None, false, false)
        );
    }
}
