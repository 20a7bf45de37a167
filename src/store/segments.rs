//! Segment files in the origin-private file system (OPFS): where Firefox's bytes go.
//!
//! Why: measured by `make bench` in Firefox (no WebDriver observer on the network,
//! 256 MiB), IndexedDB stores Blob records at 100-110 MiB/s, one OPFS file written
//! through `createWritable()` at ~156, and a file per 8 MiB segment, its end offset
//! committed to IndexedDB after the file's `close()`, just as fast (155.6). Smaller
//! files pay `createWritable` and `close` each (a file per 1 MiB, four at once: 57
//! MiB/s), and a file's bytes become durable only after both: at 32 MiB/s, files
//! started every 100 ms lost 5.7-11 MiB to a SIGKILL, against under 1 MiB for chunk
//! records. So a commit is a segment file only on a fast link (48 MiB/s or more,
//! where a record per MiB costs the worker as much as reading), one file at a
//! time, each taking all that waits (16 to 32 MiB; `core::commit`, `SEGMENT_RATE`,
//! `SEGMENT_BYTES`, `SEGMENT_BUFFERED`): slower links keep chunk records, and a
//! faster one gets Firefox's fastest store. Chromium keeps chunk records only: its
//! Blob records already run as fast as Cache Storage, its fastest store.
//!
//! Crash consistency, bytes first and offset after: a segment's file is written and
//! closed (only `close()` makes a `createWritable` stream's bytes the file's), and
//! only then is its chunk record, `{ segment: <file name>, size }` at the usual key
//! `[taskId, offset]`, committed in one transaction with the task record whose
//! offset covers it. A crash before that commit leaves a file no record names: it
//! is never read, and [`sweep`] removes it on a later start. Files are never
//! overwritten (each name carries a random part), so a Blob a reader holds of one
//! stays what it was while the file exists.
//!
//! Removal: whoever deletes a task's chunk records from an offset on removes, once
//! the deletion committed, that task's files from that offset on, found by their
//! names (`<task>.<offset>.<random>`), except those this store is writing (a crash
//! in between leaves files for [`sweep`]). Never through the records' values:
//! reading a Blob record's value holds its file, and its share of the quota, until
//! the collector frees the Blob (measured: a download after a cancel failed with
//! `quota` in the quota test). The sweep at start-up removes the files whose task
//! and offset no record has, untouched for [`SWEEP_AGE_MS`], which also spares
//! another worker's write in flight (the old and the new worker of an update
//! overlap).
//!
//! Layout: a directory per database, named as the database, at the OPFS root.
//!
//! Versions: a segment's record is a new kind of chunk record, not a new schema. A
//! longhaul older than this one (a worker rolled back to one) cannot read it: the
//! task's bytes then fail to read with a `storage` error; nothing else breaks.

use crate::js;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Files no record names are removed once untouched this long (ms).
pub const SWEEP_AGE_MS: f64 = 60_000.0;

#[wasm_bindgen]
extern "C" {
    /// A `FileSystemDirectoryHandle`.
    #[derive(Clone)]
    pub type Dir;
    #[wasm_bindgen(method, catch, js_name = getFileHandle)]
    fn get_file_handle(this: &Dir, name: &str, opts: &JsValue) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = getDirectoryHandle)]
    fn get_directory_handle(
        this: &Dir,
        name: &str,
        opts: &JsValue,
    ) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = removeEntry)]
    fn remove_entry(this: &Dir, name: &str) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn keys(this: &Dir) -> Result<js_sys::AsyncIterator, JsValue>;

    /// A `FileSystemFileHandle`.
    type FileHandle;
    #[wasm_bindgen(method, catch, js_name = createWritable)]
    fn create_writable(this: &FileHandle) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = getFile)]
    fn get_file(this: &FileHandle) -> Result<js_sys::Promise, JsValue>;

    /// A `FileSystemWritableFileStream`.
    type Writable;
    #[wasm_bindgen(method, catch)]
    fn write(this: &Writable, data: &JsValue) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn close(this: &Writable) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn abort(this: &Writable) -> Result<js_sys::Promise, JsValue>;
}

async fn call(p: Result<js_sys::Promise, JsValue>) -> Result<JsValue, JsValue> {
    JsFuture::from(p?).await
}

fn create(on: bool) -> JsValue {
    let o = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&o, &"create".into(), &on.into());
    o.into()
}

/// `navigator.storage`, if it has `getDirectory` and file handles can be written.
fn storage() -> Option<JsValue> {
    let global = js_sys::global();
    let storage = js::get(&js::get(&global, "navigator"), "storage");
    let has = |obj: &JsValue, key: &str| js::get(obj, key).is_function();
    let handle = js::get(&global, "FileSystemFileHandle");
    (has(&storage, "getDirectory") && has(&js::get(&handle, "prototype"), "createWritable"))
        .then_some(storage)
}

/// Whether this browser has what segments need (it may still refuse them at run
/// time, as in private windows; [`open`] tells).
pub fn available() -> bool {
    storage().is_some()
}

/// The segment directory of database `db`, made if `make`; `None` if OPFS is not
/// there, refuses, or (without `make`) the directory does not exist.
pub async fn open(db: &str, make: bool) -> Option<Dir> {
    let storage = storage()?;
    let get: js_sys::Function = js::get(&storage, "getDirectory").dyn_into().ok()?;
    let root = JsFuture::from(
        get.call0(&storage)
            .ok()?
            .dyn_into::<js_sys::Promise>()
            .ok()?,
    )
    .await
    .ok()?
    .unchecked_into::<Dir>();
    call(root.get_directory_handle(db, &create(make)))
        .await
        .ok()
        .map(JsCast::unchecked_into)
}

/// Write `blob` as the new file `name`, closed before this returns; on failure the
/// file is removed (best effort) and the error given.
pub async fn write(dir: &Dir, name: &str, blob: &web_sys::Blob) -> Result<(), JsValue> {
    let handle: FileHandle = call(dir.get_file_handle(name, &create(true)))
        .await?
        .unchecked_into();
    let w: Writable = call(handle.create_writable()).await?.unchecked_into();
    let written = async {
        call(w.write(blob)).await?;
        call(w.close()).await
    }
    .await;
    if let Err(e) = written {
        let _ = call(w.abort()).await;
        remove(dir, name).await;
        return Err(e);
    }
    Ok(())
}

/// The file `name`, as a Blob backed by it.
pub async fn file(dir: &Dir, name: &str) -> Result<web_sys::Blob, JsValue> {
    let handle: FileHandle = call(dir.get_file_handle(name, &create(false)))
        .await?
        .unchecked_into();
    Ok(call(handle.get_file()).await?.unchecked_into())
}

/// Remove the file `name`, if it can be (a file left is swept later).
pub async fn remove(dir: &Dir, name: &str) {
    let _ = call(dir.remove_entry(name)).await;
}

/// The names of the files in `dir`.
pub async fn names(dir: &Dir) -> Result<Vec<String>, JsValue> {
    let it = dir.keys()?;
    let mut out = Vec::new();
    loop {
        let next = JsFuture::from(it.next()?).await?;
        if js::get(&next, "done").is_truthy() {
            return Ok(out);
        }
        if let Some(name) = js::get(&next, "value").as_string() {
            out.push(name);
        }
    }
}

/// Remove the files of `dir` that `keep` refuses and that were not touched for
/// `min_age_ms` (the store uses [`SWEEP_AGE_MS`]); returns how many went.
pub async fn sweep(
    dir: &Dir,
    keep: impl Fn(&str) -> bool,
    min_age_ms: f64,
) -> Result<usize, JsValue> {
    let mut removed = 0;
    for name in names(dir).await? {
        if keep(&name) {
            continue;
        }
        let Ok(f) = file(dir, &name).await else {
            continue;
        };
        let touched = js::get(&f, "lastModified").as_f64().unwrap_or(f64::MAX);
        if js_sys::Date::now() - touched >= min_age_ms {
            remove(dir, &name).await;
            removed += 1;
        }
    }
    Ok(removed)
}
