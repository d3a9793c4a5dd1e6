//! The formula's tokens (winnow).
//!
//! ```text
//! token   = number / name / string / punct
//! number  = 1*DIGIT [ "." *DIGIT ] [ exponent ] / "." 1*DIGIT [ exponent ]
//! exponent= ("e" / "E") [ "+" / "-" ] 1*DIGIT
//! name    = [ "$" ] (ALPHA / "_") *(ALPHA / DIGIT / "_")     ; case-sensitive
//! string  = DQUOTE *(any but DQUOTE and line breaks) DQUOTE
//! punct   = "==" / "!=" / "<=" / ">=" / "&&" / "||" / one of "(),;.?:=<>+-*/!"
//! ```
//!
//! Whitespace (space, tab, CR, LF) and comments (`// …` to the end of the line, `/* … */`)
//! separate tokens.

use super::FormulaError;
use winnow::combinator::{alt, opt, preceded};
use winnow::error::ContextError;
use winnow::prelude::*;
use winnow::token::{one_of, take_until, take_while};

/// A token's kind and text.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A number literal.
    Num(f64),
    /// A name: a variable (`$x`, `x`), a function, a constant or a member.
    Name(String),
    /// A `"…"` literal's content.
    Str(String),
    /// An operator or punctuation.
    Punct(&'static str),
}

/// A token and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub at: usize,
}

type PResult<T> = winnow::ModalResult<T>;

const PUNCTS: &[&str] = &["==", "!=", "<=", ">=", "&&", "||", "(", ")", ",", ";", ".", "?", ":", "=", "<", ">", "+", "-", "*", "/", "!"];

fn digits<'s>(i: &mut &'s str) -> PResult<&'s str> {
    take_while(1.., |c: char| c.is_ascii_digit()).parse_next(i)
}

fn number(i: &mut &str) -> PResult<f64> {
    let exponent = (one_of(['e', 'E']), opt(one_of(['+', '-'])), digits);
    let mantissa = alt(((digits, opt(('.', take_while(0.., |c: char| c.is_ascii_digit())))).void(), ('.', digits).void()));
    (mantissa, opt(exponent)).take().try_map(str::parse::<f64>).parse_next(i)
}

fn name(i: &mut &str) -> PResult<String> {
    (opt('$'), one_of(|c: char| c.is_ascii_alphabetic() || c == '_'), take_while(0.., |c: char| c.is_ascii_alphanumeric() || c == '_'))
        .take()
        .map(str::to_string)
        .parse_next(i)
}

fn string(i: &mut &str) -> PResult<String> {
    preceded('"', (take_while(0.., |c: char| c != '"' && c != '\n' && c != '\r'), '"'))
        .map(|(s, _): (&str, char)| s.to_string())
        .parse_next(i)
}

fn punct(i: &mut &str) -> PResult<&'static str> {
    for p in PUNCTS {
        if i.starts_with(p) {
            *i = &i[p.len()..];
            return Ok(p);
        }
    }
    Err(winnow::error::ErrMode::Backtrack(ContextError::new()))
}

/// Runs `p` on a copy of the input; on success the input moves past what it took.
fn attempt<'s, T>(i: &mut &'s str, mut p: impl FnMut(&mut &'s str) -> PResult<T>) -> Option<T> {
    let mut j = *i;
    let v = p(&mut j).ok()?;
    *i = j;
    Some(v)
}

/// Skips whitespace and comments. Errors: an unterminated `/*` comment (the offset of `/*`).
fn skip(src: &str, i: &mut &str) -> Result<(), FormulaError> {
    loop {
        let _ = take_while::<_, _, ContextError>(0.., |c: char| matches!(c, ' ' | '\t' | '\r' | '\n')).parse_next(i);
        if i.starts_with("//") {
            let n = i.find('\n').unwrap_or(i.len());
            *i = &i[n..];
        } else if i.starts_with("/*") {
            let at = src.len() - i.len();
            let mut rest = &i[2..];
            let body: Result<&str, winnow::error::ErrMode<ContextError>> = take_until(0.., "*/").parse_next(&mut rest);
            if body.is_err() {
                return Err(FormulaError::syntax(src, at, "the comment `/*` is not closed with `*/`"));
            }
            *i = &rest[2..];
        } else {
            return Ok(());
        }
    }
}

/// Splits a formula into tokens.
///
/// Errors: [`FormulaError`] (syntax) at a character that starts no token, an unterminated
/// string or comment, or a number out of the double range.
pub fn tokens(src: &str) -> Result<Vec<Token>, FormulaError> {
    let mut i = src;
    let mut out = Vec::new();
    loop {
        skip(src, &mut i)?;
        if i.is_empty() {
            return Ok(out);
        }
        let at = src.len() - i.len();
        let tok = if i.starts_with('"') {
            attempt(&mut i, string)
                .map(Tok::Str)
                .ok_or_else(|| FormulaError::syntax(src, at, "the string is not closed with `\"` on its line"))?
        } else if let Some(n) = attempt(&mut i, number) {
            if !n.is_finite() {
                return Err(FormulaError::syntax(src, at, "the number is out of the range of a double"));
            }
            Tok::Num(n)
        } else if let Some(n) = attempt(&mut i, name) {
            Tok::Name(n)
        } else if let Some(p) = attempt(&mut i, punct) {
            Tok::Punct(p)
        } else {
            let c = i.chars().next().unwrap_or(' ');
            return Err(FormulaError::syntax(src, at, format!("unexpected character `{c}`")));
        };
        out.push(Token { tok, at });
    }
}
