//! Evaluating a checked formula: statements in order, operators with the documented type
//! rules (Batch "Operations"), variables, functions and sample methods.
//!
//! | operation | operators | result |
//! |---|---|---|
//! | double op double | `+ - * /` | double |
//! | double op timeinterval | `*` | timeinterval |
//! | doubleVec op double, doubleVec op doubleVec (same length) | `+ - * /` | doubleVec |
//! | timeinterval op double | `* /` | timeinterval |
//! | timeinterval op timeinterval | `+ -` | timeinterval |
//! | timeinterval + timestamp, timestamp + timeinterval | `+` | timestamp |
//! | timestamp − timestamp | `-` | timeinterval |
//! | op double | `- !` | double |
//! | op timeinterval | `-` | timeinterval |
//! | double, string, timestamp or timeinterval op the same type | `< <= == >= > !=` | double |
//! | double op double | `&& \|\|` (short-circuit) | double |
//!
//! `c ? a : b` evaluates `a` when the double `c` is nonzero, else `b`. Division follows IEEE
//! 754 (`1/0` is infinity; a target that is not finite fails the evaluation). Reading a
//! read-only service-defined variable gives its current value; its methods read its history.
//! Reading `$TargetDedicatedNodes`/`$TargetLowPriorityNodes` before the formula sets them gives
//! the pool's current targets; `$NodeDeallocationOption` starts as `requeue`.

use super::functions::{self, CallCx};
use super::parser::{BinOp, Expr, ExprKind, Stmt};
use super::samples::{self, Site};
use super::types::{time_interval, timestamp_member, Metric, Target, Ticks, Value, DEALLOCATION_OPTIONS};
use super::{ErrorKind, FormulaError, Input};
use std::collections::BTreeMap;

/// Why evaluation left a statement early.
pub enum Halt {
    /// `stop()` was called.
    Stop,
    /// An error.
    Error(FormulaError),
}

impl From<FormulaError> for Halt {
    fn from(e: FormulaError) -> Self {
        Halt::Error(e)
    }
}

/// The variables of one evaluation.
pub struct Eval<'a> {
    src: &'a str,
    input: &'a Input<'a>,
    /// Every assigned variable by name as written, the targets and their aliases included.
    pub vars: BTreeMap<String, Value>,
    rng: u64,
}

impl<'a> Eval<'a> {
    /// A fresh evaluation of the formula text `src` against `input`.
    pub fn new(src: &'a str, input: &'a Input<'a>) -> Self {
        Eval { src, input, vars: BTreeMap::new(), rng: input.seed }
    }

    fn error(&self, at: usize, message: impl Into<String>) -> Halt {
        Halt::Error(FormulaError::new(ErrorKind::Evaluation, self.src, at, message))
    }

    /// Runs the statements in order until the end, `stop()` or an error.
    pub fn run(&mut self, stmts: &[Stmt]) -> Result<(), FormulaError> {
        for s in stmts {
            match self.statement(s) {
                Ok(()) => {}
                Err(Halt::Stop) => return Ok(()),
                Err(Halt::Error(e)) => return Err(e),
            }
        }
        Ok(())
    }

    fn statement(&mut self, s: &Stmt) -> Result<(), Halt> {
        let v = self.expr(&s.expr)?;
        if let Some(name) = &s.target {
            self.vars.insert(name.clone(), v);
        }
        Ok(())
    }

    /// The value of a target: as set under its full name, else under its alias, else its
    /// value before the formula ran.
    pub fn target(&self, t: Target) -> Value {
        let alias = match t {
            Target::Dedicated => "$TargetDedicated",
            Target::LowPriority => "$TargetLowPriority",
            Target::Deallocation => "$NodeDeallocationOption",
        };
        if let Some(v) = self.vars.get(t.name()).or_else(|| self.vars.get(alias)) {
            return v.clone();
        }
        match t {
            Target::Dedicated => Value::Double(self.input.target_dedicated),
            Target::LowPriority => Value::Double(self.input.target_low_priority),
            Target::Deallocation => Value::Str("requeue".into()),
        }
    }

    fn name(&self, name: &str, at: usize) -> Result<Value, Halt> {
        if let Some(v) = self.vars.get(name) {
            return Ok(v.clone());
        }
        if let Some((t, _)) = Target::by_name(name) {
            return Ok(self.target(t));
        }
        if let Some(m) = Metric::by_name(name) {
            return Ok(Value::Double(self.input.current.get(m)));
        }
        if let Some(t) = time_interval(name) {
            return Ok(Value::Interval(t));
        }
        if DEALLOCATION_OPTIONS.contains(&name) {
            return Ok(Value::Str(name.to_string()));
        }
        Err(self.error(at, format!("`{name}` is not defined")))
    }

    fn expr(&mut self, e: &Expr) -> Result<Value, Halt> {
        match &e.kind {
            ExprKind::Num(n) => Ok(Value::Double(*n)),
            ExprKind::Str(s) => Ok(Value::Str(s.clone())),
            ExprKind::Name(n) => self.name(n, e.at),
            ExprKind::Unary { neg, e: inner } => match (self.expr(inner)?, neg) {
                (Value::Double(d), true) => Ok(Value::Double(-d)),
                (Value::Double(d), false) => Ok(Value::bool(d == 0.0)),
                (Value::Interval(t), true) => Ok(Value::Interval(t.saturating_neg())),
                (v, _) => Err(self.error(e.at, format!("`{}` does not apply to a {}", if *neg { "-" } else { "!" }, v.type_name()))),
            },
            ExprKind::Binary { op: op @ (BinOp::And | BinOp::Or), l, r } => {
                let l = self.truth(l)?;
                if (*op == BinOp::And && !l) || (*op == BinOp::Or && l) {
                    return Ok(Value::bool(l));
                }
                Ok(Value::bool(self.truth(r)?))
            }
            ExprKind::Binary { op, l, r } => {
                let (l, r) = (self.expr(l)?, self.expr(r)?);
                self.binary(*op, l, r, e.at)
            }
            ExprKind::Ternary { c, a, b } => {
                if self.truth(c)? {
                    self.expr(a)
                } else {
                    self.expr(b)
                }
            }
            ExprKind::Member { e: inner, name } => match self.expr(inner)? {
                Value::Timestamp(t) => timestamp_member(&t, name)
                    .map(Value::Double)
                    .ok_or_else(|| self.error(e.at, format!("a timestamp has no member `{name}`"))),
                v => Err(self.error(e.at, format!("`.{name}` applies to a timestamp, not a {}", v.type_name()))),
            },
            ExprKind::Call { name, args } => {
                if name == "stop" {
                    return Err(Halt::Stop);
                }
                let values = args.iter().map(|a| self.expr(a)).collect::<Result<Vec<_>, _>>()?;
                let mut cx = CallCx { src: self.src, at: e.at, now: self.input.now, rng: &mut self.rng };
                Ok(functions::call(name, &values, &mut cx)?)
            }
            ExprKind::Method { var, method, args } => {
                let Some(m) = Metric::by_name(var) else { return Err(self.error(e.at, format!("`{var}` has no methods"))) };
                let values = args.iter().map(|a| self.expr(a)).collect::<Result<Vec<_>, _>>()?;
                let site = Site { src: self.src, at: e.at, now: self.input.now };
                Ok(samples::call(self.input.history, m, method, &values, &site)?)
            }
        }
    }

    /// A condition: a double, true when nonzero.
    fn truth(&mut self, e: &Expr) -> Result<bool, Halt> {
        match self.expr(e)? {
            Value::Double(d) => Ok(d != 0.0),
            v => Err(self.error(e.at, format!("a condition must be a double, not a {}", v.type_name()))),
        }
    }

    fn binary(&self, op: BinOp, l: Value, r: Value, at: usize) -> Result<Value, Halt> {
        use BinOp::*;
        use Value::*;
        let arith = |a: f64, b: f64| match op {
            Add => a + b,
            Sub => a - b,
            Mul => a * b,
            _ => a / b,
        };
        let ticks = |t: f64| -> Result<Ticks, Halt> {
            if t.is_finite() && t.abs() < i64::MAX as f64 {
                Ok(t.round() as Ticks)
            } else {
                Err(self.error(at, "the timeinterval is out of range"))
            }
        };
        let ord = |o: Option<std::cmp::Ordering>| {
            Value::bool(match (op, o) {
                (Eq, o) => o == Some(std::cmp::Ordering::Equal),
                (Ne, o) => o != Some(std::cmp::Ordering::Equal),
                (_, None) => false,
                (Lt, Some(o)) => o.is_lt(),
                (Le, Some(o)) => o.is_le(),
                (Gt, Some(o)) => o.is_gt(),
                (_, Some(o)) => o.is_ge(),
            })
        };
        let compare = matches!(op, Lt | Le | Gt | Ge | Eq | Ne);
        match (op, &l, &r) {
            (_, Double(a), Double(b)) if compare => Ok(ord(a.partial_cmp(b))),
            (_, Str(a), Str(b)) if compare => Ok(ord(Some(a.cmp(b)))),
            (_, Timestamp(a), Timestamp(b)) if compare => Ok(ord(Some(a.cmp(b)))),
            (_, Interval(a), Interval(b)) if compare => Ok(ord(Some(a.cmp(b)))),
            (Add | Sub | Mul | Div, Double(a), Double(b)) => Ok(Double(arith(*a, *b))),
            (Mul, Double(a), Interval(t)) | (Mul, Interval(t), Double(a)) => Ok(Interval(ticks(*t as f64 * a)?)),
            (Div, Interval(t), Double(a)) => Ok(Interval(ticks(*t as f64 / a)?)),
            (Add | Sub | Mul | Div, Vec(v), Double(b)) => Ok(Vec(v.iter().map(|a| arith(*a, *b)).collect())),
            (Add | Sub | Mul | Div, Vec(a), Vec(b)) => {
                if a.len() != b.len() {
                    return Err(self.error(at, format!("`{}` of doubleVecs of {} and {} values", op.symbol(), a.len(), b.len())));
                }
                Ok(Vec(a.iter().zip(b).map(|(x, y)| arith(*x, *y)).collect()))
            }
            (Add, Interval(a), Interval(b)) => Ok(Interval(a.saturating_add(*b))),
            (Sub, Interval(a), Interval(b)) => Ok(Interval(a.saturating_sub(*b))),
            (Add, Interval(t), Timestamp(s)) | (Add, Timestamp(s), Interval(t)) => s
                .checked_add_signed(chrono::Duration::microseconds(t / 10))
                .map(Timestamp)
                .ok_or_else(|| self.error(at, "the timestamp is out of range")),
            (Sub, Timestamp(a), Timestamp(b)) => {
                let micros = (*a - *b).num_microseconds().ok_or_else(|| self.error(at, "the timeinterval is out of range"))?;
                Ok(Interval(micros.saturating_mul(10)))
            }
            _ => Err(self.error(at, format!("`{}` does not apply to a {} and a {}", op.symbol(), l.type_name(), r.type_name()))),
        }
    }
}
