//! Task dependencies: a pure, IO-free tracker that tells the scheduler when a task of a job with
//! `usesTaskDependencies` may run (Azure Batch: TaskDependencies, `dependsOn` / `taskIds` /
//! `taskIdRanges`, and the exit conditions' `dependencyAction`).
//!
//! The reactor feeds it facts — a task was added with its `dependsOn`, a task completed and its
//! exit conditions say `satisfy` or `block`, a task was reactivated or deleted, a job went away —
//! and it answers which waiting tasks became ready. It stores nothing else and does no IO.
//!
//! # Rules
//!
//! * A dependent runs only once every task it names has completed with the outcome
//!   [`DepOutcome::Satisfy`]. A task that completes with [`DepOutcome::Block`] keeps its
//!   dependents waiting (they stay active and never run); the service cannot cancel them.
//! * A `taskIds` entry naming a task that has not been added yet waits for it: it may be added
//!   (and complete) later.
//! * A range `{start, end}` (inclusive, both ends) stands for the task ids that are the
//!   *canonical decimal spellings* of the integers `start..=end`: the spec's example range 9..12
//!   stands for the tasks `'9'`, `'10'`, `'11'` and `'12'`. So `"7"` is in 1..10, while `"+7"`,
//!   `"7a"` and `"seven"` are in no range (they are ordinary string ids, still reachable through
//!   `taskIds`); see [`canonical_int`]. Negative integers are spelled `"-5"`. The reactor gives
//!   this tracker task ids without leading zeros and in lower case (Batch compares ids without
//!   regard to case, and leading zeros are not significant in ranges), so `"007"` reaches it
//!   as `"7"`.
//! * Every id of a range counts, including ids no task has yet: like a `taskIds` entry, a missing
//!   id keeps the dependent waiting until a task with that id is added and satisfies. (The spec
//!   says all tasks with ids in the range must complete successfully and does not exempt absent
//!   ones; the conservative reading is the one that never runs a dependent too early.) A range
//!   with `start > end` is empty and adds no dependency (the reactor rejects it at add time).
//! * Completion and outcome are facts about a task id *now*: when a completed task is reactivated
//!   or deleted, or completes again with `Block`, its earlier `Satisfy` is withdrawn and the
//!   dependents that are still waiting wait for it again. A deleted task therefore never
//!   satisfies anything, but a new task added later under the same id does once it completes.
//!   Dependents already released are not recalled, and a reactivated task does not wait for its
//!   own dependencies again (it was released before).
//! * A task that completes while it is itself waiting (terminated, or its job terminated) stops
//!   waiting. A task that depends on itself (the reactor rejects that at add time) simply waits;
//!   nothing loops.
//! * Jobs are separate namespaces: everything is keyed by (job id, task id).
//!
//! # Replay
//!
//! The state is a function of two sets — the completed tasks with their outcomes, and the added,
//! not completed tasks with their `dependsOn` — so replaying `add_task` for every stored task and
//! `completed` for every completed task, interleaved in any order, ends in the same waiting set
//! and counts (`add_task` of an already completed task stores nothing). A task whose dependency
//! was withdrawn after it had been released waits again after a replay if it is still active;
//! the reactor knows which tasks it already released and may ignore that answer.
//!
//! # Cost
//!
//! Nothing is stored for a task that has no `dependsOn` and has not completed; a completed task
//! costs one set entry (8 to 16 bytes in a B-tree set for a canonical integer id; a boxed string
//! plus about 17 bytes of hash table otherwise). A waiting task costs its ids and ranges plus one
//! 8-byte entry per id and range in the indexes. Identical ranges are shared: one range node per
//! distinct `(start, end)` in a job holds the number of its ids not yet satisfied and the tasks
//! waiting on it, and is registered in at most 126 aligned power-of-two blocks of the integer
//! line. A range never allocates per id: 1..1_000_000 costs at most 126 block entries, like
//! 1..10 costs at most 6.
//!
//! * `add_task`: O(d log d) for d dependencies (sorting them to drop duplicates), plus, for a
//!   range no waiting task uses yet, O(log n + satisfied ids inside it) to count them, once.
//! * `completed` / `reactivated` / `removed`: O(L + W + R) hash and B-tree operations, where
//!   L ≤ 65 is the number of block levels the job's ranges use, W the waiting tasks and range
//!   nodes that name the id, and R the entries of the released tasks (each release unhooks the
//!   task's own index entries). A 10,000-task chain, fan-in, fan-out or range fan-in is linear.
//! * Index lists drop released entries lazily and are compacted when more than half are stale,
//!   so removals cost amortised O(1).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

/// A task's `dependsOn` (Azure Batch: TaskDependencies): `task_ids` names tasks by id, `ranges`
/// holds `taskIdRanges` as inclusive `(start, end)` pairs (int32 on the wire; any i64 works).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DependsOn {
    pub task_ids: Vec<String>,
    pub ranges: Vec<(i64, i64)>,
}

impl DependsOn {
    /// True when the task depends on nothing (no ids, and every range empty).
    pub fn is_empty(&self) -> bool {
        self.task_ids.is_empty() && self.ranges.iter().all(|&(s, e)| s > e)
    }
}

/// What a completed task means for the tasks that depend on it (Azure Batch: ExitOptions,
/// `dependencyAction`; by default `satisfy` for exit code 0 and `block` for any failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepOutcome {
    /// The dependency is met.
    Satisfy,
    /// Dependents keep waiting, until the task is reactivated and completes with `Satisfy`.
    Block,
}

/// Whether a task just added may run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Every dependency is satisfied (or there are none): the task may be scheduled.
    Ready,
    /// At least one dependency is unresolved; [`DepTracker::completed`] reports the release.
    Waiting,
}

/// The graph shapes of [`synthetic_run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Task `i` depends on task `i - 1`.
    Chain,
    /// One task depends on the other `n - 1` through `taskIds`.
    FanIn,
    /// `n - 1` tasks depend on one task.
    FanOut,
    /// One task depends on the other `n - 1` (ids `1..n`) through one `taskIdRanges` entry.
    RangeFanIn,
}

/// The integer a task id stands for in `taskIdRanges`: `Some` only for the canonical decimal
/// spelling (`"0"`, `"42"`, `"-7"`), `None` for `"007"`, `"+7"`, `"-0"`, `""`, `"7a"` or ids
/// beyond i64. Source: Azure Batch TaskIdRange (a range 9..12 stands for tasks '9'..'12').
pub fn canonical_int(id: &str) -> Option<i64> {
    let (neg, digits) = match id.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, id),
    };
    let b = digits.as_bytes();
    let canonical = !b.is_empty() && b.iter().all(u8::is_ascii_digit) && (b[0] != b'0' || b.len() == 1) && !(neg && digits == "0");
    if canonical {
        id.parse().ok()
    } else {
        None
    }
}

/// Tracks, per job, which tasks wait on which ids and ranges and which tasks have satisfied.
/// Pure and IO-free; see the module docs for the rules and the cost bounds.
#[derive(Debug, Default)]
pub struct DepTracker {
    jobs: HashMap<Box<str>, JobDeps>,
    next_seq: u64,
}

/// A list of sequence numbers (of waiting tasks or range nodes) whose entries are dropped lazily:
/// `live` counts the entries still valid; the owner compacts once most are stale.
#[derive(Debug, Default)]
struct LazyList {
    entries: Vec<u64>,
    live: u32,
}

impl LazyList {
    fn push(&mut self, seq: u64) {
        self.entries.push(seq);
        self.live += 1;
    }

    /// One entry went stale; returns true when the list is now empty and should be removed.
    fn drop_one(&mut self, is_live: impl Fn(u64) -> bool) -> bool {
        self.live -= 1;
        if self.live == 0 {
            return true;
        }
        if self.entries.len() > 2 * self.live as usize + 8 {
            tick(self.entries.len());
            self.entries.retain(|&s| is_live(s));
        }
        false
    }
}

/// A task that is still waiting; `pending` counts its unresolved ids and ranges.
#[derive(Debug)]
struct Dependent {
    task: Box<str>,
    ids: Box<[Box<str>]>,
    ranges: Box<[(i64, i64)]>,
    pending: u32,
}

/// One distinct `(start, end)` that waiting tasks use; `missing` counts its ids not satisfied.
#[derive(Debug)]
struct RangeNode {
    start: i64,
    end: i64,
    missing: u128,
    waiters: LazyList,
}

/// One job's state.
#[derive(Debug, Default)]
struct JobDeps {
    /// Completed with `Satisfy`: canonical integer ids, then all other ids.
    sat_int: BTreeSet<i64>,
    sat_str: HashSet<Box<str>>,
    /// Completed with `Block`.
    blocked: HashSet<Box<str>>,
    /// Waiting tasks by sequence number (add order), and the sequence number of each.
    waiting: HashMap<u64, Dependent>,
    by_task: HashMap<Box<str>, u64>,
    /// `taskIds` index: id → waiting tasks naming it.
    id_waits: HashMap<Box<str>, LazyList>,
    /// Range nodes by sequence number, and by bounds.
    ranges: HashMap<u64, RangeNode>,
    range_by_bounds: HashMap<(i64, i64), u64>,
    /// Range index: (level, block) → range nodes whose decomposition holds that block.
    blocks: HashMap<(u8, u64), LazyList>,
    /// Live block registrations per level, and the mask of levels that have any.
    level_live: LevelCounts,
    levels: u128,
}

/// Live block registrations per level.
#[derive(Debug, PartialEq, Eq)]
struct LevelCounts([u32; LEVELS]);

impl Default for LevelCounts {
    fn default() -> Self {
        LevelCounts([0; LEVELS])
    }
}

/// Block levels: 2^0 .. 2^64 ids.
const LEVELS: usize = 65;

/// An order-preserving map of i64 onto u64.
fn point_key(n: i64) -> u64 {
    (n as u64) ^ (1 << 63)
}

/// The index of the level-`level` block that holds `key`.
fn block_of(key: u64, level: u32) -> u64 {
    key.checked_shr(level).unwrap_or(0)
}

/// Splits `start..=end` into disjoint aligned blocks (at most 2 per level), calling `f(level,
/// block)` for each; a point is in a range exactly when it is in one of its blocks.
fn decompose(start: i64, end: i64, mut f: impl FnMut(u8, u64)) {
    let mut lo = point_key(start) as u128;
    let hi = point_key(end) as u128 + 1;
    while lo < hi {
        let mut level = lo.trailing_zeros().min(64);
        while lo + (1u128 << level) > hi {
            level -= 1;
        }
        f(level as u8, (lo >> level) as u64);
        lo += 1u128 << level;
    }
}

fn range_len(start: i64, end: i64) -> u128 {
    (end as i128 - start as i128 + 1) as u128
}

#[cfg(test)]
thread_local! {
    static OPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Counts internal steps (list entries visited, block probes, set elements counted) in tests.
#[inline]
fn tick(n: usize) {
    #[cfg(test)]
    OPS.with(|c| c.set(c.get() + n as u64));
    #[cfg(not(test))]
    let _ = n;
}

/// Internal steps counted on this thread so far (tests only).
#[cfg(test)]
pub(crate) fn ops() -> u64 {
    OPS.with(|c| c.get())
}

impl JobDeps {
    fn is_empty(&self) -> bool {
        self.sat_int.is_empty() && self.sat_str.is_empty() && self.blocked.is_empty() && self.waiting.is_empty()
    }

    fn is_satisfied(&self, id: &str) -> bool {
        match canonical_int(id) {
            Some(n) => self.sat_int.contains(&n),
            None => self.sat_str.contains(id),
        }
    }

    fn is_done(&self, id: &str) -> bool {
        self.blocked.contains(id) || self.is_satisfied(id)
    }

    /// Ids of `start..=end` not satisfied now.
    fn count_missing(&self, start: i64, end: i64) -> u128 {
        let mut sat = 0usize;
        for _ in self.sat_int.range(start..=end) {
            sat += 1;
        }
        tick(sat + 1);
        range_len(start, end) - sat as u128
    }

    /// Marks `id` satisfied; returns the waiting tasks whose last dependency that was.
    fn satisfy(&mut self, id: &str) -> Vec<u64> {
        let num = canonical_int(id);
        let newly = match num {
            Some(n) => self.sat_int.insert(n),
            None => self.sat_str.insert(id.into()),
        };
        if newly {
            self.shift(id, num, true)
        } else {
            Vec::new()
        }
    }

    /// Withdraws a `Satisfy` of `id`, if any: its waiting dependents wait for it again.
    fn withdraw(&mut self, id: &str) {
        let num = canonical_int(id);
        let was = match num {
            Some(n) => self.sat_int.remove(&n),
            None => self.sat_str.remove(id),
        };
        if was {
            self.shift(id, num, false);
        }
    }

    /// Applies a change of `id`'s satisfaction to every waiting task and range node naming it;
    /// when `down` (now satisfied) returns the tasks left with nothing pending.
    fn shift(&mut self, id: &str, num: Option<i64>, down: bool) -> Vec<u64> {
        let JobDeps { waiting, id_waits, ranges, blocks, levels, .. } = self;
        let mut released = Vec::new();
        let mut adjust = |seq: u64, waiting: &mut HashMap<u64, Dependent>| {
            tick(1);
            if let Some(d) = waiting.get_mut(&seq) {
                if down {
                    d.pending -= 1;
                    if d.pending == 0 {
                        released.push(seq);
                    }
                } else {
                    d.pending += 1;
                }
            }
        };
        if let Some(list) = id_waits.get(id) {
            for &seq in &list.entries {
                adjust(seq, waiting);
            }
        }
        if let Some(n) = num {
            let key = point_key(n);
            let mut mask = *levels;
            while mask != 0 {
                let level = mask.trailing_zeros();
                mask &= mask - 1;
                tick(1);
                let Some(block) = blocks.get(&(level as u8, block_of(key, level))) else { continue };
                for rseq in &block.entries {
                    tick(1);
                    let Some(node) = ranges.get_mut(rseq) else { continue };
                    let fire = if down {
                        node.missing -= 1;
                        node.missing == 0
                    } else {
                        node.missing += 1;
                        node.missing == 1
                    };
                    if fire {
                        for &seq in &node.waiters.entries {
                            adjust(seq, waiting);
                        }
                    }
                }
            }
        }
        released.sort_unstable();
        released
    }

    /// Registers `task` as waiting on `deps` unless everything is satisfied already.
    /// `next_seq` numbers the task and any new range node; numbers are never reused.
    fn register(&mut self, next_seq: &mut u64, task: &str, deps: &DependsOn) -> Readiness {
        let mut ids: Vec<&str> = deps.task_ids.iter().map(String::as_str).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut bounds: Vec<(i64, i64)> = deps.ranges.iter().copied().filter(|&(s, e)| s <= e).collect();
        bounds.sort_unstable();
        bounds.dedup();
        let mut pending = ids.iter().filter(|id| !self.is_satisfied(id)).count();
        // For each range: its node, or the missing count of a node to create.
        let mut nodes = Vec::with_capacity(bounds.len());
        for &(s, e) in &bounds {
            let found = self.range_by_bounds.get(&(s, e)).copied();
            let missing = match found {
                Some(rseq) => self.ranges[&rseq].missing,
                None => self.count_missing(s, e),
            };
            pending += usize::from(missing > 0);
            nodes.push((found, missing));
        }
        if pending == 0 {
            return Readiness::Ready;
        }
        *next_seq += 1;
        let seq = *next_seq;
        tick(ids.len() + bounds.len());
        for id in &ids {
            self.id_waits.entry((*id).into()).or_default().push(seq);
        }
        for (&(s, e), (found, missing)) in bounds.iter().zip(nodes) {
            let rseq = match found {
                Some(rseq) => rseq,
                None => {
                    *next_seq += 1;
                    let rseq = *next_seq;
                    self.ranges.insert(rseq, RangeNode { start: s, end: e, missing, waiters: LazyList::default() });
                    self.range_by_bounds.insert((s, e), rseq);
                    let JobDeps { blocks, level_live, levels, .. } = self;
                    decompose(s, e, |level, block| {
                        tick(1);
                        blocks.entry((level, block)).or_default().push(rseq);
                        level_live.0[level as usize] += 1;
                        *levels |= 1 << level;
                    });
                    rseq
                }
            };
            self.ranges.get_mut(&rseq).expect("range node").waiters.push(seq);
        }
        let dep =
            Dependent { task: task.into(), ids: ids.into_iter().map(Box::from).collect(), ranges: bounds.into(), pending: pending as u32 };
        self.by_task.insert(task.into(), seq);
        self.waiting.insert(seq, dep);
        Readiness::Waiting
    }

    /// Stops tracking waiting task `seq` (released, completed or deleted); returns its id.
    fn unregister(&mut self, seq: u64) -> Option<Box<str>> {
        let dep = self.waiting.remove(&seq)?;
        self.by_task.remove(&dep.task);
        tick(dep.ids.len() + dep.ranges.len());
        let JobDeps { waiting, id_waits, ranges, range_by_bounds, .. } = self;
        for id in dep.ids.iter() {
            let list = id_waits.get_mut(id).expect("id index");
            if list.drop_one(|s| waiting.contains_key(&s)) {
                id_waits.remove(id);
            }
        }
        let mut unused = Vec::new();
        for bounds in dep.ranges.iter() {
            let rseq = range_by_bounds[bounds];
            let node = ranges.get_mut(&rseq).expect("range node");
            if node.waiters.drop_one(|s| waiting.contains_key(&s)) {
                unused.push(rseq);
            }
        }
        for rseq in unused {
            self.drop_range(rseq);
        }
        Some(dep.task)
    }

    fn unregister_task(&mut self, task: &str) {
        if let Some(&seq) = self.by_task.get(task) {
            self.unregister(seq);
        }
    }

    /// Removes a range node nobody waits on any more, and its block registrations.
    fn drop_range(&mut self, rseq: u64) {
        let node = self.ranges.remove(&rseq).expect("range node");
        self.range_by_bounds.remove(&(node.start, node.end));
        let JobDeps { ranges, blocks, level_live, levels, .. } = self;
        decompose(node.start, node.end, |level, block| {
            tick(1);
            level_live.0[level as usize] -= 1;
            if level_live.0[level as usize] == 0 {
                *levels &= !(1 << level);
            }
            let list = blocks.get_mut(&(level, block)).expect("block index");
            if list.drop_one(|s| ranges.contains_key(&s)) {
                blocks.remove(&(level, block));
            }
        });
    }

    /// The ids of released tasks, in the order they were added.
    fn release(&mut self, seqs: Vec<u64>) -> Vec<String> {
        seqs.into_iter().filter_map(|seq| self.unregister(seq)).map(String::from).collect()
    }
}

impl DepTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// A task was added (or is replayed after a restart) with its `dependsOn`. Returns
    /// [`Readiness::Ready`] when it may run now, else [`Readiness::Waiting`]: it is then reported
    /// by the [`completed`](Self::completed) call that resolves its last dependency. Duplicate
    /// ids and ranges count once; empty ranges are ignored. Adding a task again replaces its
    /// earlier dependencies; adding a task that already completed stores nothing and is `Ready`.
    /// Source: Azure Batch TaskDependencies (`taskIds`, `taskIdRanges`).
    pub fn add_task(&mut self, job: &str, task: &str, deps: &DependsOn) -> Readiness {
        if deps.is_empty() {
            if let Some(j) = self.jobs.get_mut(job) {
                j.unregister_task(task);
            }
            return Readiness::Ready;
        }
        let mut next_seq = self.next_seq;
        let j = self.job_mut(job);
        j.unregister_task(task);
        if j.is_done(task) {
            return Readiness::Ready;
        }
        let r = j.register(&mut next_seq, task, deps);
        self.next_seq = next_seq;
        self.prune(job);
        r
    }

    /// A task completed and its exit conditions chose `outcome` (`dependencyAction`). With
    /// `Satisfy`, returns the tasks that were waiting on it and now have every dependency met,
    /// in the order they were added; with `Block`, nothing (and an earlier `Satisfy` of the same
    /// id is withdrawn). A task that was itself waiting stops waiting. Completing an id no task
    /// has (replay, or a later add) is recorded all the same.
    /// Source: Azure Batch ExitOptions `dependencyAction`.
    pub fn completed(&mut self, job: &str, task: &str, outcome: DepOutcome) -> Vec<String> {
        let j = self.job_mut(job);
        j.unregister_task(task);
        match outcome {
            DepOutcome::Satisfy => {
                j.blocked.remove(task);
                let seqs = j.satisfy(task);
                j.release(seqs)
            }
            DepOutcome::Block => {
                j.withdraw(task);
                j.blocked.insert(task.into());
                Vec::new()
            }
        }
    }

    /// A completed task was reactivated (Task Reactivate): its outcome is withdrawn, and tasks
    /// still waiting on it wait for its next completion. Tasks it released stay released, and it
    /// does not wait for its own dependencies again.
    pub fn reactivated(&mut self, job: &str, task: &str) {
        if let Some(j) = self.jobs.get_mut(job) {
            j.blocked.remove(task);
            j.withdraw(task);
            self.prune(job);
        }
    }

    /// A task was deleted: it stops waiting, and its outcome is withdrawn, so its dependents wait
    /// until a task with the same id is added and completes with `Satisfy`.
    pub fn removed(&mut self, job: &str, task: &str) {
        if let Some(j) = self.jobs.get_mut(job) {
            j.unregister_task(task);
            j.blocked.remove(task);
            j.withdraw(task);
            self.prune(job);
        }
    }

    /// A job was deleted: all of its state goes.
    pub fn remove_job(&mut self, job: &str) {
        self.jobs.remove(job);
    }

    /// How many dependencies of a waiting task are unresolved: each distinct `taskIds` entry not
    /// satisfied, plus each distinct range with at least one id not satisfied. 0 when the task is
    /// not waiting (ready, released, completed or unknown).
    pub fn waiting_on(&self, job: &str, task: &str) -> usize {
        self.jobs.get(job).and_then(|j| j.by_task.get(task).map(|seq| j.waiting[seq].pending as usize)).unwrap_or(0)
    }

    /// The waiting tasks of a job, in the order they were added.
    pub fn waiting_tasks(&self, job: &str) -> Vec<String> {
        let Some(j) = self.jobs.get(job) else { return Vec::new() };
        let mut seqs: Vec<&u64> = j.waiting.keys().collect();
        seqs.sort_unstable();
        seqs.into_iter().map(|s| j.waiting[s].task.to_string()).collect()
    }

    /// Checks the internal invariants by recomputing every counter and index from scratch
    /// (O(state) — for tests): each waiting task's pending count, each range node's missing
    /// count and waiters, each index list's live count, the level mask.
    pub fn sanity_check(&self) -> Result<(), String> {
        #[cfg(test)]
        let saved = ops();
        let r = self.jobs.iter().try_for_each(|(job, j)| j.check().map_err(|e| format!("job {job}: {e}")));
        #[cfg(test)]
        OPS.with(|c| c.set(saved));
        r
    }

    /// The job's state, created when missing (without allocating the key when present).
    fn job_mut(&mut self, job: &str) -> &mut JobDeps {
        if !self.jobs.contains_key(job) {
            self.jobs.insert(job.into(), JobDeps::default());
        }
        self.jobs.get_mut(job).expect("just inserted")
    }

    fn prune(&mut self, job: &str) {
        if self.jobs.get(job).is_some_and(JobDeps::is_empty) {
            self.jobs.remove(job);
        }
    }
}

impl JobDeps {
    fn check(&self) -> Result<(), String> {
        if let Some(id) = self.sat_str.iter().find(|id| canonical_int(id).is_some()) {
            return Err(format!("canonical integer id {id} in the string set"));
        }
        if let Some(id) = self.blocked.iter().find(|id| self.is_satisfied(id)) {
            return Err(format!("{id} both satisfied and blocked"));
        }
        if self.by_task.len() != self.waiting.len() {
            return Err("by_task and waiting differ in size".into());
        }
        let mut id_refs: HashMap<&str, u32> = HashMap::new();
        let mut range_refs: HashMap<(i64, i64), u32> = HashMap::new();
        for (seq, d) in &self.waiting {
            if self.by_task.get(&d.task) != Some(seq) {
                return Err(format!("{} not indexed by its sequence number", d.task));
            }
            if self.is_done(&d.task) {
                return Err(format!("{} is completed but waiting", d.task));
            }
            let mut pending = 0;
            for id in d.ids.iter() {
                *id_refs.entry(id).or_default() += 1;
                pending += u32::from(!self.is_satisfied(id));
            }
            for b in d.ranges.iter() {
                *range_refs.entry(*b).or_default() += 1;
                let rseq = self.range_by_bounds.get(b).ok_or(format!("{}: no node for range {b:?}", d.task))?;
                pending += u32::from(self.ranges[rseq].missing > 0);
            }
            if pending == 0 || pending != d.pending {
                return Err(format!("{} pending {} but recomputed {pending}", d.task, d.pending));
            }
        }
        let live = |list: &LazyList, alive: &dyn Fn(u64) -> bool| -> Result<(), String> {
            let mut seen: Vec<u64> = list.entries.iter().copied().filter(|&s| alive(s)).collect();
            let n = seen.len();
            seen.sort_unstable();
            seen.dedup();
            if seen.len() != n || n != list.live as usize || n == 0 {
                return Err(format!("list live {} but {n} live entries ({} distinct)", list.live, seen.len()));
            }
            Ok(())
        };
        if id_refs.len() != self.id_waits.len() {
            return Err("id index has lists nobody waits on".into());
        }
        for (id, list) in &self.id_waits {
            live(list, &|s| self.waiting.get(&s).is_some_and(|d| d.ids.iter().any(|i| i == id))).map_err(|e| format!("id {id}: {e}"))?;
            if id_refs.get(&**id) != Some(&list.live) {
                return Err(format!("id {id}: live {} but {:?} waiters", list.live, id_refs.get(&**id)));
            }
        }
        if self.ranges.len() != self.range_by_bounds.len() || range_refs.len() != self.ranges.len() {
            return Err("range nodes, bounds and references differ".into());
        }
        let mut expect_blocks: HashMap<(u8, u64), u32> = HashMap::new();
        let mut expect_levels = LevelCounts::default();
        for (rseq, node) in &self.ranges {
            let b = (node.start, node.end);
            if self.range_by_bounds.get(&b) != Some(rseq) {
                return Err(format!("range {b:?} not indexed by bounds"));
            }
            if node.missing != self.count_missing(node.start, node.end) {
                return Err(format!("range {b:?} missing {} is wrong", node.missing));
            }
            live(&node.waiters, &|s| self.waiting.get(&s).is_some_and(|d| d.ranges.contains(&b)))
                .map_err(|e| format!("range {b:?}: {e}"))?;
            if range_refs.get(&b) != Some(&node.waiters.live) {
                return Err(format!("range {b:?}: waiters disagree"));
            }
            decompose(node.start, node.end, |level, block| {
                *expect_blocks.entry((level, block)).or_default() += 1;
                expect_levels.0[level as usize] += 1;
            });
        }
        if expect_blocks.len() != self.blocks.len() || expect_levels != self.level_live {
            return Err("block index disagrees with the range nodes".into());
        }
        for (key, list) in &self.blocks {
            let covers = |s: u64| {
                self.ranges.get(&s).is_some_and(|n| {
                    let mut hit = false;
                    decompose(n.start, n.end, |l, b| hit |= (l, b) == *key);
                    hit
                })
            };
            live(list, &covers).map_err(|e| format!("block {key:?}: {e}"))?;
            if expect_blocks.get(key) != Some(&list.live) {
                return Err(format!("block {key:?}: live count wrong"));
            }
        }
        let mask = (0..LEVELS).filter(|&l| self.level_live.0[l] > 0).fold(0u128, |m, l| m | 1 << l);
        if mask != self.levels {
            return Err("level mask wrong".into());
        }
        Ok(())
    }
}

/// Builds a graph of `n` tasks of `shape` in a fresh tracker, then runs it to the end (every
/// ready task completes with `Satisfy`, in order), and returns the time taken. Panics if a task
/// is left waiting. For the benchmark table.
pub fn synthetic_run(shape: Shape, n: usize) -> Duration {
    let t0 = Instant::now();
    let mut t = DepTracker::new();
    let none = DependsOn::default();
    let mut ready = std::collections::VecDeque::new();
    let mut add = |t: &mut DepTracker, id: String, deps: &DependsOn| {
        if t.add_task("job", &id, deps) == Readiness::Ready {
            ready.push_back(id);
        }
    };
    let leaves = n.saturating_sub(1);
    match shape {
        Shape::Chain => {
            for i in 0..n {
                let deps = if i == 0 { none.clone() } else { DependsOn { task_ids: vec![(i - 1).to_string()], ranges: vec![] } };
                add(&mut t, i.to_string(), &deps);
            }
        }
        Shape::FanIn | Shape::RangeFanIn => {
            let deps = if shape == Shape::FanIn {
                DependsOn { task_ids: (1..=leaves).map(|i| i.to_string()).collect(), ranges: vec![] }
            } else {
                DependsOn { task_ids: vec![], ranges: vec![(1, leaves as i64)] }
            };
            if n > 0 {
                add(&mut t, "sink".into(), &deps);
            }
            for i in 1..=leaves {
                add(&mut t, i.to_string(), &none);
            }
        }
        Shape::FanOut => {
            if n > 0 {
                add(&mut t, "root".into(), &none);
            }
            let deps = DependsOn { task_ids: vec!["root".into()], ranges: vec![] };
            for i in 1..=leaves {
                add(&mut t, i.to_string(), &deps);
            }
        }
    }
    let mut done = 0;
    while let Some(id) = ready.pop_front() {
        done += 1;
        ready.extend(t.completed("job", &id, DepOutcome::Satisfy));
    }
    assert_eq!(done, n, "{shape:?}: every task runs");
    t0.elapsed()
}

#[cfg(test)]
mod tests;
