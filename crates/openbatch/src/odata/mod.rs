//! OData query options of the Batch list operations.
//!
//! * [`filter`] — `$filter`: the grammar Azure Batch accepts, parsed with `winnow` into a
//!   [`Filter`] tree; the per-list tables of the properties and operators each list allows
//!   ([`check`], [`ListKind`]); evaluation against a resource's JSON ([`eval`]); and the part
//!   of a filter the store can answer from its indexed columns ([`pushdown`], [`Pushdown`]).
//!
//! How a list handler is meant to use it:
//!
//! ```
//! use openbatch::odata::{parse_for, pushdown, eval, ListKind};
//! # let items: Vec<serde_json::Value> = vec![];
//! let f = parse_for("state eq 'active' and startswith(id, 'render')", ListKind::Tasks)
//!     .expect("valid"); // Err → 400 InvalidQueryParameterValue, see FilterError::to_batch_error
//! let p = pushdown(&f); // translate to SQL on id/state/result, see Pushdown
//! let kept: Vec<_> = items.into_iter().filter(|t| eval(&f, t)).collect();
//! # assert!(kept.is_empty()); let _ = p;
//! ```

pub mod filter;

pub use filter::{
    check, eval, fold_cmp, fold_starts_with, parse, parse_datetime, parse_for, pushdown, CmpOp, Filter, FilterError, IdBound, IdCond,
    ListKind, Literal, Prop, PropOp, PropType, Pushdown, TimeRange,
};
