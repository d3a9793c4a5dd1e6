//! The documented functions (Batch "Functions").
//!
//! * Of a doubleVecList (any mix of doubles and doubleVecs, flattened in order): `avg` (the
//!   mean), `len` and `count` (how many values), `max`, `min`, `norm` (the two-norm), `range`
//!   (max − min), `std` (the sample standard deviation, 0 for one value), `sum` (0 for none).
//!   `avg`, `max`, `min` and `range` of no values fail.
//! * Of a double, or component-wise of a doubleVec: `lg` (log base 2), `ln`, `log` (base 10),
//!   `ceil`, `floor`, `round` (halfway cases away from zero).
//! * `percentile(v, p)`: the nearest-rank `p`-th percentile (0 ≤ p ≤ 100) of the values of
//!   `v` (a doubleVec or a double); `val(v, i)`: the element of `v` at index `i` (from 0).
//! * `rand()`: a pseudo-random double in [0, 1) from the evaluation's seed; `time()`: now;
//!   `time(s)`: the W3C-DTF (ISO 8601) or RFC 1123 time `s` (`time("")` is now).
//! * `stop()` ends the evaluation (handled by the evaluator).

use super::types::Value;
use super::{ErrorKind, FormulaError};
use crate::model::time::Timestamp;
use chrono::{DateTime, NaiveDate, Utc};

/// What a function call needs besides its arguments.
pub struct CallCx<'a> {
    pub src: &'a str,
    pub at: usize,
    pub now: Timestamp,
    /// The evaluation's random state (xorshift64*), advanced by `rand()`.
    pub rng: &'a mut u64,
}

impl CallCx<'_> {
    fn error(&self, message: impl Into<String>) -> FormulaError {
        FormulaError::new(ErrorKind::Evaluation, self.src, self.at, message)
    }
}

/// Flattens a doubleVecList.
fn list(name: &str, args: &[Value], cx: &CallCx) -> Result<Vec<f64>, FormulaError> {
    let mut out = Vec::new();
    for a in args {
        match a {
            Value::Double(d) => out.push(*d),
            Value::Vec(v) => out.extend_from_slice(v),
            other => return Err(cx.error(format!("`{name}` takes doubles and doubleVecs, not a {}", other.type_name()))),
        }
    }
    Ok(out)
}

fn nonempty(name: &str, v: Vec<f64>, cx: &CallCx) -> Result<Vec<f64>, FormulaError> {
    if v.is_empty() {
        Err(cx.error(format!("`{name}` of no values")))
    } else {
        Ok(v)
    }
}

/// A double, or component-wise a doubleVec, through `f`.
fn map(name: &str, v: &Value, f: impl Fn(f64) -> f64, cx: &CallCx) -> Result<Value, FormulaError> {
    match v {
        Value::Double(d) => Ok(Value::Double(f(*d))),
        Value::Vec(v) => Ok(Value::Vec(v.iter().map(|d| f(*d)).collect())),
        other => Err(cx.error(format!("`{name}` takes a double or a doubleVec, not a {}", other.type_name()))),
    }
}

fn vector(name: &str, v: &Value, cx: &CallCx) -> Result<Vec<f64>, FormulaError> {
    match v {
        Value::Double(d) => Ok(vec![*d]),
        Value::Vec(v) => Ok(v.clone()),
        other => Err(cx.error(format!("`{name}` takes a doubleVec, not a {}", other.type_name()))),
    }
}

fn double(name: &str, v: &Value, cx: &CallCx) -> Result<f64, FormulaError> {
    match v {
        Value::Double(d) => Ok(*d),
        other => Err(cx.error(format!("`{name}` takes a double here, not a {}", other.type_name()))),
    }
}

/// The next pseudo-random double in [0, 1) (xorshift64*).
fn next_random(state: &mut u64) -> f64 {
    let mut x = if *state == 0 { 0x9E37_79B9_7F4A_7C15 } else { *state };
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
}

/// Parses the argument of `time(s)`: RFC 3339 / W3C-DTF (`2016-10-13T19:18:47Z`, also
/// `YYYY-MM-DD`), or RFC 1123 (`Thu, 13 Oct 2016 19:18:47 GMT`).
pub fn parse_time(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_rfc2822(s) {
        return Some(t.with_timezone(&Utc));
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc())
}

/// Calls the function `name` (not `stop`, which the evaluator handles) with `args`.
///
/// Errors: an evaluation [`FormulaError`] for arguments of the wrong type, an empty list where
/// a value is needed, a percentile out of 0-100, an index out of the vector, or a time that
/// does not parse.
pub fn call(name: &str, args: &[Value], cx: &mut CallCx) -> Result<Value, FormulaError> {
    let d = Value::Double;
    match name {
        "avg" => {
            let v = nonempty(name, list(name, args, cx)?, cx)?;
            Ok(d(v.iter().sum::<f64>() / v.len() as f64))
        }
        "len" | "count" => Ok(d(list(name, args, cx)?.len() as f64)),
        "max" => Ok(d(nonempty(name, list(name, args, cx)?, cx)?.into_iter().fold(f64::NEG_INFINITY, f64::max))),
        "min" => Ok(d(nonempty(name, list(name, args, cx)?, cx)?.into_iter().fold(f64::INFINITY, f64::min))),
        "range" => {
            let v = nonempty(name, list(name, args, cx)?, cx)?;
            let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
            Ok(d(hi - lo))
        }
        "norm" => Ok(d(list(name, args, cx)?.iter().map(|x| x * x).sum::<f64>().sqrt())),
        "sum" => Ok(d(list(name, args, cx)?.iter().sum())),
        "std" => {
            let v = nonempty(name, list(name, args, cx)?, cx)?;
            if v.len() < 2 {
                return Ok(d(0.0));
            }
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
            Ok(d(var.sqrt()))
        }
        "lg" => map(name, &args[0], f64::log2, cx),
        "ln" => map(name, &args[0], f64::ln, cx),
        "log" => map(name, &args[0], f64::log10, cx),
        "ceil" => map(name, &args[0], f64::ceil, cx),
        "floor" => map(name, &args[0], f64::floor, cx),
        "round" => map(name, &args[0], f64::round, cx),
        "percentile" => {
            let mut v = nonempty(name, vector(name, &args[0], cx)?, cx)?;
            let p = double(name, &args[1], cx)?;
            if !(0.0..=100.0).contains(&p) {
                return Err(cx.error(format!("the percentile must be from 0 to 100, not {p}")));
            }
            v.sort_by(f64::total_cmp);
            let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
            Ok(d(v[rank.saturating_sub(1).min(v.len() - 1)]))
        }
        "val" => {
            let v = vector(name, &args[0], cx)?;
            let i = double(name, &args[1], cx)?;
            if !(i >= 0.0 && (i as usize) < v.len()) {
                return Err(cx.error(format!("the index {i} is outside the vector of {} values", v.len())));
            }
            Ok(d(v[i as usize]))
        }
        "rand" => Ok(d(next_random(cx.rng))),
        "time" => match args.first() {
            None => Ok(Value::Timestamp(cx.now)),
            Some(Value::Str(s)) if s.trim().is_empty() => Ok(Value::Timestamp(cx.now)),
            Some(Value::Str(s)) => {
                parse_time(s).map(Value::Timestamp).ok_or_else(|| cx.error(format!("`{s}` is not a W3C-DTF or RFC 1123 time")))
            }
            Some(other) => Err(cx.error(format!("`time` takes a string, not a {}", other.type_name()))),
        },
        other => Err(cx.error(format!("`{other}` is not a function"))),
    }
}
