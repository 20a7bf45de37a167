//! Faults from the server, survived inside a service worker (both browsers), driven by
//! the devserver's fault switches (see tools/devserver/README.md). Every completed
//! download is compared with the source's bytes; every failure must be typed.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use longhaul::testing;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_service_worker);

const SESSION: &str = "fault-tests";
const MIB: u64 = 1 << 20;

// The reset switch closes the connection 1.5 MiB into the body, throttled to 4 MiB/s:
// when a body fails, the browser drops what it received but the page had not read
// yet, so an unthrottled sender could lose everything before the 1 MiB commit. At
// this pace the reader keeps up, the 1 MiB commit happens, and the second request
// always carries a Range.
const PACE: &str = "rate=4M";

/// Download `path?size=…&<faults>`, wait until nothing is left to do, return the
/// final snapshot.
async fn run(path: &str, size: &str, faults: &str) -> (String, JsValue) {
    open_session().await;
    let url = format!("{}{path}?size={size}&{PACE}&{faults}", server());
    let id = testing::download(SESSION, &url).await.unwrap();
    testing::idle().await.unwrap();
    let snap = testing::run(SESSION, "task", &[("id", &id)]).await.unwrap();
    (id, snap)
}

/// Open the tests' session with short backoffs: every test of this file waits for
/// all of its tasks, so one task backing off for a minute would stall them all.
async fn open_session() {
    let config = js_sys::JSON::parse(r#"{"retry":{"delays":[100,200,400],"jitter":0}}"#).unwrap();
    testing::run_js(SESSION, "open", &[("config", config)])
        .await
        .unwrap();
}

/// How many GETs for `path` longhaul made (its queries carry switches).
async fn requests_any(path: &str) -> usize {
    requests(path).await.len()
}

/// Like [`run`], for cases that need the second request to carry a range. When the
/// browser loses the first attempt's bytes before the 1 MiB commit (it drops what it
/// buffered when a body fails), the second request asks from 0 and the case never
/// shows; try again with a new file, up to three times, until `pred` holds for one of
/// the log's range requests.
async fn run_until(
    prefix: &str,
    size: &str,
    faults: &str,
    what: &str,
    pred: impl Fn(&JsValue) -> bool,
) -> (String, String, JsValue) {
    for _ in 0..3 {
        let path = format!("/files/{}.bin", unique(prefix));
        let (id, snap) = run(&path, size, faults).await;
        if log(&path)
            .await
            .iter()
            .any(|e| get(e, "range").as_string().is_some() && pred(e))
        {
            return (path, id, snap);
        }
    }
    panic!("{prefix}: {what} never happened in three tries");
}

/// Whether log entry `e` was changed by the fault switch `name`.
fn faulted(e: &JsValue, name: &str) -> bool {
    get(e, "fault")
        .as_string()
        .is_some_and(|f| f.contains(name))
}

fn state(snap: &JsValue) -> String {
    get(snap, "state").as_string().unwrap_or_default()
}

fn error_code(snap: &JsValue) -> String {
    get(&get(snap, "error"), "code")
        .as_string()
        .unwrap_or_default()
}

async fn assert_intact(id: &str, path: &str, size: &str) {
    let source = fetch_bytes(&format!("{}{path}?size={size}", server())).await;
    let stored = testing::bytes(id).await.unwrap();
    assert!(
        stored.len() == source.len() && stored == source,
        "stored bytes differ from the source"
    );
}

/// The `N` of a `Range` value `bytes=N-`, or of a window's `bytes=N-M` (Firefox
/// asks for windows: `EngineConfig::fetch_window`).
fn range_start(r: &str) -> Option<u64> {
    let (from, to) = r.strip_prefix("bytes=")?.split_once('-')?;
    (to.is_empty() || to.parse::<u64>().is_ok())
        .then(|| from.parse().ok())
        .flatten()
}

/// The log's (status, range) of each GET longhaul made for `path` (not the CORS
/// preflights, not the test's own fetch of the source, whose query has no switches).
async fn requests(path: &str) -> Vec<(u32, Option<String>)> {
    log(path)
        .await
        .iter()
        .filter(|e| get(e, "method").as_string().as_deref() == Some("GET"))
        .filter(|e| get(e, "query").as_string().is_some_and(|q| q.contains('&')))
        .map(|e| {
            (
                get(e, "status").as_f64().unwrap_or(0.0) as u32,
                get(e, "range").as_string(),
            )
        })
        .collect()
}

#[wasm_bindgen_test]
async fn a_reset_mid_body_resumes_from_the_committed_offset() {
    let faults = format!("reset={}&fault_times=1", MIB + MIB / 3);
    let (path, id, snap) =
        run_until("reset", "3M", &faults, "a resume with a range", |_| true).await;
    assert_eq!(state(&snap), "completed", "{snap:?}");
    assert_intact(&id, &path, "3M").await;
    let reqs = requests(&path).await;
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    let (status, range) = &reqs[1];
    assert_eq!(*status, 206);
    let from = range.as_deref().and_then(range_start).unwrap();
    assert!(from > 0 && from <= MIB + MIB / 3, "resumed at {from}");
}

#[wasm_bindgen_test]
async fn a_200_to_a_range_request_starts_over_and_never_appends() {
    let faults = format!("ignore_range=1&reset={}&fault_times=2", MIB + MIB / 2);
    let (path, id, snap) = run_until("ignore-range", "3M", &faults, "a 200 to a range", |e| {
        faulted(e, "ignore_range")
    })
    .await;
    assert_eq!(state(&snap), "completed", "{snap:?}");
    assert_intact(&id, &path, "3M").await;
    let statuses: Vec<u32> = requests(&path).await.iter().map(|r| r.0).collect();
    assert_eq!(
        statuses,
        vec![200, 200, 206],
        "the second answer ignored the range"
    );
}

#[wasm_bindgen_test]
async fn a_changed_resource_restarts_and_is_never_spliced() {
    let path = format!("/files/{}.bin", unique("etag"));
    let faults = format!(
        "etag=rotate&grow=4096&reset={}&fault_times=2",
        MIB + MIB / 2
    );
    let (id, snap) = run(&path, "2M", &faults).await;
    assert_eq!(state(&snap), "completed", "{snap:?}");
    // Once the faults are used up the plain file is served: the result must be it,
    // whole, not a splice of versions.
    assert_intact(&id, &path, "2M").await;
}

#[wasm_bindgen_test]
async fn a_malformed_content_range_fails_typed_with_nothing_appended() {
    for kind in ["garbage", "overflow", "inverted"] {
        let faults = format!(
            "bad_content_range={kind}&reset={}&fault_times=2",
            MIB + MIB / 2
        );
        let (path, _, snap) = run_until(kind, "2M", &faults, "a malformed 206", |e| {
            faulted(e, "bad_content_range")
        })
        .await;
        assert_eq!(
            state(&snap),
            "failed",
            "{kind}: {snap:?} {:?}",
            requests(&path).await
        );
        assert_eq!(error_code(&snap), "not-resumable", "{kind}");
        // Nothing appended: the task still holds exactly what it had when it asked
        // for the range that came back malformed.
        let kept = get(&snap, "bytesReceived").as_f64().unwrap_or(0.0) as u64;
        let asked: Vec<u64> = requests(&path)
            .await
            .iter()
            .filter_map(|(_, r)| range_start(r.as_deref()?))
            .collect();
        assert_eq!(
            asked,
            vec![kept],
            "{kind}: {kept} bytes kept; nothing may be appended"
        );
    }
}

#[wasm_bindgen_test]
async fn a_206_without_content_range_is_not_appended_and_the_task_starts_over() {
    // What a cross-origin server that does not expose Content-Range looks like.
    let faults = format!(
        "bad_content_range=missing&reset={}&fault_times=2",
        MIB + MIB / 2
    );
    let (path, id, snap) = run_until(
        "missing",
        "2M",
        &faults,
        "a 206 without Content-Range",
        |e| faulted(e, "bad_content_range"),
    )
    .await;
    assert_eq!(state(&snap), "completed", "{snap:?}");
    assert_intact(&id, &path, "2M").await;
}

#[wasm_bindgen_test]
async fn a_206_at_the_wrong_offset_is_not_appended_and_the_task_starts_over() {
    let path = format!("/files/{}.bin", unique("wrong-start"));
    let (id, snap) = run(
        &path,
        "2M",
        &format!(
            "bad_content_range=wrong_start&reset={}&fault_times=2",
            MIB + MIB / 2
        ),
    )
    .await;
    assert_eq!(state(&snap), "completed", "{snap:?}");
    assert_intact(&id, &path, "2M").await;
}

#[wasm_bindgen_test]
async fn retry_after_is_honoured_then_the_download_completes() {
    for retry_after in ["1", "soon", "date:1"] {
        let path = format!("/files/{}.bin", unique("retry-after"));
        let (id, snap) = run(
            &path,
            "1M",
            &format!("status=503&retry_after={retry_after}&fault_times=2"),
        )
        .await;
        assert_eq!(state(&snap), "completed", "{retry_after}: {snap:?}");
        assert_intact(&id, &path, "1M").await;
        let statuses: Vec<u32> = requests(&path).await.iter().map(|r| r.0).collect();
        // 206 where the worker asks for Range windows (Firefox), from the start.
        assert!(
            matches!(statuses[..], [503, 503, 200 | 206]),
            "{retry_after}: {statuses:?}"
        );
    }
}

#[wasm_bindgen_test]
async fn final_statuses_fail_at_once_with_the_status() {
    for status in [404u32, 410, 403] {
        let path = format!("/files/{}.bin", unique("status"));
        let (_, snap) = run(&path, "1M", &format!("status={status}")).await;
        assert_eq!(state(&snap), "failed", "{status}");
        assert_eq!(error_code(&snap), "http-status");
        assert_eq!(
            get(&get(&snap, "error"), "status").as_f64(),
            Some(f64::from(status))
        );
        assert_eq!(requests(&path).await.len(), 1, "{status}: no retry");
    }
}

#[wasm_bindgen_test]
async fn a_redirect_chain_is_followed_and_its_end_is_resumed() {
    let path = format!("/files/{}.bin", unique("redirect"));
    let (id, snap) = run(&path, "2M", &format!("redirect=3&reset={}", MIB + MIB / 2)).await;
    // The chain's last hop resets every time it is asked from 0 and serves ranges:
    // the resume must go to where the chain ended.
    assert_eq!(state(&snap), "completed", "{snap:?}");
    assert_intact(&id, &path, "2M").await;
    let statuses: Vec<u32> = requests(&path).await.iter().map(|r| r.0).collect();
    assert!(statuses.starts_with(&[302, 302, 302]), "{statuses:?}");
}

#[wasm_bindgen_test]
async fn a_session_retry_policy_bounds_the_attempts_and_keeps_the_last_status() {
    let session = "fault-tests-policy";
    let config =
        js_sys::JSON::parse(r#"{"retry":{"maxAttempts":2,"delays":[50],"jitter":0}}"#).unwrap();
    testing::run_js(session, "open", &[("config", config)])
        .await
        .unwrap();
    let path = format!("/files/{}.bin", unique("policy"));
    let url = format!("{}{path}?size=1M&status=500", server());
    let id = testing::download(session, &url).await.unwrap();
    testing::idle().await.unwrap();
    let snap = testing::run(session, "task", &[("id", &id)]).await.unwrap();
    assert_eq!(state(&snap), "failed", "{snap:?}");
    assert_eq!(error_code(&snap), "http-status");
    assert_eq!(get(&get(&snap, "error"), "status").as_f64(), Some(500.0));
    assert_eq!(requests_any(&path).await, 3, "one attempt and two retries");
}

#[wasm_bindgen_test]
async fn bad_session_configurations_are_refused() {
    for bad in [
        r#"{"retry":{"maxAttempts":-1}}"#,
        r#"{"retry":{"jitter":3}}"#,
        r#"{"retry":{"delays":[]}}"#,
        r#"{"retry":{"baseDelay":"soon"}}"#,
        r#"{"retyr":{}}"#,
    ] {
        let config = js_sys::JSON::parse(bad).unwrap();
        let res = testing::run_js("fault-tests-bad-config", "open", &[("config", config)]).await;
        let Err(err) = res else {
            panic!("{bad} was accepted")
        };
        assert_eq!(err.code.as_str(), "invalid-input", "{bad}");
    }
}

#[wasm_bindgen_test]
async fn max_bytes_refuses_a_larger_resource_before_storing_it() {
    let path = format!("/files/{}.bin", unique("too-large"));
    let url = format!("{}{path}?size=2M", server());
    let v = testing::run_js(
        SESSION,
        "download",
        &[
            ("url", url.into()),
            ("maxBytes", JsValue::from(1_000_000.0)),
        ],
    )
    .await
    .unwrap();
    let id = get(&v, "id").as_string().unwrap();
    testing::idle().await.unwrap();
    let snap = testing::run(SESSION, "task", &[("id", &id)]).await.unwrap();
    assert_eq!(state(&snap), "failed", "{snap:?}");
    assert_eq!(error_code(&snap), "too-large");
    assert_eq!(get(&snap, "bytesReceived").as_f64(), Some(0.0));
    for bad in [
        JsValue::from(-5.0),
        JsValue::from(0.5),
        JsValue::from(f64::NAN),
        JsValue::from(1e300),
    ] {
        let err = testing::run_js(
            SESSION,
            "download",
            &[("url", "http://h.test/x".into()), ("maxBytes", bad.clone())],
        )
        .await
        .unwrap_err();
        assert_eq!(err.code.as_str(), "invalid-input", "{bad:?}");
    }
}

#[wasm_bindgen_test]
async fn a_stalled_server_times_out_and_the_task_resumes_or_fails_typed() {
    let session = "fault-tests-stall";
    let config = js_sys::JSON::parse(
        r#"{"requestTimeout":1000,"retry":{"maxAttempts":2,"delays":[50],"jitter":0}}"#,
    )
    .unwrap();
    testing::run_js(session, "open", &[("config", config)])
        .await
        .unwrap();

    // Stalls once, 1.5 MiB in: the stall timeout fires, the retry resumes with a range.
    let path = format!("/files/{}.bin", unique("stall-once"));
    let url = format!(
        "{}{path}?size=3M&{PACE}&stall={}&fault_times=1",
        server(),
        MIB + MIB / 2
    );
    let once = testing::download(session, &url).await.unwrap();
    // Stalls every time, before any byte: it fails with `timeout` after its attempts.
    let path_always = format!("/files/{}.bin", unique("stall-always"));
    let url = format!("{}{path_always}?size=1M&stall=0", server());
    let always = testing::download(session, &url).await.unwrap();
    testing::idle().await.unwrap();

    let snap = testing::run(session, "task", &[("id", &once)])
        .await
        .unwrap();
    assert_eq!(state(&snap), "completed", "{snap:?}");
    assert_intact(&once, &path, "3M").await;
    let reqs = requests(&path).await;
    assert!(reqs.len() == 2 && reqs[1].1.is_some(), "{reqs:?}");

    let snap = testing::run(session, "task", &[("id", &always)])
        .await
        .unwrap();
    assert_eq!(state(&snap), "failed", "{snap:?}");
    assert_eq!(error_code(&snap), "timeout");
}

#[wasm_bindgen_test]
async fn a_refused_connection_backs_off_then_fails_typed_network() {
    let session = "fault-tests-refused";
    let config =
        js_sys::JSON::parse(r#"{"retry":{"maxAttempts":2,"delays":[50,100],"jitter":0}}"#).unwrap();
    testing::run_js(session, "open", &[("config", config)])
        .await
        .unwrap();
    // Nothing listens on port 9 (discard) here: every attempt is refused.
    let id = testing::download(session, "http://127.0.0.1:9/nothing")
        .await
        .unwrap();
    testing::idle().await.unwrap();
    let snap = testing::run(session, "task", &[("id", &id)]).await.unwrap();
    assert_eq!(state(&snap), "failed", "{snap:?}");
    assert_eq!(error_code(&snap), "network");
    assert!(
        get(&get(&snap, "error"), "status").is_undefined(),
        "no HTTP status: {snap:?}"
    );
}

/// A download of `url` in `session` with extra JS-valued options; returns its id.
async fn download_with(session: &str, url: &str, options: &[(&str, JsValue)]) -> String {
    let mut fields = vec![("url", JsValue::from_str(url))];
    fields.extend(options.iter().cloned());
    let snap = testing::run_js(session, "download", &fields).await.unwrap();
    get(&snap, "id").as_string().unwrap()
}

fn sri(alg: &str, bytes: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest = match alg {
        "sha256" => sha2::Sha256::digest(bytes).to_vec(),
        "sha384" => sha2::Sha384::digest(bytes).to_vec(),
        _ => sha2::Sha512::digest(bytes).to_vec(),
    };
    format!(
        "{alg}-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// How many chunks of task `id` are stored, whatever the committed offset says.
async fn stored_chunks(id: &str) -> usize {
    let store = longhaul::store::Store::open().await.unwrap();
    let id = longhaul::core::TaskId(id.into());
    store
        .read_chunk_batch(&id, 0, 1 << 53, None)
        .await
        .unwrap()
        .len()
}

#[wasm_bindgen_test]
async fn integrity_is_checked_over_the_whole_file_across_a_resume() {
    let path = format!("/files/{}.bin", unique("sri-ok"));
    let source = fetch_bytes(&format!("{}{path}?size=3M", server())).await;
    // sha512 counts (the strongest); the wrong sha256 beside it is ignored.
    let meta = format!(
        "{} {}",
        sri("sha256", b"something else"),
        sri("sha512", &source)
    );
    open_session().await;
    let url = format!(
        "{}{path}?size=3M&{PACE}&reset={}&fault_times=1",
        server(),
        MIB + MIB / 3
    );
    let id = download_with(SESSION, &url, &[("integrity", meta.into())]).await;
    testing::idle().await.unwrap();
    let snap = testing::run(SESSION, "task", &[("id", &id)]).await.unwrap();
    assert_eq!(state(&snap), "completed", "{snap:?}");
    assert_intact(&id, &path, "3M").await;
}

#[wasm_bindgen_test]
async fn an_integrity_mismatch_fails_typed_and_frees_the_bytes() {
    let path = format!("/files/{}.bin", unique("sri-bad"));
    open_session().await;
    let meta = sri("sha256", b"not the file");
    let url = format!("{}{path}?size=2M&{PACE}&x=1", server());
    let id = download_with(SESSION, &url, &[("integrity", meta.into())]).await;
    testing::idle().await.unwrap();
    let snap = testing::run(SESSION, "task", &[("id", &id)]).await.unwrap();
    assert_eq!(state(&snap), "failed", "{snap:?}");
    assert_eq!(error_code(&snap), "integrity", "{snap:?}");
    assert_eq!(get(&snap, "bytesReceived").as_f64(), Some(0.0));
    assert_eq!(stored_chunks(&id).await, 0, "its bytes were freed");
    // Bad metadata is refused before anything is stored.
    let before = requests_any(&path).await;
    for bad in ["sha256-short", "md5-abc", ""] {
        let err = testing::run_js(
            SESSION,
            "download",
            &[("url", url.clone().into()), ("integrity", bad.into())],
        )
        .await
        .unwrap_err();
        assert_eq!(err.code.as_str(), "invalid-input", "{bad:?}");
    }
    assert_eq!(
        requests_any(&path).await,
        before,
        "no request for refused input"
    );
}

#[wasm_bindgen_test]
async fn the_session_byte_budget_refuses_what_does_not_fit() {
    let session = "budget-tests";
    let config = js_sys::JSON::parse(r#"{"byteBudget":3145728}"#).unwrap();
    testing::run_js(session, "open", &[("config", config)])
        .await
        .unwrap();
    let first = format!("{}/files/{}.bin?size=2M", server(), unique("budget-a"));
    let a = download_with(session, &first, &[]).await;
    testing::idle().await.unwrap();
    let snap = testing::run(session, "task", &[("id", &a)]).await.unwrap();
    assert_eq!(state(&snap), "completed", "{snap:?}");
    let second = format!("{}/files/{}.bin?size=2M", server(), unique("budget-b"));
    let b = download_with(session, &second, &[]).await;
    testing::idle().await.unwrap();
    let snap = testing::run(session, "task", &[("id", &b)]).await.unwrap();
    assert_eq!(state(&snap), "failed", "{snap:?}");
    assert_eq!(error_code(&snap), "over-budget", "{snap:?}");
    assert_eq!(stored_chunks(&b).await, 0, "nothing of it was stored");
    // Removing the first makes room: the second then completes.
    testing::run(session, "remove", &[("id", &a)])
        .await
        .unwrap();
    testing::run(session, "resume", &[("id", &b)])
        .await
        .unwrap();
    testing::idle().await.unwrap();
    let snap = testing::run(session, "task", &[("id", &b)]).await.unwrap();
    assert_eq!(state(&snap), "completed", "{snap:?}");
    for bad in ["0", "-1", "1.5", "\"big\""] {
        let config = js_sys::JSON::parse(&format!(r#"{{"byteBudget":{bad}}}"#)).unwrap();
        let err = testing::run_js(session, "open", &[("config", config)])
            .await
            .unwrap_err();
        assert_eq!(err.code.as_str(), "invalid-input", "byteBudget {bad}");
    }
}

#[wasm_bindgen_test]
async fn a_response_that_fails_cors_is_never_stored() {
    // These tests run on another origin than the devserver: `cors=0` makes the
    // browser refuse the response.
    let (id, snap) = run(&format!("/files/{}.bin", unique("no-cors")), "1M", "cors=0").await;
    assert_eq!(state(&snap), "failed", "{snap:?}");
    assert_eq!(error_code(&snap), "network", "{snap:?}");
    assert_eq!(get(&snap, "bytesReceived").as_f64(), Some(0.0));
    assert_eq!(stored_chunks(&id).await, 0);
}

#[wasm_bindgen_test]
async fn hidden_validators_start_over_instead_of_splicing() {
    // Without Access-Control-Expose-Headers the worker sees no ETag and no
    // Content-Range: a reset cannot be resumed safely, so the task starts over.
    let faults = format!("expose=0&reset={}&fault_times=1", MIB + MIB / 3);
    let path = format!("/files/{}.bin", unique("hidden"));
    let (id, snap) = run(&path, "3M", &faults).await;
    assert_eq!(state(&snap), "completed", "{snap:?}");
    assert_intact(&id, &path, "3M").await;
    let reqs = requests(&path).await;
    assert!(reqs.len() >= 2, "{reqs:?}");
    assert!(
        reqs.iter().skip(1).any(|(status, _)| *status == 200),
        "a later request fetched the whole file again: {reqs:?}"
    );
}

/// Run two commands at the same time; their results, in order.
async fn both(session: &str, op: &str, id: &str) -> Vec<Result<JsValue, String>> {
    let one = |session: String, op: String, id: String| {
        wasm_bindgen_futures::future_to_promise(async move {
            testing::run(&session, &op, &[("id", &id)])
                .await
                .map_err(|e| JsValue::from_str(e.code.as_str()))
        })
    };
    let a = one(session.into(), op.into(), id.into());
    let b = one(session.into(), op.into(), id.into());
    let mut out = vec![];
    for p in [a, b] {
        out.push(
            wasm_bindgen_futures::JsFuture::from(p)
                .await
                .map_err(|e| e.as_string().unwrap_or_default()),
        );
    }
    out
}

#[wasm_bindgen_test]
async fn the_same_command_twice_at_once_has_one_effect() {
    let session = "twice-tests";
    let path = format!("/files/{}.bin", unique("twice"));
    let url = format!("{}{path}?size=4M&rate=1M", server());
    let id = download_with(session, &url, &[]).await;
    sleep(1_500).await;
    let paused = both(session, "pause", &id).await;
    for r in &paused {
        let snap = r.as_ref().unwrap();
        assert_eq!(state(snap), "paused", "{snap:?}");
    }
    let resumed = both(session, "resume", &id).await;
    assert!(resumed.iter().all(|r| r.is_ok()), "{resumed:?}");
    sleep(500).await;
    let reqs = requests(&path).await;
    assert_eq!(reqs.len(), 2, "the first request and one resume: {reqs:?}");
    let canceled: Vec<_> = both(session, "cancel", &id)
        .await
        .into_iter()
        .map(|r| r.unwrap().as_bool())
        .collect();
    assert!(
        canceled == [Some(true), Some(false)] || canceled == [Some(false), Some(true)],
        "exactly one cancel took effect: {canceled:?}"
    );
    assert_eq!(stored_chunks(&id).await, 0, "bytes freed");
    // Commands name tasks of their own session only.
    let err = testing::run("another-session", "task", &[("id", &id)])
        .await
        .unwrap();
    assert!(err.is_null(), "another session does not see it");
    let err = testing::run("another-session", "remove", &[("id", &id)])
        .await
        .unwrap_err();
    assert_eq!(err.code.as_str(), "not-found");
}

#[wasm_bindgen_test]
async fn commands_from_anything_but_a_window_of_this_origin_are_ignored() {
    let channel = web_sys::MessageChannel::new().unwrap();
    let make = js_sys::Function::new_with_args(
        "port",
        "return new ExtendableMessageEvent('message', \
         { data: { longhaul: 1, op: 'tasks', session: 'x' }, ports: [port] })",
    );
    let event: web_sys::ExtendableEvent = make
        .call1(&JsValue::NULL, &channel.port2())
        .unwrap()
        .unchecked_into();
    let replied = std::rc::Rc::new(std::cell::Cell::new(false));
    let flag = replied.clone();
    let on = Closure::<dyn FnMut(JsValue)>::new(move |_| flag.set(true));
    channel
        .port1()
        .set_onmessage(Some(on.as_ref().unchecked_ref()));
    // A command with no window client as its source (as from another origin, or a
    // forged event) gets no answer and changes nothing.
    let _ = testing::handle(event);
    sleep(500).await;
    assert!(
        !replied.get(),
        "a command without a window source was answered"
    );
    drop(on);
}

// ---------------------------------------------------------------------------------
// Uploads whose stored copy is damaged: caught, typed, and nothing is sent.

const UPLOADS: &str = "fault-uploads";

fn upload_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 31) ^ (i >> 20)) as u8).collect()
}

/// Start a `PUT` upload of `bytes` to the devserver's sink `name`, not before
/// `delay_ms` from now.
async fn put_upload(
    name: &str,
    bytes: &[u8],
    delay_ms: f64,
) -> Result<String, longhaul::core::TaskError> {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let body = web_sys::Blob::new_with_u8_array_sequence(&parts).unwrap();
    let url = format!("{}/sink/{name}", server());
    let fields = [
        ("url", JsValue::from_str(&url)),
        ("protocol", "put".into()),
        ("body", body.into()),
        ("earliestBegin", (js_sys::Date::now() + delay_ms).into()),
    ];
    let snap = testing::run_js(UPLOADS, "upload", &fields).await?;
    Ok(get(&snap, "id").as_string().unwrap())
}

/// The devserver's log of uploads to sink `name` (not the CORS preflights).
async fn sink_requests(name: &str) -> Vec<String> {
    log(&format!("/sink/{name}"))
        .await
        .iter()
        .filter_map(|e| get(e, "method").as_string())
        .filter(|m| m != "OPTIONS")
        .collect()
}

#[wasm_bindgen_test]
async fn a_copy_that_reads_back_wrong_is_refused_typed_and_nothing_is_kept() {
    let name = unique("copy-damaged");
    testing::damage_next_copy(MIB);
    let err = put_upload(&name, &upload_bytes(3 * MIB as usize), 0.0)
        .await
        .unwrap_err();
    assert_eq!(err.code.as_str(), "integrity", "{err:?}");
    assert!(err.message.contains("byte 1048576"), "{}", err.message);
    let id = testing::damaged_copy().expect("the copy was damaged");
    assert_eq!(stored_chunks(&id).await, 0, "nothing is left stored");
    assert!(testing::run(UPLOADS, "task", &[("id", &id)])
        .await
        .unwrap()
        .is_null());
    sleep(300).await;
    assert!(sink_requests(&name).await.is_empty(), "nothing was sent");
}

#[wasm_bindgen_test]
async fn a_copy_damaged_before_its_request_fails_typed_and_sends_nothing() {
    let name = unique("stored-damaged");
    let bytes = upload_bytes(3 * MIB as usize + 5);
    let id = put_upload(&name, &bytes, 1500.0).await.unwrap();
    // As WebKit's stored slices did after a restart: the copy checked at the
    // command now reads as other bytes.
    testing::damage_chunk(&id, 2 * MIB).await.unwrap();
    testing::idle().await.unwrap();
    let snap = testing::run(UPLOADS, "task", &[("id", &id)]).await.unwrap();
    assert_eq!(state(&snap), "failed", "{snap:?}");
    assert_eq!(error_code(&snap), "integrity", "{snap:?}");
    assert_eq!(stored_chunks(&id).await, 0, "its copy is freed");
    assert!(sink_requests(&name).await.is_empty(), "nothing was sent");
    // A resume fails again at once, typed, still sending nothing.
    testing::run(UPLOADS, "resume", &[("id", &id)])
        .await
        .unwrap();
    testing::idle().await.unwrap();
    let snap = testing::run(UPLOADS, "task", &[("id", &id)]).await.unwrap();
    assert_eq!(
        (state(&snap), error_code(&snap)),
        ("failed".into(), "integrity".into())
    );
    assert!(sink_requests(&name).await.is_empty(), "nothing was sent");
    // An intact upload in the same session still goes through.
    let ok = unique("stored-intact");
    let id = put_upload(&ok, &bytes, 0.0).await.unwrap();
    testing::idle().await.unwrap();
    let snap = testing::run(UPLOADS, "task", &[("id", &id)]).await.unwrap();
    assert_eq!(state(&snap), "completed", "{snap:?}");
    assert!(
        fetch_bytes(&format!("{}/sink/{ok}", server())).await == bytes,
        "the server got other bytes"
    );
}
