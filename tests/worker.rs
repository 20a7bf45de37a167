//! Browser tests of storage and fetching, run inside a service worker
//! (`wasm-pack test --headless --chrome` / `--firefox`) against the devserver.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use longhaul::core::task::{TaskRecord, TaskState};
use longhaul::core::validate::{HeaderList, HttpUrl, SessionId};
use longhaul::core::TaskId;
use longhaul::store::{segments, Store};
use longhaul::testing;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_service_worker);

fn record(id: &str) -> TaskRecord {
    let mut r = TaskRecord::new_download(
        TaskId(id.into()),
        SessionId::parse("store-test").unwrap(),
        HttpUrl {
            href: "http://h.test/x".into(),
            host: "h.test".into(),
        },
        HeaderList::default(),
        "d".into(),
    );
    r.state = TaskState::Running;
    r.bytes_expected = Some(30);
    r.etag = Some("\"e\"".into());
    r.created_at = 1.0;
    r.updated_at = 1.0;
    r
}

fn bytes(fill: u8, n: usize) -> js_sys::Uint8Array {
    js_sys::Uint8Array::from(vec![fill; n].as_slice())
}

/// One chunk record made of `views`.
fn chunk(views: &[js_sys::Uint8Array]) -> js_sys::Array {
    views.iter().collect()
}

/// The stored bytes `[0, upto)` of `id`, read as bytes.
async fn read_all(
    store: &Store,
    id: &TaskId,
    upto: u64,
) -> Result<Vec<u8>, longhaul::core::TaskError> {
    let mut out = Vec::new();
    store
        .read_span(id, (0, 0, upto), Some(2), |_, b| {
            out.extend(b.to_vec());
            true
        })
        .await?;
    Ok(out)
}

/// The same bytes, through a Blob composed by `Store::blob`.
async fn read_blob(store: &Store, id: &TaskId, span: (u64, u64, u64)) -> Vec<u8> {
    let blob = store.blob(id, span).await.unwrap();
    let buf = wasm_bindgen_futures::JsFuture::from(blob.array_buffer())
        .await
        .unwrap();
    js_sys::Uint8Array::new(&buf).to_vec()
}

/// Write `parts` from `offset` with `rec`, as the store writes bytes: chunk records,
/// or a segment file and then its record.
async fn write(
    store: &Store,
    rec: &TaskRecord,
    offset: u64,
    parts: &[js_sys::Array],
    drop_from: Option<u64>,
) {
    if store.segmented() {
        let seg = store
            .write_segment(&rec.id, offset, parts)
            .unwrap()
            .await
            .unwrap();
        store
            .commit_segment(rec, offset, seg, drop_from)
            .unwrap()
            .await
            .unwrap();
    } else {
        store
            .write_chunks(rec, offset, parts, drop_from)
            .unwrap()
            .await
            .unwrap();
    }
}

/// The names of the segment files of task `id`.
async fn segment_files(id: &str) -> Vec<String> {
    let Some(dir) = segments::open(longhaul::store::DB_NAME, false).await else {
        return Vec::new();
    };
    let prefix = format!("{id}.");
    let mut names: Vec<String> = segments::names(&dir)
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    names.sort();
    names
}

#[wasm_bindgen_test]
async fn a_sweep_removes_the_files_no_one_names() {
    let Some(dir) = segments::open(longhaul::store::DB_NAME, true).await else {
        return; // (no OPFS here)
    };
    let stray = unique("stray");
    let blob = web_sys::Blob::new_with_u8_array_sequence(&chunk(&[bytes(7, 3)])).unwrap();
    segments::write(&dir, &stray, &blob).await.unwrap();
    let keep = |n: &str| n != stray;
    let young = segments::sweep(&dir, keep, segments::SWEEP_AGE_MS).await;
    assert_eq!(young.unwrap(), 0, "a file just written is spared");
    assert!(segments::names(&dir).await.unwrap().contains(&stray));
    assert_eq!(segments::sweep(&dir, keep, 0.0).await.unwrap(), 1);
    assert!(!segments::names(&dir).await.unwrap().contains(&stray));
}

#[wasm_bindgen_test]
async fn chunks_and_offsets_commit_together_and_tile() {
    bytes_and_offsets_commit_together_and_tile(false).await;
}

#[wasm_bindgen_test]
async fn segments_and_offsets_commit_together_and_tile() {
    if !segments::available() {
        return; // (no OPFS here: the store never chooses segments)
    }
    bytes_and_offsets_commit_together_and_tile(true).await;
}

/// Chunk records, or with `segmented` segment files, written, read back, replaced
/// from an offset and freed.
async fn bytes_and_offsets_commit_together_and_tile(segmented: bool) {
    let store = Store::open().await.unwrap();
    store.choose_segments(segmented);
    let id = unique(if segmented { "segments" } else { "store" });
    let mut rec = record(&id);
    // The first chunk as bytes (as older versions wrote), the others as this
    // store writes them (Blobs in Chromium and Firefox, or segment files), each
    // from several views.
    for (i, fill) in [1u8, 2, 3].into_iter().enumerate() {
        if i == 1 {
            store.probe().await;
            assert_eq!(store.segmented(), segmented);
        }
        rec.bytes_received = (i as u64 + 1) * 10;
        let views = chunk(&[bytes(fill, 4), bytes(fill, 64).subarray(0, 6)]);
        write(&store, &rec, i as u64 * 10, &[views], None).await;
    }
    let loaded = store.task(&rec.id).await.unwrap().unwrap();
    assert_eq!(loaded, rec, "the record round-trips exactly");
    let stored = store.read_chunk_batch(&rec.id, 0, 30, None).await.unwrap();
    let kinds: Vec<(u64, bool, u64)> = stored
        .iter()
        .map(|(at, c)| (*at, matches!(c, longhaul::store::Chunk::Blob(_)), c.len()))
        .collect();
    assert_eq!(
        kinds,
        [(0, false, 10), (10, true, 10), (20, true, 10)],
        "bytes first, then Blobs, each exactly its views' bytes (not their buffers)"
    );
    let want = [vec![1; 10], vec![2; 10], vec![3; 10]].concat();
    assert_eq!(read_all(&store, &rec.id, 30).await.unwrap(), want);
    assert_eq!(read_blob(&store, &rec.id, (0, 0, 30)).await, want);
    assert_eq!(
        read_blob(&store, &rec.id, (10, 15, 27)).await,
        want[15..27].to_vec(),
        "a span from inside a chunk"
    );
    // What pages get for `blob()`: the pieces, clipped to the span, not composed.
    let pieces = store.pieces(&rec.id, (10, 15, 27)).await.unwrap();
    let sizes: Vec<f64> = pieces
        .iter()
        .map(|p| p.unchecked_into::<web_sys::Blob>().size())
        .collect();
    assert_eq!(
        sizes,
        [5.0, 7.0],
        "one stored Blob per chunk the span touches"
    );

    // A new attempt resuming at 10 with two chunks drops the stale ones first.
    rec.bytes_received = 25;
    write(
        &store,
        &rec,
        10,
        &[chunk(&[bytes(9, 8)]), chunk(&[bytes(8, 7)])],
        Some(10),
    )
    .await;
    assert_eq!(
        read_all(&store, &rec.id, 25).await.unwrap(),
        [vec![1; 10], vec![9; 8], vec![8; 7]].concat()
    );
    if segmented {
        let files = segment_files(&id).await;
        assert_eq!(
            files.len(),
            1,
            "the replaced segments' files are gone: {files:?}"
        );
        assert!(files[0].starts_with(&format!("{id}.10.")), "{files:?}");
    }
    assert!(
        read_all(&store, &rec.id, 30).await.is_err(),
        "bytes beyond the offset are gone"
    );

    store.forget(&rec.id).unwrap().await.unwrap();
    assert!(store.task(&rec.id).await.unwrap().is_none());
    assert!(read_all(&store, &rec.id, 10).await.is_err());
    assert_eq!(
        segment_files(&id).await,
        Vec::<String>::new(),
        "no file left"
    );
}

#[wasm_bindgen_test]
async fn a_download_completes_with_the_source_bytes() {
    let path = format!("/files/{}.bin", unique("sw-complete"));
    let url = format!("{}{path}?size=3M", server());
    let id = testing::download("sw-tests", &url).await.unwrap();
    testing::idle().await.unwrap();
    let snap = testing::run("sw-tests", "task", &[("id", &id)])
        .await
        .unwrap();
    assert_eq!(
        get(&snap, "state").as_string().as_deref(),
        Some("completed"),
        "{snap:?}"
    );
    assert_eq!(get(&snap, "bytesExpected").as_f64(), Some(3.0 * 1048576.0));
    let stored = testing::bytes(&id).await.unwrap();
    assert!(
        stored == fetch_bytes(&url).await,
        "stored bytes differ from the source"
    );
}

#[wasm_bindgen_test]
async fn pause_then_resume_continues_with_a_range_request() {
    let path = format!("/files/{}.bin", unique("sw-pause"));
    let url = format!("{}{path}?size=4M&rate=2M", server());
    let id = testing::download("sw-tests", &url).await.unwrap();
    let mut received = 0.0;
    for _ in 0..100 {
        sleep(100).await;
        let snap = testing::run("sw-tests", "task", &[("id", &id)])
            .await
            .unwrap();
        received = get(&snap, "bytesReceived").as_f64().unwrap_or(0.0);
        if received >= 1048576.0 {
            break;
        }
    }
    assert!(received >= 1048576.0, "no progress");
    let paused = testing::run("sw-tests", "pause", &[("id", &id)])
        .await
        .unwrap();
    assert_eq!(get(&paused, "state").as_string().as_deref(), Some("paused"));
    let at = get(&paused, "bytesReceived").as_f64().unwrap();
    sleep(300).await;
    let still = testing::run("sw-tests", "task", &[("id", &id)])
        .await
        .unwrap();
    assert_eq!(
        get(&still, "bytesReceived").as_f64(),
        Some(at),
        "nothing is committed while paused"
    );
    testing::run("sw-tests", "resume", &[("id", &id)])
        .await
        .unwrap();
    testing::idle().await.unwrap();
    let done = testing::run("sw-tests", "task", &[("id", &id)])
        .await
        .unwrap();
    assert_eq!(
        get(&done, "state").as_string().as_deref(),
        Some("completed"),
        "{done:?}"
    );
    assert!(testing::bytes(&id).await.unwrap() == fetch_bytes(&url).await);
    // The requests that resume (If-Range): where the worker asks for Range windows
    // (Firefox) the first request has a range too, without If-Range.
    let ranges: Vec<String> = log(&path)
        .await
        .iter()
        .filter(|e| get(e, "if_range").as_string().is_some())
        .filter_map(|e| get(e, "range").as_string())
        .collect();
    let at = at as u64;
    assert!(
        ranges == [format!("bytes={at}-")]
            || ranges == [format!("bytes={at}-{}", at + (16 << 20) - 1)],
        "one resume, from the committed offset: {ranges:?}"
    );
}

#[wasm_bindgen_test]
async fn cancel_frees_bytes_and_a_second_cancel_says_so() {
    let url = format!(
        "{}/files/{}.bin?size=8M&rate=2M",
        server(),
        unique("sw-cancel")
    );
    let id = testing::download("sw-tests", &url).await.unwrap();
    sleep(800).await;
    assert_eq!(
        testing::run("sw-tests", "cancel", &[("id", &id)])
            .await
            .unwrap(),
        JsValue::TRUE
    );
    assert_eq!(
        testing::run("sw-tests", "cancel", &[("id", &id)])
            .await
            .unwrap(),
        JsValue::FALSE
    );
    let store = Store::open().await.unwrap();
    assert!(
        read_all(&store, &TaskId(id.clone()), 1).await.is_err(),
        "bytes freed"
    );
    let err = testing::run("sw-tests", "pause", &[("id", &id)])
        .await
        .unwrap_err();
    assert_eq!(err.code.as_str(), "invalid-state");
    testing::run("sw-tests", "remove", &[("id", &id)])
        .await
        .unwrap();
    assert!(testing::run("sw-tests", "task", &[("id", &id)])
        .await
        .unwrap()
        .is_null());
}

#[wasm_bindgen_test]
async fn a_404_fails_at_once_with_its_status() {
    // The devserver answers 404 for a path it does not have.
    let url = format!("{}/no-such-file-{}", server(), unique("x"));
    let id = testing::download("sw-tests", &url).await.unwrap();
    testing::idle().await.unwrap();
    let snap = testing::run("sw-tests", "task", &[("id", &id)])
        .await
        .unwrap();
    assert_eq!(get(&snap, "state").as_string().as_deref(), Some("failed"));
    let err = get(&snap, "error");
    assert_eq!(
        get(&err, "code").as_string().as_deref(),
        Some("http-status")
    );
    assert_eq!(get(&err, "status").as_f64(), Some(404.0));
}

#[wasm_bindgen_test]
async fn bad_input_is_refused_before_anything_is_stored() {
    let before =
        js_sys::Array::from(&testing::run("sw-tests-bad", "tasks", &[]).await.unwrap()).length();
    for url in [
        "ftp://h.test/x",
        "https://u:p@h.test/x",
        "not a url",
        "javascript:alert(1)",
    ] {
        let err = testing::download("sw-tests-bad", url).await.unwrap_err();
        assert_eq!(err.code.as_str(), "invalid-input", "{url}");
    }
    let err = testing::run("", "tasks", &[]).await.unwrap_err();
    assert_eq!(err.code.as_str(), "invalid-input");
    let err = testing::run("sw-tests-bad", "pause", &[("id", "no-such-task")])
        .await
        .unwrap_err();
    assert_eq!(err.code.as_str(), "not-found");
    let after =
        js_sys::Array::from(&testing::run("sw-tests-bad", "tasks", &[]).await.unwrap()).length();
    assert_eq!(before, after);
}

/// Make database `name` at version 1 (sessions, tasks, chunks; no meta), as the
/// first longhaul did.
async fn make_v1_database(name: &str) {
    let make_v1 = js_sys::Function::new_with_args(
        "name",
        "return new Promise((resolve, reject) => { \
           const req = indexedDB.open(name, 1); \
           req.onupgradeneeded = () => { const db = req.result; \
             db.createObjectStore('sessions', { keyPath: 'id' }); \
             db.createObjectStore('tasks', { keyPath: 'id' }).createIndex('session', 'session'); \
             db.createObjectStore('chunks'); }; \
           req.onerror = () => reject(req.error); \
           req.onsuccess = () => { req.result.close(); resolve(); }; })",
    );
    let p: js_sys::Promise = make_v1.call1(&JsValue::NULL, &name.into()).unwrap().into();
    wasm_bindgen_futures::JsFuture::from(p).await.unwrap();
}

/// `meta.created` of database `name` (opened without a version, so never upgraded
/// here), or `undefined`.
async fn meta_created(name: &str) -> JsValue {
    let read = js_sys::Function::new_with_args(
        "name",
        "return new Promise((resolve, reject) => { \
           const req = indexedDB.open(name); \
           req.onerror = () => reject(req.error); \
           req.onsuccess = () => { \
             const db = req.result; \
             const get = db.transaction('meta').objectStore('meta').get('created'); \
             get.onerror = () => reject(get.error); \
             get.onsuccess = () => { db.close(); resolve(get.result?.value); }; }; })",
    );
    let p: js_sys::Promise = read.call1(&JsValue::NULL, &name.into()).unwrap().into();
    wasm_bindgen_futures::JsFuture::from(p).await.unwrap()
}

#[wasm_bindgen_test]
async fn the_upgrade_notes_the_creation_and_later_opens_write_nothing() {
    // A new database: the upgrade that makes `meta` writes `created`.
    let name = unique("longhaul-created");
    let before = js_sys::Date::now();
    let store = Store::open_named(&name).await.unwrap();
    let created = meta_created(&name)
        .await
        .as_f64()
        .expect("meta.created is a number");
    assert!(created >= before && created <= js_sys::Date::now());
    // Opening it again writes nothing: the value stays.
    let again = Store::open_named(&name).await.unwrap();
    assert_eq!(meta_created(&name).await.as_f64(), Some(created));
    drop((store, again));
    // A version-1 database (sessions, tasks, chunks; no meta) gets it at its upgrade.
    let old = unique("longhaul-created-v1");
    make_v1_database(&old).await;
    let upgraded = Store::open_named(&old).await.unwrap();
    assert!(
        meta_created(&old).await.as_f64().is_some(),
        "written by the upgrade to 2"
    );
    assert_eq!(upgraded.load_all().await.unwrap().1.len(), 0);
}

/// A connection to database `name` opened as the worker shims open theirs (no
/// version), as a promise; and a function telling whether it was closed.
fn warm_open(name: &str) -> (js_sys::Promise, js_sys::Function) {
    let open = js_sys::Function::new_with_args(
        "name",
        "let db = null; \
         const p = new Promise((resolve) => { \
           const req = indexedDB.open(name); \
           req.onupgradeneeded = () => req.transaction.abort(); \
           req.onsuccess = () => { db = req.result; resolve(db); }; \
           req.onerror = (e) => { e.preventDefault(); resolve(null); }; }); \
         const closed = () => { try { db.transaction('tasks'); return false; } \
           catch (e) { return e.name === 'InvalidStateError'; } }; \
         return [p, closed];",
    );
    let pair = js_sys::Array::from(&open.call1(&JsValue::NULL, &name.into()).unwrap());
    (pair.get(0).into(), pair.get(1).into())
}

#[wasm_bindgen_test]
async fn start_up_adopts_a_warm_connection_at_its_version_and_closes_any_other() {
    // At the current version: adopted, so closing it from JS closes the store's.
    let name = unique("longhaul-warm");
    drop(Store::open_named(&name).await.unwrap());
    let (warm, closed) = warm_open(&name);
    let store = Store::open_warm_named(&name, Some(warm.clone()))
        .await
        .unwrap();
    assert_eq!(closed.call0(&JsValue::NULL).unwrap(), false);
    store.put_tasks(&[record("warm-1")]).unwrap().await.unwrap();
    assert_eq!(store.load_all().await.unwrap().1.len(), 1);
    let db = wasm_bindgen_futures::JsFuture::from(warm).await.unwrap();
    db.unchecked_ref::<web_sys::IdbDatabase>().close();
    let err = store.load_all().await.unwrap_err();
    assert_eq!(
        err.code.as_str(),
        "storage",
        "the store used the warm connection"
    );
    // At an older version (1): closed, and the database opened anew and upgraded
    // (were the warm one left open, with no versionchange handler, the upgrade
    // would be blocked).
    let old = unique("longhaul-warm-v1");
    make_v1_database(&old).await;
    let (warm, closed) = warm_open(&old);
    let store = Store::open_warm_named(&old, Some(warm)).await.unwrap();
    assert_eq!(closed.call0(&JsValue::NULL).unwrap(), true);
    store.put_tasks(&[record("warm-2")]).unwrap().await.unwrap();
    assert_eq!(store.load_all().await.unwrap().1.len(), 1);
    // A warm open of a database that does not exist gives null (its creation is
    // aborted), and the store makes it.
    let fresh = unique("longhaul-warm-none");
    let (warm, _) = warm_open(&fresh);
    let store = Store::open_warm_named(&fresh, Some(warm)).await.unwrap();
    assert_eq!(store.load_all().await.unwrap().1.len(), 0);
    assert!(meta_created(&fresh).await.as_f64().is_some());
}

#[wasm_bindgen_test]
async fn an_upgrade_elsewhere_closes_this_connection_and_is_not_blocked() {
    let name = unique("longhaul-versionchange");
    let store = Store::open_named(&name).await.unwrap();
    assert!(!store.is_closed());
    // Another connection (a newer longhaul in a page or worker) asks for a newer
    // version: it must not be blocked by ours.
    let open_newer = js_sys::Function::new_with_args(
        "name, version",
        "return new Promise((resolve, reject) => { \
           const req = indexedDB.open(name, version); \
           req.onblocked = () => reject(new Error('blocked by an old connection')); \
           req.onsuccess = () => { req.result.close(); resolve(req.result.version); }; \
           req.onerror = () => reject(req.error); })",
    );
    let newer = longhaul::store::DB_VERSION + 1;
    let p: js_sys::Promise = open_newer
        .call2(&JsValue::NULL, &name.clone().into(), &newer.into())
        .unwrap()
        .into();
    let got = wasm_bindgen_futures::JsFuture::from(p).await.unwrap();
    assert_eq!(got.as_f64(), Some(f64::from(newer)));
    assert!(store.is_closed(), "our connection closed on versionchange");
    // The closed connection fails typed instead of hanging.
    let err = store.load_all().await.unwrap_err();
    assert_eq!(err.code.as_str(), "storage");
}

/// `JSON.parse` of `json`: a value as pages and IndexedDB hand it over.
fn js_of(json: &str) -> JsValue {
    js_sys::JSON::parse(json).unwrap()
}

#[wasm_bindgen_test]
fn from_js_reads_records_and_commands_and_names_what_does_not_fit() {
    use longhaul::core::integrity::Integrity;
    use longhaul::core::protocol::RawCommand;
    use longhaul::core::task::WaitReason;
    use longhaul::core::{ErrorCode, TaskError};
    use longhaul::from_js::from_value;
    use std::collections::BTreeMap;

    // A record round-trips through what the store writes (JSON, then JS objects).
    let mut rec = record("fj");
    rec.bytes_received = 1 << 40;
    rec.error = Some(TaskError {
        code: ErrorCode::HttpStatus,
        message: "m".into(),
        status: Some(503),
    });
    rec.retry_at = Some(1.5e12);
    rec.wait_reason = Some(WaitReason::RetryAt);
    rec.integrity =
        Some(Integrity::parse("sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=").unwrap());
    rec.priority = 0.25;
    let v = js_of(&serde_json::to_string(&rec).unwrap());
    assert_eq!(from_value::<TaskRecord>(v).unwrap(), rec);

    // A command: absent, undefined and null fields are all `None`.
    let v = js_of(
        r#"{"longhaul":1,"op":"download","session":"s","url":"https://h.test/a",
            "headers":[["x-a","1"]],"maxBytes":5,"priority":0.5,"description":null}"#,
    );
    js_sys::Reflect::set(&v, &"id".into(), &JsValue::UNDEFINED).unwrap();
    let raw: RawCommand = longhaul::from_js::command(&v).unwrap();
    assert_eq!(
        (raw.longhaul, raw.op.as_str(), raw.session.as_str()),
        (1, "download", "s")
    );
    assert_eq!(raw.headers, vec![("x-a".to_string(), "1".to_string())]);
    assert_eq!((raw.max_bytes, raw.priority), (Some(5.0), Some(0.5)));
    assert_eq!((raw.id, raw.description, raw.online), (None, None, None));

    // A command's nested values are read as records are; what does not fit in a
    // command is named by its field.
    let raw = longhaul::from_js::command(&js_of(
        r#"{"longhaul":1,"op":"open","session":"s","config":{"maxConnectionsPerHost":3},
            "metadata":[["k","v"]],"sensitiveHeaders":["x-key"],"mustExist":true}"#,
    ))
    .unwrap();
    assert_eq!(raw.config.map(|c| c.max_connections_per_host), Some(3));
    assert_eq!(raw.metadata, Some(vec![("k".into(), "v".into())]));
    assert_eq!(raw.sensitive_headers, Some(vec!["x-key".to_string()]));
    assert_eq!(raw.must_exist, Some(true));
    let command_err = |json: &str| {
        longhaul::from_js::command(&js_of(json))
            .unwrap_err()
            .to_string()
    };
    let cmd = |rest: &str| format!(r#"{{"longhaul":1,"op":"download","session":"s"{rest}}}"#);
    assert_eq!(
        command_err(&cmd(r#","maxBytes":"5""#)),
        "maxBytes: invalid type: a string, expected a number"
    );
    assert_eq!(
        command_err(&cmd(r#","headers":[["a"]]"#)),
        "headers: invalid type: an array, expected an array of [string, string] pairs"
    );
    assert_eq!(
        command_err(&cmd(r#","sensitiveHeaders":[1]"#)),
        "sensitiveHeaders: invalid type: an array, expected an array of strings"
    );
    assert_eq!(
        command_err(&cmd(r#","mustExist":1"#)),
        "mustExist: invalid type: a number, expected a boolean"
    );
    assert!(
        command_err(&cmd(r#","config":{"maxConnectionsPerHost":"3"}"#))
            .starts_with("config: invalid type: a string")
    );
    assert_eq!(
        command_err(r#"{"longhaul":1,"session":"s"}"#),
        "missing field `op`"
    );
    assert_eq!(
        command_err(r#"{"longhaul":1.5,"op":"ping","session":"s"}"#),
        "longhaul: invalid type: a number, expected a whole number"
    );
    assert_eq!(
        command_err("[]"),
        "invalid type: an array, expected a command object"
    );

    // Maps, tuples, integers at JavaScript's exact limit.
    let m: BTreeMap<String, u32> = from_value(js_of(r#"{"a":1,"b":2}"#)).unwrap();
    assert_eq!(
        m.into_iter().collect::<Vec<_>>(),
        vec![("a".into(), 1), ("b".into(), 2)]
    );
    let t: (String, u64, i64) = from_value(js_of(r#"["x", 9007199254740992, -3]"#)).unwrap();
    assert_eq!(t, ("x".into(), 1 << 53, -3));

    // What does not fit is named by its kind, never guessed.
    let err = |json: &str, f: fn(JsValue) -> Result<(), longhaul::from_js::Error>| {
        f(js_of(json)).unwrap_err().to_string()
    };
    let as_u32 = |v| from_value::<u32>(v).map(drop);
    let as_u64 = |v| from_value::<u64>(v).map(drop);
    let as_bool = |v| from_value::<bool>(v).map(drop);
    let as_state = |v| from_value::<TaskState>(v).map(drop);
    let as_record = |v| from_value::<TaskRecord>(v).map(drop);
    assert_eq!(err("1.5", as_u32), "invalid type: a number, expected u32");
    assert_eq!(
        err("4294967296", as_u32),
        "invalid value: the number 4294967296, expected u32"
    );
    assert_eq!(err("-1", as_u64), "invalid type: a number, expected u64");
    assert_eq!(
        err("18014398509481984", as_u64),
        "invalid type: a number, expected u64"
    );
    assert_eq!(
        err(r#""yes""#, as_bool),
        "invalid type: a string, expected a boolean"
    );
    assert!(err(r#""flying""#, as_state).contains("unknown variant `flying`"));
    assert!(err("[1]", as_record).contains("expected struct TaskRecord"));
    assert!(err(r#"{"id":"x"}"#, as_record).contains("missing field"));
}

// ---------------------------------------------------------------------------------
// Uploads: the stored copy is the source's bytes, in values of their own.

const MIB: usize = 1 << 20;

/// `n` bytes that differ from MiB to MiB (a chunk read in another's place shows).
fn pattern(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn blob_of(bytes: &[u8]) -> web_sys::Blob {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    web_sys::Blob::new_with_u8_array_sequence(&parts).unwrap()
}

/// Start a `PUT` upload of `body` to the devserver's sink `name`, not before
/// `delay_ms` from now; returns its id.
async fn put_upload(name: &str, body: &web_sys::Blob, delay_ms: f64) -> Result<String, String> {
    let url = format!("{}/sink/{name}", server());
    let fields = [
        ("url", JsValue::from_str(&url)),
        ("protocol", "put".into()),
        ("body", body.into()),
        ("earliestBegin", (js_sys::Date::now() + delay_ms).into()),
    ];
    testing::run_js("sw-uploads", "upload", &fields)
        .await
        .map(|snap| get(&snap, "id").as_string().unwrap())
        .map_err(|e| e.code.as_str().to_owned())
}

/// The stored chunks of task `id`, as stored.
async fn stored(id: &str) -> Vec<(u64, longhaul::store::Chunk)> {
    let store = Store::open().await.unwrap();
    store
        .read_chunk_batch(&TaskId(id.into()), 0, 1 << 53, None)
        .await
        .unwrap()
}

async fn sink_bytes(name: &str) -> Vec<u8> {
    fetch_bytes(&format!("{}/sink/{name}", server())).await
}

#[wasm_bindgen_test]
async fn an_upload_stores_real_copies_of_the_source_and_sends_them() {
    let name = unique("copy");
    let src = pattern(3 * MIB + 12_345, 1);
    // The body is a File (in the origin-private file system where there is one), so
    // that the source can really go away: it is overwritten once the copy is made,
    // and the File the upload read is stale. A stored chunk that still depended on
    // it (a slice) would read the new bytes, or fail.
    let dir = segments::open("upload-source-tests", true).await;
    let body = match &dir {
        Some(d) => {
            segments::write(d, &name, &blob_of(&src)).await.unwrap();
            segments::file(d, &name).await.unwrap()
        }
        None => blob_of(&src),
    };
    let id = put_upload(&name, &body, 1500.0).await.unwrap();
    drop(body);
    if let Some(d) = &dir {
        segments::write(d, &name, &blob_of(&vec![0u8; src.len()]))
            .await
            .unwrap();
    }
    // The digests are stored with the task (a check after a restart has them).
    let rec = Store::open()
        .await
        .unwrap()
        .task(&TaskId(id.clone()))
        .await
        .unwrap()
        .expect("the task's record reads back");
    assert_eq!(rec.upload.unwrap().chunk_sha256.len(), 4);
    let chunks = stored(&id).await;
    assert_eq!(
        chunks.iter().map(|(at, _)| *at).collect::<Vec<_>>(),
        [0, MIB as u64, 2 * MIB as u64, 3 * MIB as u64]
    );
    for (at, chunk) in &chunks {
        // A record is its own bytes: what it reads as is its size (WebKit's stored
        // slices said 1 MiB and read as the whole source), and the source's bytes
        // at its offset.
        let bytes = chunk.bytes().await.unwrap().to_vec();
        let at = *at as usize;
        let end = (at + MIB).min(src.len());
        assert_eq!(bytes.len() as u64, chunk.len(), "chunk at {at}");
        assert!(
            bytes == src[at..end],
            "chunk at {at} differs from the source"
        );
    }
    testing::idle().await.unwrap();
    let snap = testing::run("sw-uploads", "task", &[("id", &id)])
        .await
        .unwrap();
    assert_eq!(
        get(&snap, "state").as_string().as_deref(),
        Some("completed"),
        "{snap:?}"
    );
    assert!(sink_bytes(&name).await == src, "the server got other bytes");
    assert!(stored(&id).await.is_empty(), "the copy is freed");
    if let Some(d) = &dir {
        segments::remove(d, &name).await;
    }
}

#[wasm_bindgen_test]
async fn a_request_body_is_the_stored_bytes_of_its_range_with_their_checksum() {
    use base64::Engine as _;
    use sha2::Digest as _;
    let src = pattern(2 * MIB + MIB / 2, 2);
    // Never started within the test: canceled at its end.
    let id = put_upload(&unique("body"), &blob_of(&src), 3_600_000.0)
        .await
        .unwrap();
    let m = MIB as u64;
    for (from, to) in [
        (0, src.len() as u64),
        (1000, 2 * m + 77),
        (m, 2 * m),
        (m - 1, m + 1),
        (2 * m + 5, 2 * m + 5),
    ] {
        let (body, header) = testing::request_body(&id, from, to).await.unwrap();
        let buf = wasm_bindgen_futures::JsFuture::from(body.array_buffer())
            .await
            .unwrap();
        let got = js_sys::Uint8Array::new(&buf).to_vec();
        let want = &src[from as usize..to as usize];
        assert!(got == want, "{from}..{to}: other bytes");
        let sha = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(want));
        assert_eq!(header, format!("sha256 {sha}"), "{from}..{to}");
    }
    testing::run("sw-uploads", "cancel", &[("id", &id)])
        .await
        .unwrap();
    assert!(stored(&id).await.is_empty(), "the copy is freed");
}
