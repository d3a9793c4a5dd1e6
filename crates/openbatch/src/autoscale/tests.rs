//! Tests of the formula syntax, the checks and the error positions.

use super::*;

fn syntax_err(src: &str) -> FormulaError {
    let e = parse(src).expect_err(src);
    assert_eq!(e.kind, ErrorKind::Syntax, "{src}: {e}");
    e
}

#[test]
fn statements_comments_and_whitespace() {
    parse("$TargetDedicatedNodes=2").unwrap();
    parse("$TargetDedicatedNodes = 2;").unwrap();
    parse(";;a = 1;; b = a;\n").unwrap();
    parse("// leading comment\na = 1; /* block\n comment */ $TargetDedicatedNodes = a; // trailing").unwrap();
    parse("a = 1 /* inside */ + 2;").unwrap();
    parse("a = .5e1 + 1.e-3 + 2E+2;").unwrap();
    parse("stop();").unwrap();
}

#[test]
fn numbers_and_strings_lex() {
    let toks = lexer::tokens("x=1.5e2 \"Mon, 17 Oct 2016 10:00:00 GMT\" <= && ||").unwrap();
    let kinds: Vec<_> = toks.iter().map(|t| t.tok.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            lexer::Tok::Name("x".into()),
            lexer::Tok::Punct("="),
            lexer::Tok::Num(150.0),
            lexer::Tok::Str("Mon, 17 Oct 2016 10:00:00 GMT".into()),
            lexer::Tok::Punct("<="),
            lexer::Tok::Punct("&&"),
            lexer::Tok::Punct("||"),
        ]
    );
    assert_eq!(toks[2].at, 2);
}

#[test]
fn lexical_errors_carry_their_position() {
    let e = syntax_err("a = 1;\nb = 2 # 3;");
    assert_eq!((e.line, e.col), (2, 7));
    assert!(e.message.contains("unexpected character `#`"), "{e}");
    let e = syntax_err("a = \"open");
    assert_eq!((e.line, e.col), (1, 5));
    let e = syntax_err("a = 1; /* never closed");
    assert_eq!((e.line, e.col), (1, 8));
    assert!(e.message.contains("not closed"));
    let e = syntax_err("a = 1e999;");
    assert!(e.message.contains("range of a double"), "{e}");
    assert_eq!(e.to_string(), "Line 1, Col 5: the number is out of the range of a double");
}

#[test]
fn grammar_errors_carry_their_position() {
    let e = syntax_err("$TargetDedicatedNodes = (1 + 2;");
    assert_eq!((e.line, e.col), (1, 31));
    assert!(e.message.contains("expected `)`"), "{e}");
    let e = syntax_err("a = 1 2;");
    assert_eq!(e.col, 7);
    assert!(e.message.contains("expected `;`"), "{e}");
    let e = syntax_err("a = ;");
    assert!(e.message.contains("found `;`"), "{e}");
    let e = syntax_err("a = 1 ? 2;");
    assert!(e.message.contains("expected `:`"), "{e}");
    let e = syntax_err("a = max(1, 2;");
    assert!(e.message.contains("expected `,` or `)`"), "{e}");
    let e = syntax_err("a = time().;");
    assert!(e.message.contains("after `.`"), "{e}");
    let e = syntax_err("a = (1).GetSample(1);");
    assert!(e.message.contains("service-defined variable"), "{e}");
    let e = syntax_err("   ");
    assert!(e.message.contains("no statement"));
}

#[test]
fn checks_names_functions_and_methods() {
    let e = syntax_err("$TargetDedicatedNodes = y;");
    assert!(e.message.contains("`y` is not defined"), "{e}");
    assert_eq!(e.col, 25);
    syntax_err("x = x + 1;");
    parse("x = 1; x = x + 1;").unwrap();
    let e = syntax_err("$PendingTasks = 3;");
    assert!(e.message.contains("read-only"), "{e}");
    syntax_err("TimeInterval_Second = 3;");
    let e = syntax_err("a = foo(1);");
    assert!(e.message.contains("`foo` is not a function"), "{e}");
    let e = syntax_err("a = percentile(1);");
    assert!(e.message.contains("takes 2 argument(s), not 1"), "{e}");
    syntax_err("a = rand(1);");
    syntax_err("a = time(1, 2);");
    let e = syntax_err("a = $PendingTasks.GetSamples(1);");
    assert!(e.message.contains("not a method"), "{e}");
    syntax_err("a = $PendingTasks.GetSample();");
    syntax_err("a = $PendingTasks.Count(1);");
    let e = syntax_err("b = 1; a = b.GetSample(1);");
    assert!(e.message.contains("read-only service-defined variable"), "{e}");
    let e = syntax_err("a = time().hours;");
    assert!(e.message.contains("not a member"), "{e}");
    syntax_err("$max = 1;");
    // Service-defined names, constants and deallocation keywords are known.
    parse("a = $CPUPercent + $CurrentDedicated + TimeInterval_Week * 0 + $TargetLowPriority; $NodeDeallocationOption = retaineddata;")
        .unwrap();
    parse("$TargetDedicated = 1; $TargetLowPriority = 2;").unwrap();
}

#[test]
fn every_function_and_method_name_parses() {
    for (f, arity) in parser::FUNCTIONS {
        let n = arity.map_or(1, |(min, _)| min);
        let args = vec!["1"; n].join(",");
        parse(&format!("a = {f}({args});")).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    for (m, min, _) in parser::METHODS {
        let args = vec!["1"; *min].join(",");
        parse(&format!("a = $ActiveTasks.{m}({args});")).unwrap_or_else(|e| panic!("{m}: {e}"));
    }
    for m in Metric::ALL {
        parse(&format!("a = {};", m.name())).unwrap();
    }
    for (t, _) in types::TIME_INTERVALS {
        parse(&format!("a = {t};")).unwrap();
    }
}

#[test]
fn limits() {
    let long = format!("a = 1;{}", " ".repeat(MAX_FORMULA_BYTES));
    let e = parse(&long).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooLong);
    assert_eq!(e.code(), "AutoScaleFormulaTooLong");
    parse(&format!("a = 1;{}", " ".repeat(MAX_FORMULA_BYTES - 6))).unwrap();
    let hundred: String = (0..100).map(|i| format!("a{i} = {i};")).collect();
    parse(&hundred).unwrap();
    let e = syntax_err(&format!("{hundred} b = 1;"));
    assert!(e.message.contains("at most 100 statements"), "{e}");
    let deep = format!("a = {}1{};", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
    let e = syntax_err(&deep);
    assert!(e.message.contains("nested more than"), "{e}");
    let chain = format!("a = 1{};", "+1".repeat(MAX_DEPTH + 5));
    syntax_err(&chain);
    let unary = format!("a = {}1;", "-".repeat(MAX_DEPTH + 5));
    syntax_err(&unary);
    parse(&format!("a = 1{};", "+1".repeat(MAX_DEPTH / 2))).unwrap();
}

#[test]
fn error_codes_and_summaries() {
    let e = FormulaError::new(ErrorKind::InsufficientSamples, "ab\ncd", 4, "x");
    assert_eq!((e.line, e.col), (2, 2));
    assert_eq!(e.code(), "InsufficientSampleData");
    assert_eq!(e.summary(), "Autoscale evaluation failed due to insufficient sample data");
    assert_eq!(FormulaError::syntax("", 0, "x").code(), "AutoScalingFormulaSyntaxError");
    assert_eq!(FormulaError::new(ErrorKind::Evaluation, "", 0, "x").code(), "FormulaEvaluationError");
}

#[test]
fn values_format_as_results_text() {
    use types::{format_interval, Value as V};
    assert_eq!(V::Double(2.0).to_string(), "2");
    assert_eq!(V::Double(0.5).to_string(), "0.5");
    assert_eq!(V::Double(-0.0).to_string(), "0");
    assert_eq!(V::Double(f64::NAN).to_string(), "NaN");
    assert_eq!(V::Double(f64::INFINITY).to_string(), "Infinity");
    assert_eq!(V::Vec(vec![1.0, 2.5]).to_string(), "[1,2.5]");
    assert_eq!(V::Vec(vec![]).to_string(), "[]");
    assert_eq!(V::Str("requeue".into()).to_string(), "requeue");
    assert_eq!(format_interval(90 * types::TICKS_PER_SECOND), "00:01:30");
    assert_eq!(format_interval(-(86_400 + 3_600) * types::TICKS_PER_SECOND - 5), "-1.01:00:00.0000005");
    let t = chrono::DateTime::parse_from_rfc3339("2016-10-13T19:18:47.805Z").unwrap().with_timezone(&chrono::Utc);
    assert_eq!(V::Timestamp(t).to_string(), "2016-10-13T19:18:47.805Z");
}
