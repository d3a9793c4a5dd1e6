//! Which properties each Batch list operation lets a `$filter` use, with which operators and
//! literal types; and [`check`], which refuses anything else.
//!
//! Source: "OData filters in Azure Batch" (learn.microsoft.com
//! `rest/api/batchservice/odata-filters-in-batch`; the `$filter` parameter of every list operation
//! of `BatchService.json` 2022-10-01.16.0 links to its section), one table per list, copied here
//! row by row as data. Rows marked `documented: false` are not in that page; they are accepted
//! by openbatch on purpose and say why.

use super::{CmpOp, Filter, FilterError, Literal};

/// A list operation that takes a `$filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// `GET /pools` (Pool_List), doc section "List pools".
    Pools,
    /// `GET /jobs` (Job_List), "List jobs".
    Jobs,
    /// `GET /jobschedules/{id}/jobs` (Job_ListFromJobSchedule), "List jobs in a job schedule".
    JobsOfSchedule,
    /// `GET /jobs/{id}/tasks` (Task_List), "List tasks".
    Tasks,
    /// `GET /pools/{id}/nodes` (ComputeNode_List), "List nodes in a pool".
    Nodes,
    /// `GET /jobschedules` (JobSchedule_List), "List job schedules".
    JobSchedules,
    /// `GET /certificates` (Certificate_List), "List certificates".
    Certificates,
    /// `GET …/tasks/{id}/files` and `GET …/nodes/{id}/files` (File_ListFromTask,
    /// File_ListFromComputeNode), "List task files" / "List compute node files".
    Files,
    /// `GET /nodecounts` (Account_ListPoolNodeCounts), "List pool node counts".
    PoolNodeCounts,
    /// `GET /poolusagemetrics` (Pool_ListUsageMetrics), "List account usage metrics".
    PoolUsageMetrics,
    /// `GET /jobs/{id}/jobpreparationandreleasetaskstatus`
    /// (Job_ListPreparationAndReleaseTaskStatus), "List job preparation and release status".
    PreparationReleaseStatus,
    /// `GET /supportedimages` (Account_ListSupportedImages), "List supported images".
    SupportedImages,
}

/// An operation a property allows: a comparison operator or `startswith`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PropOp {
    /// A comparison operator.
    Cmp(CmpOp),
    /// `startswith(prop, '…')`.
    StartsWith,
}

/// The type of a filterable property, which fixes the literal it is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PropType {
    /// `'text'` (enum values included).
    String,
    /// An integer.
    Int,
    /// `datetime'…'`.
    DateTime,
    /// `true` / `false`.
    Boolean,
}

impl PropType {
    fn describe(self) -> &'static str {
        match self {
            PropType::String => "a string, e.g. 'value'",
            PropType::Int => "an integer, e.g. 0",
            PropType::DateTime => "a date-time, e.g. datetime'2022-01-01T00:00:00Z'",
            PropType::Boolean => "true or false",
        }
    }

    fn accepts(self, v: &Literal) -> bool {
        matches!(
            (self, v),
            (PropType::String, Literal::Str(_))
                | (PropType::Int, Literal::Int(_))
                | (PropType::DateTime, Literal::DateTime(_))
                | (PropType::Boolean, Literal::Bool(_))
        )
    }
}

/// One row of a list's table: property path (`a/b`), operations allowed, type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prop {
    /// The property path as written in a filter (case-sensitive).
    pub path: &'static str,
    /// The operations allowed on it.
    pub ops: &'static [PropOp],
    /// Its type.
    pub ty: PropType,
    /// Whether the Batch page lists it (`false`: an openbatch addition, see the row's comment).
    pub documented: bool,
}

use CmpOp::*;
use PropOp::{Cmp, StartsWith as Sw};

const EQ: &[PropOp] = &[Cmp(Eq)];
const EQ_NE: &[PropOp] = &[Cmp(Eq), Cmp(Ne)];
const ALL: &[PropOp] = &[Cmp(Eq), Cmp(Ne), Cmp(Ge), Cmp(Gt), Cmp(Le), Cmp(Lt)];
const SW_ALL: &[PropOp] = &[Sw, Cmp(Eq), Cmp(Ne), Cmp(Ge), Cmp(Gt), Cmp(Le), Cmp(Lt)];
const SW: &[PropOp] = &[Sw];

const fn doc(path: &'static str, ops: &'static [PropOp], ty: PropType) -> Prop {
    Prop { path, ops, ty, documented: true }
}
const fn extra(path: &'static str, ops: &'static [PropOp], ty: PropType) -> Prop {
    Prop { path, ops, ty, documented: false }
}

use PropType::{Boolean as B, DateTime as D, Int as I, String as S};

/// "List supported images".
pub const SUPPORTED_IMAGES: &[Prop] = &[
    doc("osType", EQ_NE, S),
    doc("verificationType", EQ_NE, S),
    doc("nodeAgentSKUId", EQ_NE, S),
    // Not in the page: the image reference is what callers pick images by; openbatch serves
    // a short fixed image list, so these are cheap to honour.
    extra("imageReference/publisher", EQ_NE, S),
    extra("imageReference/offer", EQ_NE, S),
    extra("imageReference/sku", EQ_NE, S),
    extra("imageReference/version", EQ_NE, S),
];

/// "List certificates".
pub const CERTIFICATES: &[Prop] = &[doc("state", EQ_NE, S), doc("stateTransitionTime", ALL, D)];

/// "List nodes in a pool".
pub const NODES: &[Prop] = &[
    doc("state", EQ_NE, S),
    doc("stateTransitionTime", ALL, D),
    doc("lastBootTime", ALL, D),
    doc("allocationTime", ALL, D),
    doc("startTaskInfo/state", EQ, S),
    doc("startTaskInfo/result", EQ_NE, S),
    doc("startTaskInfo/exitCode", ALL, I),
    doc("startTaskInfo/startTime", ALL, D),
    doc("startTaskInfo/endTime", ALL, D),
];

/// "List pool node counts".
pub const POOL_NODE_COUNTS: &[Prop] = &[doc("poolId", EQ, S)];

/// "List task files" and "List compute node files" (the same table).
pub const FILES: &[Prop] = &[doc("name", SW, S)];

/// "List jobs in a job schedule".
pub const JOBS_OF_SCHEDULE: &[Prop] = &[
    doc("state", EQ_NE, S),
    doc("stateTransitionTime", ALL, D),
    doc("creationTime", ALL, D),
    doc("lastModified", ALL, D),
    doc("executionInfo/startTime", ALL, D),
    doc("executionInfo/endTime", ALL, D),
    doc("executionInfo/poolId", SW_ALL, S),
];

/// "List job schedules".
pub const JOB_SCHEDULES: &[Prop] = &[
    doc("id", SW_ALL, S),
    doc("state", EQ_NE, S),
    doc("stateTransitionTime", ALL, D),
    doc("creationTime", ALL, D),
    doc("lastModified", ALL, D),
    doc("executionInfo/endTime", ALL, D),
    doc("schedule/doNotRunUntil", ALL, D),
    doc("schedule/doNotRunAfter", ALL, D),
];

/// "List jobs".
pub const JOBS: &[Prop] = &[
    doc("id", SW_ALL, S),
    doc("state", EQ_NE, S),
    doc("stateTransitionTime", ALL, D),
    doc("creationTime", ALL, D),
    doc("lastModified", ALL, D),
    doc("executionInfo/startTime", ALL, D),
    doc("executionInfo/endTime", ALL, D),
    doc("executionInfo/poolId", SW_ALL, S),
];

/// "List pools".
pub const POOLS: &[Prop] = &[
    doc("id", SW_ALL, S),
    doc("state", EQ_NE, S),
    doc("stateTransitionTime", ALL, D),
    doc("allocationState", EQ, S),
    doc("allocationStateTransitionTime", ALL, D),
    doc("creationTime", ALL, D),
    doc("enableAutoScale", EQ_NE, B),
    doc("lastModified", ALL, D),
    doc("vmSize", EQ_NE, S),
    doc("enableInterNodeCommunication", EQ_NE, B),
];

/// "List job preparation and release status".
pub const PREPARATION_RELEASE_STATUS: &[Prop] = &[
    doc("poolId", EQ_NE, S),
    doc("nodeId", EQ_NE, S),
    doc("jobPreparationTaskExecutionInfo/state", EQ_NE, S),
    doc("jobPreparationTaskExecutionInfo/startTime", ALL, D),
    doc("jobPreparationTaskExecutionInfo/endTime", ALL, D),
    doc("jobPreparationTaskExecutionInfo/exitCode", ALL, I),
    doc("jobPreparationTaskExecutionInfo/result", EQ_NE, S),
    doc("jobReleaseTaskExecutionInfo/state", EQ_NE, S),
    doc("jobReleaseTaskExecutionInfo/startTime", ALL, D),
    doc("jobReleaseTaskExecutionInfo/endTime", ALL, D),
    doc("jobReleaseTaskExecutionInfo/exitCode", ALL, I),
    doc("jobReleaseTaskExecutionInfo/result", EQ_NE, S),
];

/// "List tasks".
pub const TASKS: &[Prop] = &[
    doc("id", SW_ALL, S),
    doc("state", EQ_NE, S),
    doc("stateTransitionTime", ALL, D),
    doc("creationTime", ALL, D),
    // The page spells it `lastModifiedTime`; the task's property is `lastModified`. Both are
    // accepted and evaluate against `lastModified` (see `eval`).
    doc("lastModifiedTime", ALL, D),
    extra("lastModified", ALL, D),
    doc("executionInfo/startTime", ALL, D),
    doc("executionInfo/endTime", ALL, D),
    doc("executionInfo/exitCode", ALL, I),
    doc("executionInfo/result", EQ_NE, S),
    // Not in the page: retry and requeue counts are what callers look for after failures and
    // preemptions; plain integers of `executionInfo`, cheap to honour.
    extra("executionInfo/retryCount", ALL, I),
    extra("executionInfo/requeueCount", ALL, I),
];

/// "List account usage metrics" (no `ne` in the page).
pub const POOL_USAGE_METRICS: &[Prop] = &[doc("poolId", &[Cmp(Eq), Cmp(Ge), Cmp(Gt), Cmp(Le), Cmp(Lt), Sw], S)];

impl ListKind {
    /// Every list kind.
    pub const ALL: [ListKind; 12] = [
        ListKind::Pools,
        ListKind::Jobs,
        ListKind::JobsOfSchedule,
        ListKind::Tasks,
        ListKind::Nodes,
        ListKind::JobSchedules,
        ListKind::Certificates,
        ListKind::Files,
        ListKind::PoolNodeCounts,
        ListKind::PoolUsageMetrics,
        ListKind::PreparationReleaseStatus,
        ListKind::SupportedImages,
    ];

    /// The properties this list's `$filter` may use.
    pub fn properties(self) -> &'static [Prop] {
        match self {
            ListKind::Pools => POOLS,
            ListKind::Jobs => JOBS,
            ListKind::JobsOfSchedule => JOBS_OF_SCHEDULE,
            ListKind::Tasks => TASKS,
            ListKind::Nodes => NODES,
            ListKind::JobSchedules => JOB_SCHEDULES,
            ListKind::Certificates => CERTIFICATES,
            ListKind::Files => FILES,
            ListKind::PoolNodeCounts => POOL_NODE_COUNTS,
            ListKind::PoolUsageMetrics => POOL_USAGE_METRICS,
            ListKind::PreparationReleaseStatus => PREPARATION_RELEASE_STATUS,
            ListKind::SupportedImages => SUPPORTED_IMAGES,
        }
    }

    /// What the list returns, for messages: "pools", "tasks", ….
    pub fn noun(self) -> &'static str {
        match self {
            ListKind::Pools => "pools",
            ListKind::Jobs => "jobs",
            ListKind::JobsOfSchedule => "the jobs of a job schedule",
            ListKind::Tasks => "tasks",
            ListKind::Nodes => "compute nodes",
            ListKind::JobSchedules => "job schedules",
            ListKind::Certificates => "certificates",
            ListKind::Files => "files",
            ListKind::PoolNodeCounts => "pool node counts",
            ListKind::PoolUsageMetrics => "pool usage metrics",
            ListKind::PreparationReleaseStatus => "job preparation and release task status",
            ListKind::SupportedImages => "supported images",
        }
    }

    /// The row for `path`, if this list allows it.
    pub fn property(self, path: &str) -> Option<&'static Prop> {
        self.properties().iter().find(|p| p.path == path)
    }
}

fn ops_text(ops: &[PropOp]) -> String {
    ops.iter()
        .map(|o| match o {
            PropOp::Cmp(c) => c.keyword(),
            PropOp::StartsWith => "startswith",
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn literal_kind(v: &Literal) -> &'static str {
    match v {
        Literal::Str(_) => "a string",
        Literal::Int(_) => "an integer",
        Literal::Bool(_) => "a boolean",
        Literal::DateTime(_) => "a date-time",
        Literal::Null => "null",
    }
}

/// Checks one condition against a list's table; `Err(message)` when refused.
fn check_leaf(path: &[String], op: PropOp, value: Option<&Literal>, kind: ListKind) -> Result<(), String> {
    let name = path.join("/");
    let Some(prop) = kind.property(&name) else {
        let allowed: Vec<&str> = kind.properties().iter().map(|p| p.path).collect();
        return Err(format!(
            "`{name}` cannot be used in a $filter when listing {}; the properties allowed are: {}",
            kind.noun(),
            allowed.join(", ")
        ));
    };
    if !prop.ops.contains(&op) {
        let op = match op {
            PropOp::Cmp(c) => c.keyword(),
            PropOp::StartsWith => "startswith",
        };
        return Err(format!("`{name}` does not allow `{op}`; it allows: {}", ops_text(prop.ops)));
    }
    match value {
        // `null` is type-less: allowed wherever eq/ne are (already checked above).
        Some(Literal::Null) if matches!(op, PropOp::Cmp(CmpOp::Eq | CmpOp::Ne)) => Ok(()),
        Some(v) if !prop.ty.accepts(v) => Err(format!("`{name}` is compared with {}, not {} (`{v}`)", prop.ty.describe(), literal_kind(v))),
        None if prop.ty != super::PropType::String => {
            Err(format!("startswith needs a string property; `{name}` is {}", prop.ty.describe()))
        }
        _ => Ok(()),
    }
}

/// Checks every condition in-order; `Err((leaf index, message))` for the first refused.
pub(super) fn check_leaves(f: &Filter, kind: ListKind) -> Result<(), (usize, String)> {
    fn walk(f: &Filter, kind: ListKind, n: &mut usize) -> Result<(), (usize, String)> {
        match f {
            Filter::And(l, r) | Filter::Or(l, r) => {
                walk(l, kind, n)?;
                walk(r, kind, n)
            }
            Filter::Not(g) => walk(g, kind, n),
            Filter::Compare { path, op, value } => {
                let i = *n;
                *n += 1;
                check_leaf(path, PropOp::Cmp(*op), Some(value), kind).map_err(|m| (i, m))
            }
            Filter::StartsWith { path, .. } => {
                let i = *n;
                *n += 1;
                check_leaf(path, PropOp::StartsWith, None, kind).map_err(|m| (i, m))
            }
        }
    }
    walk(f, kind, &mut 0)
}

/// Refuses a filter that uses a property the list does not allow, an operator the property
/// does not allow, or a literal of the wrong type (a string for `executionInfo/exitCode`, an
/// integer for `state`, a plain string for a date-time: those need `datetime'…'`).
///
/// Tables: the `const` tables of this module, one per list (see [`ListKind::properties`]).
/// `null` is accepted with `eq`/`ne` wherever the property allows them (the Batch page is
/// silent on `null`). Enum values are not checked against their enum: an unknown value simply
/// matches nothing.
///
/// Errors: [`FilterError`] whose `position` is the offending condition's byte offset in the
/// filter's [`Display`](std::fmt::Display) form (use [`parse_for`](super::parse_for) for
/// offsets into the caller's text). Batch answers these with 400 `InvalidQueryParameterValue`
/// ([`FilterError::to_batch_error`]).
pub fn check(filter: &Filter, kind: ListKind) -> Result<(), FilterError> {
    check_leaves(filter, kind).map_err(|(leaf, message)| {
        let (_, spans) = filter.rendered();
        FilterError { position: spans.get(leaf).map_or(0, |s| s.0), message }
    })
}
