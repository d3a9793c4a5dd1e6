//! Preemption across jobs (`allowTaskPreemption`, api-version 2022-01-01.15.0 and later).
//!
//! Rules: when a queued task of job H finds no node of its pool with room, running tasks of
//! other jobs with a lower `priority` than H's and `allowTaskPreemption` may be requeued to
//! make room for it, on one node. Never preempted: tasks of H itself, of jobs with the same
//! or a higher priority, of jobs that do not allow it, a job's manager task, and
//! multi-instance tasks (they hold several nodes; requeueing one for a single node's slots
//! would throw away the work of all its instances). A multi-instance task does not preempt
//! either: it waits for free nodes, as before.
//!
//! Victims are chosen per node: lowest job priority first, then the most recently placed
//! (the least work lost), until the node has the slots the task needs. Of the nodes where
//! that works, the one whose most important victim has the lowest priority wins, then the
//! one with fewer victims, then the one whose earliest victim was placed latest, then the
//! smallest node id — so the same state always gives the same decision.

use super::{JobSched, Placement, PoolSched, TaskKey};
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};

/// A decision: requeue `victims` (running tasks of lower-priority jobs that allow
/// preemption, all on `node_id` of `pool_id`), then run the queued task `task_id` of
/// `job_id` there with `slots` slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preemption {
    /// The job of the task that needs room.
    pub job_id: String,
    /// The task that needs room (queued).
    pub task_id: String,
    /// Its job's pool.
    pub pool_id: String,
    /// The node the victims run on and the task will.
    pub node_id: String,
    /// The slots the task needs there.
    pub slots: u32,
    /// In the order they were chosen: lowest job priority first, then latest placed.
    pub victims: Vec<TaskKey>,
}

/// A job whose running tasks may be preempted.
pub(super) struct VictimJob {
    priority: i32,
    /// Its manager task, never preempted.
    manager: Option<String>,
}

/// The jobs with running tasks that allow preemption (usually none, and then nothing more is
/// looked at).
pub(super) fn victim_jobs(jobs: &HashMap<String, JobSched>) -> HashMap<String, VictimJob> {
    jobs.iter()
        .filter(|(_, j)| j.preemptible && j.running > 0)
        .map(|(id, j)| (id.clone(), VictimJob { priority: j.priority, manager: j.manager.clone() }))
        .collect()
}

/// The queued task looking for room: its job, the job's priority and the slots it needs.
pub(super) struct Wanted<'a> {
    pub job_id: &'a str,
    pub priority: i32,
    pub slots: u32,
}

/// A candidate victim: its job's priority, its placement order, its key and its slots.
type Candidate<'a> = (i32, u64, &'a TaskKey, u32);

/// Picks the node and the victims that make room there for `wanted` on `pool`, or `None`
/// when no node can get the room. `allowed`: whether the wanted task's job may use a node
/// (its preparation task). See the module documentation for the order.
pub(super) fn choose(
    victim_jobs: &HashMap<String, VictimJob>,
    pool_id: &str,
    pool: &PoolSched,
    placed: &HashMap<TaskKey, Placement>,
    instances: &HashMap<TaskKey, u32>,
    wanted: &Wanted,
    allowed: &impl Fn(&str) -> bool,
) -> Option<(String, Vec<TaskKey>)> {
    if !victim_jobs.values().any(|v| v.priority < wanted.priority) {
        return None;
    }
    let mut by_node: BTreeMap<&str, Vec<Candidate>> = BTreeMap::new();
    for (key, p) in placed {
        if p.pool_id != pool_id || !p.others.is_empty() || instances.contains_key(key) || key.0 == wanted.job_id {
            continue;
        }
        let Some(v) = victim_jobs.get(&key.0) else { continue };
        if v.priority >= wanted.priority || v.manager.as_deref() == Some(key.1.as_str()) {
            continue;
        }
        by_node.entry(p.node_id.as_str()).or_default().push((v.priority, p.seq, key, p.slots));
    }
    type Cost = (i32, usize, Reverse<u64>);
    let mut best: Option<(Cost, &str, Vec<Candidate>)> = None;
    for (node_id, mut candidates) in by_node {
        let Some(n) = pool.nodes.get(node_id) else { continue };
        if !n.schedulable || n.total_slots < wanted.slots || !allowed(node_id) {
            continue;
        }
        candidates.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut room = n.total_slots.saturating_sub(n.used_slots);
        let mut chosen = Vec::new();
        for c in candidates {
            if room >= wanted.slots {
                break;
            }
            room += c.3;
            chosen.push(c);
        }
        if room < wanted.slots || chosen.is_empty() {
            continue;
        }
        let highest = chosen.iter().map(|c| c.0).max().unwrap_or(i32::MIN);
        let earliest = chosen.iter().map(|c| c.1).min().unwrap_or(0);
        let cost = (highest, chosen.len(), Reverse(earliest));
        if best.as_ref().is_none_or(|b| cost < b.0) {
            best = Some((cost, node_id, chosen));
        }
    }
    best.map(|(_, node_id, chosen)| (node_id.to_string(), chosen.into_iter().map(|c| c.2.clone()).collect()))
}

#[cfg(test)]
mod tests {
    use super::super::Core;
    use crate::model::pool::NodeFillType;

    fn core(nodes: &[&str], slots: u32) -> Core {
        let mut c = Core::new();
        c.upsert_pool("p", slots, NodeFillType::Spread);
        for n in nodes {
            c.upsert_node("p", n, true);
        }
        c
    }

    fn job(c: &mut Core, id: &str, priority: i32, preemptible: bool) {
        c.upsert_job(id, Some("p"), priority, true, -1, None);
        c.set_preemption(id, preemptible, None);
    }

    /// Runs the scheduler until it settles, carrying out preemptions as the reactor does.
    fn settle(c: &mut Core) -> Vec<Vec<(String, String)>> {
        let mut preempted = Vec::new();
        loop {
            let d = c.schedule();
            let Some(p) = d.preemption else { break };
            for (j, t) in &p.victims {
                c.finish_task(j, t);
                c.enqueue_task(j, t, 1, true);
            }
            assert_eq!(c.place_preempting(&p).assignments.len(), 1);
            c.sanity_check().expect("sane");
            preempted.push(p.victims);
        }
        c.sanity_check().expect("sane");
        preempted
    }

    fn key(j: &str, t: &str) -> (String, String) {
        (j.to_string(), t.to_string())
    }

    #[test]
    fn lowest_priority_then_latest_placed() {
        let mut c = core(&["n1"], 3);
        job(&mut c, "a", -5, true);
        job(&mut c, "b", 0, true);
        c.enqueue_task("b", "b1", 1, false);
        c.schedule();
        c.enqueue_task("a", "a1", 1, false);
        c.schedule();
        c.enqueue_task("a", "a2", 1, false);
        c.schedule();
        job(&mut c, "h", 10, false);
        c.enqueue_task("h", "h1", 1, false);
        c.enqueue_task("h", "h2", 1, false);
        assert_eq!(settle(&mut c), vec![vec![key("a", "a2")], vec![key("a", "a1")]]);
        assert_eq!(c.placement("b", "b1"), Some(("p", "n1")));
    }

    #[test]
    fn the_node_with_the_cheapest_victims_and_enough_slots() {
        let mut c = core(&["n1"], 2);
        job(&mut c, "l", 0, true);
        job(&mut c, "m", 5, true);
        // n1: two tasks of l; n2: one of m and one of l.
        c.enqueue_task("l", "l1", 1, false);
        c.enqueue_task("l", "l2", 1, false);
        c.schedule();
        c.upsert_node("p", "n2", true);
        c.enqueue_task("m", "m1", 1, false);
        c.enqueue_task("l", "l3", 1, false);
        c.schedule();
        assert_eq!(c.placement("m", "m1"), Some(("p", "n2")));
        assert_eq!(c.placement("l", "l3"), Some(("p", "n2")));
        job(&mut c, "h", 10, false);
        c.enqueue_task("h", "big", 2, false);
        assert_eq!(settle(&mut c), vec![vec![key("l", "l2"), key("l", "l1")]], "both of l's tasks on n1, not m's");
        assert_eq!(c.placement("h", "big"), Some(("p", "n1")));
    }

    #[test]
    fn equal_priority_same_job_managers_and_refusing_jobs_are_spared() {
        let mut c = core(&["n1"], 4);
        job(&mut c, "eq", 10, true);
        job(&mut c, "no", 0, false);
        job(&mut c, "mgr", 0, true);
        c.set_preemption("mgr", true, Some("jm"));
        job(&mut c, "h", 10, true);
        for (j, t) in [("eq", "e1"), ("no", "n1"), ("mgr", "jm"), ("h", "h0")] {
            c.enqueue_task(j, t, 1, false);
        }
        c.schedule();
        c.enqueue_task("h", "h1", 1, false);
        assert!(settle(&mut c).is_empty());
        assert_eq!(c.queued(), 1);
    }

    #[test]
    fn multi_instance_tasks_are_not_preempted_and_do_not_preempt() {
        let mut c = core(&["n1", "n2"], 1);
        job(&mut c, "l", 0, true);
        c.enqueue_multi("l", "mi", 1, 2, false);
        c.schedule();
        job(&mut c, "h", 10, true);
        c.enqueue_task("h", "h1", 1, false);
        assert!(settle(&mut c).is_empty(), "a multi-instance task is not preempted");
        let mut c = core(&["n1", "n2"], 1);
        job(&mut c, "l", 0, true);
        c.enqueue_task("l", "a", 1, false);
        c.enqueue_task("l", "b", 1, false);
        c.schedule();
        job(&mut c, "h", 10, true);
        c.enqueue_multi("h", "mi", 1, 2, false);
        assert!(settle(&mut c).is_empty(), "a multi-instance task waits for free nodes");
    }

    #[test]
    fn capped_and_disabled_jobs_do_not_preempt() {
        let mut c = core(&["n1"], 1);
        job(&mut c, "l", 0, true);
        c.enqueue_task("l", "l1", 1, false);
        c.schedule();
        c.upsert_job("h", Some("p"), 10, true, 0, None);
        c.enqueue_task("h", "h1", 1, false);
        assert!(settle(&mut c).is_empty(), "maxParallelTasks 0");
        c.upsert_job("h", Some("p"), 10, false, -1, None);
        assert!(settle(&mut c).is_empty(), "not schedulable");
        c.upsert_job("h", Some("p"), 10, true, -1, None);
        assert_eq!(settle(&mut c), vec![vec![key("l", "l1")]]);
    }
}
