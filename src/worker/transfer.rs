//! A download request: its body streamed into group commits, windows chained.

use super::*;

pub(super) async fn run_request(rt: Rc<Runtime>, req: FetchRequest) {
    let (task, gen) = (req.task.clone(), req.gen);
    with_abort(rt, task, gen, |rt, ctl| async move {
        transfer(&rt, &req, &ctl).await?;
        Ok(())
    })
    .await;
}

/// Run one request of `task` with an abort controller registered for `gen` (so that
/// pause, cancel or eviction can abort it); a failure goes to the engine.
pub(super) async fn with_abort<F, Fut>(rt: Rc<Runtime>, task: TaskId, gen: u64, f: F)
where
    F: FnOnce(Rc<Runtime>, AbortController) -> Fut,
    Fut: Future<Output = Result<(), NetFailure>>,
{
    let result = match AbortController::new() {
        Ok(ctl) => {
            rt.aborts
                .borrow_mut()
                .push((task.clone(), gen, ctl.clone()));
            let r = f(rt.clone(), ctl).await;
            rt.aborts
                .borrow_mut()
                .retain(|(t, g, _)| !(*t == task && *g == gen));
            r
        }
        Err(e) => Err(NetFailure {
            error: TaskError::new(ErrorCode::Internal, js::describe(&e)),
            retryable: false,
        }),
    };
    if evicted() {
        return;
    }
    if let Err(f) = result {
        rt.engine
            .borrow_mut()
            .handle_failure(&task, gen, f.error, f.retryable, js::now());
    }
    pump(&rt).spawn();
}

/// `parts` (`len` bytes in all) cut into chunk records of [`CHUNK_BYTES`] each, the
/// last one taking the remainder (a commit under a chunk is one smaller record): each
/// record as the views of `parts` it is made of. No byte is copied here; the store
/// copies each record's views once, into a Blob (or one array).
pub(super) fn chunked(parts: &[js_sys::Uint8Array], len: u32) -> Vec<js_sys::Array> {
    let count = (len / CHUNK_BYTES).max(1);
    let mut out = Vec::with_capacity(count as usize);
    let mut src = parts.iter();
    let mut cur: Option<(&js_sys::Uint8Array, u32)> = None; // a part, and how much of it is used
    for i in 0..count {
        let size = if i + 1 < count {
            CHUNK_BYTES
        } else {
            len - (count - 1) * CHUNK_BYTES
        };
        let views = js_sys::Array::new();
        let mut fill = 0;
        while fill < size {
            let Some((part, used)) = cur.take().or_else(|| src.next().map(|p| (p, 0))) else {
                break;
            };
            let n = (part.length() - used).min(size - fill);
            if used == 0 && n == part.length() {
                views.push(part);
            } else {
                views.push(&part.subarray(used, used + n));
            }
            fill += n;
            if used + n < part.length() {
                cur = Some((part, used + n));
            }
        }
        out.push(views);
    }
    out
}

pub(super) fn storage_failure(e: TaskError) -> NetFailure {
    NetFailure {
        error: e,
        retryable: false,
    }
}

/// One request: head, then the body in committed chunks.
///
/// Group commit: reading goes on while commits are in flight, each commit taking
/// what arrived during the last. Every decision on the body (when a commit starts
/// and of which kind, where it goes, whether to read on, when to ask for the next
/// window) is [`Transfer`]'s (`core::transfer`); this carries them out. Commits
/// complete in the order they started, so the engine's committed offset only moves
/// forward, at [`committed`], and never covers a byte whose transaction did not
/// commit.
pub(super) async fn transfer(
    rt: &Rc<Runtime>,
    req: &FetchRequest,
    ctl: &AbortController,
) -> Result<(), NetFailure> {
    let Some((mut reader, offset, head_ms, headers)) = open_body(rt, req, ctl).await? else {
        return Ok(());
    };
    rt.store.probe().await;
    // The next Range window (Firefox), asked for ahead of this one's end.
    let plan = rt.engine.borrow_mut().window_after(&req.task, req.gen);
    let segmented = rt.store.segmented();
    let mut t = Transfer::new(offset, segmented, head_ms, plan.map(Into::into), js::now());
    let mut ahead: Option<Ahead> = None;
    let mut parts: Vec<js_sys::Uint8Array> = Vec::new();
    let mut read: Option<Read> = None;
    // Commits in flight, oldest first; they complete in this order (IndexedDB runs
    // them in the order they were created), and `t` knows the offset each makes durable.
    let mut writes: std::collections::VecDeque<ChunkWrite> = Default::default();
    loop {
        if let Some(c) = t.poll_commit(js::now()) {
            let chunks = chunked(&parts, c.len);
            parts.clear();
            let Some(w) = commit(rt, req, c, &chunks).inspect_err(|_| reader.cancel())? else {
                reader.cancel();
                return Ok(());
            };
            writes.push_back(w);
        }
        if t.finished() {
            rt.engine
                .borrow_mut()
                .handle_body_end(&req.task, req.gen, js::now());
            return Ok(());
        }
        if read.is_none() && t.wants_read() {
            read = Some(Box::pin(reader.next(req.stall_ms)));
        }
        match step(&mut read, writes.front_mut()).await {
            Step::Piece(Ok(Some(p))) => {
                read = None;
                let next = t.handle_piece(p.length(), js::now());
                parts.push(p);
                if let Some(next) = next {
                    ahead = Some(Ahead::ask(req, &headers, next, ctl));
                }
            }
            Step::Piece(Ok(None)) => {
                read = None;
                // A window ended: go on with the next in this transfer, its bytes going
                // on into the same commits (`core::http`, "Windows"), if it starts
                // where this body ended (if not, `handle_body_end` sorts it out).
                let (at, ask) = t.handle_body_end();
                if let Some(next) = ask {
                    ahead = Some(Ahead::ask(req, &headers, next, ctl));
                }
                if let Some(next) = ahead.take().filter(|a| a.at == at) {
                    match next_window(rt, req, &next).await {
                        Ok(Some(r)) => {
                            reader = r;
                            let plan = rt.engine.borrow_mut().window_after(&req.task, req.gen);
                            t.continue_with(at, plan.map(Into::into), js::now());
                        }
                        Ok(None) => {}
                        Err(failure) => return Err(settle(rt, req, &mut t, writes, failure).await),
                    }
                }
            }
            Step::Piece(Err(failure)) => return Err(settle(rt, req, &mut t, writes, failure).await),
            Step::Written(result) => {
                // `step` saw the oldest write end: it is there.
                writes.pop_front();
                let new_pos = t.handle_written(js::now());
                let stored = result
                    .inspect_err(|_| reader.cancel())
                    .map_err(storage_failure)?;
                if !stored || !new_pos.is_some_and(|p| committed(rt, req, p)) {
                    reader.cancel();
                    return Ok(());
                }
            }
        }
    }
}

/// Send request `req` and hand its head to the engine: the body to stream, where it
/// goes, the head's round trip (ms) and the headers sent, or `None` if there is no
/// body to stream (the engine has decided what comes next).
async fn open_body(
    rt: &Rc<Runtime>,
    req: &FetchRequest,
    ctl: &AbortController,
) -> Result<Option<(BodyReader, u64, f64, Vec<(String, String)>)>, NetFailure> {
    let (url, session) = (&req.url, &req.session);
    let headers = signed(
        rt,
        &req.task,
        url,
        session,
        req.attempt,
        req.stall_ms,
        &req.headers,
    );
    let headers = headers.await?;
    let sent_at = js::now();
    let resp = net::send("GET", &req.url, &headers, None, req.stall_ms, ctl).await?;
    // The round trip the next Range windows are asked for ahead of (`http::ask_ahead`).
    let head_ms = js::now() - sent_at;
    let head = net::head(&resp);
    let decision = rt
        .engine
        .borrow_mut()
        .handle_head(&req.task, req.gen, &head, js::now());
    pump(rt).spawn();
    let Body::StreamAt(offset) = decision else {
        net::drop_body(&resp);
        return Ok(None);
    };
    let Some(reader) = BodyReader::new(&resp) else {
        rt.engine
            .borrow_mut()
            .handle_body_end(&req.task, req.gen, js::now());
        return Ok(None);
    };
    Ok(Some((reader, offset, head_ms, headers)))
}

/// Start commit `c` of `chunks` (the bytes buffered, as chunk records' views):
/// `None` if its bytes must be dropped (the request no longer owns the task).
///
/// A segment file is written first, and its record made once the file is closed,
/// so that the record is current when its transaction is made
/// (`Store::commit_segment`); chunk records go in one transaction with the record.
fn commit(
    rt: &Rc<Runtime>,
    req: &FetchRequest,
    c: Commit,
    chunks: &[js_sys::Array],
) -> Result<Option<ChunkWrite>, NetFailure> {
    if c.kind == CommitKind::Segment {
        let file = rt
            .store
            .write_segment(&req.task, c.at, chunks)
            .map_err(storage_failure)?;
        let (rt, task, gen) = (rt.clone(), req.task.clone(), req.gen);
        return Ok(Some(Box::pin(async move {
            let seg = file.await?;
            let rec = rt
                .engine
                .borrow_mut()
                .commit_record(&task, gen, c.new_pos, js::now());
            let Some(rec) = rec.filter(|_| !evicted()) else {
                seg.discard().await;
                return Ok(false);
            };
            rt.store
                .commit_segment(&rec, c.at, seg, c.drop_from)?
                .await?;
            Ok(true)
        })));
    }
    let rec = rt
        .engine
        .borrow_mut()
        .commit_record(&req.task, req.gen, c.new_pos, js::now());
    let Some(rec) = rec.filter(|_| !evicted()) else {
        return Ok(None);
    };
    let w = rt
        .store
        .write_chunks(&rec, c.at, chunks, c.drop_from)
        .map_err(storage_failure)?;
    Ok(Some(Box::pin(async move { w.await.map(|()| true) })))
}

/// Keep what is already on its way to storage when a transfer breaks with
/// `failure`; then report the break.
pub(super) async fn settle(
    rt: &Rc<Runtime>,
    req: &FetchRequest,
    t: &mut Transfer,
    writes: std::collections::VecDeque<ChunkWrite>,
    failure: NetFailure,
) -> NetFailure {
    for w in writes {
        let stored = w.await == Ok(true);
        let new_pos = t.handle_written(js::now());
        if !stored || !new_pos.is_some_and(|p| committed(rt, req, p)) {
            break;
        }
    }
    failure
}

/// The next piece of the body being read.
pub(super) type Read =
    Pin<Box<dyn Future<Output = Result<Option<js_sys::Uint8Array>, NetFailure>>>>;

/// What [`step`] saw first.
pub(super) enum Step {
    Piece(Result<Option<js_sys::Uint8Array>, NetFailure>),
    Written(Result<bool, TaskError>),
}

/// A commit of a transfer in flight: `Ok(false)` if its bytes were dropped (the task
/// is no longer this request's), with nothing stored.
pub(super) type ChunkWrite = Pin<Box<dyn Future<Output = Result<bool, TaskError>>>>;

/// Wait for the pending read or the oldest write in flight, whichever settles first
/// (the write if both have). Neither is dropped unsettled: a read that lost the race
/// stays pending for the next call. At least one of them must be there.
pub(super) async fn step(read: &mut Option<Read>, mut write: Option<&mut ChunkWrite>) -> Step {
    std::future::poll_fn(|cx| {
        if let Some(w) = write.as_mut() {
            if let std::task::Poll::Ready(r) = w.as_mut().poll(cx) {
                return std::task::Poll::Ready(Step::Written(r));
            }
        }
        if let Some(r) = read.as_mut() {
            if let std::task::Poll::Ready(p) = r.as_mut().poll(cx) {
                return std::task::Poll::Ready(Step::Piece(p));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Tell the engine that `pos` bytes of the request's task are committed; false once
/// the request is no longer the task's current one (paused, canceled, superseded).
pub(super) fn committed(rt: &Rc<Runtime>, req: &FetchRequest, pos: u64) -> bool {
    rt.engine
        .borrow_mut()
        .handle_committed(&req.task, req.gen, pos, js::now());
    pump(rt).spawn();
    rt.engine.borrow().is_current(&req.task, req.gen)
}
