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
//!
//! ## Files
//!
//! - this one: the schema, its migrations, connections and transactions;
//! - `records.rs`: session and task records; `chunk.rs`: what a chunk record is;
//! - `write.rs`: bytes written with the offsets that cover them, and freed;
//! - `read.rs`: bytes read back (batches, spans, composed Blobs);
//! - `profile.rs`: which browser this is, and the chunk kind a connection stores;
//! - `segments.rs`: Firefox's segment files in OPFS.

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

mod chunk;
mod profile;
mod read;
mod records;
pub mod segments;
mod write;

pub use chunk::Chunk;
use chunk::*;
#[cfg_attr(not(feature = "worker"), allow(unused_imports))]
pub(crate) use profile::profile;
use write::*;
pub use write::{Commit, Segment};

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

/// The names of the segment files being written and not yet committed.
type Writing = Rc<std::cell::RefCell<Vec<String>>>;

/// The chunk records of task `.0` from offset `.1` on, deleted: their segment
/// files go once the deletion committed.
type Doomed = (String, u64);

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
}
