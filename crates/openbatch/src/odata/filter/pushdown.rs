//! The part of a filter the store can answer from its indexed columns (`id`, `state`,
//! `result`), as data the store translates to SQL.

use super::eval::{fold_cmp, fold_starts_with};
use super::{CmpOp, Filter, Literal};
use std::cmp::Ordering;

/// One end of an id range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdBound {
    /// The bound's value.
    pub value: String,
    /// Whether the bound itself is in the range (`ge`/`le`) or not (`gt`/`lt`).
    pub inclusive: bool,
}

/// Conditions on the id that all hold (a conjunction); `None` fields constrain nothing.
///
/// Every comparison is case-insensitive as [`fold_cmp`](super::fold_cmp) (ASCII folding),
/// i.e. SQLite `COLLATE NOCASE`. Batch ids are case-insensitive ("you may not have two IDs
/// within an account that differ only by case") and filter values are case-insensitive per
/// the Batch docs ("property values are case insensitive"), so `startswith(id, 'x')` is
/// case-insensitive as well; the docs do not single it out.
///
/// SQL the store must mirror (column declared or compared `COLLATE NOCASE`):
/// * `eq` → `id = ?`
/// * `prefix` → `id LIKE ? ESCAPE '\'` with the pattern from [`IdCond::like_pattern`]
///   (SQLite's `LIKE` folds ASCII case, like `NOCASE`), or
///   `substr(id, 1, length(?1)) = ?1 COLLATE NOCASE`
/// * `lower` → `id > ?` / `id >= ?`; `upper` → `id < ?` / `id <= ?`
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdCond {
    /// `id eq 'x'`.
    pub eq: Option<String>,
    /// `startswith(id, 'x')`.
    pub prefix: Option<String>,
    /// `id gt 'x'` / `id ge 'x'` (the tightest one).
    pub lower: Option<IdBound>,
    /// `id lt 'x'` / `id le 'x'` (the tightest one).
    pub upper: Option<IdBound>,
}

impl IdCond {
    /// Whether `id` meets every condition.
    pub fn admits(&self, id: &str) -> bool {
        self.eq.as_deref().is_none_or(|e| fold_cmp(id, e) == Ordering::Equal)
            && self.prefix.as_deref().is_none_or(|p| fold_starts_with(id, p))
            && self.lower.as_ref().is_none_or(|b| match fold_cmp(id, &b.value) {
                Ordering::Greater => true,
                Ordering::Equal => b.inclusive,
                Ordering::Less => false,
            })
            && self.upper.as_ref().is_none_or(|b| match fold_cmp(id, &b.value) {
                Ordering::Less => true,
                Ordering::Equal => b.inclusive,
                Ordering::Greater => false,
            })
    }

    /// The `LIKE … ESCAPE '\'` pattern for `prefix`: `%`, `_` and `\` escaped, `%` appended.
    pub fn like_pattern(prefix: &str) -> String {
        let mut p = String::with_capacity(prefix.len() + 1);
        for c in prefix.chars() {
            if matches!(c, '%' | '_' | '\\') {
                p.push('\\');
            }
            p.push(c);
        }
        p.push('%');
        p
    }

    fn is_empty(&self) -> bool {
        self.eq.is_none() && self.prefix.is_none() && self.lower.is_none() && self.upper.is_none()
    }
}

/// A range of creation times, in .NET ticks (100 ns since 0001-01-01), both ends inclusive:
/// lower ends round down and upper ends round up to whole ticks, so the range holds every
/// time the filter's comparisons admit (and perhaps a tick more at either end).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub lower: Option<i64>,
    pub upper: Option<i64>,
}

impl TimeRange {
    /// Whether a creation time (ticks) lies in the range; a missing time does not.
    pub fn admits(&self, ticks: Option<i64>) -> bool {
        match ticks {
            None => false,
            Some(t) => self.lower.is_none_or(|l| t >= l) && self.upper.is_none_or(|u| t <= u),
        }
    }
}

fn ticks_floor(t: &chrono::DateTime<chrono::Utc>) -> i64 {
    crate::model::time::to_ticks(t)
}

fn ticks_ceil(t: &chrono::DateTime<chrono::Utc>) -> i64 {
    let floor = crate::model::time::to_ticks(t);
    if t.timestamp_subsec_nanos().is_multiple_of(100) {
        floor
    } else {
        floor + 1
    }
}

/// What the store may apply in SQL before the full filter runs in memory.
///
/// Sound by construction: every item the filter accepts passes these conditions, so the store
/// may drop the items that fail them; it may keep more (the full filter is always evaluated
/// afterwards with [`eval`](super::eval)). Only top-level `and` terms are used:
/// `id eq`/`gt`/`ge`/`lt`/`le` and `startswith(id, …)` → [`ids`](Self::ids);
/// `state eq 'a'` or a disjunction of them (`state eq 'a' or state eq 'b'`) →
/// [`states`](Self::states); `executionInfo/result eq 'x'` (or a disjunction) →
/// [`results`](Self::results). Anything else, and anything under `not`, is left to memory.
///
/// `None` constrains nothing; `Some(vec![])` admits nothing (contradictory terms). The
/// [`admits`](Self::admits) method is the reference the SQL must mirror.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pushdown {
    /// Conditions on the `id` column.
    pub ids: Option<IdCond>,
    /// The state must be one of these (ASCII-lower-cased; compare with `COLLATE NOCASE`:
    /// wire states are camelCase, e.g. `waitingForStartTask`): `state IN (…)`.
    pub states: Option<Vec<String>>,
    /// `executionInfo/result` must be one of these (lower-cased; `COLLATE NOCASE`); a task
    /// without a result fails it: `result IN (…)` (SQL's `NULL IN (…)` is not true).
    pub results: Option<Vec<String>>,
    /// `creationTime` comparisons with `datetime'…'` literals: `created BETWEEN ? AND ?` on
    /// the creation-time column (only for resources that have one; see [`TimeRange`]).
    pub created: Option<TimeRange>,
}

impl Pushdown {
    /// Whether an item with this id, state and result passes the pushed-down conditions: the
    /// in-memory reference of the store's SQL. A missing state/result (`None`) fails a
    /// `states`/`results` condition.
    pub fn admits(&self, id: &str, state: Option<&str>, result: Option<&str>) -> bool {
        fn one_of(set: &Option<Vec<String>>, v: Option<&str>) -> bool {
            match set {
                None => true,
                Some(set) => v.is_some_and(|v| set.iter().any(|s| fold_cmp(s, v) == Ordering::Equal)),
            }
        }
        self.ids.as_ref().is_none_or(|c| c.admits(id)) && one_of(&self.states, state) && one_of(&self.results, result)
    }

    /// Whether nothing is pushed down (the store must scan everything).
    pub fn is_empty(&self) -> bool {
        self.ids.is_none() && self.states.is_none() && self.results.is_none() && self.created.is_none()
    }
}

/// The top-level `and` terms of `f`, left to right.
fn conjuncts<'f>(f: &'f Filter, out: &mut Vec<&'f Filter>) {
    match f {
        Filter::And(l, r) => {
            conjuncts(l, out);
            conjuncts(r, out);
        }
        other => out.push(other),
    }
}

/// `Some(values)` when `f` is `p eq 'v'` or an `or` of only such terms on the path `p`.
fn eq_disjunction(f: &Filter, path: &[&str]) -> Option<Vec<String>> {
    match f {
        Filter::Compare { path: p, op: CmpOp::Eq, value: Literal::Str(v) }
            if p.len() == path.len() && p.iter().zip(path).all(|(a, b)| a == b) =>
        {
            Some(vec![v.to_ascii_lowercase()])
        }
        Filter::Or(l, r) => {
            let mut v = eq_disjunction(l, path)?;
            v.extend(eq_disjunction(r, path)?);
            Some(v)
        }
        _ => None,
    }
}

/// Intersects `acc` (None = everything) with `new`, deduplicated.
fn intersect(acc: &mut Option<Vec<String>>, mut new: Vec<String>) {
    new.sort();
    new.dedup();
    *acc = Some(match acc.take() {
        None => new,
        Some(old) => old.into_iter().filter(|s| new.contains(s)).collect(),
    });
}

fn tighter(old: Option<IdBound>, new: IdBound, lower: bool) -> IdBound {
    let Some(old) = old else { return new };
    match fold_cmp(&new.value, &old.value) {
        Ordering::Equal => IdBound { value: old.value, inclusive: old.inclusive && new.inclusive },
        Ordering::Greater if lower => new,
        Ordering::Less if !lower => new,
        _ => old,
    }
}

/// The conditions of `filter` the store can apply in SQL: see [`Pushdown`].
pub fn pushdown(filter: &Filter) -> Pushdown {
    let mut terms = Vec::new();
    conjuncts(filter, &mut terms);
    let mut p = Pushdown::default();
    let mut ids = IdCond::default();
    for t in terms {
        match t {
            Filter::Compare { path, op, value: Literal::Str(v) } if path.len() == 1 && path[0] == "id" => match op {
                CmpOp::Eq => {
                    ids.eq.get_or_insert_with(|| v.clone());
                }
                CmpOp::Ne => {}
                CmpOp::Gt | CmpOp::Ge => {
                    let b = IdBound { value: v.clone(), inclusive: *op == CmpOp::Ge };
                    ids.lower = Some(tighter(ids.lower.take(), b, true));
                }
                CmpOp::Lt | CmpOp::Le => {
                    let b = IdBound { value: v.clone(), inclusive: *op == CmpOp::Le };
                    ids.upper = Some(tighter(ids.upper.take(), b, false));
                }
            },
            Filter::StartsWith { path, prefix } if path.len() == 1 && path[0] == "id" => {
                // Of two prefixes keep the longer when it extends the shorter; otherwise either
                // one alone is still implied by the filter.
                match &ids.prefix {
                    Some(old) if fold_starts_with(prefix, old) => ids.prefix = Some(prefix.clone()),
                    Some(_) => {}
                    None => ids.prefix = Some(prefix.clone()),
                }
            }
            Filter::Compare { path, op, value: Literal::DateTime(t) } if path.len() == 1 && path[0] == "creationTime" => {
                let range = p.created.get_or_insert_with(TimeRange::default);
                let raise = |lower: &mut Option<i64>, v: i64| *lower = Some(lower.map_or(v, |l| l.max(v)));
                let cut = |upper: &mut Option<i64>, v: i64| *upper = Some(upper.map_or(v, |u| u.min(v)));
                match op {
                    CmpOp::Gt | CmpOp::Ge => raise(&mut range.lower, ticks_floor(t)),
                    CmpOp::Lt | CmpOp::Le => cut(&mut range.upper, ticks_ceil(t)),
                    CmpOp::Eq => {
                        raise(&mut range.lower, ticks_floor(t));
                        cut(&mut range.upper, ticks_ceil(t));
                    }
                    CmpOp::Ne => {}
                }
            }
            other => {
                if let Some(v) = eq_disjunction(other, &["state"]) {
                    intersect(&mut p.states, v);
                } else if let Some(v) = eq_disjunction(other, &["executionInfo", "result"]) {
                    intersect(&mut p.results, v);
                }
            }
        }
    }
    if !ids.is_empty() {
        p.ids = Some(ids);
    }
    p
}
