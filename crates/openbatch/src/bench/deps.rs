//! `openbatch bench --deps`: the cost of task dependencies as graphs grow.
//!
//! For each shape (a chain, a fan-in through `taskIds`, a fan-in through one `taskIdRanges`
//! entry, a fan-out) and each size, the scheduler's dependency tracker
//! ([`crate::scheduler::deps::DepTracker`], the structure the reactor consults when a task is
//! added and when one completes) builds the graph and runs it to the end: every task added,
//! every ready task completed in turn, every dependent released. The table gives the total
//! and the time per task, which stays flat as the count grows when the work is linear.
//! No processes run: this measures the scheduler's bookkeeping alone.

use crate::scheduler::deps::{synthetic_run, Shape};

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
    Ok(())
}
