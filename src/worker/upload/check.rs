//! Reading an upload's stored copy back, checked chunk by chunk against its digests.

use super::*;

/// Read the stored chunks of upload `id` that hold its bytes `[from, to)` and check
/// each, whole, against the digest taken when it was copied in (`integrity` if one
/// differs, or reads longer or shorter than it says; `storage` if one is missing).
/// With `body`, also the bytes `[from, to)` as one Blob composed of the stored
/// chunks just checked (no byte of it held in memory where chunks are Blobs); with
/// `checksum`, also the SHA-256 of exactly those bytes. A record with no digests
/// (written before they were taken) is not read unless `checksum` needs its bytes.
/// Stops (`canceled`) once `ctl` is aborted.
pub(super) async fn read_checked(
    store: &Store,
    id: &TaskId,
    info: &UploadInfo,
    (from, to): (u64, u64),
    (body, checksum): (bool, bool),
    ctl: Option<&AbortController>,
) -> Result<(Option<web_sys::Blob>, Option<[u8; 32]>), TaskError> {
    let size = info.size;
    let digests = &info.chunk_sha256;
    let verify = !digests.is_empty();
    let (mut pos, end) = rules::covering_chunks(from, to, size);
    let gap = |at: u64| {
        TaskError::new(
            ErrorCode::Storage,
            format!("the stored copy of this upload stops at byte {at} of {size}"),
        )
    };
    let parts = js_sys::Array::new();
    let mut whole = checksum.then(Sha256::new);
    let mut buf = Vec::new();
    while pos < end {
        if ctl.is_some_and(|c| c.signal().aborted()) {
            return Err(TaskError::new(
                ErrorCode::Canceled,
                "the request was stopped",
            ));
        }
        let batch = store
            .read_chunk_batch(id, pos, end, Some(READ_BATCH))
            .await?;
        if batch.is_empty() {
            return Err(gap(pos));
        }
        for (off, chunk) in batch {
            let len = chunk.len();
            if off != pos || len == 0 {
                return Err(gap(pos));
            }
            let (a, b) = (off.max(from), (off + len).min(to));
            if verify || whole.is_some() {
                let bytes = chunk.bytes().await?;
                let read = u64::from(bytes.length());
                if verify {
                    digests.check(size, off, read, &sha256(&bytes).await?)?;
                }
                rules::check_read_len(off, len, read)?;
                if let (Some(h), true) = (whole.as_mut(), a < b) {
                    buf.resize((b - a) as usize, 0);
                    bytes
                        .subarray((a - off) as u32, (b - off) as u32)
                        .copy_to(&mut buf);
                    h.update(&buf);
                }
            }
            if body && a < b {
                parts.push(&piece(&chunk, a - off, b - off)?);
            }
            pos = off + len;
        }
    }
    let blob = if body {
        Some(
            web_sys::Blob::new_with_blob_sequence(&parts)
                .map_err(|e| TaskError::new(ErrorCode::Internal, js::describe(&e)))?,
        )
    } else {
        None
    };
    Ok((blob, whole.map(|h| h.finalize().into())))
}

/// Bytes `[a, b)` of a stored chunk, as a Blob part (no byte is read).
pub(super) fn piece(chunk: &Chunk, a: u64, b: u64) -> Result<JsValue, TaskError> {
    match chunk {
        Chunk::Bytes(x) => Ok(x.subarray(a as u32, b as u32).into()),
        Chunk::Blob(x) => x
            .slice_with_f64_and_f64(a as f64, b as f64)
            .map(Into::into)
            .map_err(|e| TaskError::new(ErrorCode::Internal, js::describe(&e))),
    }
}
