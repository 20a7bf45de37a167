//! Checking a finished download's stored bytes against its integrity metadata.

use super::*;

/// Check the stored bytes of a finished download against its integrity metadata.
pub(super) async fn verify(
    rt: Rc<Runtime>,
    task: TaskId,
    gen: u64,
    upto: u64,
    integrity: Integrity,
) {
    if let Some(result) = hash_stored(&rt, &task, gen, upto, &integrity).await {
        rt.engine
            .borrow_mut()
            .handle_verified(&task, gen, result, js::now());
    }
    pump(&rt).spawn();
}

/// Chunks read from storage per transaction while hashing: bounded memory.
pub(super) const VERIFY_BATCH: u32 = 8;

/// Hash `[0, upto)` of the task's stored bytes, a few chunks at a time; `None` if
/// the check stopped being wanted (paused, canceled, a newer worker took over).
pub(super) async fn hash_stored(
    rt: &Rc<Runtime>,
    task: &TaskId,
    gen: u64,
    upto: u64,
    integrity: &Integrity,
) -> Option<Result<(), TaskError>> {
    let wanted = || !evicted() && rt.engine.borrow().is_verifying(task, gen);
    let mut v = integrity.verifier();
    let read = rt
        .store
        .read_span(task, (0, 0, upto), Some(VERIFY_BATCH), |_, bytes| {
            v.update(&bytes.to_vec());
            wanted()
        })
        .await;
    match read {
        Ok(true) if wanted() => Some(v.finish()),
        Ok(_) => None,
        Err(e) => Some(Err(e)),
    }
}
