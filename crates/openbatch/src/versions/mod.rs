//! api-versions as data: which operations, properties and enum values each published version
//! has ([`table`], generated from the per-release wire tables and the seed), and the
//! renames, moves and defaults that differ between them ([`rules`]).
//!
//! Requests are read with the caller's version's names and converted to the canonical
//! (2022-10-01.16.0) shapes by [`upgrade_request`]; a property the version does not have is
//! refused with 400 `InvalidPropertyValue` naming it and the version. Responses are converted
//! back by [`downgrade_response`] and carry exactly the properties of the caller's version,
//! under its names. No handler branches on the version.

pub mod rules;
#[rustfmt::skip]
pub mod table;

use crate::api::error::BatchError;
use crate::api::version::{ApiVersion, PUBLISHED};
use axum::http::StatusCode;
use rules::{DefaultValue, DEFAULTS, ENUM_RENAMES, MOVES, RENAMES, REQUIRED, RUN_ELEVATED_LAST, RUN_ELEVATED_MODELS};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

/// A property of a model in versions `first..=last`.
#[derive(Debug, Clone, Copy)]
pub struct PropRow {
    pub model: &'static str,
    pub name: &'static str,
    /// Wire type: `str`, `int`, `bool`, a model or enum name, `[T]` for arrays, `{T}` for maps.
    pub ty: &'static str,
    pub first: u8,
    pub last: u8,
}

/// An enum value in versions `first..=last`.
#[derive(Debug, Clone, Copy)]
pub struct EnumRow {
    pub name: &'static str,
    pub value: &'static str,
    pub first: u8,
    pub last: u8,
}

/// An operation (method and path template) in versions `first..=last`.
#[derive(Debug, Clone, Copy)]
pub struct OpRow {
    pub method: &'static str,
    pub path: &'static str,
    pub first: u8,
    pub last: u8,
}

fn idx(v: ApiVersion) -> u8 {
    v.index()
}

struct Index {
    props: HashMap<(&'static str, &'static str), Vec<PropRow>>,
    models: HashSet<&'static str>,
    enums: HashMap<&'static str, Vec<EnumRow>>,
}

static INDEX: LazyLock<Index> = LazyLock::new(|| {
    let mut props: HashMap<_, Vec<PropRow>> = HashMap::new();
    let mut models = HashSet::new();
    for p in table::PROPERTIES {
        props.entry((p.model, p.name)).or_default().push(*p);
        models.insert(p.model);
    }
    let mut enums: HashMap<_, Vec<EnumRow>> = HashMap::new();
    for e in table::ENUMS {
        enums.entry(e.name).or_default().push(*e);
    }
    Index { props, models, enums }
});

/// The row of `model.name` at version `v`, if the version has that property.
pub fn property(model: &str, name: &str, v: ApiVersion) -> Option<PropRow> {
    let i = idx(v);
    INDEX.props.get(&(model, name)).and_then(|rows| rows.iter().find(|r| r.first <= i && i <= r.last).copied())
}

/// True when version `v` has a model of this name (any of its properties).
pub fn has_model(model: &str, v: ApiVersion) -> bool {
    let i = idx(v);
    table::PROPERTIES.iter().any(|p| p.model == model && p.first <= i && i <= p.last)
}

/// True when `method` + `path_template` (placeholder names ignored) exists at `v`.
pub fn operation_exists(method: &str, path_template: &str, v: ApiVersion) -> bool {
    let i = idx(v);
    let norm = normalize_template;
    let want = norm(path_template);
    table::OPERATIONS.iter().any(|o| o.method == method && norm(o.path) == want && o.first <= i && i <= o.last)
}

/// True when Compute Node Reimage at `v` may be invoked only on pools created with
/// `cloudServiceConfiguration` — the documented rule (and the recorded 409 of 2022-01-01.15.0)
/// of every version that has Cloud Services pools. 2024-07-01.20.0 removed them (and brought
/// Reimage back with Start and Deallocate, after 2024-02-01.19.0's client left it out), so
/// from then on Reimage applies to virtual machine pools.
pub fn reimage_needs_cloud_service(v: ApiVersion) -> bool {
    property("CloudPool", "cloudServiceConfiguration", v).is_some()
}

/// The documented operation (method and path template) that `method` + `path` names at
/// version `v`, if any: placeholders match one segment, and a trailing `{filePath}` the rest.
pub fn documented_operation(method: &str, path: &str, v: ApiVersion) -> Option<&'static str> {
    let i = idx(v);
    let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    table::OPERATIONS.iter().filter(|o| o.method == method && o.first <= i && i <= o.last).map(|o| o.path).find(|template| {
        let t: Vec<&str> = template.trim_matches('/').split('/').collect();
        let rest = t.last().is_some_and(|l| *l == "{filePath}");
        let fixed = if rest { t.len() - 1 } else { t.len() };
        if (rest && segs.len() < t.len()) || (!rest && segs.len() != t.len()) {
            return false;
        }
        t[..fixed].iter().zip(&segs).all(|(a, b)| {
            if a.starts_with('{') && a.ends_with('}') {
                true
            } else if let Some(open) = a.find('(') {
                // `certificates(thumbprintAlgorithm={…},thumbprint={…})`
                b.starts_with(&a[..=open])
            } else {
                a == b
            }
        })
    })
}

/// The element type of a wire type (`[X]` → `X`, `{X}` → `X`), and whether it is a collection.
fn element(ty: &str) -> (&str, bool) {
    if let Some(inner) = ty.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        (inner, true)
    } else if let Some(inner) = ty.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        (inner, true)
    } else {
        (ty, false)
    }
}

fn rename_for_old<'a>(model: &str, old: &str, i: u8) -> Option<&'a rules::Rename> {
    RENAMES.iter().find(|r| r.old == old && i <= r.last_old && r.models.contains(&model))
}

fn rename_for_new<'a>(model: &str, new: &str, i: u8) -> Option<&'a rules::Rename> {
    RENAMES.iter().find(|r| r.new == new && i <= r.last_old && r.models.contains(&model))
}

fn not_in_version(path: &str, name: &str, model: &str, v: ApiVersion) -> BatchError {
    BatchError::new(
        StatusCode::BAD_REQUEST,
        "InvalidPropertyValue",
        "The value provided for one of the properties in the request body is invalid.",
    )
    .with("PropertyName", path)
    .with("Reason", format!("{model} has no property '{name}' in api-version {}.", v.as_str()))
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Reads a request body of `model` written for version `v` and returns it in canonical
/// (2022-10-01.16.0) form: old names renamed, moved properties put in place, `runElevated`
/// turned into `userIdentity`, enum values checked (case-insensitively) and the version's
/// defaults filled in.
///
/// Errors: 400 `InvalidPropertyValue` naming a property or enum value the version does not
/// have.
pub fn upgrade_request(model: &str, value: Value, v: ApiVersion) -> Result<Value, BatchError> {
    upgrade(body_model(model, v), value, v, "")
}

/// The model a request body of `model` is read as at version `v` (see [`rules::BODY_MODELS`]).
fn body_model(model: &str, v: ApiVersion) -> &str {
    let i = idx(v);
    rules::BODY_MODELS.iter().find(|b| b.model == model && b.first <= i).map_or(model, |b| b.read_as)
}

fn upgrade(model: &str, value: Value, v: ApiVersion, path: &str) -> Result<Value, BatchError> {
    let i = idx(v);
    let Value::Object(obj) = value else {
        return Ok(value);
    };
    let mut out = Map::new();
    for (name, val) in obj {
        // OData annotations (`odata.metadata`, `x@odata.type`) describe a body; they are not
        // properties. The 15.x clients send back what a Get returned (get, change, replace).
        if name.starts_with("odata.") || name.contains("@odata.") {
            continue;
        }
        let here = join(path, &name);
        // runElevated (up to 2016-07-01.3.1) → userIdentity.autoUser.elevationLevel.
        if name == "runElevated" && i <= RUN_ELEVATED_LAST && RUN_ELEVATED_MODELS.contains(&model) {
            if val.as_bool() == Some(true) {
                out.insert("userIdentity".into(), json!({"autoUser": {"elevationLevel": "admin"}}));
            }
            continue;
        }
        let Some(row) = property(model, &name, v) else {
            return Err(not_in_version(&here, &name, model, v));
        };
        let (elem, _) = element(row.ty);
        let converted = rename_enum_at(model, &name, convert_value(elem, val, v, &here, Direction::Up)?, i, Direction::Up);
        if let Some(mv) = MOVES.iter().find(|m| m.old == name && i <= m.last_old && m.models.contains(&model)) {
            set_path(&mut out, mv.path, converted);
            continue;
        }
        match rename_for_old(model, &name, i) {
            Some(r) if r.singular => {
                out.insert(r.new.to_string(), Value::Array(vec![converted]));
            }
            Some(r) => {
                out.insert(r.new.to_string(), converted);
            }
            None => {
                out.insert(name, converted);
            }
        }
    }
    if let Some(r) = REQUIRED.iter().find(|r| r.model == model && r.first <= i && !out.contains_key(r.name)) {
        return Err(BatchError::missing_property(&join(path, r.name)));
    }
    for d in DEFAULTS.iter().filter(|d| d.model == model && d.first <= i && i <= d.last) {
        fill_default(&mut out, d.path, d.value);
    }
    Ok(Value::Object(out))
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Up,
    Down,
}

/// Converts a property value of element type `elem` (recursing into models and arrays,
/// checking or mapping enum values).
fn convert_value(elem: &str, val: Value, v: ApiVersion, path: &str, dir: Direction) -> Result<Value, BatchError> {
    match val {
        Value::Array(items) => Ok(Value::Array(items.into_iter().map(|x| convert_value(elem, x, v, path, dir)).collect::<Result<_, _>>()?)),
        Value::Object(_) if INDEX.models.contains(elem) => match dir {
            Direction::Up => upgrade(elem, val, v, path),
            Direction::Down => Ok(downgrade(elem, val, v)),
        },
        Value::String(s) if INDEX.enums.contains_key(elem) => convert_enum(elem, s, v, path, dir).map(Value::String),
        Value::String(s) if dir == Direction::Up && matches!(elem, "int" | "long" | "float") => numeric_string(elem, s, path),
        Value::String(s) if dir == Direction::Up && elem == "duration" => Ok(Value::String(canonical_duration(s))),
        other => Ok(other),
    }
}

/// A duration in the form the service writes it (`PT1M` for the `PT01M00S` a 15.x client
/// sends, the .NET maximum for "unlimited"); a value that is not an ISO 8601 duration stays as
/// sent, for the operation's own check to refuse with its error.
fn canonical_duration(s: String) -> String {
    use crate::model::time::{format_duration, parse_duration, IsoDuration, UNLIMITED_DURATION};
    match parse_duration(&s) {
        Some(IsoDuration(Some(d))) => format_duration(d),
        Some(IsoDuration(None)) => UNLIMITED_DURATION.to_string(),
        None => s,
    }
}

/// A number sent as a JSON string where the wire type is numeric (`"targetDedicatedNodes":
/// "2"`, as the Azure CLI sends integer options; 15.x clients send int64 values as strings).
/// The real service accepts these, so openbatch does too.
///
/// Errors: 400 `InvalidPropertyValue` naming the property when the string is not a number of
/// that type.
fn numeric_string(elem: &str, s: String, path: &str) -> Result<Value, BatchError> {
    let t = s.trim();
    let parsed = match elem {
        "float" => t.parse::<f64>().ok().filter(|f| f.is_finite()).and_then(serde_json::Number::from_f64),
        _ => t.parse::<i64>().ok().map(serde_json::Number::from),
    };
    parsed.map(Value::Number).ok_or_else(|| {
        let what = if elem == "float" { "a number" } else { "an integer" };
        BatchError::invalid_property(path, s.clone(), format!("'{s}' is not {what}."))
    })
}

fn convert_enum(name: &str, s: String, v: ApiVersion, path: &str, dir: Direction) -> Result<String, BatchError> {
    let i = idx(v);
    match dir {
        Direction::Up => {
            let rows = &INDEX.enums[name];
            if !rows.iter().any(|r| r.first <= i && i <= r.last && r.value.eq_ignore_ascii_case(&s)) {
                // An old spelling the table lists under its renamed value.
                if let Some(r) =
                    ENUM_RENAMES.iter().find(|r| r.name == name && !r.downgrade_only && i <= r.last_old && r.old.eq_ignore_ascii_case(&s))
                {
                    return Ok(r.new.to_string());
                }
                let allowed: Vec<&str> = rows.iter().filter(|r| r.first <= i && i <= r.last).map(|r| r.value).collect();
                return Err(BatchError::invalid_property(
                    path,
                    s.clone(),
                    format!("'{s}' is not a {name} value in api-version {}; expected one of: {}.", v.as_str(), allowed.join(", ")),
                ));
            }
            if let Some(r) =
                ENUM_RENAMES.iter().find(|r| r.name == name && !r.downgrade_only && i <= r.last_old && r.old.eq_ignore_ascii_case(&s))
            {
                return Ok(r.new.to_string());
            }
            Ok(s)
        }
        Direction::Down => {
            if let Some(r) = ENUM_RENAMES.iter().find(|r| r.name == name && i <= r.last_old && r.new.eq_ignore_ascii_case(&s)) {
                return Ok(r.old.to_string());
            }
            Ok(s)
        }
    }
}

/// Applies the enum renames declared for a property typed as a plain string.
fn rename_enum_at(model: &str, name: &str, value: Value, i: u8, dir: Direction) -> Value {
    let Value::String(s) = &value else {
        return value;
    };
    for r in ENUM_RENAMES.iter().filter(|r| i <= r.last_old && r.at.contains(&(model, name))) {
        match dir {
            Direction::Up if !r.downgrade_only && r.old.eq_ignore_ascii_case(s) => return Value::String(r.new.to_string()),
            Direction::Down if r.new.eq_ignore_ascii_case(s) => return Value::String(r.old.to_string()),
            _ => {}
        }
    }
    value
}

fn set_path(obj: &mut Map<String, Value>, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for p in parents {
        let next = cur.entry(p.to_string()).or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        let Value::Object(m) = next else { return };
        cur = m;
    }
    cur.insert(last.to_string(), value);
}

fn take_path(obj: &mut Map<String, Value>, path: &[&str]) -> Option<Value> {
    let (last, parents) = path.split_last()?;
    let mut cur = obj;
    for p in parents {
        cur = cur.get_mut(*p)?.as_object_mut()?;
    }
    cur.remove(*last)
}

fn fill_default(obj: &mut Map<String, Value>, path: &[&str], value: DefaultValue) {
    let v = match value {
        DefaultValue::Bool(b) => Value::Bool(b),
        DefaultValue::Int(n) => Value::from(n),
        DefaultValue::Str(s) => Value::String(s.to_string()),
    };
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for p in parents {
        let next = cur.entry(p.to_string()).or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(m) = next else { return };
        cur = m;
    }
    cur.entry(last.to_string()).or_insert(v);
}

/// Converts a canonical resource of `model` to what version `v` shows: properties renamed to
/// the version's names, moved back, `userIdentity` shown as `runElevated` where that is the
/// version's property, enum values the version spells differently mapped, and every property
/// the version does not have left out. `odata.*` annotations are kept.
pub fn downgrade_response(model: &str, value: Value, v: ApiVersion) -> Value {
    downgrade(model, value, v)
}

fn downgrade(model: &str, value: Value, v: ApiVersion) -> Value {
    let i = idx(v);
    let Value::Object(mut obj) = value else {
        return value;
    };
    for mv in MOVES.iter().filter(|m| i <= m.last_old && m.models.contains(&model)) {
        if let Some(x) = take_path(&mut obj, mv.path) {
            obj.insert(mv.old.to_string(), x);
        }
    }
    if i <= RUN_ELEVATED_LAST && RUN_ELEVATED_MODELS.contains(&model) {
        let admin = obj
            .get("userIdentity")
            .and_then(|u| u.pointer("/autoUser/elevationLevel"))
            .and_then(Value::as_str)
            .is_some_and(|l| l.eq_ignore_ascii_case("admin"));
        if obj.contains_key("userIdentity") {
            obj.insert("runElevated".into(), Value::Bool(admin));
        }
    }
    let mut out = Map::new();
    for (name, val) in obj {
        if name.starts_with("odata.") || name.contains("@odata.") {
            out.insert(name, val);
            continue;
        }
        let (wire_name, singular) = match rename_for_new(model, &name, i) {
            Some(r) if val.get("code").and_then(Value::as_str).is_some_and(|c| r.old_omits_codes.contains(&c)) => continue,
            Some(r) => (r.old.to_string(), r.singular),
            None => (name.clone(), false),
        };
        let Some(row) = property(model, &wire_name, v) else {
            continue;
        };
        let val = if singular {
            match val {
                Value::Array(mut a) if !a.is_empty() => a.remove(0),
                Value::Array(_) => continue,
                other => other,
            }
        } else {
            val
        };
        let (elem, _) = element(row.ty);
        if let Ok(x) = convert_value(elem, val, v, "", Direction::Down) {
            out.insert(wire_name.clone(), rename_enum_at(model, &wire_name, x, i, Direction::Down));
        }
    }
    Value::Object(out)
}

/// Task counts as version `v` shows them: `TaskCountsResult` (`taskCounts` and
/// `taskSlotCounts`) from 2020-09-01.12.0; before, the flat `TaskCounts` (with
/// `validationStatus` where the version has it).
pub fn task_counts(result: Value, base: &str, v: ApiVersion) -> Value {
    if has_model("TaskCountsResult", v) {
        let mut out = downgrade("TaskCountsResult", result, v);
        if let Some(o) = out.as_object_mut() {
            o.insert("odata.metadata".into(), Value::String(format!("{base}/$metadata#taskcountsresult/@Element")));
        }
        return out;
    }
    let mut counts = result.get("taskCounts").cloned().unwrap_or_else(|| json!({}));
    if let Some(o) = counts.as_object_mut() {
        if property("TaskCounts", "validationStatus", v).is_some() {
            o.insert("validationStatus".into(), json!("validated"));
        }
    }
    let mut out = downgrade("TaskCounts", counts, v);
    if let Some(o) = out.as_object_mut() {
        o.insert("odata.metadata".into(), Value::String(format!("{base}/$metadata#taskcounts/@Element")));
    }
    out
}

/// A path template with placeholder names removed (`/pools/{}`), so templates that differ
/// only in parameter names compare equal.
fn normalize_template(p: &str) -> String {
    let mut out = String::new();
    let mut skip = false;
    for c in p.chars() {
        match c {
            '{' => {
                skip = true;
                out.push('{');
            }
            '}' => {
                skip = false;
                out.push('}');
            }
            _ if skip => {}
            _ => out.push(c),
        }
    }
    out
}

fn operations_at(i: u8) -> std::collections::BTreeMap<String, String> {
    table::OPERATIONS
        .iter()
        .filter(|o| o.first <= i && i <= o.last)
        .map(|o| (format!("{} {}", o.method, normalize_template(o.path)), format!("{} {}", o.method, o.path)))
        .collect()
}

/// Markdown tables of the published api-versions and what changes in each, generated from the
/// version table and its rules (the README's "api-versions" section).
pub fn markdown() -> String {
    let mut s = String::from("| api-version | operations | added | removed or renamed |\n|---|---:|---|---|\n");
    for (i, name) in PUBLISHED.iter().enumerate() {
        let i = i as u8;
        let ops = operations_at(i);
        let before = if i > 0 { operations_at(i - 1) } else { ops.clone() };
        let mut added: Vec<String> = ops.iter().filter(|(k, _)| !before.contains_key(*k)).map(|(_, o)| format!("+{o}")).collect();
        let mut gone: Vec<String> = before.iter().filter(|(k, _)| !ops.contains_key(*k)).map(|(_, o)| format!("−{o}")).collect();
        let props_added: Vec<String> = table::PROPERTIES
            .iter()
            .filter(|p| p.first == i && i > 0 && is_resource_model(p.model))
            .map(|p| format!("{}.{}", p.model, p.name))
            .collect();
        let props_gone: Vec<String> = table::PROPERTIES
            .iter()
            .filter(|p| i > 0 && p.last + 1 == i && is_resource_model(p.model))
            .map(|p| format!("{}.{}", p.model, p.name))
            .collect();
        added.push(join_short(&props_added));
        gone.push(join_short(&props_gone));
        let cell = |v: Vec<String>| {
            let v: Vec<String> = v.into_iter().filter(|x| !x.is_empty()).collect();
            if v.is_empty() {
                "—".to_string()
            } else {
                v.join("; ")
            }
        };
        s.push_str(&format!("| {name} | {} | {} | {} |\n", ops.len(), cell(added), cell(gone)));
    }
    s.push_str("\n| rule | versions | change |\n|---|---|---|\n");
    let ver = |i: u8| PUBLISHED[i as usize];
    for r in RENAMES {
        s.push_str(&format!(
            "| rename | up to {} | {} `{}` → `{}`{} |\n",
            ver(r.last_old),
            r.models.join(", "),
            r.old,
            r.new,
            if r.singular { " (one item → a collection)" } else { "" }
        ));
    }
    for m in MOVES {
        s.push_str(&format!("| move | up to {} | {} `{}` → `{}` |\n", ver(m.last_old), m.models.join(", "), m.old, m.path.join(".")));
    }
    s.push_str(&format!(
        "| replace | up to {} | {} `runElevated` → `userIdentity.autoUser.elevationLevel`; refused after |\n",
        ver(RUN_ELEVATED_LAST),
        RUN_ELEVATED_MODELS.join(", ")
    ));
    for e in ENUM_RENAMES {
        s.push_str(&format!(
            "| enum value | up to {} | {} `{}` {} `{}` |\n",
            ver(e.last_old),
            e.name,
            e.new,
            if e.downgrade_only { "is shown as" } else { "is spelled" },
            e.old
        ));
    }
    for r in REQUIRED {
        s.push_str(&format!("| required | from {} | {} `{}` ({}) |\n", ver(r.first), r.model, r.name, r.note));
    }
    for d in DEFAULTS {
        let value = match d.value {
            DefaultValue::Bool(b) => b.to_string(),
            DefaultValue::Int(n) => n.to_string(),
            DefaultValue::Str(x) => x.to_string(),
        };
        s.push_str(&format!(
            "| default | {} to {} | {} `{}` = `{}` ({}) |\n",
            ver(d.first),
            ver(d.last),
            d.model,
            d.path.join("."),
            value,
            d.note
        ));
    }
    s
}

fn is_resource_model(m: &str) -> bool {
    matches!(
        m,
        "CloudPool"
            | "CloudJob"
            | "CloudTask"
            | "ComputeNode"
            | "CloudJobSchedule"
            | "StartTask"
            | "TaskExecutionInformation"
            | "ResourceFile"
            | "TaskCounts"
            | "TaskCountsResult"
            | "UserAccount"
            | "VirtualMachineConfiguration"
            | "CloudServiceConfiguration"
            | "ExitConditions"
            | "MultiInstanceSettings"
            | "ImageReference"
    )
}

fn join_short(items: &[String]) -> String {
    const MAX: usize = 8;
    if items.len() <= MAX {
        items.join(", ")
    } else {
        format!("{} and {} more", items[..MAX].join(", "), items.len() - MAX)
    }
}

#[cfg(test)]
mod tests;
