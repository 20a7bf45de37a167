//! `make bench` runs this first: the engine's cost per input as the number of tasks
//! grows, natively (`cargo run --release --example engine_scale`).
//!
//! It adds 10,000 tasks to one session, timing each block of 1,000 adds (with the
//! shell's per-input calls: outputs drained, `poll_timeout`, `has_work`,
//! `waits_for_network`), in two cases: every task waiting for an `earliestBegin`
//! tomorrow, and every task queued behind `maxConnectionsPerHost`. It prints the
//! cost of the last block as a ratio against the first: about 1 when an input's
//! cost does not grow with the tasks it does not touch (the engine's indexes), 10
//! or more when each input scans every task.

use longhaul::core::task::TaskRecord;
use longhaul::core::validate::{HeaderList, HttpUrl, SessionId};
use longhaul::core::{Engine, EngineConfig, TaskId};
use std::time::{Duration, Instant};

const TASKS: usize = 10_000;
const BLOCK: usize = 1_000;

fn run(later: bool) -> Result<Vec<Duration>, String> {
    let session = SessionId::parse("bench").map_err(|e| e.message)?;
    let mut e = Engine::new(EngineConfig::default(), 1);
    let mut blocks = Vec::new();
    let mut t = Instant::now();
    for i in 0..TASKS {
        let url = HttpUrl {
            href: format!("http://h.test/{i}"),
            host: "h.test".into(),
        };
        let mut rec = TaskRecord::new_download(
            TaskId(format!("{i:08}")),
            session.clone(),
            url,
            HeaderList::default(),
            String::new(),
        );
        if later {
            rec.earliest_begin = Some(1e15);
        }
        e.add(rec, 1_000.0 + i as f64);
        while e.poll_output().is_some() {}
        let _ = (e.poll_timeout(), e.has_work(), e.waits_for_network());
        if (i + 1) % BLOCK == 0 {
            blocks.push(t.elapsed());
            t = Instant::now();
        }
    }
    let listed = e.list(&session).len();
    if listed != TASKS {
        return Err(format!("{listed} tasks listed, {TASKS} added"));
    }
    Ok(blocks)
}

fn main() -> Result<(), String> {
    println!("Engine, native: {TASKS} tasks added to one session, timed per {BLOCK} adds");
    for (name, later) in [
        ("waiting for earliestBegin", true),
        ("queued behind the connection limit", false),
    ] {
        let blocks = run(later)?;
        let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
        let (first, last) = (ms(&blocks[0]), ms(&blocks[blocks.len() - 1]));
        let total: f64 = blocks.iter().map(ms).sum();
        println!(
            "  {name}: first {BLOCK} {first:.1} ms, last {BLOCK} {last:.1} ms, all {total:.0} ms; RATIO last ÷ first: {:.2} (1: an add costs the same at any size)",
            last / first
        );
    }
    Ok(())
}
