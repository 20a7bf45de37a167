//! Writing bytes with the offsets that cover them, and freeing them.

use super::*;

/// A segment file written and closed, its record not yet committed. While it
/// lives, its name is among the store's files being written, which no deletion
/// or sweep removes.
pub struct Segment {
    dir: segments::Dir,
    name: String,
    len: u64,
    writing: Writing,
}

impl Drop for Segment {
    fn drop(&mut self) {
        self.writing.borrow_mut().retain(|n| *n != self.name);
    }
}

impl Segment {
    /// Remove its file: it will not be committed.
    pub async fn discard(&self) {
        segments::remove(&self.dir, &self.name).await;
    }
}

/// A write's commit in flight, independent of the store and of its arguments.
pub type Commit = std::pin::Pin<Box<dyn Future<Output = Result<(), TaskError>>>>;

/// The task and offset of segment file `name` (`<task>.<offset>.<random>`).
pub(super) fn segment_key(name: &str) -> Option<(&str, u64)> {
    let mut parts = name.rsplitn(3, '.');
    let (_, offset, id) = (parts.next()?, parts.next()?, parts.next()?);
    Some((id, offset.parse().ok()?))
}

/// The segment file a chunk record names, if it is a segment's record.
pub(super) fn segment_name(v: &JsValue) -> Option<String> {
    js::get(v, "segment").as_string()
}

/// `commit`, then the removal of the segment files of what `doomed` says was
/// deleted (see [`segments`], "Removal"), except those being written: in `dir`, or
/// database `db`'s directory. The files are found by name, never through the
/// records' values: reading a Blob record's value would keep its file (and its
/// share of the quota) alive until the collector freed the Blob.
pub(super) async fn remove_after(
    commit: impl Future<Output = Result<(), TaskError>>,
    doomed: Option<Doomed>,
    dir: Option<segments::Dir>,
    db: String,
    writing: Writing,
) -> Result<(), TaskError> {
    commit.await?;
    let Some((id, from)) = doomed else {
        return Ok(());
    };
    let Some(dir) = known_or_open(dir, &db).await else {
        return Ok(());
    };
    for name in segments::names(&dir).await.unwrap_or_default() {
        let ours = segment_key(&name).is_some_and(|(i, at)| i == id && at >= from);
        if ours && !writing.borrow().contains(&name) {
            segments::remove(&dir, &name).await;
        }
    }
    Ok(())
}

/// `known`, or else database `db`'s segment directory if it exists (a connection
/// that writes none still reads and removes the files of one that did).
pub(super) async fn known_or_open(known: Option<segments::Dir>, db: &str) -> Option<segments::Dir> {
    match known {
        Some(d) => Some(d),
        None => segments::open(db, false).await,
    }
}

/// A failure of the origin-private file system: `Quota` if it refused the bytes.
pub(super) fn segment_err(what: &str, e: &JsValue) -> TaskError {
    let name = js::get(e, "name").as_string().unwrap_or_default();
    if name == "QuotaExceededError" {
        return TaskError::new(
            ErrorCode::Quota,
            "the browser's storage quota is exhausted; free space (remove ended tasks) and resume",
        );
    }
    TaskError::new(
        ErrorCode::Storage,
        format!(
            "the origin-private file system could not {what}: {}",
            js::describe(e)
        ),
    )
}

impl Store {
    /// Delete the chunk records of task `id` from offset `from` on; what
    /// [`Store::then_remove`] needs to remove their segment files, if they may name
    /// some.
    pub(super) fn drop_range(
        &self,
        chunks: &idb::ObjectStore,
        id: &TaskId,
        from: u64,
    ) -> Result<Option<Doomed>, TaskError> {
        chunks
            .delete(chunk_range(id, from, None)?)
            .map_err(|e| storage_err("drop chunks", e))?;
        Ok(self.may_name_segments().then(|| (id.0.clone(), from)))
    }

    /// `commit`, then the removal of the segment files `doomed` names.
    pub(super) fn then_remove(
        &self,
        commit: impl Future<Output = Result<(), TaskError>> + 'static,
        doomed: Option<Doomed>,
    ) -> impl Future<Output = Result<(), TaskError>> + 'static {
        remove_after(
            commit,
            doomed,
            self.segment_dir.borrow().clone(),
            self.name.clone(),
            self.writing.clone(),
        )
    }

    /// Write `chunks` one after another from `offset`, each its own chunk record made
    /// of its byte views (see [`Store::probe`]), and `rec` (whose `bytes_received`
    /// covers them all) in one transaction. With `drop_from`, chunks at or beyond
    /// that offset are deleted first. (Where [`Store::segmented`], bytes go through
    /// [`Store::write_segment`] and [`Store::commit_segment`] instead.)
    ///
    /// The future is independent of `self` and of the arguments: the caller may go
    /// on (read the network) while it commits. Read-write transactions over the same
    /// stores commit in the order they were created, so a later write's offset never
    /// becomes durable before an earlier write's bytes.
    pub fn write_chunks(
        &self,
        rec: &TaskRecord,
        offset: u64,
        parts: &[js_sys::Array],
        drop_from: Option<u64>,
    ) -> Result<Commit, TaskError> {
        let kind = self.chunk_kind.get().unwrap_or(ChunkKind::Bytes);
        let values = parts
            .iter()
            .map(|views| chunk_value(views, kind))
            .collect::<Result<Vec<_>, _>>()?;
        let (tx, tasks, chunks) = self.write_tx()?;
        let doomed = match drop_from {
            Some(from) => self.drop_range(&chunks, &rec.id, from)?,
            None => None,
        };
        let mut at = offset;
        for (value, len) in &values {
            chunks
                .put(value, Some(&chunk_key(&rec.id, at)))
                .map_err(|e| storage_err("store a chunk", e))?;
            at += len;
        }
        tasks
            .put(&js::to_js(rec), None)
            .map_err(|e| storage_err("store a task", e))?;
        Ok(Box::pin(
            self.then_remove(Self::commit(tx, "store a chunk"), doomed),
        ))
    }

    /// Write the byte views of `parts`, in order, as one new segment file of task
    /// `id` starting at `offset` (where [`Store::segmented`]); the future ends once
    /// the file is closed. Its bytes count only once [`Store::commit_segment`]
    /// committed its record: until then no reader sees it, and a crash leaves a file
    /// for [`Store::sweep_segments`].
    pub fn write_segment(
        &self,
        id: &TaskId,
        offset: u64,
        parts: &[js_sys::Array],
    ) -> Result<impl Future<Output = Result<Segment, TaskError>> + 'static, TaskError> {
        let dir = self.segment_dir.borrow().clone().ok_or_else(|| {
            TaskError::new(ErrorCode::Internal, "this store writes no segment files")
        })?;
        let views: js_sys::Array = parts.iter().flat_map(|p| p.iter()).collect();
        // Counted, in Firefox too: made plain, the segments' Blobs held their bytes
        // until a collection, and a 1 GiB download at 64 MiB/s rose +529 MiB (PSS);
        // counted, +13.5 (see "Why Chromium's Blobs are counted").
        let (blob, len) = chunk_value(&views, ChunkKind::CountedBlob)?;
        let blob: web_sys::Blob = blob.unchecked_into();
        let name = format!(
            "{}.{}.{:08x}",
            id.0,
            offset,
            (js_sys::Math::random() * 4_294_967_296.0) as u32
        );
        self.writing.borrow_mut().push(name.clone());
        let seg = Segment {
            dir,
            name,
            len,
            writing: self.writing.clone(),
        };
        Ok(async move {
            segments::write(&seg.dir, &seg.name, &blob)
                .await
                .map_err(|e| segment_err("write a segment", &e))?;
            Ok(seg)
        })
    }

    /// Commit `seg` (written at `offset` by [`Store::write_segment`]) as the chunk
    /// record that names it, and `rec` (whose `bytes_received` covers it), in one
    /// transaction, made now; with `drop_from`, chunks at or beyond that offset are
    /// deleted first. As with [`Store::write_chunks`], transactions commit in the
    /// order they were made: call this when the record is current (a segment's record
    /// made before its file closed could undo a later write, as a cancel's). If the
    /// commit fails, the file is removed.
    pub fn commit_segment(
        &self,
        rec: &TaskRecord,
        offset: u64,
        seg: Segment,
        drop_from: Option<u64>,
    ) -> Result<Commit, TaskError> {
        let issued = (|| {
            let (tx, tasks, chunks) = self.write_tx()?;
            let doomed = match drop_from {
                Some(from) => self.drop_range(&chunks, &rec.id, from)?,
                None => None,
            };
            let record = js_sys::Object::new();
            let _ = js_sys::Reflect::set(&record, &"segment".into(), &seg.name.as_str().into());
            let _ = js_sys::Reflect::set(&record, &"size".into(), &(seg.len as f64).into());
            chunks
                .put(&record, Some(&chunk_key(&rec.id, offset)))
                .map_err(|e| storage_err("store a segment's record", e))?;
            tasks
                .put(&js::to_js(rec), None)
                .map_err(|e| storage_err("store a task", e))?;
            Ok(self.then_remove(Self::commit(tx, "store a segment's record"), doomed))
        })();
        Ok(Box::pin(async move {
            let done = match issued {
                Ok(commit) => commit.await,
                Err(e) => Err(e),
            };
            if done.is_err() {
                seg.discard().await;
            }
            done
        }))
    }

    /// Write `rec` and delete every stored byte of its task.
    pub fn drop_bytes(
        &self,
        rec: &TaskRecord,
    ) -> Result<impl Future<Output = Result<(), TaskError>> + 'static, TaskError> {
        let (tx, tasks, chunks) = self.write_tx()?;
        let doomed = self.drop_range(&chunks, &rec.id, 0)?;
        tasks
            .put(&js::to_js(rec), None)
            .map_err(|e| storage_err("store a task", e))?;
        Ok(self.then_remove(Self::commit(tx, "free a task's bytes"), doomed))
    }

    /// Write one chunk of `id` at `offset`, alone (an upload's body being copied in
    /// before its task exists): a value made of `bytes`, as a download's chunks are
    /// ([`chunk_value`]: a Blob built from them where this browser stores Blobs, else
    /// a new array of them). Never a slice of the page's Blob: WebKit stores a slice
    /// as its whole source and reads it back as the source's first bytes (see
    /// `worker::upload`).
    #[cfg(feature = "worker")]
    pub async fn put_chunk(
        &self,
        id: &TaskId,
        offset: u64,
        bytes: &js_sys::Uint8Array,
    ) -> Result<(), TaskError> {
        self.probe().await;
        let kind = self.chunk_kind.get().unwrap_or(ChunkKind::Bytes);
        let (value, _) = chunk_value(&js_sys::Array::of1(bytes), kind)?;
        let tx = self.tx(&[CHUNKS], TransactionMode::ReadWrite)?;
        let chunks = tx
            .object_store(CHUNKS)
            .map_err(|e| storage_err("open chunks", e))?;
        chunks
            .put(&value, Some(&chunk_key(id, offset)))
            .map_err(|e| storage_err("store a chunk", e))?;
        Self::commit(tx, "store a chunk").await
    }

    /// Delete every stored byte of `id` (and nothing else).
    pub fn drop_chunks(
        &self,
        id: &TaskId,
    ) -> Result<impl Future<Output = Result<(), TaskError>>, TaskError> {
        let tx = self.tx(&[CHUNKS], TransactionMode::ReadWrite)?;
        let chunks = tx
            .object_store(CHUNKS)
            .map_err(|e| storage_err("open chunks", e))?;
        let doomed = self.drop_range(&chunks, id, 0)?;
        Ok(self.then_remove(Self::commit(tx, "drop chunks"), doomed))
    }

    /// Delete the chunks of tasks that have no record: an upload's copy that a
    /// stopped worker never finished. Run at start-up, after the records were read.
    /// `known` must be sorted (the engine's ids are).
    pub async fn drop_orphans(&self, known: &[TaskId]) -> Result<usize, TaskError> {
        let tx = self.tx(&[CHUNKS], TransactionMode::ReadWrite)?;
        let chunks = tx
            .object_store(CHUNKS)
            .map_err(|e| storage_err("open chunks", e))?;
        let keys = chunks
            .get_all_keys(None, None)
            .map_err(|e| storage_err("read chunk keys", e))?
            .await
            .map_err(|e| storage_err("read chunk keys", e))?;
        let mut orphans: Vec<TaskId> = Vec::new();
        for k in &keys {
            let Some(id) = js_sys::Reflect::get_u32(k, 0)
                .ok()
                .and_then(|v| v.as_string())
            else {
                continue;
            };
            let id = TaskId(id);
            if known.binary_search(&id).is_err() && !orphans.contains(&id) {
                orphans.push(id);
            }
        }
        for id in &orphans {
            chunks
                .delete(chunk_range(id, 0, None)?)
                .map_err(|e| storage_err("drop chunks", e))?;
        }
        Self::commit(tx, "drop orphaned chunks").await?;
        Ok(orphans.len())
    }

    /// Remove the segment files no chunk record names, untouched for
    /// [`segments::SWEEP_AGE_MS`]: what a crash between a file's close and its
    /// record's commit, or between a record's deletion and its file's, left. Run at
    /// start-up, in the background; returns how many went.
    #[cfg(feature = "worker")]
    pub async fn sweep_segments(&self) -> Result<usize, TaskError> {
        if !self.may_name_segments() {
            return Ok(0);
        }
        let Some(dir) = segments::open(&self.name, false).await else {
            return Ok(0);
        };
        let failed = |e: &JsValue| segment_err("list the segment files", e);
        if segments::names(&dir)
            .await
            .map_err(|e| failed(&e))?
            .is_empty()
        {
            return Ok(0);
        }
        // A file is kept if a record has its task and offset (keys only: reading
        // the values would hold every Blob record's file; see `remove_after`).
        let tx = self.tx(&[CHUNKS], TransactionMode::ReadOnly)?;
        let keys = tx
            .object_store(CHUNKS)
            .map_err(|e| storage_err("open chunks", e))?
            .get_all_keys(None, None)
            .map_err(|e| storage_err("read chunk keys", e))?
            .await
            .map_err(|e| storage_err("read chunk keys", e))?;
        let mut keyed: Vec<(String, u64)> = keys
            .iter()
            .filter_map(|k| {
                let id = js_sys::Reflect::get_u32(k, 0).ok()?.as_string()?;
                let at = js_sys::Reflect::get_u32(k, 1).ok()?.as_f64()?;
                Some((id, at as u64))
            })
            .collect();
        keyed.sort_unstable();
        let writing = self.writing.clone();
        let keep = |name: &str| {
            writing.borrow().iter().any(|n| n == name)
                || segment_key(name).is_some_and(|(id, at)| {
                    keyed
                        .binary_search_by(|(i, a)| (i.as_str(), *a).cmp(&(id, at)))
                        .is_ok()
                })
        };
        segments::sweep(&dir, keep, segments::SWEEP_AGE_MS)
            .await
            .map_err(|e| failed(&e))
    }
}
