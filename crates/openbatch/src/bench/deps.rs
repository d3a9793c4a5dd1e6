//! `openbatch bench --deps`: the cost of task dependencies as graphs grow.
//!
//! For each shape (a chain, a fan-in through `taskIds`, a fan-in through one `taskIdRanges`
//! entry, a fan-out) and each size, the scheduler's dependency tracker
//! ([`crate::scheduler::deps::DepTracker`], the structure the reactor consults when a task is
//! added and when one completes) builds the graph and runs it to the end: every task added,
//! every ready task completed in turn, every dependent released. The table gives the total
//! and the time per task, which stays flat as the count grows when the work is linear.
//! No processes run: this measures the scheduler's bookkeeping alone.
//!
//! A second table runs the same graphs through the whole reactor (task records, placement on
//! a pool of 2 nodes × 8 slots, dispatch, results, dependency release, job settling) over the
//! in-memory records of its test environment, with simulated agents that end every running
//! task at once per batch: the scheduler's whole cost per task without the store's IO.

use crate::scheduler::deps::{synthetic_run, Shape};
use crate::scheduler::reactor::testenv::TestEnv;
use serde_json::json;
use std::time::{Duration, Instant};

/// Runs each shape at each size (best of 3 runs) and prints the table.
pub fn run(sizes: &[usize]) -> anyhow::Result<()> {
    let shapes = [
        (Shape::Chain, "chain (task i depends on i-1)"),
        (Shape::FanIn, "fan-in (one task, taskIds of all others)"),
        (Shape::RangeFanIn, "fan-in (one task, one taskIdRanges entry)"),
        (Shape::FanOut, "fan-out (all depend on one)"),
    ];
    println!("| graph | tasks | total ms | µs per task |");
    println!("|---|---:|---:|---:|");
    for (shape, name) in shapes {
        for &n in sizes {
            let best = (0..3).map(|_| synthetic_run(shape, n)).min().unwrap_or_default();
            let per_task = best.as_secs_f64() * 1e6 / n.max(1) as f64;
            println!("| {name} | {n} | {:.1} | {per_task:.2} |", best.as_secs_f64() * 1e3);
        }
    }
    println!();
    println!("| graph, through the reactor (2 nodes × 8 slots) | tasks | total ms | µs per task |");
    println!("|---|---:|---:|---:|");
    for (shape, name) in shapes {
        for &n in sizes.iter().filter(|&&n| n <= 10_000) {
            let took = reactor_run(shape, n)?;
            let per_task = took.as_secs_f64() * 1e6 / n.max(1) as f64;
            println!("| {name} | {n} | {:.1} | {per_task:.2} |", took.as_secs_f64() * 1e3);
        }
    }
    Ok(())
}

/// Adds `n` tasks of `shape` to a job with `usesTaskDependencies` (100 per event, as Add Task
/// Collection does), then ends every running task per batch until all completed; returns the
/// time taken. Errors if tasks are left unfinished.
fn reactor_run(shape: Shape, n: usize) -> anyhow::Result<Duration> {
    let mut env = TestEnv::new();
    env.checks = false;
    env.pool("p", 2, 8);
    env.job_with("j", "p", json!({"usesTaskDependencies": true}));
    let leaves = n.saturating_sub(1);
    let task = |id: String, deps: serde_json::Value| json!({"id": id, "commandLine": "true", "dependsOn": deps});
    let specs: Vec<serde_json::Value> = match shape {
        Shape::Chain => {
            (0..n).map(|i| task(i.to_string(), if i == 0 { json!({}) } else { json!({"taskIds": [(i - 1).to_string()]}) })).collect()
        }
        Shape::FanIn => std::iter::once(task("sink".into(), json!({"taskIds": (1..=leaves).map(|i| i.to_string()).collect::<Vec<_>>()})))
            .chain((1..=leaves).map(|i| task(i.to_string(), json!({}))))
            .collect(),
        Shape::RangeFanIn => std::iter::once(task("sink".into(), json!({"taskIdRanges": [{"start": 1, "end": leaves}]})))
            .chain((1..=leaves).map(|i| task(i.to_string(), json!({}))))
            .collect(),
        Shape::FanOut => std::iter::once(task("root".into(), json!({})))
            .chain((1..=leaves).map(|i| task(i.to_string(), json!({"taskIds": ["root"]}))))
            .collect(),
    };
    let t0 = Instant::now();
    let mut specs = specs.into_iter().peekable();
    while specs.peek().is_some() {
        env.add_tasks("j", specs.by_ref().take(100).collect());
    }
    let mut ended = 0;
    loop {
        let k = env.finish_all_running();
        if k == 0 {
            break;
        }
        ended += k;
    }
    let took = t0.elapsed();
    anyhow::ensure!(ended == n, "{shape:?}: {ended} of {n} tasks ran");
    Ok(took)
}
