//! The formula's syntax tree, built from the [`lexer`](super::lexer)'s tokens by precedence
//! climbing, and the checks a formula passes before it is accepted.
//!
//! ```text
//! formula   = [ statement *( ";" [ statement ] ) ]          ; empty statements allowed
//! statement = name "=" expr / expr
//! expr      = or [ "?" expr ":" expr ]                       ; right-associative
//! or        = and *( "||" and )
//! and       = eq *( "&&" eq )
//! eq        = rel *( ("==" / "!=") rel )
//! rel       = add *( ("<" / "<=" / ">" / ">=") add )
//! add       = mul *( ("+" / "-") mul )
//! mul       = unary *( ("*" / "/") unary )
//! unary     = ("-" / "!") unary / postfix
//! postfix   = primary *( "." name [ "(" args ")" ] )         ; member, or method of a metric
//! primary   = number / string / name [ "(" args ")" ] / "(" expr ")"
//! ```
//!
//! Checks ([`check`]): at most [`MAX_STATEMENTS`] statements; only `$TargetDedicatedNodes`,
//! `$TargetLowPriorityNodes`, `$NodeDeallocationOption` (and the aliases `$TargetDedicated`,
//! `$TargetLowPriority`) and user variables are assigned; a user variable is read only after
//! a statement assigned it; functions, methods and members exist and get as many arguments as
//! documented; methods are called on the read-only service-defined variables.

use super::lexer::{Tok, Token};
use super::types::{time_interval, Metric, Target, DEALLOCATION_OPTIONS, TIMESTAMP_MEMBERS};
use super::FormulaError;
use std::collections::HashSet;

/// Most statements a formula may hold (documented: 100).
pub const MAX_STATEMENTS: usize = 100;
/// Deepest nesting of a formula's expressions. An openbatch limit (Batch documents none): it
/// bounds the recursion of parsing and evaluation.
pub const MAX_DEPTH: usize = 200;

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
}

impl BinOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::And => "&&",
            BinOp::Or => "||",
        }
    }

    fn of(p: &str) -> Option<(BinOp, u8)> {
        Some(match p {
            "||" => (BinOp::Or, 2),
            "&&" => (BinOp::And, 3),
            "==" => (BinOp::Eq, 4),
            "!=" => (BinOp::Ne, 4),
            "<" => (BinOp::Lt, 5),
            "<=" => (BinOp::Le, 5),
            ">" => (BinOp::Gt, 5),
            ">=" => (BinOp::Ge, 5),
            "+" => (BinOp::Add, 6),
            "-" => (BinOp::Sub, 6),
            "*" => (BinOp::Mul, 7),
            "/" => (BinOp::Div, 7),
            _ => return None,
        })
    }
}

/// An expression and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub at: usize,
}

/// What an expression is.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// A number.
    Num(f64),
    /// A string literal.
    Str(String),
    /// A variable, constant or deallocation keyword, by name.
    Name(String),
    /// `-e` (`neg`) or `!e`.
    Unary { neg: bool, e: Box<Expr> },
    /// `l op r`.
    Binary { op: BinOp, l: Box<Expr>, r: Box<Expr> },
    /// `c ? a : b`.
    Ternary { c: Box<Expr>, a: Box<Expr>, b: Box<Expr> },
    /// `f(args)`.
    Call { name: String, args: Vec<Expr> },
    /// `e.member`.
    Member { e: Box<Expr>, name: String },
    /// `$Metric.Method(args)`; `at` of the expression is the method name's offset.
    Method { var: String, method: String, args: Vec<Expr> },
}

/// A statement: an assignment `name = expr`, or an expression evaluated for its effect.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub target: Option<String>,
    pub expr: Expr,
}

/// Parses the tokens of `src` into statements.
///
/// Errors: a syntax [`FormulaError`] at the first token that does not fit the grammar, or at
/// an expression nested deeper than [`MAX_DEPTH`].
pub fn parse(src: &str, tokens: &[Token]) -> Result<Vec<Stmt>, FormulaError> {
    let mut p = Parser { src, toks: tokens, pos: 0, depth: 0 };
    let mut out = Vec::new();
    loop {
        while p.eat(";") {}
        if p.peek().is_none() {
            return Ok(out);
        }
        out.push(p.statement()?);
        if p.peek().is_some() && !p.eat(";") {
            return Err(p.error("expected `;` or an operator"));
        }
    }
}

struct Parser<'a> {
    src: &'a str,
    toks: &'a [Token],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn at(&self) -> usize {
        self.toks.get(self.pos).map_or(self.src.len(), |t| t.at)
    }

    fn is(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::Punct(q)) if *q == p)
    }

    fn eat(&mut self, p: &str) -> bool {
        let yes = self.is(p);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn error(&self, what: &str) -> FormulaError {
        let found = match self.peek() {
            None => "the end of the formula".to_string(),
            Some(Tok::Num(n)) => format!("`{n}`"),
            Some(Tok::Name(n)) => format!("`{n}`"),
            Some(Tok::Str(s)) => format!("`\"{s}\"`"),
            Some(Tok::Punct(p)) => format!("`{p}`"),
        };
        FormulaError::syntax(self.src, self.at(), format!("{what}, found {found}"))
    }

    fn expect(&mut self, p: &str) -> Result<(), FormulaError> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(self.error(&format!("expected `{p}`")))
        }
    }

    fn statement(&mut self) -> Result<Stmt, FormulaError> {
        let assigns =
            matches!(self.peek(), Some(Tok::Name(_))) && matches!(self.toks.get(self.pos + 1).map(|t| &t.tok), Some(Tok::Punct("=")));
        if assigns {
            let Some(Tok::Name(name)) = self.peek().cloned() else { unreachable!("checked above") };
            self.pos += 2;
            return Ok(Stmt { target: Some(name), expr: self.expr()? });
        }
        Ok(Stmt { target: None, expr: self.expr()? })
    }

    /// One level deeper (parentheses, operands, arguments). Errors past [`MAX_DEPTH`].
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, FormulaError>) -> Result<T, FormulaError> {
        if self.depth >= MAX_DEPTH {
            return Err(FormulaError::syntax(self.src, self.at(), format!("the expression is nested more than {MAX_DEPTH} levels deep")));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn expr(&mut self) -> Result<Expr, FormulaError> {
        self.nested(|p| {
            let c = p.binary(2)?;
            if !p.eat("?") {
                return Ok(c);
            }
            let a = p.expr()?;
            p.expect(":")?;
            let b = p.expr()?;
            let at = c.at;
            Ok(Expr { kind: ExprKind::Ternary { c: Box::new(c), a: Box::new(a), b: Box::new(b) }, at })
        })
    }

    /// Left-associative binary operators binding at least as tightly as `min`.
    fn binary(&mut self, min: u8) -> Result<Expr, FormulaError> {
        let mut l = self.unary()?;
        let mut chain = 0;
        loop {
            let Some(Tok::Punct(p)) = self.peek() else { return Ok(l) };
            let Some((op, bp)) = BinOp::of(p) else { return Ok(l) };
            if bp < min {
                return Ok(l);
            }
            self.pos += 1;
            let r = self.nested(|p| p.binary(bp + 1))?;
            let at = l.at;
            l = Expr { kind: ExprKind::Binary { op, l: Box::new(l), r: Box::new(r) }, at };
            chain += 1;
            if self.depth + chain > MAX_DEPTH {
                return Err(FormulaError::syntax(self.src, at, format!("the expression is nested more than {MAX_DEPTH} levels deep")));
            }
        }
    }

    fn unary(&mut self) -> Result<Expr, FormulaError> {
        let at = self.at();
        for (sym, neg) in [("-", true), ("!", false)] {
            if self.eat(sym) {
                let e = self.nested(|p| p.unary())?;
                return Ok(Expr { kind: ExprKind::Unary { neg, e: Box::new(e) }, at });
            }
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, FormulaError> {
        let mut e = self.primary()?;
        while self.eat(".") {
            let at = self.at();
            let Some(Tok::Name(name)) = self.peek().cloned() else { return Err(self.error("expected a member or method name after `.`")) };
            self.pos += 1;
            e = if self.is("(") {
                let ExprKind::Name(var) = &e.kind else {
                    return Err(FormulaError::syntax(
                        self.src,
                        at,
                        format!("the method `{name}` is called on a service-defined variable, such as `$CPUPercent.{name}(…)`"),
                    ));
                };
                let var = var.clone();
                let args = self.args()?;
                Expr { kind: ExprKind::Method { var, method: name, args }, at }
            } else {
                Expr { kind: ExprKind::Member { e: Box::new(e), name }, at }
            };
        }
        Ok(e)
    }

    fn args(&mut self) -> Result<Vec<Expr>, FormulaError> {
        self.expect("(")?;
        let mut args = Vec::new();
        if self.eat(")") {
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            if self.eat(")") {
                return Ok(args);
            }
            if !self.eat(",") {
                return Err(self.error("expected `,` or `)`"));
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, FormulaError> {
        let at = self.at();
        let kind = match self.peek().cloned() {
            Some(Tok::Num(n)) => {
                self.pos += 1;
                ExprKind::Num(n)
            }
            Some(Tok::Str(s)) => {
                self.pos += 1;
                ExprKind::Str(s)
            }
            Some(Tok::Name(name)) => {
                self.pos += 1;
                if self.is("(") {
                    ExprKind::Call { name, args: self.args()? }
                } else {
                    ExprKind::Name(name)
                }
            }
            Some(Tok::Punct("(")) => {
                self.pos += 1;
                let e = self.expr()?;
                self.expect(")")?;
                return Ok(e);
            }
            _ => return Err(self.error("expected a number, a string, a variable, a function call or `(`")),
        };
        Ok(Expr { kind, at })
    }
}

/// The documented functions and how many arguments each takes (`None`: any number, the
/// functions of a doubleVecList).
pub const FUNCTIONS: &[(&str, Option<(usize, usize)>)] = &[
    ("avg", None),
    ("ceil", Some((1, 1))),
    ("count", None),
    ("floor", Some((1, 1))),
    ("len", None),
    ("lg", Some((1, 1))),
    ("ln", Some((1, 1))),
    ("log", Some((1, 1))),
    ("max", None),
    ("min", None),
    ("norm", None),
    ("percentile", Some((2, 2))),
    ("rand", Some((0, 0))),
    ("range", None),
    ("round", Some((1, 1))),
    ("std", None),
    ("stop", Some((0, 0))),
    ("sum", None),
    ("time", Some((0, 1))),
    ("val", Some((2, 2))),
];

/// The sample methods and how many arguments each takes.
pub const METHODS: &[(&str, usize, usize)] =
    &[("GetSample", 1, 3), ("GetSamplePeriod", 0, 0), ("Count", 0, 0), ("HistoryBeginTime", 0, 0), ("GetSamplePercent", 1, 2)];

/// Checks parsed statements (see the module documentation).
///
/// Errors: a syntax [`FormulaError`] at the offending name, call or statement.
pub fn check(src: &str, stmts: &[Stmt]) -> Result<(), FormulaError> {
    if stmts.len() > MAX_STATEMENTS {
        let at = stmts[MAX_STATEMENTS].expr.at;
        return Err(FormulaError::syntax(src, at, format!("a formula has at most {MAX_STATEMENTS} statements")));
    }
    let mut assigned: HashSet<&str> = HashSet::new();
    for s in stmts {
        check_expr(src, &s.expr, &assigned)?;
        if let Some(name) = &s.target {
            if Metric::by_name(name).is_some() || time_interval(name).is_some() {
                return Err(FormulaError::syntax(src, s.expr.at, format!("`{name}` is read-only and cannot be assigned")));
            }
            if name.starts_with('$') && Target::by_name(name).is_none() && looks_reserved(name) {
                return Err(FormulaError::syntax(src, s.expr.at, format!("`{name}` is not a service-defined variable that can be set")));
            }
            assigned.insert(name);
        }
    }
    Ok(())
}

/// Names a formula cannot define for itself: function names.
fn looks_reserved(name: &str) -> bool {
    FUNCTIONS.iter().any(|(f, _)| name.trim_start_matches('$') == *f)
}

fn arity_error(src: &str, at: usize, what: &str, (min, max): (usize, usize), got: usize) -> FormulaError {
    let want = if min == max { format!("{min}") } else { format!("{min} to {max}") };
    FormulaError::syntax(src, at, format!("{what} takes {want} argument(s), not {got}"))
}

fn check_expr(src: &str, e: &Expr, assigned: &HashSet<&str>) -> Result<(), FormulaError> {
    match &e.kind {
        ExprKind::Num(_) | ExprKind::Str(_) => Ok(()),
        ExprKind::Name(n) => {
            let known = assigned.contains(n.as_str())
                || Metric::by_name(n).is_some()
                || Target::by_name(n).is_some()
                || time_interval(n).is_some()
                || DEALLOCATION_OPTIONS.contains(&n.as_str());
            if known {
                Ok(())
            } else {
                Err(FormulaError::syntax(src, e.at, format!("`{n}` is not defined: assign it in an earlier statement")))
            }
        }
        ExprKind::Unary { e, .. } => check_expr(src, e, assigned),
        ExprKind::Member { e: inner, name } => {
            if !is_member(name) {
                let members = TIMESTAMP_MEMBERS.join(", ");
                return Err(FormulaError::syntax(src, e.at, format!("`{name}` is not a member of a timestamp ({members})")));
            }
            check_expr(src, inner, assigned)
        }
        ExprKind::Binary { l, r, .. } => {
            check_expr(src, l, assigned)?;
            check_expr(src, r, assigned)
        }
        ExprKind::Ternary { c, a, b } => {
            check_expr(src, c, assigned)?;
            check_expr(src, a, assigned)?;
            check_expr(src, b, assigned)
        }
        ExprKind::Call { name, args } => {
            let Some((_, arity)) = FUNCTIONS.iter().find(|(f, _)| f == name) else {
                return Err(FormulaError::syntax(src, e.at, format!("`{name}` is not a function")));
            };
            if let Some(range) = arity {
                if args.len() < range.0 || args.len() > range.1 {
                    return Err(arity_error(src, e.at, &format!("`{name}`"), *range, args.len()));
                }
            }
            args.iter().try_for_each(|a| check_expr(src, a, assigned))
        }
        ExprKind::Method { var, method, args } => {
            if Metric::by_name(var).is_none() {
                return Err(FormulaError::syntax(
                    src,
                    e.at,
                    format!("`{var}` is not a read-only service-defined variable: it has no method `{method}`"),
                ));
            }
            let Some((_, min, max)) = METHODS.iter().find(|(m, _, _)| m == method) else {
                return Err(FormulaError::syntax(src, e.at, format!("`{method}` is not a method of `{var}`")));
            };
            if args.len() < *min || args.len() > *max {
                return Err(arity_error(src, e.at, &format!("`{method}`"), (*min, *max), args.len()));
            }
            args.iter().try_for_each(|a| check_expr(src, a, assigned))
        }
    }
}

/// Whether `name` is a timestamp member (`year`, `hour`, …).
pub fn is_member(name: &str) -> bool {
    TIMESTAMP_MEMBERS.contains(&name)
}
