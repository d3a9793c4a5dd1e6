use super::*;
use std::collections::BTreeMap;

/// A tracker that checks its invariants after every operation.
struct T(DepTracker);

impl T {
    fn new() -> Self {
        T(DepTracker::new())
    }
    fn check(&self) {
        self.0.sanity_check().unwrap();
    }
    fn add(&mut self, job: &str, task: &str, ids: &[&str], ranges: &[(i64, i64)]) -> Readiness {
        let deps = DependsOn { task_ids: ids.iter().map(|s| s.to_string()).collect(), ranges: ranges.to_vec() };
        let r = self.0.add_task(job, task, &deps);
        self.check();
        r
    }
    fn done(&mut self, job: &str, task: &str, outcome: DepOutcome) -> Vec<String> {
        let r = self.0.completed(job, task, outcome);
        self.check();
        r
    }
    fn ok(&mut self, task: &str) -> Vec<String> {
        self.done("j", task, DepOutcome::Satisfy)
    }
    fn fail(&mut self, task: &str) -> Vec<String> {
        self.done("j", task, DepOutcome::Block)
    }
    fn react(&mut self, task: &str) {
        self.0.reactivated("j", task);
        self.check();
    }
    fn del(&mut self, task: &str) {
        self.0.removed("j", task);
        self.check();
    }
    fn on(&self, task: &str) -> usize {
        self.0.waiting_on("j", task)
    }
}

use DepOutcome::{Block, Satisfy};
use Readiness::{Ready, Waiting};

#[test]
fn canonical_integers_only() {
    for (id, want) in [("0", Some(0)), ("7", Some(7)), ("42", Some(42)), ("-7", Some(-7)), ("9223372036854775807", Some(i64::MAX))] {
        assert_eq!(canonical_int(id), want, "{id}");
    }
    for id in ["", "-", "007", "00", "-0", "+7", " 7", "7 ", "7a", "seven", "0x7", "1e3", "9223372036854775808", "-07"] {
        assert_eq!(canonical_int(id), None, "{id}");
    }
}

#[test]
fn no_dependencies_is_ready_and_stores_nothing() {
    let mut t = T::new();
    assert_eq!(t.add("j", "a", &[], &[]), Ready);
    assert_eq!(t.add("j", "b", &[], &[(5, 1)]), Ready, "an empty range is no dependency");
    assert!(t.0.jobs.is_empty());
}

#[test]
fn ids_added_later_are_waited_for() {
    let mut t = T::new();
    assert_eq!(t.add("j", "d", &["a", "b"], &[]), Waiting);
    assert_eq!(t.on("d"), 2);
    assert_eq!(t.add("j", "a", &[], &[]), Ready);
    assert!(t.ok("a").is_empty());
    assert_eq!(t.on("d"), 1);
    // "b" was never added when it completes (a replay may do that): it counts all the same.
    assert_eq!(t.ok("b"), vec!["d"]);
    assert_eq!(t.on("d"), 0);
    assert!(t.ok("b").is_empty(), "a second completion releases nothing");
}

#[test]
fn completed_before_added_is_ready() {
    let mut t = T::new();
    t.ok("a");
    t.ok("3");
    assert_eq!(t.add("j", "d", &["a"], &[(3, 3)]), Ready);
    assert_eq!(t.add("j", "e", &["a"], &[(3, 4)]), Waiting);
    assert_eq!(t.on("e"), 1);
}

#[test]
fn ranges_take_canonical_integer_ids_only() {
    let mut t = T::new();
    assert_eq!(t.add("j", "d", &[], &[(1, 3)]), Waiting);
    for id in ["01", "002", "x", "3a", "+3", "-0", "4", "0"] {
        assert!(t.ok(id).is_empty(), "{id} is not in 1..3");
    }
    assert_eq!(t.on("d"), 1);
    assert!(t.ok("1").is_empty());
    assert!(t.ok("2").is_empty());
    assert_eq!(t.ok("3"), vec!["d"]);
    // Explicit ids are plain strings: "007" and "7" are different tasks.
    assert_eq!(t.add("j", "e", &["007"], &[]), Waiting);
    assert!(t.ok("7").is_empty());
    assert_eq!(t.ok("007"), vec!["e"]);
}

#[test]
fn every_id_of_a_range_counts_even_missing_ones() {
    let mut t = T::new();
    assert_eq!(t.add("j", "d", &[], &[(1, 5)]), Waiting);
    for id in ["1", "2", "4", "5"] {
        assert!(t.ok(id).is_empty());
    }
    assert_eq!(t.on("d"), 1, "task 3 was never added: d waits for it");
    assert_eq!(t.ok("3"), vec!["d"]);
}

#[test]
fn negative_and_extreme_ranges() {
    let mut t = T::new();
    assert_eq!(t.add("j", "d", &[], &[(-3, -1)]), Waiting);
    assert!(t.ok("-3").is_empty());
    assert!(t.ok("-2").is_empty());
    assert_eq!(t.ok("-1"), vec!["d"]);
    assert_eq!(t.add("j", "all", &[], &[(i64::MIN, i64::MAX)]), Waiting);
    assert_eq!(t.add("j", "top", &[], &[(i64::MAX - 1, i64::MAX)]), Waiting);
    t.ok(&i64::MAX.to_string());
    t.ok(&(i64::MAX - 1).to_string());
    assert_eq!(t.on("top"), 0);
    t.ok(&i64::MIN.to_string());
    t.ok("0");
    assert_eq!(t.on("all"), 1);
}

#[test]
fn a_huge_range_costs_no_memory_per_id() {
    let mut t = T::new();
    let before = ops();
    assert_eq!(t.add("j", "d", &[], &[(1, 1_000_000)]), Waiting);
    assert!(t.ok("500000").is_empty());
    let j = &t.0.jobs["j"];
    assert!(j.blocks.len() <= 2 * 64, "{} blocks", j.blocks.len());
    assert_eq!(j.ranges.values().next().unwrap().missing, 999_999);
    assert!(ops() - before < 300, "{} ops", ops() - before);
}

#[test]
fn block_keeps_dependents_waiting_until_a_satisfying_retry() {
    let mut t = T::new();
    assert_eq!(t.add("j", "d", &["a"], &[(1, 2)]), Waiting);
    assert!(t.fail("a").is_empty());
    assert!(t.ok("1").is_empty());
    assert!(t.fail("2").is_empty());
    assert_eq!(t.on("d"), 2);
    assert_eq!(t.add("j", "late", &["a"], &[]), Waiting, "a blocked task blocks later dependents too");
    t.react("a");
    assert_eq!(t.ok("a"), vec!["late"]);
    t.react("2");
    assert_eq!(t.ok("2"), vec!["d"]);
}

#[test]
fn block_after_satisfy_withdraws() {
    let mut t = T::new();
    assert_eq!(t.add("j", "d", &["a", "b"], &[(1, 1)]), Waiting);
    t.ok("a");
    t.ok("1");
    assert_eq!(t.on("d"), 1);
    t.fail("a");
    t.fail("1");
    assert_eq!(t.on("d"), 3);
}

#[test]
fn reactivation_withdraws_but_does_not_recall() {
    let mut t = T::new();
    assert_eq!(t.add("j", "d", &["a", "b"], &[]), Waiting);
    assert_eq!(t.add("j", "e", &["a"], &[]), Waiting);
    assert_eq!(t.add("j", "r", &[], &[(1, 2)]), Waiting);
    assert_eq!(t.ok("a"), vec!["e"]);
    t.ok("1");
    t.react("a");
    t.react("1");
    assert_eq!(t.on("d"), 2, "a's outcome is withdrawn");
    assert_eq!(t.on("e"), 0, "e was released and stays released");
    assert_eq!(t.on("r"), 1);
    t.ok("2");
    assert_eq!(t.on("r"), 1, "1 must complete again");
    assert!(t.ok("b").is_empty());
    assert_eq!(t.ok("a"), vec!["d"], "e is not released twice");
    assert_eq!(t.ok("1"), vec!["r"]);
    // A reactivated task that was itself a dependent does not wait again.
    t.ok("d");
    t.react("d");
    assert_eq!(t.on("d"), 0);
}

#[test]
fn deletion_withdraws_and_a_readded_task_counts() {
    let mut t = T::new();
    assert_eq!(t.add("j", "d", &["a", "b"], &[(1, 2)]), Waiting);
    t.ok("a");
    t.ok("1");
    assert_eq!(t.on("d"), 2);
    t.del("a");
    t.del("1");
    t.del("never-added");
    assert_eq!(t.on("d"), 3, "a, b and the range");
    assert_eq!(t.add("j", "late", &["a"], &[]), Waiting, "a deleted task never satisfies");
    assert_eq!(t.add("j", "a", &[], &[]), Ready);
    t.ok("b");
    t.ok("2");
    t.ok("1");
    assert_eq!(t.ok("a"), vec!["d", "late"], "in the order they were added");
    // A deleted waiting task is forgotten.
    assert_eq!(t.add("j", "x", &["y"], &[(7, 8)]), Waiting);
    t.del("x");
    assert!(t.ok("y").is_empty());
    t.ok("7");
    assert!(t.ok("8").is_empty());
    assert!(t.0.jobs["j"].ranges.is_empty() && t.0.jobs["j"].id_waits.is_empty());
}

#[test]
fn release_order_is_add_order() {
    let mut t = T::new();
    for d in ["d3", "d1", "d2", "d0"] {
        assert_eq!(t.add("j", d, &["x"], &[(1, 1)]), Waiting);
    }
    t.ok("1");
    assert_eq!(t.ok("x"), vec!["d3", "d1", "d2", "d0"]);
    assert_eq!(t.0.waiting_tasks("j"), Vec::<String>::new());
}

#[test]
fn duplicate_ids_and_ranges_count_once() {
    let mut t = T::new();
    assert_eq!(t.add("j", "d", &["a", "a", "1"], &[(1, 2), (1, 2), (3, 2)]), Waiting);
    assert_eq!(t.on("d"), 3);
    t.ok("a");
    assert_eq!(t.on("d"), 2);
    t.ok("1");
    assert_eq!(t.on("d"), 1, "the explicit \"1\" is met; the range still waits for 2");
    assert_eq!(t.ok("2"), vec!["d"]);
}

#[test]
fn adding_again_replaces_dependencies() {
    let mut t = T::new();
    assert_eq!(t.add("j", "d", &["a"], &[(1, 3)]), Waiting);
    assert_eq!(t.add("j", "d", &["b"], &[]), Waiting);
    assert_eq!(t.on("d"), 1);
    assert!(t.ok("a").is_empty());
    assert_eq!(t.ok("b"), vec!["d"]);
    assert!(t.0.jobs["j"].ranges.is_empty());
}

#[test]
fn self_dependency_waits_without_looping() {
    let mut t = T::new();
    assert_eq!(t.add("j", "a", &["a"], &[]), Waiting);
    assert_eq!(t.add("j", "5", &[], &[(1, 10)]), Waiting);
    assert!(t.ok("a").is_empty(), "a completing (say, terminated) stops its own wait");
    assert_eq!(t.on("a"), 0);
    for i in 1..=10 {
        if i != 5 {
            t.ok(&i.to_string());
        }
    }
    assert_eq!(t.on("5"), 1);
    assert!(t.fail("5").is_empty());
    assert_eq!(t.on("5"), 0);
}

#[test]
fn terminated_waiting_task_is_not_released_later() {
    let mut t = T::new();
    assert_eq!(t.add("j", "d", &["a"], &[]), Waiting);
    t.fail("d");
    assert!(t.ok("a").is_empty());
    assert_eq!(t.add("j", "d", &["zzz"], &[]), Ready, "a completed task never waits");
}

#[test]
fn jobs_are_separate_and_removable() {
    let mut t = T::new();
    assert_eq!(t.add("j1", "d", &["a"], &[(1, 2)]), Waiting);
    assert_eq!(t.add("j2", "d", &["a"], &[]), Waiting);
    t.done("j1", "a", Satisfy);
    assert_eq!(t.0.waiting_on("j2", "d"), 1);
    t.0.remove_job("j1");
    t.check();
    assert_eq!(t.0.waiting_on("j1", "d"), 0);
    assert!(t.done("j1", "1", Satisfy).is_empty());
    assert_eq!(t.done("j2", "a", Satisfy), vec!["d"]);
    t.0.remove_job("j2");
    t.0.remove_job("j1");
    assert!(t.0.jobs.is_empty());
    t.done("j1", "x", Block);
    t.0.reactivated("j1", "x");
    assert!(t.0.jobs.is_empty(), "an empty job's entry goes away");
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn shuffle<X>(&mut self, v: &mut [X]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

enum Op {
    Add(String, DependsOn),
    Done(String, DepOutcome),
}

/// Replays `ops`; returns (waiting count per task, tasks reported ready and not completed).
fn replay(ops: &[&Op]) -> (BTreeMap<String, usize>, Vec<String>) {
    let mut t = DepTracker::new();
    let mut reported: Vec<String> = Vec::new();
    let mut tasks = Vec::new();
    let mut completed = HashSet::new();
    for op in ops {
        match op {
            Op::Add(id, deps) => {
                tasks.push(id.clone());
                if t.add_task("j", id, deps) == Ready {
                    reported.push(id.clone());
                }
            }
            Op::Done(id, outcome) => {
                completed.insert(id.clone());
                reported.extend(t.completed("j", id, *outcome));
            }
        }
        t.sanity_check().unwrap();
    }
    let waiting = tasks.iter().map(|id| (id.clone(), t.waiting_on("j", id))).collect();
    let mut ready: Vec<String> = reported.into_iter().filter(|id| !completed.contains(id)).collect();
    ready.sort();
    let dups = ready.windows(2).filter(|w| w[0] == w[1]).count();
    assert_eq!(dups, 0, "a task is reported ready once");
    for id in &ready {
        assert_eq!(t.waiting_on("j", id), 0);
    }
    (waiting, ready)
}

#[test]
fn replay_in_any_order_gives_the_same_answer() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..20 {
        // 40 tasks with ids "0".."29" and a few odd ones; random ids and ranges.
        let mut ids: Vec<String> = (0..30).map(|i| i.to_string()).collect();
        ids.extend(["007", "x", "y", "-2", "3a"].map(String::from));
        let mut ops = Vec::new();
        for id in &ids {
            let n_ids = rng.below(3);
            let mut task_ids: Vec<String> = (0..n_ids).map(|_| ids[rng.below(ids.len())].clone()).collect();
            if rng.below(8) == 0 {
                task_ids.push("ghost".into());
            }
            let ranges = (0..rng.below(3))
                .map(|_| {
                    let s = rng.below(34) as i64 - 3;
                    (s, s + rng.below(6) as i64 - 1)
                })
                .collect();
            ops.push(Op::Add(id.clone(), DependsOn { task_ids, ranges }));
            if rng.below(3) != 0 {
                ops.push(Op::Done(id.clone(), if rng.below(4) == 0 { Block } else { Satisfy }));
            }
        }
        let mut order: Vec<&Op> = ops.iter().collect();
        let first = replay(&order);
        for _ in 0..10 {
            rng.shuffle(&mut order);
            assert_eq!(replay(&order), first, "round {round}");
        }
    }
}

/// Ops per task of one synthetic run.
fn ops_per_task(shape: Shape, n: usize) -> f64 {
    let before = ops();
    synthetic_run(shape, n);
    (ops() - before) as f64 / n as f64
}

#[test]
fn ten_thousand_task_shapes_resolve_in_linear_work() {
    for shape in [Shape::Chain, Shape::FanIn, Shape::FanOut, Shape::RangeFanIn] {
        let small = ops_per_task(shape, 10_000);
        let large = ops_per_task(shape, 40_000);
        assert!(small < 80.0, "{shape:?}: {small} ops per task");
        assert!(large < small * 1.25 + 1.0, "{shape:?}: {small} ops per task at 10k, {large} at 40k");
    }
    assert!(synthetic_run(Shape::Chain, 0) < Duration::from_secs(60));
    synthetic_run(Shape::RangeFanIn, 1);
}

/// Builds `n` leaves and `n` dependents on the range 1..n, completes the leaves in a scrambled
/// order, checking the invariants every `n / 5` steps; returns ops per task.
fn shared_range_fan_out(n: usize) -> f64 {
    let mut t = DepTracker::new();
    let before = ops();
    let range = DependsOn { task_ids: vec![], ranges: vec![(1, n as i64)] };
    for i in 0..n {
        assert_eq!(t.add_task("j", &format!("d{i}"), &range), Waiting);
        assert_eq!(t.add_task("j", &(i + 1).to_string(), &DependsOn::default()), Ready);
    }
    let mut order: Vec<usize> = (1..=n).collect();
    Rng(7).shuffle(&mut order);
    let mut released = Vec::new();
    for (step, i) in order.into_iter().enumerate() {
        released.extend(t.completed("j", &i.to_string(), Satisfy));
        if step % (n / 5) == 0 {
            t.sanity_check().unwrap();
        }
    }
    t.sanity_check().unwrap();
    assert_eq!(released, (0..n).map(|i| format!("d{i}")).collect::<Vec<_>>());
    assert!(t.jobs["j"].ranges.is_empty() && t.jobs["j"].blocks.is_empty());
    (ops() - before) as f64 / n as f64
}

#[test]
fn ten_thousand_dependents_on_one_range_share_it() {
    let small = shared_range_fan_out(10_000);
    let large = shared_range_fan_out(40_000);
    assert!(small < 80.0, "{small} ops per task");
    assert!(large < small * 1.25 + 1.0, "{small} ops per task at 10k, {large} at 40k");
}

/// A chain built in reverse (each dependent added before its dependency), checked as it goes.
#[test]
fn chain_added_backwards_with_checks() {
    let n = 10_000;
    let mut t = DepTracker::new();
    for i in (1..n).rev() {
        let deps = DependsOn { task_ids: vec![(i - 1).to_string()], ranges: vec![(i as i64 - 1, i as i64 - 1)] };
        assert_eq!(t.add_task("j", &i.to_string(), &deps), Waiting);
    }
    t.sanity_check().unwrap();
    let mut next = vec!["0".to_string()];
    let mut done = 0;
    while let Some(id) = next.pop() {
        done += 1;
        next.extend(t.completed("j", &id, Satisfy));
        if done % 2_000 == 0 {
            t.sanity_check().unwrap();
        }
    }
    assert_eq!(done, n);
    t.sanity_check().unwrap();
    let j = &t.jobs["j"];
    assert!(j.waiting.is_empty() && j.id_waits.is_empty() && j.ranges.is_empty() && j.blocks.is_empty());
    assert_eq!(j.sat_int.len(), n);
}
