//! Chunk records: what a stored chunk is, and how its value and key are made.

use super::*;

/// One stored chunk: a Blob (a record's, or a segment file), or bytes (records of
/// older versions, and browsers that cannot store Blobs).
#[derive(Clone)]
pub enum Chunk {
    /// Bytes in memory.
    Bytes(js_sys::Uint8Array),
    /// A Blob, backed by the database's file once read back, or by a segment file.
    Blob(web_sys::Blob),
}

impl Chunk {
    pub(super) fn from_js(v: JsValue) -> Result<Chunk, TaskError> {
        if let Some(b) = v.dyn_ref::<js_sys::Uint8Array>() {
            return Ok(Chunk::Bytes(b.clone()));
        }
        v.dyn_into::<web_sys::Blob>()
            .map(Chunk::Blob)
            .map_err(|_| TaskError::new(ErrorCode::Storage, "a stored chunk is not bytes"))
    }

    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Chunk::Bytes(b) => u64::from(b.length()),
            Chunk::Blob(b) => b.size() as u64,
        }
    }

    /// Whether it holds no byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes `[a, b)` of it, as the same kind (no byte is read).
    pub(super) fn slice(&self, a: u64, b: u64) -> Result<Chunk, TaskError> {
        match self {
            Chunk::Bytes(x) => Ok(Chunk::Bytes(x.subarray(a as u32, b as u32))),
            Chunk::Blob(x) => x
                .slice_with_f64_and_f64(a as f64, b as f64)
                .map(Chunk::Blob)
                .map_err(|e| TaskError::new(ErrorCode::Internal, js::describe(&e))),
        }
    }

    /// As a value a `Blob` can be built from.
    pub fn as_js(&self) -> &JsValue {
        match self {
            Chunk::Bytes(b) => b,
            Chunk::Blob(b) => b,
        }
    }

    /// Its bytes (a Blob's are read).
    #[cfg(feature = "worker")]
    pub async fn bytes(&self) -> Result<js_sys::Uint8Array, TaskError> {
        match self {
            Chunk::Bytes(b) => Ok(b.clone()),
            Chunk::Blob(b) => wasm_bindgen_futures::JsFuture::from(b.array_buffer())
                .await
                .map(|buf| js_sys::Uint8Array::new(&buf))
                .map_err(|e| {
                    TaskError::new(
                        ErrorCode::Storage,
                        format!("a stored chunk could not be read: {}", js::describe(&e)),
                    )
                }),
        }
    }
}

/// How chunk records are made (found once per connection by [`Store::probe`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum ChunkKind {
    /// One new `Uint8Array` (browsers that cannot store Blobs).
    Bytes,
    /// A Blob of the views.
    Blob,
    /// A Blob of the views, its size shown to the JS engine's collector (Chromium):
    /// see the module docs, "Why Chromium's Blobs are counted".
    CountedBlob,
}

/// `views` (byte views, in order) as one chunk record's value, with its length: a
/// Blob of them, or one new array holding their bytes (IndexedDB clones a view's
/// whole buffer, never just the view, so views are never stored as they are).
pub(super) fn chunk_value(
    views: &js_sys::Array,
    kind: ChunkKind,
) -> Result<(JsValue, u64), TaskError> {
    let len: u32 = views
        .iter()
        .map(|v| v.unchecked_into::<js_sys::Uint8Array>().length())
        .sum();
    let blob = |parts: &js_sys::Array| {
        web_sys::Blob::new_with_u8_array_sequence(parts)
            .map(|b| (b.into(), u64::from(len)))
            .map_err(|e| TaskError::new(ErrorCode::Internal, js::describe(&e)))
    };
    match kind {
        ChunkKind::Blob => return blob(views),
        ChunkKind::CountedBlob => {
            // An ArrayBuffer as large as the Blob, dropped at once: V8 counts its
            // size, so the collector runs as the bytes flow (module docs). Never
            // written, its pages are never touched.
            drop(js_sys::ArrayBuffer::new(len));
            return blob(views);
        }
        ChunkKind::Bytes => {}
    }
    let out = js_sys::Uint8Array::new_with_length(len);
    let mut at = 0;
    for v in views.iter() {
        let v: js_sys::Uint8Array = v.unchecked_into();
        out.set(&v, at);
        at += v.length();
    }
    Ok((out.into(), u64::from(len)))
}

pub(super) fn chunk_key(id: &TaskId, offset: u64) -> JsValue {
    js_sys::Array::of2(&JsValue::from_str(&id.0), &JsValue::from_f64(offset as f64)).into()
}

pub(super) fn chunk_range(id: &TaskId, from: u64, to: Option<u64>) -> Result<Query, TaskError> {
    let lower = chunk_key(id, from);
    let upper: JsValue = js_sys::Array::of2(
        &JsValue::from_str(&id.0),
        &JsValue::from_f64(to.map_or(f64::INFINITY, |t| t as f64)),
    )
    .into();
    KeyRange::bound(&lower, &upper, Some(false), Some(to.is_some()))
        .map(Query::from)
        .map_err(|e| storage_err("build a key range", e))
}
