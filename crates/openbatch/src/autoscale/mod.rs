//! The Azure Batch autoscale formula language: parsing, checking and evaluating a pool's
//! `autoScaleFormula`.
//!
//! # Source
//!
//! Microsoft's "Create a formula to automatically scale compute nodes in a Batch pool"
//! (learn.microsoft.com `azure/batch/batch-automatic-scaling`): a formula is statements
//! separated by `;` (at most [`MAX_STATEMENTS`], at most [`MAX_FORMULA_BYTES`] bytes, line
//! breaks and `//`/`/* */` comments allowed); statements assign service-defined variables
//! (`$TargetDedicatedNodes`, `$TargetLowPriorityNodes`, `$NodeDeallocationOption`) and
//! user-defined ones (the `$` is optional; `x` and `$x` are different names); the read-only
//! service-defined variables are metrics with sample histories; the types, operators,
//! functions and sample methods are in [`types`], [`eval`], [`functions`] and [`samples`].
//! The error shapes come from the Batch error codes (`AutoScalingFormulaSyntaxError`,
//! `AutoScaleFormulaTooLong`) and the documented `AutoScaleRun` error
//! (`InsufficientSampleData`, "Line 1, Col 37: Insufficient data from data set: $CPUPercent
//! wanted 10%, received 0%").
//!
//! # Evaluation
//!
//! Pure: an [`Input`] (the metrics now, their [`History`], the pool's current targets, the
//! time and a random seed) gives a [`Run`]: the results text as the service writes it
//! (`$TargetDedicatedNodes=2;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue`, then
//! the user-defined variables by name) and the new targets, or the error that stopped it.

pub mod eval;
pub mod functions;
pub mod lexer;
pub mod parser;
pub mod samples;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_eval;
pub mod types;

use crate::model::time::Timestamp;
pub use parser::{MAX_DEPTH, MAX_STATEMENTS};
pub use samples::History;
use types::Target;
pub use types::{Metric, Metrics, Value};

/// The longest formula: 8 KB (documented "cannot exceed 8 KB").
pub const MAX_FORMULA_BYTES: usize = 8192;

/// What kind of failure a [`FormulaError`] is, and so how Batch reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Longer than [`MAX_FORMULA_BYTES`]: 400 `AutoScaleFormulaTooLong`.
    TooLong,
    /// Not a valid formula: 400 `AutoScalingFormulaSyntaxError`.
    Syntax,
    /// `GetSample` found too few samples: the run's error `InsufficientSampleData`.
    InsufficientSamples,
    /// Any other failure while evaluating (a type mismatch, a target that is not a count…):
    /// the run's error `FormulaEvaluationError` (an openbatch code: Batch documents none).
    Evaluation,
}

/// A formula error: its kind, where (1-based line and column), and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Line {line}, Col {col}: {message}")]
pub struct FormulaError {
    pub kind: ErrorKind,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl FormulaError {
    /// An error of `kind` at byte offset `at` of `src`.
    pub fn new(kind: ErrorKind, src: &str, at: usize, message: impl Into<String>) -> Self {
        let before = &src[..at.min(src.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        FormulaError { kind, line, col, message: message.into() }
    }

    /// A syntax error at byte offset `at` of `src`.
    pub fn syntax(src: &str, at: usize, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Syntax, src, at, message)
    }

    /// The code of this error in an `AutoScaleRun.error` or a Batch error body.
    pub fn code(&self) -> &'static str {
        match self.kind {
            ErrorKind::TooLong => "AutoScaleFormulaTooLong",
            ErrorKind::Syntax => "AutoScalingFormulaSyntaxError",
            ErrorKind::InsufficientSamples => "InsufficientSampleData",
            ErrorKind::Evaluation => "FormulaEvaluationError",
        }
    }

    /// The error's message line in an `AutoScaleRun.error` (its detail is the `Message` value).
    pub fn summary(&self) -> &'static str {
        match self.kind {
            ErrorKind::TooLong => "The specified auto-scaling formula exceeds lengths limit.",
            ErrorKind::Syntax => "The specified auto-scaling formula has a syntax error.",
            ErrorKind::InsufficientSamples => "Autoscale evaluation failed due to insufficient sample data",
            ErrorKind::Evaluation => "Autoscale evaluation failed",
        }
    }
}

/// A parsed and checked formula.
#[derive(Debug, Clone, PartialEq)]
pub struct Formula {
    src: String,
    stmts: Vec<parser::Stmt>,
}

/// Parses and checks a formula.
///
/// Errors: `TooLong` over [`MAX_FORMULA_BYTES`]; `Syntax` for anything the grammar and checks
/// of [`parser`] refuse (an empty formula included).
pub fn parse(src: &str) -> Result<Formula, FormulaError> {
    if src.len() > MAX_FORMULA_BYTES {
        return Err(FormulaError::new(
            ErrorKind::TooLong,
            src,
            MAX_FORMULA_BYTES,
            format!("the formula is {} bytes long; at most {MAX_FORMULA_BYTES} are allowed", src.len()),
        ));
    }
    let tokens = lexer::tokens(src)?;
    let stmts = parser::parse(src, &tokens)?;
    if stmts.is_empty() {
        return Err(FormulaError::syntax(src, 0, "the formula has no statement"));
    }
    parser::check(src, &stmts)?;
    Ok(Formula { src: src.to_string(), stmts })
}

/// What an evaluation reads.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// The evaluation's time (`time()`, look-back windows).
    pub now: Timestamp,
    /// The current value of each read-only service-defined variable.
    pub current: Metrics,
    /// The pool's sample history.
    pub history: &'a History,
    /// The pool's dedicated target before the formula runs.
    pub target_dedicated: f64,
    /// The pool's Spot/low-priority target before the formula runs.
    pub target_low_priority: f64,
    /// Seeds `rand()`.
    pub seed: u64,
}

/// Targets a successful evaluation sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    pub dedicated: i32,
    pub low_priority: i32,
    /// One of `requeue`, `terminate`, `taskcompletion`, `retaineddata`.
    pub deallocation: String,
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// `$TargetDedicatedNodes=…;$TargetLowPriorityNodes=…;$NodeDeallocationOption=…`, then
    /// each user-defined variable `name=value` in name order, `;`-separated: the values when
    /// the evaluation ended (also when it failed).
    pub results: String,
    /// The new targets, or why there are none.
    pub outcome: Result<Targets, FormulaError>,
}

/// The largest target a formula may set: the API's int32 range.
const MAX_TARGET: f64 = i32::MAX as f64;

/// Evaluates `formula` against `input`. A target is its value truncated toward zero, and
/// 0 when negative; a target that is not a finite double, or a deallocation option that is
/// not one of the four, fails the evaluation (`FormulaEvaluationError`, at the start of the
/// formula).
pub fn evaluate(formula: &Formula, input: &Input) -> Run {
    let mut ev = eval::Eval::new(&formula.src, input);
    let ran = ev.run(&formula.stmts);
    let mut parts: Vec<String> =
        [Target::Dedicated, Target::LowPriority, Target::Deallocation].iter().map(|t| format!("{}={}", t.name(), ev.target(*t))).collect();
    for (name, v) in &ev.vars {
        if Target::by_name(name).is_none() {
            parts.push(format!("{name}={v}"));
        }
    }
    let results = parts.join(";");
    let outcome = ran.and_then(|()| {
        let count = |t: Target| match ev.target(t) {
            Value::Double(d) if d.is_finite() => Ok(d.clamp(0.0, MAX_TARGET).trunc() as i32),
            v => Err(FormulaError::new(
                ErrorKind::Evaluation,
                &formula.src,
                0,
                format!("{} must be a finite double, not {} `{v}`", t.name(), v.type_name()),
            )),
        };
        let deallocation = match ev.target(Target::Deallocation) {
            Value::Str(s) if types::DEALLOCATION_OPTIONS.contains(&s.as_str()) => s,
            v => {
                return Err(FormulaError::new(
                    ErrorKind::Evaluation,
                    &formula.src,
                    0,
                    format!("$NodeDeallocationOption must be requeue, terminate, taskcompletion or retaineddata, not `{v}`"),
                ))
            }
        };
        Ok(Targets { dedicated: count(Target::Dedicated)?, low_priority: count(Target::LowPriority)?, deallocation })
    });
    Run { results, outcome }
}
