//! Reading stored bytes back: batches of chunks, spans, composed Blobs.

use super::*;

impl Store {
    /// The stored chunks of `id` from offset `from` (below `upto`), at most `max` of
    /// them, with their offsets, in order: for reading a large file a few chunks at a
    /// time.
    pub async fn read_chunk_batch(
        &self,
        id: &TaskId,
        from: u64,
        upto: u64,
        max: Option<u32>,
    ) -> Result<Vec<(u64, Chunk)>, TaskError> {
        let tx = self.tx(&[CHUNKS], TransactionMode::ReadOnly)?;
        let store = tx
            .object_store(CHUNKS)
            .map_err(|e| storage_err("open chunks", e))?;
        let range = chunk_range(id, from, Some(upto))?;
        let keys_req = store
            .get_all_keys(Some(range.clone()), max)
            .map_err(|e| storage_err("read chunk keys", e))?;
        let vals_req = store
            .get_all(Some(range), max)
            .map_err(|e| storage_err("read chunks", e))?;
        let keys = keys_req
            .await
            .map_err(|e| storage_err("read chunk keys", e))?;
        let vals = vals_req.await.map_err(|e| storage_err("read chunks", e))?;
        let mut out = Vec::with_capacity(vals.len());
        for (k, v) in keys.iter().zip(vals) {
            let off = js_sys::Reflect::get_u32(k, 1)
                .ok()
                .and_then(|o| o.as_f64())
                .unwrap_or(-1.0);
            let chunk = match segment_name(&v) {
                Some(name) => self.segment(&name, js::get(&v, "size").as_f64()).await?,
                None => Chunk::from_js(v)?,
            };
            out.push((off.max(0.0) as u64, chunk));
        }
        Ok(out)
    }

    /// The segment file `name`, as a chunk backed by it; it must hold `size` bytes.
    pub(super) async fn segment(&self, name: &str, size: Option<f64>) -> Result<Chunk, TaskError> {
        let known = self.segment_dir.borrow().clone();
        let dir = known_or_open(known, &self.name).await;
        let missing = || {
            TaskError::new(
                ErrorCode::Storage,
                format!("the stored segment {name} is missing or damaged"),
            )
        };
        let file = match dir {
            Some(dir) => segments::file(&dir, name).await.map_err(|_| missing())?,
            None => return Err(missing()),
        };
        if Some(file.size()) != size {
            return Err(missing());
        }
        Ok(Chunk::Blob(file))
    }

    /// Visit the stored bytes `[from, to)` of `id` in order, reading at most `batch`
    /// chunks per transaction (`None`: all at once). `chunk_start` is the offset of the
    /// stored chunk that holds `from` (0 when `from` is 0). `each(offset, piece)` gets
    /// every piece, clipped to the span, and returns `false` to stop: `Ok(false)`.
    /// With `as_bytes`, every piece is bytes (a Blob's are read first); else pieces
    /// are as stored, and no Blob is read. A missing byte is a `storage` error: the
    /// chunks must tile the span exactly. (Reading stored bytes is the worker's
    /// alone: pages get Blobs from it.)
    #[cfg(feature = "worker")]
    pub async fn visit_span(
        &self,
        id: &TaskId,
        (chunk_start, from, to): (u64, u64, u64),
        batch: Option<u32>,
        as_bytes: bool,
        mut each: impl FnMut(u64, Chunk) -> bool,
    ) -> Result<bool, TaskError> {
        let gap = |at: u64| {
            TaskError::new(
                ErrorCode::Storage,
                format!("the stored bytes of this task stop at {at} of {to}"),
            )
        };
        let (mut pos, mut done) = (chunk_start, from);
        while done < to {
            let chunks = self.read_chunk_batch(id, pos, to, batch).await?;
            if chunks.is_empty() {
                break;
            }
            for (off, chunk) in chunks {
                let len = chunk.len();
                if off != pos || len == 0 {
                    return Err(gap(done));
                }
                let (a, b) = (off.max(from), (off + len).min(to));
                if a < b {
                    let mut piece = chunk.slice(a - off, b - off)?;
                    if as_bytes {
                        piece = Chunk::Bytes(piece.bytes().await?);
                    }
                    if !each(a, piece) {
                        return Ok(false);
                    }
                    done = b;
                }
                pos = off + len;
            }
        }
        if done != to {
            return Err(gap(done));
        }
        Ok(true)
    }

    /// [`Store::visit_span`] with every piece as bytes.
    #[cfg(feature = "worker")]
    pub async fn read_span(
        &self,
        id: &TaskId,
        span: (u64, u64, u64),
        batch: Option<u32>,
        mut each: impl FnMut(u64, js_sys::Uint8Array) -> bool,
    ) -> Result<bool, TaskError> {
        self.visit_span(id, span, batch, true, |at, piece| match piece {
            Chunk::Bytes(b) => each(at, b),
            Chunk::Blob(_) => false,
        })
        .await
    }

    /// The stored bytes `[from, to)` of `id` (`chunk_start` as for
    /// [`Store::visit_span`]) as one Blob, composed of the stored pieces: no byte is
    /// read, and where chunks are Blobs the result is backed by the database's files,
    /// not memory.
    #[cfg(feature = "worker")]
    pub async fn blob(
        &self,
        id: &TaskId,
        span: (u64, u64, u64),
    ) -> Result<web_sys::Blob, TaskError> {
        let pieces = self.pieces(id, span).await?;
        web_sys::Blob::new_with_blob_sequence(&pieces)
            .map_err(|e| TaskError::new(ErrorCode::Internal, js::describe(&e)))
    }

    /// The stored pieces of [`Store::blob`], in order, not yet composed: what the
    /// worker sends a page for `session.blob()`, which the page composes itself
    /// (see the module docs, "Why pages compose their Blobs"). Chunks are listed
    /// [`BLOB_BATCH`] at a time.
    #[cfg(feature = "worker")]
    pub async fn pieces(
        &self,
        id: &TaskId,
        span: (u64, u64, u64),
    ) -> Result<js_sys::Array, TaskError> {
        let parts = js_sys::Array::new();
        self.visit_span(id, span, Some(BLOB_BATCH), false, |_, piece| {
            parts.push(piece.as_js());
            true
        })
        .await?;
        Ok(parts)
    }
}
