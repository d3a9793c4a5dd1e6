//! The OData `$filter` of the Batch list operations: grammar, per-list checks, evaluation and
//! push-down to the store.
//!
//! # Source
//!
//! The grammar and the rules come from the Azure Batch documentation:
//!
//! * "OData filters in Azure Batch" (learn.microsoft.com `rest/api/batchservice/odata-filters-in-batch`),
//!   the page every `$filter` parameter of the 2022-10-01.16.0 spec (`BatchService.json`) links
//!   to: one table per list operation of the properties, the operators allowed on each and their
//!   types (kept as data in [`props`](self::props));
//! * "Create queries to list Batch resources efficiently" (`azure/batch/batch-efficient-list-queries`):
//!   expressions are `property operator value` combined with `and`/`or`; example filters
//!   `(state eq 'running') and startswith(id, 'renderTask')` and
//!   `(executionInfo/exitCode lt 0) or (executionInfo/exitCode gt 0)`; *property names are
//!   case-sensitive but property values are case-insensitive*; date-times are written
//!   `DateTime'2011-05-08T08:49:37Z'` (W3C-DTF) or `DateTime'Sun, 08 May 2011 08:49:37 GMT'`
//!   (RFC 1123); booleans are `true`/`false`; an invalid property or operator is a
//!   `400 (Bad Request)`.
//!
//! # Grammar
//!
//! ```text
//! filter     = ws or ws EOF
//! or         = and *( ws "or" ws and )            ; left-associative
//! and        = unary *( ws "and" ws unary )       ; left-associative
//! unary      = "not" ws unary / primary           ; so: not > and > or
//! primary    = "(" ws or ws ")" / startswith / comparison
//! startswith = "startswith" ws "(" ws path ws "," ws string ws ")" [ ws ("eq" / "ne") ws bool ]
//! comparison = path ws op ws literal
//! op         = "eq" / "ne" / "gt" / "ge" / "lt" / "le"
//! path       = name *( "/" name )                 ; name = [A-Za-z_][A-Za-z0-9_]*, case-sensitive,
//!                                                ;   not `and`/`or`/`not` as first segment
//! literal    = string / datetime / "true" / "false" / "null" / integer
//! string     = "'" *( any-but-quote / "''" ) "'"  ; enum values are strings too: state eq 'active'
//! datetime   = "datetime" string                  ; RFC 3339, RFC 3339 without zone (UTC), RFC 1123
//! integer    = [ "-" ] 1*DIGIT                    ; 64-bit
//! ```
//!
//! Keywords (`and or not eq ne gt ge lt le startswith true false null datetime`) are
//! case-insensitive; whitespace (space, tab, CR, LF) is free around every token. `null` is not
//! mentioned by the Batch documentation; it is standard OData and accepted with `eq`/`ne`.
//! `startswith(p,'x') eq true` is `startswith(p,'x')`; `eq false` / `ne true` are its negation.
//!
//! # Errors
//!
//! Every error is a [`FilterError`]: the byte offset of the offending part and what was
//! expected/found there. The API answers it as Batch does for any invalid query parameter:
//! `400 InvalidQueryParameterValue` with `QueryParameterName: $filter` (see
//! [`FilterError::to_batch_error`]).

use chrono::{DateTime, NaiveDateTime, Utc};
use std::cell::{Cell, RefCell};
use std::fmt;
use winnow::ascii::Caseless;
use winnow::combinator::{
    alt, cut_err, delimited, eof, fail, not as not_followed_by, opt, peek, preceded, repeat, separated_foldl1, terminated,
};
use winnow::error::{ContextError, ErrMode, StrContext, StrContextValue};
use winnow::prelude::*;
use winnow::token::{literal, one_of, take_while};

mod eval;
mod props;
mod pushdown;
#[cfg(test)]
mod tests;

pub use eval::{eval, fold_cmp, fold_starts_with};
pub use props::{check, ListKind, Prop, PropOp, PropType};
pub use pushdown::{pushdown, IdBound, IdCond, Pushdown, TimeRange};

/// A parsed `$filter`: a boolean expression over the properties of one resource.
///
/// Shape: `and`/`or` are binary and left-associative (`a and b and c` is
/// `And(And(a, b), c)`); `not` applies to the term after it; the leaves are comparisons and
/// `startswith`. [`Display`](fmt::Display) prints the filter back in valid syntax, parenthesised
/// just enough that parsing the text gives the same tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `l and r`.
    And(Box<Filter>, Box<Filter>),
    /// `l or r`.
    Or(Box<Filter>, Box<Filter>),
    /// `not f`.
    Not(Box<Filter>),
    /// `path op value`, e.g. `executionInfo/exitCode ne 0` → path `["executionInfo", "exitCode"]`.
    Compare {
        /// Property path segments, as written (names are case-sensitive).
        path: Vec<String>,
        /// The comparison operator.
        op: CmpOp,
        /// The right-hand literal.
        value: Literal,
    },
    /// `startswith(path, 'prefix')`.
    StartsWith {
        /// Property path segments.
        path: Vec<String>,
        /// The prefix (compared case-insensitively, like every Batch property value).
        prefix: String,
    },
}

/// A comparison operator: `eq ne gt ge lt le`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `eq`: equal.
    Eq,
    /// `ne`: not equal.
    Ne,
    /// `gt`: greater than.
    Gt,
    /// `ge`: greater than or equal.
    Ge,
    /// `lt`: less than.
    Lt,
    /// `le`: less than or equal.
    Le,
}

impl CmpOp {
    /// The keyword, lower-case: `eq`, `ne`, ….
    pub fn keyword(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
        }
    }

    /// Whether `left op right` holds when comparing `left` with `right` gave `ord`.
    pub fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Eq => ord == Equal,
            CmpOp::Ne => ord != Equal,
            CmpOp::Gt => ord == Greater,
            CmpOp::Ge => ord != Less,
            CmpOp::Lt => ord == Less,
            CmpOp::Le => ord != Greater,
        }
    }
}

/// A literal on the right of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `'text'` (`''` inside stands for one `'`); enum values are given as strings.
    Str(String),
    /// A 64-bit integer, possibly negative.
    Int(i64),
    /// `true` / `false`.
    Bool(bool),
    /// `datetime'…'`, normalised to UTC.
    DateTime(DateTime<Utc>),
    /// `null`.
    Null,
}

/// Why a `$filter` was refused: where and what.
///
/// `position` is a byte offset into the filter text (for [`parse`]/[`parse_for`] the text given;
/// for [`check`] the filter's [`Display`](fmt::Display) form). `message` says what was expected
/// and what was found there, e.g. ``expected a comparison operator (eq, ne, gt, ge, lt, le),
/// found `equals` ``.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at position {position})")]
pub struct FilterError {
    /// Byte offset of the offending part.
    pub position: usize,
    /// What was expected and what was found.
    pub message: String,
}

impl FilterError {
    /// The Batch answer to a bad `$filter`: 400 `InvalidQueryParameterValue` naming `$filter`,
    /// its value, and this error (message and position) as the `Reason`.
    pub fn to_batch_error(&self, filter: &str) -> crate::api::error::BatchError {
        crate::api::error::BatchError::invalid_query("$filter", filter, &self.to_string())
    }
}

/// Most `not`/parenthesis levels one filter may nest.
pub const MAX_NESTING: usize = 64;
/// Most conditions (comparisons and `startswith`) one filter may hold: bounds the depth of the
/// tree that [`eval`] and friends walk recursively. An openbatch limit; Batch documents none.
pub const MAX_CONDITIONS: usize = 1000;

/// Parses a `$filter` string.
///
/// Errors: [`FilterError`] at the first offending byte, e.g. an unknown operator, a missing
/// `)`, an unterminated string, an integer out of 64-bit range, an invalid date-time, trailing
/// text; also nesting deeper than [`MAX_NESTING`] or more than [`MAX_CONDITIONS`] conditions.
/// The empty filter is an error too: a handler treats an absent or empty `$filter` as "no filter"
/// before calling this.
pub fn parse(input: &str) -> Result<Filter, FilterError> {
    parse_spanned(input).map(|(f, _)| f)
}

/// [`parse`] then [`check`] for one list, with check errors pointing into `input` rather than
/// into the canonical form: what a list handler calls.
///
/// Errors: those of [`parse`] and [`check`].
pub fn parse_for(input: &str, kind: ListKind) -> Result<Filter, FilterError> {
    let (f, spans) = parse_spanned(input)?;
    props::check_leaves(&f, kind).map_err(|(leaf, message)| FilterError { position: spans[leaf].0, message })?;
    Ok(f)
}

// ---------------------------------------------------------------------------------------------
// Parser (winnow)

type PResult<T> = winnow::ModalResult<T>;

/// Parser state: the source (for offsets), the number of conditions, and each condition's
/// byte span in source order (= the in-order order of the tree's leaves).
struct Cx<'s> {
    src: &'s str,
    conditions: Cell<usize>,
    spans: RefCell<Vec<(usize, usize)>>,
}

impl Cx<'_> {
    fn pos(&self, rest: &str) -> usize {
        self.src.len() - rest.len()
    }
}

fn expected(what: &'static str) -> StrContext {
    StrContext::Expected(StrContextValue::Description(what))
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn ws(i: &mut &str) -> PResult<()> {
    take_while(0.., |c: char| matches!(c, ' ' | '\t' | '\r' | '\n')).void().parse_next(i)
}

/// A case-insensitive keyword not followed by a name character (`not` but not `notes`).
fn kw<'i>(word: &'static str) -> impl Parser<&'i str, &'i str, ErrMode<ContextError>> {
    terminated(literal(Caseless(word)), not_followed_by(one_of(is_ident)))
}

fn parse_spanned(input: &str) -> Result<(Filter, Vec<(usize, usize)>), FilterError> {
    let cx = Cx { src: input, conditions: Cell::new(0), spans: RefCell::new(Vec::new()) };
    let mut rest = input;
    let r = delimited(ws, |i: &mut &str| or_expr(&cx, 0, i), (ws, eof.context(expected("`and`, `or` or the end of the filter"))))
        .parse_next(&mut rest);
    match r {
        Ok(f) => Ok((f, cx.spans.into_inner())),
        Err(e) => {
            let position = input.len() - rest.len();
            let e = e.into_inner().unwrap_or_else(|_| ContextError::new());
            Err(FilterError { position, message: describe(&e, rest) })
        }
    }
}

/// "invalid X: cause; expected A or B, found `tok`".
fn describe(e: &ContextError, rest: &str) -> String {
    let mut labels = Vec::new();
    let mut wanted = Vec::new();
    for c in e.context() {
        match c {
            StrContext::Label(l) => labels.push(*l),
            StrContext::Expected(v) => wanted.push(v.to_string()),
            _ => {}
        }
    }
    let mut msg = labels.join(": ");
    if let Some(cause) = e.cause() {
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&cause.to_string());
    }
    if !wanted.is_empty() {
        if !msg.is_empty() {
            msg.push_str("; ");
        }
        msg.push_str("expected ");
        msg.push_str(&wanted.join(" or "));
    }
    if msg.is_empty() {
        msg.push_str("syntax error");
    }
    format!("{msg}, found {}", found(rest))
}

/// The token at the error: a quoted string, a name/number, one character, or the end.
fn found(rest: &str) -> String {
    let Some(c) = rest.chars().next() else { return "the end of the filter".into() };
    let tok: String = if c == '\'' {
        let body = &rest[1..];
        match body.find('\'') {
            Some(n) => rest[..n + 2].to_string(),
            None => rest.to_string(),
        }
    } else if is_ident(c) || c == '-' {
        let n = rest.find(|c: char| !(is_ident(c) || matches!(c, '-' | '.' | '/'))).unwrap_or(rest.len());
        rest[..n.max(c.len_utf8())].to_string()
    } else {
        c.to_string()
    };
    let tok: String = if tok.chars().count() > 40 { tok.chars().take(40).chain("…".chars()).collect() } else { tok };
    format!("`{tok}`")
}

fn or_expr(cx: &Cx, depth: usize, i: &mut &str) -> PResult<Filter> {
    separated_foldl1(|i: &mut &str| and_expr(cx, depth, i), (ws, kw("or"), ws), |l, _, r| Filter::Or(Box::new(l), Box::new(r)))
        .parse_next(i)
}

fn and_expr(cx: &Cx, depth: usize, i: &mut &str) -> PResult<Filter> {
    separated_foldl1(|i: &mut &str| unary(cx, depth, i), (ws, kw("and"), ws), |l, _, r| Filter::And(Box::new(l), Box::new(r))).parse_next(i)
}

fn too_deep(i: &mut &str) -> PResult<Filter> {
    cut_err(fail.context(StrContext::Label("filter nested too deeply (more than 64 levels of `not` and parentheses)"))).parse_next(i)
}

fn unary(cx: &Cx, depth: usize, i: &mut &str) -> PResult<Filter> {
    alt((
        preceded((kw("not"), ws), cut_err(|i: &mut &str| if depth >= MAX_NESTING { too_deep(i) } else { unary(cx, depth + 1, i) }))
            .map(|f| Filter::Not(Box::new(f))),
        |i: &mut &str| primary(cx, depth, i),
    ))
    .parse_next(i)
}

fn primary(cx: &Cx, depth: usize, i: &mut &str) -> PResult<Filter> {
    alt((
        |i: &mut &str| paren(cx, depth, i),
        |i: &mut &str| condition(cx, i, startswith),
        |i: &mut &str| condition(cx, i, comparison),
        // Cut: wherever a condition may start, one is required (so `a eq 1 and` points past
        // the `and` rather than at it).
        cut_err(fail.context(expected("a condition (a property name, `not`, `startswith(` or `(`)"))),
    ))
    .parse_next(i)
}

fn paren(cx: &Cx, depth: usize, i: &mut &str) -> PResult<Filter> {
    preceded(
        ('(', ws),
        cut_err(|i: &mut &str| {
            if depth >= MAX_NESTING {
                return too_deep(i);
            }
            terminated(|i: &mut &str| or_expr(cx, depth + 1, i), (ws, ')'.context(expected("`and`, `or` or `)`")))).parse_next(i)
        }),
    )
    .parse_next(i)
}

/// One condition (a leaf): counted against [`MAX_CONDITIONS`] and its span recorded.
fn condition(cx: &Cx, i: &mut &str, mut p: impl FnMut(&mut &str) -> PResult<Filter>) -> PResult<Filter> {
    let start = i.checkpoint();
    let from = cx.pos(i);
    let f = p(i)?;
    let n = cx.conditions.get() + 1;
    cx.conditions.set(n);
    if n > MAX_CONDITIONS {
        i.reset(&start);
        return cut_err(fail.context(StrContext::Label("filter has more than 1000 conditions"))).parse_next(i);
    }
    cx.spans.borrow_mut().push((from, cx.pos(i)));
    Ok(f)
}

fn path(i: &mut &str) -> PResult<Vec<String>> {
    fn name<'i>(i: &mut &'i str) -> PResult<&'i str> {
        (one_of(|c: char| c.is_ascii_alphabetic() || c == '_'), take_while(0.., is_ident)).take().parse_next(i)
    }
    // `and`/`or`/`not` are reserved: `a eq 1 and or` fails at `or`, not after it.
    let first = name.verify(|n: &str| !["and", "or", "not"].iter().any(|k| n.eq_ignore_ascii_case(k)));
    (first, repeat(0.., preceded('/', cut_err(name.context(expected("a property name after `/`"))))))
        .map(|(first, rest): (&str, Vec<&str>)| std::iter::once(first).chain(rest).map(str::to_string).collect())
        .parse_next(i)
}

fn cmp_op(i: &mut &str) -> PResult<CmpOp> {
    alt((
        kw("eq").value(CmpOp::Eq),
        kw("ne").value(CmpOp::Ne),
        kw("gt").value(CmpOp::Gt),
        kw("ge").value(CmpOp::Ge),
        kw("lt").value(CmpOp::Lt),
        kw("le").value(CmpOp::Le),
    ))
    .parse_next(i)
}

fn comparison(i: &mut &str) -> PResult<Filter> {
    (path, ws, cut_err(alt((cmp_op, fail.context(expected("a comparison operator (eq, ne, gt, ge, lt, le)"))))), ws, cut_err(literal_value))
        .map(|(path, _, op, _, value)| Filter::Compare { path, op, value })
        .parse_next(i)
}

fn startswith(i: &mut &str) -> PResult<Filter> {
    let f = preceded(
        (literal(Caseless("startswith")), ws, '('),
        cut_err((
            ws,
            alt((path, fail.context(expected("a property name")))),
            ws,
            ','.context(expected("`,`")),
            ws,
            alt((string_lit, fail.context(expected("a string literal in single quotes")))),
            ws,
            ')'.context(expected("`)`")),
        )),
    )
    .map(|(_, path, _, _, _, prefix, _, _)| Filter::StartsWith { path, prefix })
    .parse_next(i)?;
    // Optional `eq true` / `eq false` / `ne true` / `ne false`.
    let before = i.checkpoint();
    let Some(op) = opt(preceded(ws, cmp_op)).parse_next(i)? else { return Ok(f) };
    if !matches!(op, CmpOp::Eq | CmpOp::Ne) {
        i.reset(&before);
        ws(i)?;
        return cut_err(fail.context(StrContext::Label("startswith(…) can only be compared with `eq` or `ne`"))).parse_next(i);
    }
    let b = cut_err(preceded(ws, alt((kw("true").value(true), kw("false").value(false), fail.context(expected("`true` or `false`"))))))
        .parse_next(i)?;
    Ok(if b == (op == CmpOp::Eq) { f } else { Filter::Not(Box::new(f)) })
}

fn literal_value(i: &mut &str) -> PResult<Literal> {
    alt((
        string_lit.map(Literal::Str),
        datetime_lit.map(Literal::DateTime),
        kw("true").value(Literal::Bool(true)),
        kw("false").value(Literal::Bool(false)),
        kw("null").value(Literal::Null),
        int_lit.map(Literal::Int),
        fail.context(expected("a value ('text', an integer, true, false, null or datetime'…')")),
    ))
    .parse_next(i)
}

fn string_lit(i: &mut &str) -> PResult<String> {
    preceded(
        '\'',
        cut_err(terminated(
            repeat(0.., alt((take_while(1.., |c: char| c != '\''), "''".value("'")))).fold(String::new, |mut acc: String, s: &str| {
                acc.push_str(s);
                acc
            }),
            '\''.context(expected("a closing `'`")),
        )),
    )
    .parse_next(i)
}

/// Why a `datetime'…'` literal was refused.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not an RFC 3339 or RFC 1123 date-time")]
struct BadDateTime(String);

fn datetime_lit(i: &mut &str) -> PResult<DateTime<Utc>> {
    preceded(
        peek((literal(Caseless("datetime")), '\'')),
        cut_err(
            preceded(literal(Caseless("datetime")), string_lit)
                .try_map(|s: String| parse_datetime(&s).ok_or(BadDateTime(s)))
                .context(StrContext::Label("invalid datetime literal")),
        ),
    )
    .parse_next(i)
}

/// Parses a date-time as Batch filters and bodies write them: RFC 3339 (`2022-01-01T00:00:00Z`,
/// `…+01:00`, up to 9 fractional digits), RFC 3339 without a zone (taken as UTC, as .NET's
/// `{0:o}` prints an unspecified-kind `DateTime`), or RFC 1123 (`Sun, 08 May 2011 08:49:37 GMT`).
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    DateTime::parse_from_rfc2822(s).ok().map(|t| t.with_timezone(&Utc))
}

fn int_lit(i: &mut &str) -> PResult<i64> {
    fn digits<'i>(i: &mut &'i str) -> PResult<&'i str> {
        terminated(
            (opt('-'), take_while(1.., |c: char| c.is_ascii_digit())).take(),
            not_followed_by(one_of(|c: char| is_ident(c) || c == '.')),
        )
        .parse_next(i)
    }
    preceded(
        peek(digits),
        cut_err(digits.try_map(str::parse::<i64>).context(StrContext::Label("integer literal outside the 64-bit range"))),
    )
    .parse_next(i)
}

// ---------------------------------------------------------------------------------------------
// Display

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

fn write_quoted(out: &mut String, s: &str) {
    out.push('\'');
    out.push_str(&s.replace('\'', "''"));
    out.push('\'');
}

impl fmt::Display for Literal {
    /// Valid filter syntax: `'it''s'`, `-5`, `true`, `null`, `datetime'2022-01-01T00:00:00Z'`
    /// (as many fractional digits as needed to round-trip).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Str(s) => {
                let mut out = String::with_capacity(s.len() + 2);
                write_quoted(&mut out, s);
                f.write_str(&out)
            }
            Literal::Int(n) => write!(f, "{n}"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::DateTime(t) => {
                write!(f, "datetime'{}'", t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            }
            Literal::Null => f.write_str("null"),
        }
    }
}

/// Writes `f` as filter text, recording each leaf's span (in-order).
fn render(f: &Filter, out: &mut String, spans: &mut Vec<(usize, usize)>) {
    let group = |g: &Filter, paren: bool, out: &mut String, spans: &mut Vec<(usize, usize)>| {
        if paren {
            out.push('(');
            render(g, out, spans);
            out.push(')');
        } else {
            render(g, out, spans);
        }
    };
    match f {
        Filter::And(l, r) => {
            group(l, matches!(**l, Filter::Or(..)), out, spans);
            out.push_str(" and ");
            group(r, matches!(**r, Filter::Or(..) | Filter::And(..)), out, spans);
        }
        Filter::Or(l, r) => {
            render(l, out, spans);
            out.push_str(" or ");
            group(r, matches!(**r, Filter::Or(..)), out, spans);
        }
        Filter::Not(g) => {
            out.push_str("not ");
            group(g, matches!(**g, Filter::Or(..) | Filter::And(..)), out, spans);
        }
        Filter::Compare { path, op, value } => {
            let from = out.len();
            out.push_str(&path.join("/"));
            out.push(' ');
            out.push_str(op.keyword());
            out.push(' ');
            out.push_str(&value.to_string());
            spans.push((from, out.len()));
        }
        Filter::StartsWith { path, prefix } => {
            let from = out.len();
            out.push_str("startswith(");
            out.push_str(&path.join("/"));
            out.push(',');
            write_quoted(out, prefix);
            out.push(')');
            spans.push((from, out.len()));
        }
    }
}

impl Filter {
    /// The canonical text and each leaf's byte span in it (in-order).
    fn rendered(&self) -> (String, Vec<(usize, usize)>) {
        let mut out = String::new();
        let mut spans = Vec::new();
        render(self, &mut out, &mut spans);
        (out, spans)
    }

    /// `l and r`.
    pub fn and(l: Filter, r: Filter) -> Filter {
        Filter::And(Box::new(l), Box::new(r))
    }

    /// `l or r`.
    pub fn or(l: Filter, r: Filter) -> Filter {
        Filter::Or(Box::new(l), Box::new(r))
    }

    /// `not f`.
    #[allow(clippy::should_implement_trait)]
    pub fn not(f: Filter) -> Filter {
        Filter::Not(Box::new(f))
    }

    /// `path op value` with `path` written `a/b/c`.
    pub fn cmp(path: &str, op: CmpOp, value: Literal) -> Filter {
        Filter::Compare { path: path.split('/').map(str::to_string).collect(), op, value }
    }

    /// `startswith(path, 'prefix')` with `path` written `a/b/c`.
    pub fn starts_with(path: &str, prefix: &str) -> Filter {
        Filter::StartsWith { path: path.split('/').map(str::to_string).collect(), prefix: prefix.to_string() }
    }
}

impl fmt::Display for Filter {
    /// Valid filter syntax with lower-case keywords, e.g.
    /// `state eq 'active' and (id eq 'a' or not startswith(id,'b'))`; `parse` of the text gives
    /// back an equal tree (paths must be names as the grammar defines them).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rendered().0)
    }
}
