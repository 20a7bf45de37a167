//! Which browser this is (the user agent, read here; what follows from it is
//! decided by `core::profile`), and the chunk kind this connection stores (the probe).

use super::*;
use crate::core::profile::{BrowserEngine, Profile};

/// The engine this runs in: Firefox if its user agent says so; Chromium where
/// `navigator.userAgentData` exists (there alone, in windows and workers).
pub(crate) fn engine() -> BrowserEngine {
    let nav = js::get(&js_sys::global(), "navigator");
    let firefox = js::get(&nav, "userAgent")
        .dyn_ref::<js_sys::JsString>()
        .is_some_and(|ua| ua.includes("Firefox/", 0));
    if firefox {
        BrowserEngine::Firefox
    } else if !js::get(&nav, "userAgentData").is_undefined() {
        BrowserEngine::Chromium
    } else {
        BrowserEngine::Other
    }
}

/// What longhaul does in this engine ([`Profile::of`]).
pub(crate) fn profile() -> Profile {
    Profile::of(engine())
}

impl Store {
    /// Find out once how this connection stores bytes: in segment files (Firefox,
    /// where OPFS works; see [`segments`]), else in chunk records, which are Blobs
    /// if this browser stores Blob values (WebKit's ephemeral sessions refuse
    /// them), found by writing a one-byte Blob to `meta`, else bytes. Call before
    /// the first chunk write.
    pub async fn probe(&self) {
        if self.chunk_kind.get().is_some() {
            return;
        }
        if self
            .segment_choice
            .get()
            .unwrap_or_else(|| profile().segment_files)
        {
            let dir = segments::open(&self.name, true).await;
            if dir.is_none() {
                js::warn(
                    "the origin-private file system refused a directory; bytes go to IndexedDB",
                );
            }
            *self.segment_dir.borrow_mut() = dir;
        }
        let works = async {
            let (blob, _) = chunk_value(
                &js_sys::Array::of1(&js_sys::Uint8Array::new_with_length(1)),
                ChunkKind::Blob,
            )?;
            let tx = self.tx(&[META], TransactionMode::ReadWrite)?;
            let obj = js_sys::Object::new();
            let _ = js_sys::Reflect::set(&obj, &"key".into(), &"blob-probe".into());
            let _ = js_sys::Reflect::set(&obj, &"value".into(), &blob);
            tx.object_store(META)
                .and_then(|m| m.put(&obj, None))
                .map_err(|e| storage_err("probe Blob values", e))?;
            Self::commit(tx, "probe Blob values").await
        };
        let ok = works.await.is_ok();
        if !ok {
            js::warn("this browser cannot store Blobs in IndexedDB; chunks are stored as bytes");
        }
        self.chunk_kind
            .set(Some(match (ok, profile().counted_blobs) {
                (false, _) => ChunkKind::Bytes,
                (true, true) => ChunkKind::CountedBlob,
                (true, false) => ChunkKind::Blob,
            }));
    }

    /// Choose segment files (`true`) or chunk records for this connection's bytes,
    /// over this browser's default; call before [`Store::probe`]. For tests, which
    /// run both stores in both browsers.
    #[doc(hidden)]
    pub fn choose_segments(&self, on: bool) {
        self.segment_choice.set(Some(on));
    }

    /// Whether commits write segment files (known once [`Store::probe`] ran).
    pub fn segmented(&self) -> bool {
        self.segment_dir.borrow().is_some()
    }

    /// Whether chunk records here may name segment files, so that deleting them
    /// must remove files (records outlive a connection's choice).
    pub(super) fn may_name_segments(&self) -> bool {
        self.segmented()
            || (self
                .segment_choice
                .get()
                .unwrap_or_else(|| profile().segment_files)
                && segments::available())
    }
}
