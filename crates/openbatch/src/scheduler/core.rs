//! The scheduler core: an IO-free state machine that decides which task runs on which
//! compute node. It is fed events (pools, nodes, jobs and tasks appearing, changing or
//! leaving; tasks finishing) and answers with [`Assignment`]s. The driver persists the
//! decisions and talks to node agents; everything here is unit-tested without processes,
//! HTTP or a database.
//!
//! Rules (Azure Batch "task scheduling"): a task needs `requiredSlots` free task slots on one
//! node of its job's pool; a node offers `taskSlotsPerNode` slots while it is schedulable
//! (idle or running, scheduling enabled, start task done when `waitForSuccess`); jobs of
//! higher `priority` go first, then older jobs, then tasks in the order they were added;
//! `maxParallelTasks` caps a job's running tasks; `nodeFillType` `Spread` places a task on the
//! node with the most free slots, `Pack` fills the busiest node that still fits. A task that
//! finds no room may preempt running tasks of lower-priority jobs with `allowTaskPreemption`
//! (see [`preempt`]).

mod preempt;

use crate::model::pool::NodeFillType;
use std::collections::{BTreeMap, HashMap, VecDeque};

pub use preempt::Preemption;

/// Identifies a task: (job id, task id).
pub type TaskKey = (String, String);

/// Where a job's preparation task stands on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrepState {
    /// Started, not finished.
    Running,
    /// Succeeded (or finished when the job does not wait for success).
    Ready,
    /// Failed after its retries: with `waitForSuccess`, the job's tasks avoid the node.
    Failed,
}

/// A decision: run the job's preparation task on `node` of `pool`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preparation {
    pub job_id: String,
    pub pool_id: String,
    pub node_id: String,
}

/// What one scheduling round decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decisions {
    pub assignments: Vec<Assignment>,
    pub preparations: Vec<Preparation>,
    /// A queued task that can run only once running tasks of lower-priority jobs are
    /// requeued. The round stopped there: the caller requeues the victims, places the task
    /// with [`Core::place_preempting`] and schedules again.
    pub preemption: Option<Preemption>,
}

/// A decision: run `task` on `node` of `pool`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub job_id: String,
    pub task_id: String,
    pub pool_id: String,
    pub node_id: String,
    pub slots: u32,
    /// The other nodes of a multi-instance task, each also giving `slots` (empty otherwise).
    pub others: Vec<String>,
}

#[derive(Debug)]
struct NodeSched {
    total_slots: u32,
    used_slots: u32,
    schedulable: bool,
}

#[derive(Debug)]
struct PoolSched {
    slots_per_node: u32,
    fill: NodeFillType,
    nodes: BTreeMap<String, NodeSched>,
}

#[derive(Debug)]
struct JobSched {
    pool_id: Option<String>,
    priority: i32,
    order: u64,
    schedulable: bool,
    max_parallel: i32,
    running: u32,
    queue: VecDeque<(String, u32)>,
    /// `Some(waitForSuccess)` when the job has a preparation task.
    prep: Option<bool>,
    /// Whether higher-priority jobs' tasks may requeue this job's running tasks
    /// (`allowTaskPreemption`).
    preemptible: bool,
    /// The job's manager task, never preempted.
    manager: Option<String>,
}

#[derive(Debug)]
struct Placement {
    pool_id: String,
    node_id: String,
    slots: u32,
    /// The other nodes of a multi-instance task (the primary is `node_id`).
    others: Vec<String>,
    /// When it was placed, relative to the other placements (larger is later).
    seq: u64,
}

impl Placement {
    fn nodes(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.node_id).chain(self.others.iter())
    }
}

/// The scheduler's in-memory view; see the module documentation for its rules.
#[derive(Debug, Default)]
pub struct Core {
    pools: HashMap<String, PoolSched>,
    jobs: HashMap<String, JobSched>,
    placed: HashMap<TaskKey, Placement>,
    /// Preparation task state per (job, node).
    prep: HashMap<(String, String), PrepState>,
    /// Instances of multi-instance tasks (tasks not listed have one).
    instances: HashMap<TaskKey, u32>,
    next_order: u64,
    /// The `seq` of the next placement.
    next_seq: u64,
}

impl Core {
    /// An empty core.
    pub fn new() -> Self {
        Self::default()
    }

    /// A pool appears or changes its slots per node or fill type.
    pub fn upsert_pool(&mut self, pool_id: &str, slots_per_node: u32, fill: NodeFillType) {
        let p = self.pools.entry(pool_id.to_string()).or_insert_with(|| PoolSched { slots_per_node, fill, nodes: BTreeMap::new() });
        p.slots_per_node = slots_per_node;
        p.fill = fill;
    }

    /// A pool is gone; its nodes and placements with it (the driver has requeued tasks).
    pub fn remove_pool(&mut self, pool_id: &str) {
        self.pools.remove(pool_id);
        let gone: Vec<TaskKey> = self.placed.iter().filter(|(_, p)| p.pool_id == pool_id).map(|(k, _)| k.clone()).collect();
        for k in gone {
            self.finish_task(&k.0, &k.1);
        }
    }

    /// A node joins (or updates): whether it accepts tasks now.
    pub fn upsert_node(&mut self, pool_id: &str, node_id: &str, schedulable: bool) {
        let Some(p) = self.pools.get_mut(pool_id) else { return };
        let total = p.slots_per_node;
        let n = p.nodes.entry(node_id.to_string()).or_insert(NodeSched { total_slots: total, used_slots: 0, schedulable });
        n.schedulable = schedulable;
    }

    /// A node leaves; returns the tasks that were placed on it (the driver requeues or ends
    /// them).
    pub fn remove_node(&mut self, pool_id: &str, node_id: &str) -> Vec<TaskKey> {
        if let Some(p) = self.pools.get_mut(pool_id) {
            p.nodes.remove(node_id);
        }
        self.prep.retain(|(_, n), _| n != node_id);
        let gone: Vec<TaskKey> =
            self.placed.iter().filter(|(_, p)| p.pool_id == pool_id && p.nodes().any(|n| n == node_id)).map(|(k, _)| k.clone()).collect();
        for k in &gone {
            self.finish_task(&k.0, &k.1);
        }
        gone
    }

    /// A job appears or changes: its pool, priority, whether its tasks may be scheduled now
    /// (active, not disabled or terminating), its `maxParallelTasks` (-1 = no cap) and, when
    /// it has a preparation task, whether its tasks wait for that task's success.
    pub fn upsert_job(
        &mut self,
        job_id: &str,
        pool_id: Option<&str>,
        priority: i32,
        schedulable: bool,
        max_parallel: i32,
        prep: Option<bool>,
    ) {
        let order = self.next_order;
        let j = self.jobs.entry(job_id.to_string()).or_insert_with(|| JobSched {
            pool_id: None,
            priority,
            order,
            schedulable,
            max_parallel,
            running: 0,
            queue: VecDeque::new(),
            prep,
            preemptible: false,
            manager: None,
        });
        if j.order == order {
            self.next_order += 1;
        }
        j.pool_id = pool_id.map(str::to_string);
        j.priority = priority;
        j.schedulable = schedulable;
        j.max_parallel = max_parallel;
        j.prep = prep;
    }

    /// Sets whether a job's running tasks may be preempted by tasks of higher-priority jobs
    /// (`allowTaskPreemption`), and its manager task (which never is).
    pub fn set_preemption(&mut self, job_id: &str, allowed: bool, manager_task: Option<&str>) {
        if let Some(j) = self.jobs.get_mut(job_id) {
            j.preemptible = allowed;
            j.manager = manager_task.map(str::to_string);
        }
    }

    /// Records a preparation task's state on a node (also when recovering).
    pub fn set_prep(&mut self, job_id: &str, node_id: &str, state: PrepState) {
        self.prep.insert((job_id.to_string(), node_id.to_string()), state);
    }

    /// Forgets a preparation task on a node, so that it runs again when needed.
    pub fn forget_prep(&mut self, job_id: &str, node_id: &str) {
        self.prep.remove(&(job_id.to_string(), node_id.to_string()));
    }

    /// Jobs whose preparation task ran (or runs) on a node.
    pub fn prepared_jobs(&self, node_id: &str) -> Vec<String> {
        self.prep.keys().filter(|(_, n)| n == node_id).map(|(j, _)| j.clone()).collect()
    }

    /// Nodes that ran (or run) the job's preparation task.
    pub fn prepared_nodes(&self, job_id: &str) -> Vec<String> {
        self.prep.keys().filter(|(j, _)| j == job_id).map(|(_, n)| n.clone()).collect()
    }

    /// A job is gone: its queue is dropped, and placements are forgotten.
    pub fn remove_job(&mut self, job_id: &str) -> Vec<TaskKey> {
        self.jobs.remove(job_id);
        self.prep.retain(|(j, _), _| j != job_id);
        let gone: Vec<TaskKey> = self.placed.keys().filter(|k| k.0 == job_id).cloned().collect();
        for k in &gone {
            self.release(k);
        }
        gone
    }

    /// An active task waits for a node (at the back of its job's queue, or at the front when
    /// it is being retried or requeued).
    pub fn enqueue_task(&mut self, job_id: &str, task_id: &str, slots: u32, front: bool) {
        if let Some(j) = self.jobs.get_mut(job_id) {
            if front {
                j.queue.push_front((task_id.to_string(), slots));
            } else {
                j.queue.push_back((task_id.to_string(), slots));
            }
        }
    }

    /// Queues a multi-instance task: it needs `instances` distinct nodes with `slots` free
    /// each (Azure Batch: multiInstanceSettings.numberOfInstances).
    pub fn enqueue_multi(&mut self, job_id: &str, task_id: &str, slots: u32, instances: u32, front: bool) {
        if instances > 1 {
            self.instances.insert((job_id.to_string(), task_id.to_string()), instances);
        }
        self.enqueue_task(job_id, task_id, slots, front);
    }

    /// Restores the placement of a multi-instance task on `nodes` (primary first).
    pub fn restore_multi(&mut self, job_id: &str, task_id: &str, pool_id: &str, nodes: &[String], slots: u32) {
        let Some((primary, others)) = nodes.split_first() else { return };
        self.restore_placement(job_id, task_id, pool_id, primary, slots);
        for n in others {
            if let Some(s) = self.pools.get_mut(pool_id).and_then(|p| p.nodes.get_mut(n)) {
                s.used_slots += slots;
            }
        }
        let key = (job_id.to_string(), task_id.to_string());
        self.instances.insert(key.clone(), nodes.len() as u32);
        if let Some(p) = self.placed.get_mut(&key) {
            p.others = others.to_vec();
        }
    }

    /// A queued task leaves the queue without running (deleted or terminated while active).
    pub fn dequeue_task(&mut self, job_id: &str, task_id: &str) {
        self.instances.remove(&(job_id.to_string(), task_id.to_string()));
        if let Some(j) = self.jobs.get_mut(job_id) {
            j.queue.retain(|(t, _)| t != task_id);
        }
    }

    /// Records that a task already runs on a node (recovery after a restart).
    pub fn restore_placement(&mut self, job_id: &str, task_id: &str, pool_id: &str, node_id: &str, slots: u32) {
        if let Some(n) = self.pools.get_mut(pool_id).and_then(|p| p.nodes.get_mut(node_id)) {
            n.used_slots += slots;
        }
        if let Some(j) = self.jobs.get_mut(job_id) {
            j.running += 1;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.placed.insert(
            (job_id.to_string(), task_id.to_string()),
            Placement { pool_id: pool_id.to_string(), node_id: node_id.to_string(), slots, others: Vec::new(), seq },
        );
    }

    /// A placed task ended (completed, failed, killed): its slots are free again.
    pub fn finish_task(&mut self, job_id: &str, task_id: &str) {
        let key = (job_id.to_string(), task_id.to_string());
        self.release(&key);
    }

    fn release(&mut self, key: &TaskKey) {
        if !self.jobs.get(&key.0).is_some_and(|j| j.queue.iter().any(|(t, _)| *t == key.1)) {
            self.instances.remove(key);
        }
        if let Some(p) = self.placed.remove(key) {
            for node_id in p.nodes() {
                if let Some(n) = self.pools.get_mut(&p.pool_id).and_then(|pool| pool.nodes.get_mut(node_id)) {
                    n.used_slots = n.used_slots.saturating_sub(p.slots);
                }
            }
            if let Some(j) = self.jobs.get_mut(&key.0) {
                j.running = j.running.saturating_sub(1);
            }
        }
    }

    /// Where a task runs, if it is placed.
    pub fn placement(&self, job_id: &str, task_id: &str) -> Option<(&str, &str)> {
        self.placed.get(&(job_id.to_string(), task_id.to_string())).map(|p| (p.pool_id.as_str(), p.node_id.as_str()))
    }

    /// Tasks placed on a node.
    pub fn tasks_on_node(&self, pool_id: &str, node_id: &str) -> Vec<TaskKey> {
        self.placed.iter().filter(|(_, p)| p.pool_id == pool_id && p.nodes().any(|n| n == node_id)).map(|(k, _)| k.clone()).collect()
    }

    /// The task slots a node of the pool offers (0 for an unknown pool).
    pub fn slots_per_node(&self, pool_id: &str) -> u32 {
        self.pools.get(pool_id).map(|p| p.slots_per_node).unwrap_or(0)
    }

    /// Where a placed task runs: its pool, its nodes (primary first) and the slots it holds
    /// on each.
    pub fn placement_nodes(&self, job_id: &str, task_id: &str) -> Option<(String, Vec<String>, u32)> {
        let p = self.placed.get(&(job_id.to_string(), task_id.to_string()))?;
        Some((p.pool_id.clone(), p.nodes().cloned().collect(), p.slots))
    }

    /// The slots a placed task occupies on its node.
    pub fn placed_slots(&self, job_id: &str, task_id: &str) -> Option<u32> {
        self.placed.get(&(job_id.to_string(), task_id.to_string())).map(|p| p.slots)
    }

    /// The tasks of a job placed on nodes (preparing or running), by id.
    pub fn placed_tasks_of_job(&self, job_id: &str) -> Vec<String> {
        let mut v: Vec<String> = self.placed.keys().filter(|k| k.0 == job_id).map(|k| k.1.clone()).collect();
        v.sort();
        v
    }

    /// Checks the core's invariants: each node's used slots equal the slots of the tasks
    /// placed on it and never exceed its total; each job's running count equals its
    /// placements; no task is both queued and placed, nor queued twice; placements are in
    /// a distinct order, before the next one.
    pub fn sanity_check(&self) -> Result<(), String> {
        let mut used: HashMap<(&str, &str), u32> = HashMap::new();
        let mut running: HashMap<&str, u32> = HashMap::new();
        let mut seqs = std::collections::HashSet::new();
        for ((job, task), p) in &self.placed {
            if p.seq >= self.next_seq || !seqs.insert(p.seq) {
                return Err(format!("task {job}/{task} has placement order {} (next {})", p.seq, self.next_seq));
            }
            for node_id in p.nodes() {
                *used.entry((p.pool_id.as_str(), node_id.as_str())).or_default() += p.slots;
            }
            *running.entry(job.as_str()).or_default() += 1;
            if self.jobs.get(job).is_some_and(|j| j.queue.iter().any(|(t, _)| t == task)) {
                return Err(format!("task {job}/{task} is both queued and placed"));
            }
        }
        for (pool_id, pool) in &self.pools {
            for (node_id, n) in &pool.nodes {
                let u = used.get(&(pool_id.as_str(), node_id.as_str())).copied().unwrap_or(0);
                if n.used_slots != u {
                    return Err(format!("node {pool_id}/{node_id} uses {} slots, placements say {u}", n.used_slots));
                }
                if n.used_slots > n.total_slots {
                    return Err(format!("node {pool_id}/{node_id} uses {} of {} slots", n.used_slots, n.total_slots));
                }
            }
        }
        for (job_id, j) in &self.jobs {
            let r = running.get(job_id.as_str()).copied().unwrap_or(0);
            if j.running != r {
                return Err(format!("job {job_id} counts {} running, placements say {r}", j.running));
            }
            let mut seen = std::collections::HashSet::new();
            for (t, _) in &j.queue {
                if !seen.insert(t) {
                    return Err(format!("task {job_id}/{t} is queued twice"));
                }
            }
        }
        Ok(())
    }

    /// Places the task a [`Preemption`] was for on its node, once the caller requeued the
    /// victims, with the job's preparation task there when it has one that has not run on
    /// the node (one that must succeed first has: only such nodes are chosen). No assignment
    /// (the task stays queued) when that is no longer possible: the task left the queue, its
    /// job stopped scheduling or the node lacks the slots.
    pub fn place_preempting(&mut self, p: &Preemption) -> Decisions {
        let mut out = Decisions::default();
        let Some(job) = self.jobs.get_mut(&p.job_id).filter(|j| j.schedulable) else { return out };
        let Some(at) = job.queue.iter().position(|(t, _)| *t == p.task_id) else { return out };
        let Some(node) = self.pools.get_mut(&p.pool_id).and_then(|pool| pool.nodes.get_mut(&p.node_id)) else { return out };
        if !node.schedulable || node.total_slots.saturating_sub(node.used_slots) < p.slots {
            return out;
        }
        if let Some(wait) = job.prep {
            if let std::collections::hash_map::Entry::Vacant(e) = self.prep.entry((p.job_id.clone(), p.node_id.clone())) {
                e.insert(if wait { PrepState::Running } else { PrepState::Ready });
                out.preparations.push(Preparation { job_id: p.job_id.clone(), pool_id: p.pool_id.clone(), node_id: p.node_id.clone() });
            }
        }
        job.queue.remove(at);
        node.used_slots += p.slots;
        job.running += 1;
        let seq = self.next_seq;
        self.next_seq += 1;
        let placement = Placement { pool_id: p.pool_id.clone(), node_id: p.node_id.clone(), slots: p.slots, others: Vec::new(), seq };
        self.placed.insert((p.job_id.clone(), p.task_id.clone()), placement);
        out.assignments.push(Assignment {
            job_id: p.job_id.clone(),
            task_id: p.task_id.clone(),
            pool_id: p.pool_id.clone(),
            node_id: p.node_id.clone(),
            slots: p.slots,
            others: Vec::new(),
        });
        out
    }

    /// The load of the jobs on a pool: queued task instances (a multi-instance task counts its
    /// instances), placed tasks, and the ids of those jobs.
    pub fn pool_load(&self, pool_id: &str) -> (u64, u64, Vec<String>) {
        let mut queued = 0u64;
        let mut jobs = Vec::new();
        for (id, j) in self.jobs.iter().filter(|(_, j)| j.pool_id.as_deref() == Some(pool_id)) {
            jobs.push(id.clone());
            let instances = |t: &String| u64::from(self.instances.get(&(id.clone(), t.clone())).copied().unwrap_or(1));
            queued += j.queue.iter().map(|(t, _)| instances(t)).sum::<u64>();
        }
        jobs.sort();
        let placed = self.placed.values().filter(|p| p.pool_id == pool_id).count() as u64;
        (queued, placed, jobs)
    }

    /// Number of tasks waiting in queues (all jobs).
    pub fn queued(&self) -> usize {
        self.jobs.values().map(|j| j.queue.len()).sum()
    }

    /// Places as many queued tasks as fit and returns the decisions. A job with a
    /// preparation task first has it run on a node with room for its next task; with
    /// `waitForSuccess` its tasks go only to nodes where the preparation succeeded. The round
    /// stops at the first task that fits only by preempting running tasks
    /// ([`Decisions::preemption`]).
    pub fn schedule(&mut self) -> Decisions {
        let mut out = Decisions::default();
        let victim_jobs = preempt::victim_jobs(&self.jobs);
        let Core { pools, jobs, placed, prep, instances, next_seq, .. } = self;
        let mut order: Vec<(i32, u64, String)> = jobs
            .iter()
            .filter(|(_, j)| j.schedulable && !j.queue.is_empty() && j.pool_id.is_some())
            .map(|(id, j)| (j.priority, j.order, id.clone()))
            .collect();
        // Higher priority first, then older jobs.
        order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, _, job_id) in order {
            let Some(job) = jobs.get_mut(&job_id) else { continue };
            let Some(pool) = job.pool_id.as_ref().and_then(|p| pools.get_mut(p)) else { continue };
            let pool_id = job.pool_id.clone().unwrap_or_default();
            if let (Some(wait), Some((_, head_slots))) = (job.prep, job.queue.front()) {
                for (node_id, n) in pool.nodes.iter() {
                    let key = (job_id.clone(), node_id.clone());
                    if n.schedulable && n.total_slots.saturating_sub(n.used_slots) >= *head_slots && !prep.contains_key(&key) {
                        prep.insert(key, if wait { PrepState::Running } else { PrepState::Ready });
                        out.preparations.push(Preparation { job_id: job_id.clone(), pool_id: pool_id.clone(), node_id: node_id.clone() });
                    }
                }
            }
            let allowed = |node_id: &str| match job.prep {
                None | Some(false) => true,
                Some(true) => prep.get(&(job_id.clone(), node_id.to_string())) == Some(&PrepState::Ready),
            };
            // Tasks that cannot fit anywhere now (too many slots) are skipped, not blocking.
            let mut skipped = VecDeque::new();
            while let Some((task_id, slots)) = job.queue.pop_front() {
                if job.max_parallel >= 0 && job.running >= job.max_parallel as u32 {
                    job.queue.push_front((task_id, slots));
                    break;
                }
                let wanted = instances.get(&(job_id.clone(), task_id.clone())).copied().unwrap_or(1);
                if wanted > 1 {
                    // A multi-instance task needs `wanted` distinct nodes at once, the
                    // emptiest first; the primary is the first of them.
                    let mut free: Vec<(&String, u32)> = pool
                        .nodes
                        .iter()
                        .filter(|(id, n)| n.schedulable && n.total_slots.saturating_sub(n.used_slots) >= slots && allowed(id))
                        .map(|(id, n)| (id, n.total_slots - n.used_slots))
                        .collect();
                    if free.len() < wanted as usize {
                        skipped.push_back((task_id, slots));
                        continue;
                    }
                    free.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                    let chosen: Vec<String> = free.into_iter().take(wanted as usize).map(|(id, _)| id.clone()).collect();
                    for id in &chosen {
                        if let Some(n) = pool.nodes.get_mut(id) {
                            n.used_slots += slots;
                        }
                    }
                    job.running += 1;
                    let (node_id, others) = (chosen[0].clone(), chosen[1..].to_vec());
                    let seq = std::mem::replace(next_seq, *next_seq + 1);
                    placed.insert(
                        (job_id.clone(), task_id.clone()),
                        Placement { pool_id: pool_id.clone(), node_id: node_id.clone(), slots, others: others.clone(), seq },
                    );
                    out.assignments.push(Assignment { job_id: job_id.clone(), task_id, pool_id: pool_id.clone(), node_id, slots, others });
                    continue;
                }
                let candidate = pool
                    .nodes
                    .iter()
                    .filter(|(id, n)| n.schedulable && n.total_slots - n.used_slots.min(n.total_slots) >= slots && allowed(id))
                    .map(|(id, n)| (id, n.total_slots - n.used_slots))
                    .reduce(|best, cur| {
                        let better = match pool.fill {
                            NodeFillType::Spread => cur.1 > best.1,
                            NodeFillType::Pack => cur.1 < best.1,
                        };
                        if better {
                            cur
                        } else {
                            best
                        }
                    })
                    .map(|(id, _)| id.clone());
                let Some(node_id) = candidate else {
                    let wanted = preempt::Wanted { job_id: &job_id, priority: job.priority, slots };
                    if let Some((node_id, victims)) = preempt::choose(&victim_jobs, &pool_id, pool, placed, instances, &wanted, &allowed) {
                        // Victims first: the caller requeues them, then places this task.
                        job.queue.push_front((task_id.clone(), slots));
                        while let Some(t) = skipped.pop_back() {
                            job.queue.push_front(t);
                        }
                        out.preemption = Some(Preemption { job_id, task_id, pool_id, node_id, slots, victims });
                        return out;
                    }
                    skipped.push_back((task_id, slots));
                    // When nothing fits a 1-slot task, nothing else fits either.
                    if slots == 1 {
                        break;
                    }
                    continue;
                };
                if let Some(n) = pool.nodes.get_mut(&node_id) {
                    n.used_slots += slots;
                }
                job.running += 1;
                let seq = std::mem::replace(next_seq, *next_seq + 1);
                placed.insert(
                    (job_id.clone(), task_id.clone()),
                    Placement { pool_id: pool_id.clone(), node_id: node_id.clone(), slots, others: Vec::new(), seq },
                );
                out.assignments.push(Assignment {
                    job_id: job_id.clone(),
                    task_id,
                    pool_id: pool_id.clone(),
                    node_id,
                    slots,
                    others: Vec::new(),
                });
            }
            while let Some(t) = skipped.pop_back() {
                job.queue.push_front(t);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core_with(nodes: &[&str], slots: u32, fill: NodeFillType) -> Core {
        let mut c = Core::new();
        c.upsert_pool("p", slots, fill);
        for n in nodes {
            c.upsert_node("p", n, true);
        }
        c
    }

    #[test]
    fn fills_every_slot_and_no_more() {
        let mut c = core_with(&["n1", "n2"], 2, NodeFillType::Spread);
        c.upsert_job("j", Some("p"), 0, true, -1, None);
        for i in 0..10 {
            c.enqueue_task("j", &format!("t{i}"), 1, false);
        }
        let a = c.schedule().assignments;
        assert_eq!(a.len(), 4);
        assert_eq!(a.iter().filter(|x| x.node_id == "n1").count(), 2);
        assert_eq!(c.queued(), 6);
        assert!(c.schedule().assignments.is_empty());
        c.finish_task("j", &a[0].task_id);
        let b = c.schedule().assignments;
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].task_id, "t4", "tasks run in the order they were added");
    }

    #[test]
    fn spread_and_pack_place_differently() {
        let mut c = core_with(&["n1", "n2"], 4, NodeFillType::Spread);
        c.upsert_job("j", Some("p"), 0, true, -1, None);
        c.enqueue_task("j", "a", 1, false);
        c.enqueue_task("j", "b", 1, false);
        let a = c.schedule().assignments;
        assert_ne!(a[0].node_id, a[1].node_id);

        let mut c = core_with(&["n1", "n2"], 4, NodeFillType::Pack);
        c.upsert_job("j", Some("p"), 0, true, -1, None);
        c.enqueue_task("j", "a", 1, false);
        c.schedule();
        c.enqueue_task("j", "b", 1, false);
        let b = c.schedule().assignments;
        assert_eq!(b[0].node_id, c.placement("j", "a").unwrap().1);
    }

    #[test]
    fn required_slots_and_unschedulable_nodes() {
        let mut c = core_with(&["n1"], 2, NodeFillType::Spread);
        c.upsert_node("p", "n2", false);
        c.upsert_job("j", Some("p"), 0, true, -1, None);
        c.enqueue_task("j", "big", 3, false);
        c.enqueue_task("j", "two", 2, false);
        c.enqueue_task("j", "one", 1, false);
        let a = c.schedule().assignments;
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].task_id, "two");
        assert_eq!(c.queued(), 2);
        c.upsert_node("p", "n2", true);
        let b = c.schedule().assignments;
        assert_eq!(b.len(), 1);
        assert_eq!((b[0].task_id.as_str(), b[0].node_id.as_str()), ("one", "n2"));
    }

    #[test]
    fn priority_and_parallel_cap() {
        let mut c = core_with(&["n1"], 3, NodeFillType::Spread);
        c.upsert_job("low", Some("p"), 0, true, -1, None);
        c.upsert_job("high", Some("p"), 100, true, 1, None);
        c.enqueue_task("low", "l1", 1, false);
        c.enqueue_task("low", "l2", 1, false);
        c.enqueue_task("high", "h1", 1, false);
        c.enqueue_task("high", "h2", 1, false);
        let a = c.schedule().assignments;
        let ids: Vec<&str> = a.iter().map(|x| x.task_id.as_str()).collect();
        assert_eq!(ids, vec!["h1", "l1", "l2"], "high first, capped at one running");
    }

    #[test]
    fn node_loss_returns_its_tasks_and_disabled_jobs_wait() {
        let mut c = core_with(&["n1"], 1, NodeFillType::Spread);
        c.upsert_job("j", Some("p"), 0, false, -1, None);
        c.enqueue_task("j", "t", 1, false);
        assert!(c.schedule().assignments.is_empty());
        c.upsert_job("j", Some("p"), 0, true, -1, None);
        assert_eq!(c.schedule().assignments.len(), 1);
        assert_eq!(c.remove_node("p", "n1"), vec![("j".to_string(), "t".to_string())]);
        assert!(c.placement("j", "t").is_none());
    }
}

#[cfg(test)]
mod prep_tests {
    use super::*;

    #[test]
    fn preparation_runs_first_and_gates_tasks_when_waited_for() {
        let mut c = Core::new();
        c.upsert_pool("p", 1, NodeFillType::Spread);
        c.upsert_node("p", "n1", true);
        c.upsert_node("p", "n2", true);
        c.upsert_job("j", Some("p"), 0, true, -1, Some(true));
        c.enqueue_task("j", "t1", 1, false);
        let d = c.schedule();
        assert!(d.assignments.is_empty(), "tasks wait for the preparation task");
        assert_eq!(d.preparations.len(), 2);
        assert!(c.schedule().preparations.is_empty(), "a preparation task starts once per node");
        c.set_prep("j", "n1", PrepState::Failed);
        assert!(c.schedule().assignments.is_empty(), "not on a node whose preparation failed");
        c.set_prep("j", "n2", PrepState::Ready);
        let d = c.schedule();
        assert_eq!(d.assignments.len(), 1);
        assert_eq!(d.assignments[0].node_id, "n2");
        assert_eq!(c.prepared_nodes("j").len(), 2);
        c.remove_node("p", "n1");
        assert_eq!(c.prepared_nodes("j"), vec!["n2".to_string()]);
    }

    #[test]
    fn without_wait_tasks_run_alongside_the_preparation() {
        let mut c = Core::new();
        c.upsert_pool("p", 2, NodeFillType::Spread);
        c.upsert_node("p", "n1", true);
        c.upsert_job("j", Some("p"), 0, true, -1, Some(false));
        c.enqueue_task("j", "t1", 1, false);
        let d = c.schedule();
        assert_eq!(d.preparations.len(), 1);
        assert_eq!(d.assignments.len(), 1);
    }
}
