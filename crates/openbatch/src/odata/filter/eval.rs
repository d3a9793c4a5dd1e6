//! Evaluating a [`Filter`] against a resource's JSON.

use super::{parse_datetime, CmpOp, Filter, Literal};
use serde_json::Value;
use std::cmp::Ordering;

/// Compares two strings the way Batch compares property values, case-insensitively: ASCII
/// letters folded to lower case, then byte order. This is exactly SQLite's `COLLATE NOCASE`, so
/// the store's SQL and the in-memory evaluation agree (see [`Pushdown`](super::Pushdown)).
pub fn fold_cmp(a: &str, b: &str) -> Ordering {
    a.bytes().map(|c| c.to_ascii_lowercase()).cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

/// Whether `s` starts with `prefix`, case-insensitively as [`fold_cmp`].
pub fn fold_starts_with(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// The value at `path`, or `None` when a segment is missing, an intermediate is not an
/// object, or the value is JSON `null`. `lastModifiedTime` (the doc's spelling for tasks)
/// falls back to `lastModified` (the wire name).
fn lookup<'v>(resource: &'v Value, path: &[String]) -> Option<&'v Value> {
    fn at<'v>(resource: &'v Value, path: &[String]) -> Option<&'v Value> {
        let mut v = resource;
        for seg in path {
            v = v.as_object()?.get(seg.as_str())?;
        }
        Some(v).filter(|v| !v.is_null())
    }
    at(resource, path).or_else(|| match path {
        [only] if only == "lastModifiedTime" => at(resource, &["lastModified".to_string()]),
        _ => None,
    })
}

/// An integer property's value: a JSON number, or a JSON string holding an integer (Batch
/// writes 64-bit counters as strings, e.g. `"readIOps": "0"`).
fn number(v: &Value) -> Option<NumVal> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(|i| NumVal::Int(i128::from(i)))
            .or_else(|| n.as_u64().map(|u| NumVal::Int(i128::from(u))))
            .or_else(|| n.as_f64().map(NumVal::Float)),
        Value::String(s) => s.trim().parse::<i128>().ok().map(NumVal::Int),
        _ => None,
    }
}

enum NumVal {
    Int(i128),
    Float(f64),
}

/// How the resource's value compares with the literal; `None` when they are of different
/// kinds (then every comparison, `ne` included, is false).
fn ordering(v: &Value, lit: &Literal) -> Option<Ordering> {
    match lit {
        Literal::Str(s) => v.as_str().map(|x| fold_cmp(x, s)),
        Literal::Int(n) => match number(v)? {
            NumVal::Int(x) => Some(x.cmp(&i128::from(*n))),
            NumVal::Float(x) => x.partial_cmp(&(*n as f64)),
        },
        Literal::Bool(b) => match v {
            Value::Bool(x) => Some(x.cmp(b)),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true.cmp(b)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false.cmp(b)),
            _ => None,
        },
        Literal::DateTime(t) => v.as_str().and_then(parse_datetime).map(|x| x.cmp(t)),
        Literal::Null => None,
    }
}

fn compare(v: Option<&Value>, op: CmpOp, lit: &Literal) -> bool {
    match (v, lit) {
        (None, Literal::Null) => op == CmpOp::Eq,
        (Some(_), Literal::Null) => op == CmpOp::Ne,
        (None, _) => false,
        (Some(v), lit) => ordering(v, lit).is_some_and(|o| op.holds(o)),
    }
}

/// Whether `resource` (its JSON in wire shape: camelCase properties, nested objects,
/// RFC 3339 timestamps) satisfies `filter`.
///
/// Semantics:
/// * strings (enum values and ids included) compare case-insensitively, [`fold_cmp`]; so does
///   `startswith`;
/// * integers compare numerically with JSON numbers and with JSON strings holding integers
///   (`"0"`);
/// * date-times compare as instants with RFC 3339 strings;
/// * a missing property (or JSON `null`) compares as null: `eq null` is true, every other
///   comparison — `ne 'x'` included — is false, and so is `startswith`; `not` is plain negation;
/// * a value of another kind than the literal (a number against `'x'`) makes the comparison
///   false ([`check`](super::check) refuses such filters up front).
pub fn eval(filter: &Filter, resource: &Value) -> bool {
    match filter {
        Filter::And(l, r) => eval(l, resource) && eval(r, resource),
        Filter::Or(l, r) => eval(l, resource) || eval(r, resource),
        Filter::Not(f) => !eval(f, resource),
        Filter::Compare { path, op, value } => compare(lookup(resource, path), *op, value),
        Filter::StartsWith { path, prefix } => lookup(resource, path).and_then(Value::as_str).is_some_and(|s| fold_starts_with(s, prefix)),
    }
}
