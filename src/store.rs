//! IndexedDB (and, in Firefox, segment files in OPFS): the schema, its migrations
//! and every transaction longhaul makes.
//!
//! Database `longhaul`, version [`DB_VERSION`]:
//! - `sessions` (key path `id`): one record per session identifier.
//! - `tasks` (key path `id`, index `session`): one [`TaskRecord`] per task.
//! - `chunks` (out-of-line keys `[taskId, offset]`): the bytes, each record a `Blob`
//!   where the browser can store one, else a `Uint8Array` (WebKit's ephemeral
//!   sessions cannot store Blobs; [`Store::probe`] finds out once per
//!   connection), or `{ segment: <file name>, size }`, naming a segment file that
//!   holds them ([`segments`]; Firefox). Readers take every kind, so records of
//!   all kinds (and of older versions, which wrote only `Uint8Array`s) read alike.
//! - `meta` (key path `key`, since version 2): facts about the database itself;
//!   `{ key: 'created', value: <ms since the epoch> }` is written by the upgrade
//!   that makes the store (no transaction of its own at each open), so the
//!   database's age (and a database that was cleared and made anew) can be told
//!   apart from a session's.
//!
//! Versions: 1 (sessions, tasks, chunks); 2 adds `meta`. Task records carry no
//! version of their own: fields added later deserialize with defaults, so a record
//! written by an older longhaul reads as it was (the migration test in
//! `tests/e2e/13-migration.test.mjs` resumes a download written under version 1).
//!
//! Bytes and the offset that covers them are written in one transaction
//! ([`Store::write_chunks`]), or the bytes first, to a segment file closed before
//! the transaction that names it and moves the offset ([`Store::write_segment`],
//! [`Store::commit_segment`]), so the committed `bytesReceived` never covers bytes
//! that were not stored. Chunks at or beyond the committed offset are garbage left
//! by an interrupted attempt; the first write of the next attempt deletes them.
//!
//! Why Blobs: measured by `make bench` in both browsers, IndexedDB stores Blob
//! values about a quarter faster than the same bytes as `Uint8Array`s (the bytes are
//! copied once, into the Blob, instead of cloned and then wrapped), and a Blob read
//! back is backed by the database's file, not memory: `session.blob()` composes the
//! stored Blobs into one without reading a byte, so no file is ever held in memory.
//!
//! Why Chromium's Blobs are counted: a Blob's bytes live outside the JS heap, unseen
//! by V8's collector, and a Blob the worker made and dropped keeps them until a
//! collection, which the few small objects a download allocates seldom cause. Made
//! straight from the fetched views, a 1 GiB download raised Chromium's memory (PSS of
//! every process) by 304-337 MiB, 256 MiB by 104-125; a forced collection in the
//! worker (`--expose-gc`, an experiment), or the worker's end, brought it back to
//! idle at once. JS has no call to report memory to the collector, so each record
//! also allocates, and drops, an `ArrayBuffer` of the Blob's size, which V8 counts:
//! the collector then runs as the bytes flow, and the rise stays flat (+82 MiB for
//! 256 MiB, +97 for 1 GiB; back to idle after). Copying the views into one array
//! and making the Blob of that did as much for memory but cost about 13% of the
//! throughput (longhaul ÷ Cache Storage 0.79-0.95 against 0.94-1.05, same hours);
//! the untouched buffer costs no copy and no resident page. Firefox's records are
//! plain Blobs: its memory grows, at loopback speed, in its parent process, which
//! buffers any fetch a worker has not read yet (a plain script dropping the bytes
//! rises +703 MiB for 1 GiB, one storing them in IndexedDB +856, longhaul +850;
//! flat at 64 MiB/s; the README's Memory), and the copy did nothing there.
//!
//! Why pages compose their Blobs: for `session.blob()` the worker sends the page the
//! stored pieces (file-backed Blobs), and the page makes the one Blob of them. A
//! Blob composed in the worker and sent whole made Firefox's parent process buffer
//! the file while the page read it (1 GiB through `stream()`: +975 to +1082 MiB PSS,
//! still there 20 s after), where the same pieces composed by the page rise +106
//! (the page reading the records itself: +22 to +136).
//!
//! Where the bytes go, per browser, by measurement (`make bench`, 256 MiB, against
//! plain JS writing each store in the same run): Chromium's fastest stores are
//! Cache Storage and IndexedDB with Blob records, which longhaul matches (1.04 of
//! Cache Storage), so its bytes stay in IndexedDB, where bytes and offset commit in
//! one transaction and a crash loses under 1 MiB. Firefox stores Blob records at
//! 100-110 MiB/s but OPFS at ~156, so there, on a fast link, the bytes go to
//! segment files ([`segments`] has the figures and the rules), each file closed
//! before its record commits with the offset: files of 16 to 32 MiB, so a crash
//! then loses the file being written and what waits (a fraction of a second of
//! the transfer); slower links keep chunk records. Other engines keep IndexedDB
//! (not measured). Whether a connection can write segments is found once
//! ([`Store::probe`]), which kind each commit is, by the transfer loop; readers
//! and deletions take records of either kind, mixed in one task. Each chunk record
//! holds at most twice [`crate::core::commit::CHUNK_BYTES`] (smaller where a slow link
//! committed what it had), each segment file at most 16 MiB and one more network
//! read, so reading a file back never needs more than a batch of them in memory.
//!
//! Transactions never span a non-IndexedDB await (they would auto-commit): every
//! function creates its transaction and issues all its requests synchronously, then
//! awaits only IndexedDB (a segment's transaction is made once its file is closed,
//! and segment files are removed once the transaction that dropped their records
//! committed).
//!
//! Migrations: [`upgrade`] only ever adds stores and indexes; no upgrade drops a store
//! holding user data. Old connections close on `versionchange` so an upgrade from a
//! newer worker or page is never blocked.

use crate::core::config::SessionConfig;
use crate::core::{ErrorCode, TaskError, TaskId, TaskRecord};
use crate::js;
use idb::{
    Database, DatabaseEvent, Factory, KeyPath, KeyRange, ObjectStoreParams, Query, TransactionMode,
};
use std::future::Future;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

pub mod segments;

/// The database name.
pub const DB_NAME: &str = "longhaul";
/// The schema version.
pub const DB_VERSION: u32 = 2;
const TASKS: &str = "tasks";
const CHUNKS: &str = "chunks";
/// Chunk records listed per transaction while a Blob of a file is composed (a Blob
/// chunk is a handle, a bytes chunk is in memory until the Blob copies it).
const BLOB_BATCH: u32 = 16;
const SESSIONS: &str = "sessions";
const META: &str = "meta";

/// A stored task record that does not deserialize (corrupted, or written by a future
/// schema), with whatever could still be read of it.
#[derive(Debug, Clone)]
pub struct Unreadable {
    /// Its `id`, if a string.
    pub id: Option<String>,
    /// Its `session`, if a string.
    pub session: Option<String>,
    /// Its `url.href`, if a string.
    pub url: Option<String>,
    /// Why it could not be read.
    pub reason: String,
}

/// A stored session.
#[derive(Debug, Clone)]
pub struct StoredSession {
    /// Its identifier.
    pub id: String,
    /// Its configuration (the default where the stored one cannot be read).
    pub config: SessionConfig,
    /// `finishTasksAndInvalidate` was called and it was not opened since.
    pub invalidated: bool,
}

/// An open connection.
pub struct Store {
    db: Rc<Database>,
    /// The database's name (its segment directory's too).
    name: String,
    /// Set when the connection was closed for another's upgrade (`versionchange`).
    closed: std::rc::Rc<std::cell::Cell<bool>>,
    /// How chunk records are made; `None` until [`Store::probe`].
    chunk_kind: std::cell::Cell<Option<ChunkKind>>,
    /// Where commits write their bytes: this segment directory, if [`Store::probe`]
    /// chose segments (see [`segments`]), else chunk records.
    segment_dir: std::cell::RefCell<Option<segments::Dir>>,
    /// Segments wanted or not, over this browser's default (tests of both stores).
    segment_choice: std::cell::Cell<Option<bool>>,
    /// The segment files being written, not yet committed.
    writing: Writing,
}

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
    fn from_js(v: JsValue) -> Result<Chunk, TaskError> {
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
    fn slice(&self, a: u64, b: u64) -> Result<Chunk, TaskError> {
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
enum ChunkKind {
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
fn chunk_value(views: &js_sys::Array, kind: ChunkKind) -> Result<(JsValue, u64), TaskError> {
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

/// A segment file written and closed, its record not yet committed. While it
/// lives, its name is among the store's files being written, which no deletion
/// or sweep removes.
pub struct Segment {
    dir: segments::Dir,
    name: String,
    len: u64,
    writing: Writing,
}

/// The names of the segment files being written and not yet committed.
type Writing = Rc<std::cell::RefCell<Vec<String>>>;

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

/// The chunk records of task `.0` from offset `.1` on, deleted: their segment
/// files go once the deletion committed.
type Doomed = (String, u64);

/// The task and offset of segment file `name` (`<task>.<offset>.<random>`).
fn segment_key(name: &str) -> Option<(&str, u64)> {
    let mut parts = name.rsplitn(3, '.');
    let (_, offset, id) = (parts.next()?, parts.next()?, parts.next()?);
    Some((id, offset.parse().ok()?))
}

/// The segment file a chunk record names, if it is a segment's record.
fn segment_name(v: &JsValue) -> Option<String> {
    js::get(v, "segment").as_string()
}

/// `commit`, then the removal of the segment files of what `doomed` says was
/// deleted (see [`segments`], "Removal"), except those being written: in `dir`, or
/// database `db`'s directory. The files are found by name, never through the
/// records' values: reading a Blob record's value would keep its file (and its
/// share of the quota) alive until the collector freed the Blob.
async fn remove_after(
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
async fn known_or_open(known: Option<segments::Dir>, db: &str) -> Option<segments::Dir> {
    match known {
        Some(d) => Some(d),
        None => segments::open(db, false).await,
    }
}

/// A failure of the origin-private file system: `Quota` if it refused the bytes.
fn segment_err(what: &str, e: &JsValue) -> TaskError {
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

/// Whether this is Firefox (its user agent says so; the choices of segments and of
/// Range windows, `worker::FETCH_WINDOW`, were measured there, and in no other
/// engine but Chromium).
pub(crate) fn firefox() -> bool {
    let nav = js::get(&js_sys::global(), "navigator");
    js::get(&nav, "userAgent")
        .dyn_ref::<js_sys::JsString>()
        .is_some_and(|ua| ua.includes("Firefox/", 0))
}

/// Whether this is a Chromium-based engine (`navigator.userAgentData` exists there
/// alone, in windows and workers).
fn chromium() -> bool {
    let nav = js::get(&js_sys::global(), "navigator");
    !js::get(&nav, "userAgentData").is_undefined()
}

fn storage_err(what: &str, _e: idb::Error) -> TaskError {
    TaskError::new(ErrorCode::Storage, format!("IndexedDB failed to {what}"))
}

fn upgrade(db: &Database, old: u32) -> Result<(), idb::Error> {
    if old < 1 {
        let mut p = ObjectStoreParams::new();
        p.key_path(Some(KeyPath::new_single("id")));
        db.create_object_store(SESSIONS, p.clone())?;
        let tasks = db.create_object_store(TASKS, p)?;
        tasks.create_index("session", KeyPath::new_single("session"), None)?;
        db.create_object_store(CHUNKS, ObjectStoreParams::new())?;
    }
    if old < 2 {
        let mut p = ObjectStoreParams::new();
        p.key_path(Some(KeyPath::new_single("key")));
        let meta = db.create_object_store(META, p)?;
        // When the database got its `meta` store (its creation, for a new one), for
        // whoever inspects a stored database. Written here, in the upgrade's own
        // transaction: a transaction of its own at every open cost each start-up
        // 10-18 ms before the records could be read (measured in Chromium).
        let obj = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&obj, &"key".into(), &"created".into());
        let _ = js_sys::Reflect::set(&obj, &"value".into(), &js::now().into());
        meta.put(&obj, None)?;
    }
    Ok(())
}

/// The connection `warm` resolves to, if it is one (a shim's early open gives
/// `null` where the database does not exist or cannot be opened).
pub async fn warm_connection(warm: Option<js_sys::Promise>) -> Option<web_sys::IdbDatabase> {
    wasm_bindgen_futures::JsFuture::from(warm?)
        .await
        .ok()?
        .dyn_into::<web_sys::IdbDatabase>()
        .ok()
}

fn chunk_key(id: &TaskId, offset: u64) -> JsValue {
    js_sys::Array::of2(&JsValue::from_str(&id.0), &JsValue::from_f64(offset as f64)).into()
}

fn chunk_range(id: &TaskId, from: u64, to: Option<u64>) -> Result<Query, TaskError> {
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

impl Store {
    /// Open (creating or upgrading) the database.
    pub async fn open() -> Result<Store, TaskError> {
        Self::open_named(DB_NAME).await
    }

    /// Open the database as [`Store::open`] does, adopting `warm` where it resolves
    /// to a connection already at [`DB_VERSION`]; any other connection it gives is
    /// closed (so an upgrade is never blocked by it) and the database opened anew.
    ///
    /// `warm` is the connection the worker shims open while the wasm compiles (see
    /// `longhaul-sw.js`): adopting it saves the worker's start-up a second open.
    /// Measured with stamps in Chromium, that open cost 15-23 ms where the database
    /// opened before the wasm was ready, and little after a relaunch, where both
    /// opens waited for the cold backend together.
    pub async fn open_warm(warm: Option<js_sys::Promise>) -> Result<Store, TaskError> {
        Self::open_warm_named(DB_NAME, warm).await
    }

    /// [`Store::open_warm`] of the database `name` (tests use their own names).
    pub async fn open_warm_named(
        name: &str,
        warm: Option<js_sys::Promise>,
    ) -> Result<Store, TaskError> {
        if let Some(db) = warm_connection(warm).await {
            if db.name() == name && db.version() == f64::from(DB_VERSION) {
                return Ok(Self::adopt(Database::from(db), name));
            }
            db.close();
        }
        Self::open_named(name).await
    }

    /// Open (creating or upgrading) the database `name` at [`DB_VERSION`]; tests use
    /// their own names.
    pub async fn open_named(name: &str) -> Result<Store, TaskError> {
        let factory = Factory::new().map_err(|e| storage_err("find indexedDB", e))?;
        let mut req = factory
            .open(name, Some(DB_VERSION))
            .map_err(|e| storage_err("open", e))?;
        req.on_upgrade_needed(|ev| {
            let old = ev.old_version().unwrap_or(0);
            match ev.database() {
                Ok(db) => {
                    // Named, not formatted: idb's `Display` of its errors costs the
                    // worker 4 KiB of wasm for this one message.
                    if upgrade(&db, old).is_err() {
                        js::warn(
                            "database upgrade failed: an object store or index could not be made",
                        );
                    }
                }
                Err(_) => js::warn("database upgrade had no database"),
            }
        });
        let db = req.await.map_err(|e| storage_err("open", e))?;
        Ok(Self::adopt(db, name))
    }

    /// The store over connection `db` to database `name`, which closes itself when
    /// another connection asks for a newer version.
    fn adopt(mut db: Database, name: &str) -> Store {
        let closed = std::rc::Rc::new(std::cell::Cell::new(false));
        let flag = closed.clone();
        db.on_version_change(move |ev| {
            flag.set(true);
            if let Ok(db) = ev.database() {
                db.close();
            }
        });
        Store {
            db: Rc::new(db),
            name: name.to_owned(),
            closed,
            chunk_kind: std::cell::Cell::new(None),
            segment_dir: Default::default(),
            segment_choice: Default::default(),
            writing: Default::default(),
        }
    }

    /// Whether this connection was closed for another connection's upgrade.
    pub fn is_closed(&self) -> bool {
        self.closed.get()
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
    fn may_name_segments(&self) -> bool {
        self.segmented()
            || (self.segment_choice.get().unwrap_or_else(firefox) && segments::available())
    }

    /// Delete the chunk records of task `id` from offset `from` on; what
    /// [`Store::then_remove`] needs to remove their segment files, if they may name
    /// some.
    fn drop_range(
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
    fn then_remove(
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

    /// Find out once how this connection stores bytes: in segment files (Firefox,
    /// where OPFS works; see [`segments`]), else in chunk records, which are Blobs
    /// if this browser stores Blob values (WebKit's ephemeral sessions refuse
    /// them), found by writing a one-byte Blob to `meta`, else bytes. Call before
    /// the first chunk write.
    pub async fn probe(&self) {
        if self.chunk_kind.get().is_some() {
            return;
        }
        if self.segment_choice.get().unwrap_or_else(firefox) {
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
        self.chunk_kind.set(Some(match (ok, chromium()) {
            (false, _) => ChunkKind::Bytes,
            (true, true) => ChunkKind::CountedBlob,
            (true, false) => ChunkKind::Blob,
        }));
    }

    fn tx(&self, stores: &[&str], mode: TransactionMode) -> Result<idb::Transaction, TaskError> {
        self.db
            .transaction(stores, mode)
            .map_err(|e| storage_err("start a transaction", e))
    }

    /// The completion of `tx`, as a future created now (so its listeners are in place
    /// before any event can fire). `Quota` if the browser refused the bytes.
    ///
    /// It waits for `complete` or `abort`, never for a request's `error`: the error
    /// event comes first, while `transaction.error` is still unset (Firefox reports a
    /// full quota that way), and only at `abort` does it name the cause.
    fn commit(
        tx: idb::Transaction,
        what: &'static str,
    ) -> impl std::future::Future<Output = Result<(), TaskError>> {
        let raw: web_sys::IdbTransaction = tx.into();
        let settled = js_sys::Promise::new(&mut |resolve, _| {
            let done: js_sys::Function = resolve
                .bind1(&JsValue::NULL, &JsValue::TRUE)
                .unchecked_into();
            let aborted: js_sys::Function = resolve
                .bind1(&JsValue::NULL, &JsValue::FALSE)
                .unchecked_into();
            raw.set_oncomplete(Some(&done));
            raw.set_onabort(Some(&aborted));
        });
        async move {
            let committed = wasm_bindgen_futures::JsFuture::from(settled)
                .await
                .ok()
                .and_then(|v| v.as_bool())
                == Some(true);
            if committed {
                return Ok(());
            }
            let name = raw.error().map(|e| e.name()).unwrap_or_default();
            if name == "QuotaExceededError" {
                Err(TaskError::new(
                    ErrorCode::Quota,
                    "the browser's storage quota is exhausted; free space (remove ended tasks) and resume",
                ))
            } else {
                Err(TaskError::new(
                    ErrorCode::Storage,
                    format!("IndexedDB could not {what} ({name})"),
                ))
            }
        }
    }

    /// A read-write transaction over tasks and chunks, with both stores.
    fn write_tx(
        &self,
    ) -> Result<(idb::Transaction, idb::ObjectStore, idb::ObjectStore), TaskError> {
        let tx = self.tx(&[TASKS, CHUNKS], TransactionMode::ReadWrite)?;
        let tasks = tx
            .object_store(TASKS)
            .map_err(|e| storage_err("open tasks", e))?;
        let chunks = tx
            .object_store(CHUNKS)
            .map_err(|e| storage_err("open chunks", e))?;
        Ok((tx, tasks, chunks))
    }

    /// Open a session: record it (keeping its creation time), store `config` if
    /// given (else keep the stored one), and make it live again (not invalidated).
    /// Returns `None` without writing if it is not stored and `must_exist`; else
    /// whether it existed, and whether a `finish` event was pending for it (cleared).
    pub async fn open_session(
        &self,
        id: &str,
        config: Option<&SessionConfig>,
        must_exist: bool,
        now: f64,
    ) -> Result<Option<(bool, bool)>, TaskError> {
        let (tx, store, existing) = self.session_for_update(id).await?;
        if existing.is_none() && must_exist {
            Self::commit(tx, "read a session").await?;
            return Ok(None);
        }
        let old = |k: &str| existing.as_ref().map(|e| js::get(e, k));
        let pending = old("finishPending").and_then(|v| v.as_bool()) == Some(true);
        let created = old("createdAt").filter(|c| c.as_f64().is_some());
        let stored_config = old("config").filter(|c| c.is_object());
        let config = match (config, stored_config) {
            (Some(c), _) => js::to_js(c),
            (None, Some(c)) => c,
            (None, None) => js::to_js(&SessionConfig::default()),
        };
        let obj = js_sys::Object::new();
        let set = |k: &str, v: &JsValue| {
            let _ = js_sys::Reflect::set(&obj, &k.into(), v);
        };
        set("id", &id.into());
        set("createdAt", &created.unwrap_or_else(|| now.into()));
        set("config", &config);
        set("invalidated", &false.into());
        set("finishPending", &false.into());
        store
            .put(&obj, None)
            .map_err(|e| storage_err("store a session", e))?;
        Self::commit(tx, "store a session").await?;
        Ok(Some((existing.is_some(), pending)))
    }

    /// A read-write transaction over sessions, and session `id` as stored (if it is).
    async fn session_for_update(
        &self,
        id: &str,
    ) -> Result<(idb::Transaction, idb::ObjectStore, Option<JsValue>), TaskError> {
        let tx = self.tx(&[SESSIONS], TransactionMode::ReadWrite)?;
        let store = tx
            .object_store(SESSIONS)
            .map_err(|e| storage_err("open sessions", e))?;
        let existing = store
            .get(Query::from(JsValue::from_str(id)))
            .map_err(|e| storage_err("read a session", e))?
            .await
            .map_err(|e| storage_err("read a session", e))?;
        Ok((tx, store, existing))
    }

    /// Set `key` (`invalidated`, `finishPending`) of a stored session to `value`.
    pub async fn set_session_flag(
        &self,
        id: &str,
        key: &str,
        value: bool,
    ) -> Result<(), TaskError> {
        let (tx, store, existing) = self.session_for_update(id).await?;
        let Some(obj) = existing.filter(|e| e.is_object()) else {
            return Self::commit(tx, "read a session").await;
        };
        let _ = js_sys::Reflect::set(&obj, &key.into(), &value.into());
        store
            .put(&obj, None)
            .map_err(|e| storage_err("store a session", e))?;
        Self::commit(tx, "store a session").await
    }

    /// Delete a session's record (its tasks are deleted on their own).
    pub async fn delete_session(&self, id: &str) -> Result<(), TaskError> {
        let tx = self.tx(&[SESSIONS], TransactionMode::ReadWrite)?;
        let store = tx
            .object_store(SESSIONS)
            .map_err(|e| storage_err("open sessions", e))?;
        store
            .delete(Query::from(JsValue::from_str(id)))
            .map_err(|e| storage_err("delete a session", e))?;
        Self::commit(tx, "delete a session").await
    }

    /// Every stored session with its configuration (the default where the stored one
    /// cannot be read).
    pub async fn load_sessions(&self) -> Result<Vec<StoredSession>, TaskError> {
        let tx = self.tx(&[SESSIONS], TransactionMode::ReadOnly)?;
        let store = tx
            .object_store(SESSIONS)
            .map_err(|e| storage_err("open sessions", e))?;
        let all = store
            .get_all(None, None)
            .map_err(|e| storage_err("read sessions", e))?
            .await
            .map_err(|e| storage_err("read sessions", e))?;
        Ok(Self::sessions_from(all))
    }

    /// Every session and every task record, read in one transaction (one round trip
    /// at start-up, where every millisecond delays the first resumed request).
    #[allow(clippy::type_complexity)]
    pub async fn load_all(
        &self,
    ) -> Result<(Vec<StoredSession>, Vec<Result<TaskRecord, Unreadable>>), TaskError> {
        let tx = self.tx(&[SESSIONS, TASKS], TransactionMode::ReadOnly)?;
        let read = |name: &str| {
            tx.object_store(name)
                .and_then(|s| s.get_all(None, None))
                .map_err(|e| storage_err("read sessions and tasks", e))
        };
        let (sessions, tasks) = (read(SESSIONS)?, read(TASKS)?);
        let sessions = sessions
            .await
            .map_err(|e| storage_err("read sessions", e))?;
        let tasks = tasks.await.map_err(|e| storage_err("read tasks", e))?;
        Ok((Self::sessions_from(sessions), Self::tasks_from(tasks)))
    }

    fn sessions_from(all: Vec<JsValue>) -> Vec<StoredSession> {
        all.into_iter()
            .filter_map(|v| {
                let id = js::get(&v, "id").as_string()?;
                let config = crate::from_js::from_value(js::get(&v, "config")).unwrap_or_default();
                let invalidated = js::get(&v, "invalidated").as_bool() == Some(true);
                Some(StoredSession {
                    id,
                    config,
                    invalidated,
                })
            })
            .collect()
    }

    /// Task records as read; one that cannot be read is an [`Unreadable`], so one
    /// corrupt record never hides the others.
    fn tasks_from(all: Vec<JsValue>) -> Vec<Result<TaskRecord, Unreadable>> {
        all.into_iter()
            .map(|v| {
                crate::from_js::from_value::<TaskRecord>(v.clone()).map_err(|e| Unreadable {
                    id: js::get(&v, "id").as_string(),
                    session: js::get(&v, "session").as_string(),
                    url: js::get(&js::get(&v, "url"), "href").as_string(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// Write records, in order, in one transaction (a record that comes twice ends as
    /// it was last). The transaction is created now; the future tells its end.
    pub fn put_tasks(
        &self,
        recs: &[TaskRecord],
    ) -> Result<impl Future<Output = Result<(), TaskError>>, TaskError> {
        let tx = self.tx(&[TASKS], TransactionMode::ReadWrite)?;
        let store = tx
            .object_store(TASKS)
            .map_err(|e| storage_err("open tasks", e))?;
        for rec in recs {
            store
                .put(&js::to_js(rec), None)
                .map_err(|e| storage_err("store a task", e))?;
        }
        Ok(Self::commit(tx, "store a task"))
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

    /// Delete a task's record and bytes.
    pub fn forget(
        &self,
        id: &TaskId,
    ) -> Result<impl Future<Output = Result<(), TaskError>>, TaskError> {
        let (tx, tasks, chunks) = self.write_tx()?;
        let doomed = self.drop_range(&chunks, id, 0)?;
        tasks
            .delete(Query::from(JsValue::from_str(&id.0)))
            .map_err(|e| storage_err("delete a task", e))?;
        Ok(self.then_remove(Self::commit(tx, "delete a task"), doomed))
    }

    /// One task record, if stored and readable.
    pub async fn task(&self, id: &TaskId) -> Result<Option<TaskRecord>, TaskError> {
        let tx = self.tx(&[TASKS], TransactionMode::ReadOnly)?;
        let store = tx
            .object_store(TASKS)
            .map_err(|e| storage_err("open tasks", e))?;
        let v = store
            .get(Query::from(JsValue::from_str(&id.0)))
            .map_err(|e| storage_err("read a task", e))?
            .await
            .map_err(|e| storage_err("read a task", e))?;
        Ok(v.and_then(|v| crate::from_js::from_value(v).ok()))
    }

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
    async fn segment(&self, name: &str, size: Option<f64>) -> Result<Chunk, TaskError> {
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
