//! Upload tests against a simulated tus server (and a plain PUT sink): every
//! completed upload ends with the server holding exactly the source's bytes.

use super::tests_support::*;
use super::*;
use crate::upload::{Step, UploadInfo, UploadProtocol, UploadResponse, CHECKSUM_MISMATCH};
use std::collections::HashMap;

/// A tus server in memory.
#[derive(Default)]
struct Tus {
    uploads: HashMap<String, (u64, Vec<u8>)>,
    next: u32,
}

/// What the simulated network does with one request.
#[derive(Clone, Copy, Debug)]
enum UpFault {
    None,
    /// The connection breaks after the server stored this many body bytes.
    BreakAfter(usize),
    /// The server answers 409 without storing anything.
    Conflict,
    /// The server forgot every upload.
    Forget,
    /// The server answers this status.
    Status(u16),
}

impl Tus {
    fn serve(
        &mut self,
        r: &upload::SendRequest,
        source: &[u8],
        fault: UpFault,
    ) -> Option<UploadResponse> {
        if let UpFault::Forget = fault {
            self.uploads.clear();
        }
        if let UpFault::Status(s) = fault {
            return Some(UploadResponse {
                status: s,
                ..Default::default()
            });
        }
        let header = |n: &str| {
            r.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
        };
        match r.step {
            Step::Create => {
                self.next += 1;
                let url = format!("http://tus/{}", self.next);
                let len: u64 = header("upload-length")?.parse().ok()?;
                self.uploads.insert(url.clone(), (len, vec![]));
                Some(UploadResponse {
                    status: 201,
                    location: Some(url),
                    ..Default::default()
                })
            }
            Step::Probe => Some(match self.uploads.get(&r.url) {
                Some((_, b)) => UploadResponse {
                    status: 200,
                    upload_offset: Some(b.len().to_string()),
                    ..Default::default()
                },
                None => UploadResponse {
                    status: 404,
                    ..Default::default()
                },
            }),
            Step::Patch { from, to } => {
                let Some((_, stored)) = self.uploads.get_mut(&r.url) else {
                    return Some(UploadResponse {
                        status: 404,
                        ..Default::default()
                    });
                };
                if let UpFault::Conflict = fault {
                    return Some(UploadResponse {
                        status: 409,
                        ..Default::default()
                    });
                }
                if header("upload-offset")?.parse::<usize>().ok()? != stored.len()
                    || from as usize != stored.len()
                {
                    return Some(UploadResponse {
                        status: 409,
                        ..Default::default()
                    });
                }
                let body = &source[from as usize..to as usize];
                if let UpFault::BreakAfter(n) = fault {
                    stored.extend_from_slice(&body[..n.min(body.len())]);
                    return None;
                }
                stored.extend_from_slice(body);
                Some(UploadResponse {
                    status: 204,
                    upload_offset: Some(stored.len().to_string()),
                    ..Default::default()
                })
            }
            Step::Whole => {
                if let UpFault::BreakAfter(_) = fault {
                    return None;
                }
                self.uploads
                    .insert(r.url.clone(), (source.len() as u64, source.to_vec()));
                Some(UploadResponse {
                    status: 201,
                    ..Default::default()
                })
            }
        }
    }
}

fn upload_rec(id: &str, protocol: UploadProtocol, size: u64, chunk: u64) -> TaskRecord {
    let r = rec(id, "tus");
    TaskRecord::new_upload(
        r.id,
        r.session,
        r.url,
        r.headers,
        String::new(),
        UploadInfo {
            protocol,
            size,
            location: None,
            metadata: vec![("filename".into(), "f".into())],
            content_type: "application/octet-stream".into(),
            chunk_size: chunk,
            chunk_sha256: Default::default(),
            checksum: None,
            discarded: false,
        },
    )
}

/// Serve every pending send with `fault`, feeding the answers back.
fn serve_all(sim: &mut Sim, tus: &mut Tus, source: &[u8], mut fault: impl FnMut() -> UpFault) {
    sim.drain();
    while let Some(r) = sim.sends.pop() {
        sim.now += 10.0;
        match tus.serve(&r, source, fault()) {
            Some(resp) => sim
                .e
                .handle_upload_response(&r.task, r.gen, r.step, &resp, sim.now),
            None => {
                let err = TaskError::new(ErrorCode::Network, "broken");
                sim.e.handle_failure(&r.task, r.gen, err, true, sim.now);
            }
        }
        sim.drain();
        sim.wait();
        sim.drain();
    }
}

fn source(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 13 % 256) as u8).collect()
}

fn only_upload(tus: &Tus) -> Vec<u8> {
    let done: Vec<_> = tus
        .uploads
        .values()
        .filter(|(len, b)| b.len() as u64 == *len)
        .collect();
    assert_eq!(done.len(), 1, "exactly one complete upload");
    done[0].1.clone()
}

#[test]
fn a_tus_upload_creates_then_patches_in_chunks() {
    let (mut sim, mut tus, src) = (Sim::new(), Tus::default(), source(10_000));
    sim.e
        .add(upload_rec("u", UploadProtocol::Tus, 10_000, 4_000), sim.now);
    sim.drain();
    let steps: Vec<Step> = {
        let mut v = vec![];
        while let Some(r) = sim.sends.pop() {
            v.push(r.step);
            let resp = tus.serve(&r, &src, UpFault::None).unwrap();
            sim.e
                .handle_upload_response(&r.task, r.gen, r.step, &resp, sim.now);
            sim.drain();
        }
        v
    };
    assert_eq!(
        steps,
        vec![
            Step::Create,
            Step::Patch { from: 0, to: 4_000 },
            Step::Patch {
                from: 4_000,
                to: 8_000
            },
            Step::Patch {
                from: 8_000,
                to: 10_000
            }
        ]
    );
    let snap = sim.e.get(&sid(), &id("u")).unwrap();
    assert_eq!(snap.state, TaskState::Completed);
    assert_eq!((snap.bytes_sent, snap.bytes_received), (Some(10_000), None));
    assert_eq!(only_upload(&tus), src);
    assert!(
        !sim.chunks.contains_key(&id("u")),
        "the stored copy is freed"
    );
}

#[test]
fn a_restart_probes_the_server_and_continues_from_its_offset() {
    let (mut sim, mut tus, src) = (Sim::new(), Tus::default(), source(10_000));
    sim.e
        .add(upload_rec("u", UploadProtocol::Tus, 10_000, 4_000), sim.now);
    let mut n = 0;
    // Create, one full chunk, then the second chunk breaks after 1,500 bytes reached
    // the server; the worker dies there.
    sim.drain();
    while let Some(r) = sim.sends.pop() {
        n += 1;
        let fault = if n == 3 {
            UpFault::BreakAfter(1_500)
        } else {
            UpFault::None
        };
        if let Some(resp) = tus.serve(&r, &src, fault) {
            sim.e
                .handle_upload_response(&r.task, r.gen, r.step, &resp, sim.now);
            sim.drain();
        }
    }
    let saved = sim.persisted[&id("u")].clone();
    assert_eq!(saved.bytes_received, 4_000);
    assert!(
        saved.upload.as_ref().unwrap().location.is_some(),
        "the upload URL was stored"
    );
    let mut sim2 = Sim::new();
    sim2.e.restore(saved);
    sim2.e.schedule(sim2.now);
    sim2.drain();
    assert_eq!(
        sim2.sends[0].step,
        Step::Probe,
        "the server's offset is asked first"
    );
    let r = sim2.sends.pop().unwrap();
    let resp = tus.serve(&r, &src, UpFault::None).unwrap();
    assert_eq!(resp.upload_offset.as_deref(), Some("5500"));
    sim2.e
        .handle_upload_response(&r.task, r.gen, r.step, &resp, sim2.now);
    sim2.drain();
    assert_eq!(
        sim2.sends[0].step,
        Step::Patch {
            from: 5_500,
            to: 9_500
        }
    );
    serve_all(&mut sim2, &mut tus, &src, || UpFault::None);
    assert_eq!(sim2.state("u"), TaskState::Completed);
    assert_eq!(only_upload(&tus), src);
}

#[test]
fn a_conflict_probes_and_a_forgotten_upload_is_created_anew() {
    let (mut sim, mut tus, src) = (Sim::new(), Tus::default(), source(9_000));
    sim.e
        .add(upload_rec("u", UploadProtocol::Tus, 9_000, 3_000), sim.now);
    let mut n = 0;
    serve_all(&mut sim, &mut tus, &src, || {
        n += 1;
        match n {
            3 => UpFault::Conflict,
            6 => UpFault::Forget,
            _ => UpFault::None,
        }
    });
    assert_eq!(sim.state("u"), TaskState::Completed);
    assert_eq!(only_upload(&tus), src);
    assert_eq!(
        tus.next, 2,
        "a second upload was created after the server forgot the first"
    );
}

#[test]
fn cancel_terminates_the_tus_upload_and_frees_the_copy() {
    let (mut sim, mut tus, src) = (Sim::new(), Tus::default(), source(9_000));
    sim.e
        .add(upload_rec("u", UploadProtocol::Tus, 9_000, 3_000), sim.now);
    sim.drain();
    let r = sim.sends.pop().unwrap();
    let resp = tus.serve(&r, &src, UpFault::None).unwrap();
    sim.e
        .handle_upload_response(&r.task, r.gen, r.step, &resp, sim.now);
    sim.drain();
    let (_, changed) = sim.e.cancel(&sid(), &id("u"), sim.now).unwrap();
    assert!(changed);
    sim.drain();
    assert_eq!(sim.terminated, vec!["http://tus/1".to_string()]);
    assert!(!sim.chunks.contains_key(&id("u")));
    assert_eq!(sim.aborted.len(), 1, "the PATCH in flight was aborted");
}

#[test]
fn a_put_restarts_from_zero_and_completes() {
    let (mut sim, mut tus, src) = (Sim::new(), Tus::default(), source(5_000));
    sim.e
        .add(upload_rec("u", UploadProtocol::Put, 5_000, 5_000), sim.now);
    let mut n = 0;
    serve_all(&mut sim, &mut tus, &src, || {
        n += 1;
        if n == 1 {
            UpFault::BreakAfter(100)
        } else {
            UpFault::None
        }
    });
    assert_eq!(sim.state("u"), TaskState::Completed);
    let whole: Vec<_> = sim.sends.iter().map(|r| r.step).collect();
    assert!(whole.is_empty());
    assert_eq!(tus.uploads.values().next().unwrap().1, src);
}

#[test]
fn final_statuses_fail_and_transient_ones_are_retried() {
    let (mut sim, mut tus, src) = (Sim::new(), Tus::default(), source(5_000));
    sim.e
        .add(upload_rec("u", UploadProtocol::Tus, 5_000, 5_000), sim.now);
    let mut n = 0;
    serve_all(&mut sim, &mut tus, &src, || {
        n += 1;
        if n <= 2 {
            UpFault::Status(503)
        } else {
            UpFault::None
        }
    });
    assert_eq!(sim.state("u"), TaskState::Completed);
    sim.e
        .add(upload_rec("v", UploadProtocol::Tus, 5_000, 5_000), sim.now);
    serve_all(&mut sim, &mut tus, &src, || UpFault::Status(413));
    let s = sim.e.get(&sid(), &id("v")).unwrap();
    assert_eq!(
        (s.state, s.error.and_then(|e| e.status)),
        (TaskState::Failed, Some(413))
    );
}

#[test]
fn any_upload_fault_sequence_ends_intact_or_typed() {
    let mut completed = 0;
    for seed in 0..300u64 {
        let mut rng = crate::retry::Rng::new(seed);
        let mut pick = move |n: usize| (rng.next_f64() * n as f64) as usize;
        let size = 1 + pick(20_000);
        let src = source(size);
        let (mut sim, mut tus) = (Sim::new(), Tus::default());
        let chunk = 500 + pick(8_000) as u64;
        sim.e.add(
            upload_rec("u", UploadProtocol::Tus, size as u64, chunk),
            sim.now,
        );
        let mut steps = 0;
        serve_all(&mut sim, &mut tus, &src, || {
            steps += 1;
            assert!(steps < 2_000, "seed {seed}: no end");
            match pick(10) {
                0 => UpFault::BreakAfter(pick(chunk as usize)),
                1 => UpFault::Conflict,
                2 if steps < 10 => UpFault::Forget,
                3 if steps < 6 => UpFault::Status(503),
                _ => UpFault::None,
            }
        });
        let s = sim.e.get(&sid(), &id("u")).unwrap();
        match s.state {
            TaskState::Completed => {
                let done: Vec<_> = tus
                    .uploads
                    .values()
                    .filter(|(l, b)| b.len() as u64 == *l)
                    .collect();
                assert!(
                    done.iter().any(|(_, b)| *b == src),
                    "seed {seed}: the server's bytes differ"
                );
                completed += 1;
            }
            TaskState::Failed => assert!(s.error.is_some(), "seed {seed}"),
            other => panic!("seed {seed}: ended {other:?}"),
        }
    }
    assert!(completed > 250, "only {completed} of 300 completed");
}

/// Serve every pending send with `fault` (as [`serve_all`]), returning the steps sent.
fn serve_steps(
    sim: &mut Sim,
    tus: &mut Tus,
    source: &[u8],
    mut fault: impl FnMut(Step) -> UpFault,
) -> Vec<Step> {
    let mut steps = vec![];
    sim.drain();
    while let Some(r) = sim.sends.pop() {
        steps.push(r.step);
        sim.now += 10.0;
        match tus.serve(&r, source, fault(r.step)) {
            Some(resp) => sim
                .e
                .handle_upload_response(&r.task, r.gen, r.step, &resp, sim.now),
            None => {
                let err = TaskError::new(ErrorCode::Network, "broken");
                sim.e.handle_failure(&r.task, r.gen, err, true, sim.now);
            }
        }
        sim.drain();
        sim.wait();
        sim.drain();
    }
    steps
}

#[test]
fn a_checksum_mismatch_sends_the_same_bytes_again_from_the_same_offset() {
    let (mut sim, mut tus, src) = (Sim::new(), Tus::default(), source(10_000));
    sim.e
        .add(upload_rec("u", UploadProtocol::Tus, 10_000, 4_000), sim.now);
    let mut patches = 0;
    let steps = serve_steps(&mut sim, &mut tus, &src, |step| {
        if matches!(step, Step::Patch { .. }) {
            patches += 1;
            if patches == 2 {
                // The server checked the body against its Upload-Checksum, kept
                // nothing and answered 460.
                return UpFault::Status(CHECKSUM_MISMATCH);
            }
        }
        UpFault::None
    });
    let again = Step::Patch {
        from: 4_000,
        to: 8_000,
    };
    assert_eq!(
        steps,
        vec![
            Step::Create,
            Step::Patch { from: 0, to: 4_000 },
            again,
            again,
            Step::Patch {
                from: 8_000,
                to: 10_000
            }
        ],
        "the same bytes again, with no HEAD: the server kept none of them"
    );
    assert_eq!(sim.state("u"), TaskState::Completed);
    assert_eq!(only_upload(&tus), src);
}

#[test]
fn a_server_that_always_answers_460_fails_typed_once_the_policy_gives_up() {
    let (mut sim, mut tus, src) = (Sim::new(), Tus::default(), source(5_000));
    sim.e
        .add(upload_rec("u", UploadProtocol::Tus, 5_000, 5_000), sim.now);
    let steps = serve_steps(&mut sim, &mut tus, &src, |step| match step {
        Step::Patch { .. } => UpFault::Status(CHECKSUM_MISMATCH),
        _ => UpFault::None,
    });
    let s = sim.e.get(&sid(), &id("u")).unwrap();
    assert_eq!(s.state, TaskState::Failed);
    let e = s.error.unwrap();
    assert_eq!((e.code, e.status), (ErrorCode::HttpStatus, Some(460)));
    let patches = steps
        .iter()
        .filter(|s| matches!(s, Step::Patch { .. }))
        .count();
    assert!(patches > 1, "retried: {steps:?}");
}

#[test]
fn a_damaged_copy_fails_the_upload_frees_it_and_a_resume_fails_at_once() {
    let (mut sim, mut tus, src) = (Sim::new(), Tus::default(), source(9_000));
    sim.e
        .add(upload_rec("u", UploadProtocol::Tus, 9_000, 3_000), sim.now);
    sim.drain();
    let create = sim.sends.pop().unwrap();
    let resp = tus.serve(&create, &src, UpFault::None).unwrap();
    sim.e
        .handle_upload_response(&create.task, create.gen, create.step, &resp, sim.now);
    sim.drain();
    let patch = sim.sends.pop().unwrap();
    assert!(matches!(patch.step, Step::Patch { .. }));
    // The shell's stored copy, as the simulation keeps bytes.
    sim.chunks
        .entry(id("u"))
        .or_default()
        .insert(0, src.clone());
    let damaged = TaskError::new(ErrorCode::Integrity, "the copy changed");
    // A stale request's finding changes nothing.
    sim.e
        .handle_upload_corrupt(&id("u"), patch.gen - 1, damaged.clone(), sim.now);
    sim.drain();
    assert_eq!(sim.state("u"), TaskState::Running);
    sim.e
        .handle_upload_corrupt(&id("u"), patch.gen, damaged, sim.now);
    sim.drain();
    let s = sim.e.get(&sid(), &id("u")).unwrap();
    assert_eq!(s.state, TaskState::Failed);
    assert_eq!(s.error.unwrap().code, ErrorCode::Integrity);
    assert!(!sim.chunks.contains_key(&id("u")), "the copy is freed");
    let saved = &sim.persisted[&id("u")];
    assert!(
        saved.upload.as_ref().unwrap().discarded,
        "and that is stored"
    );
    // A resume (in this worker life or after a restart) fails again at once, typed,
    // without a request.
    for restarted in [false, true] {
        if restarted {
            let saved = sim.persisted[&id("u")].clone();
            sim = Sim::new();
            sim.e.restore(saved);
        }
        sim.e.resume(&sid(), &id("u"), sim.now).unwrap();
        sim.drain();
        assert!(sim.sends.is_empty(), "nothing is sent");
        let s = sim.e.get(&sid(), &id("u")).unwrap();
        assert_eq!(s.state, TaskState::Failed);
        assert_eq!(s.error.unwrap().code, ErrorCode::Integrity);
    }
}

#[test]
fn what_the_server_offers_is_kept_with_the_record_until_it_forgets_the_upload() {
    let (mut sim, mut tus, src) = (Sim::new(), Tus::default(), source(6_000));
    sim.e
        .add(upload_rec("u", UploadProtocol::Tus, 6_000, 3_000), sim.now);
    sim.drain();
    let create = sim.sends.pop().unwrap();
    sim.e.set_upload_checksum(&id("u"), create.gen - 1, true);
    sim.drain();
    let info = |sim: &Sim| sim.e.record(&id("u")).unwrap().upload.clone().unwrap();
    assert_eq!(info(&sim).checksum, None, "a stale request changes nothing");
    sim.e.set_upload_checksum(&id("u"), create.gen, true);
    sim.drain();
    assert_eq!(info(&sim).checksum, Some(true));
    assert_eq!(
        sim.persisted[&id("u")].upload.as_ref().unwrap().checksum,
        Some(true),
        "stored"
    );
    let resp = tus.serve(&create, &src, UpFault::None).unwrap();
    sim.e
        .handle_upload_response(&create.task, create.gen, create.step, &resp, sim.now);
    sim.drain();
    let patch = sim.sends.pop().unwrap();
    // The server forgot the upload: a new one is created, and asked again.
    let resp = tus.serve(&patch, &src, UpFault::Forget).unwrap();
    sim.e
        .handle_upload_response(&patch.task, patch.gen, patch.step, &resp, sim.now);
    assert_eq!(info(&sim).checksum, None);
    serve_all(&mut sim, &mut tus, &src, || UpFault::None);
    assert_eq!(sim.state("u"), TaskState::Completed);
}
