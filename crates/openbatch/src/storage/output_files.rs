//! Output files: checked when a task is added, resolved into [`OutputFileSpec`]s, and uploaded
//! by the node agent after the task's process ends and before it reports completion, when the
//! `uploadCondition` matches how it ended. The agent logs what it uploaded to
//! `fileuploadout.txt` and what failed to `fileuploaderr.txt` in the task directory; a failed
//! upload gives the task the `failureInfo` code `FileUploadError` (category `UserError`).
//!
//! Patterns (`filePattern`) are relative to the working directory and may reach the task
//! directory (`../std*.txt`), never above it. `*` and `?` match within a path segment, `**`
//! any number of segments, `[...]` a character class. A pattern matching nothing is not an
//! error. Without wildcards, `path` is the blob name (default: the file name); with them, it is
//! the virtual directory the matches go under, each named by its path below the pattern's
//! fixed leading directories.

use super::blob;
use super::{redact, ContainerRef, OutputFileSpec, TransferError, UploadCondition};
use serde_json::Value;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

/// The reason [`check`] gives for a missing required property.
pub const REQUIRED: &str = "This property is required.";

/// Checks one API `OutputFile` at `path` (e.g. `outputFiles[0]`).
///
/// Errors: `(property, value, reason)` for a 400: a missing `filePattern`,
/// `destination.container.containerUrl` or `uploadOptions.uploadCondition`
/// (`MissingRequiredProperty` when the value is empty), a container URL that is not one, an
/// unknown upload condition.
pub fn check(path: &str, of: &Value) -> Result<(), (String, String, String)> {
    let s = |p: &str| of.pointer(p).and_then(Value::as_str);
    let missing = |k: &str| Err((format!("{path}.{k}"), String::new(), REQUIRED.to_string()));
    if s("/filePattern").is_none_or(str::is_empty) {
        return missing("filePattern");
    }
    let Some(url) = s("/destination/container/containerUrl") else { return missing("destination.container.containerUrl") };
    if let Err(why) = blob::parse_container_url(url) {
        return Err((format!("{path}.destination.container.containerUrl"), redact(url), why));
    }
    let Some(cond) = s("/uploadOptions/uploadCondition") else { return missing("uploadOptions.uploadCondition") };
    if UploadCondition::parse(cond).is_none() {
        return Err((
            format!("{path}.uploadOptions.uploadCondition"),
            cond.to_string(),
            "Expected taskSuccess, taskFailure or taskCompletion.".into(),
        ));
    }
    Ok(())
}

/// Checks every output file of a task.
///
/// Errors: as [`check`].
pub fn check_all(files: Option<&[Value]>) -> Result<(), (String, String, String)> {
    for (i, of) in files.unwrap_or_default().iter().enumerate() {
        check(&format!("outputFiles[{i}]"), of)?;
    }
    Ok(())
}

/// Turns checked API output files into what the node agent uploads.
pub fn specs(files: Option<&[Value]>) -> Vec<OutputFileSpec> {
    let mut out = Vec::new();
    for of in files.unwrap_or_default() {
        let s = |p: &str| of.pointer(p).and_then(Value::as_str).map(str::to_string);
        let (Some(pattern), Some(url), Some(cond)) = (
            s("/filePattern"),
            s("/destination/container/containerUrl"),
            s("/uploadOptions/uploadCondition").and_then(|c| UploadCondition::parse(&c)),
        ) else {
            continue;
        };
        let headers = of
            .pointer("/destination/container/uploadHeaders")
            .and_then(Value::as_array)
            .map(|h| {
                h.iter()
                    .filter_map(|x| {
                        Some((x.get("name")?.as_str()?.to_string(), x.get("value").and_then(Value::as_str).unwrap_or("").to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(OutputFileSpec {
            pattern,
            container: ContainerRef { url, account_key: None },
            path: s("/destination/container/path"),
            headers,
            condition: cond,
            identity: of.pointer("/destination/container/identityReference").is_some(),
        });
    }
    out
}

/// A pattern split into its fixed leading directory and the wildcard rest.
#[derive(Debug, PartialEq)]
struct Split {
    base: PathBuf,
    glob: Option<String>,
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Resolves `pattern` against `wd` lexically; the fixed part must stay inside `task_dir`.
fn split_pattern(task_dir: &Path, wd: &Path, pattern: &str) -> Result<Split, String> {
    let full = if pattern.starts_with('/') { PathBuf::from(pattern) } else { wd.join(pattern) };
    let mut base = PathBuf::new();
    let mut rest: Vec<String> = Vec::new();
    for c in full.components() {
        let part = c.as_os_str().to_string_lossy().to_string();
        if !rest.is_empty() || has_wildcard(&part) {
            rest.push(part);
            continue;
        }
        match c {
            Component::ParentDir => {
                base.pop();
            }
            Component::CurDir => {}
            _ => base.push(c.as_os_str()),
        }
    }
    if !base.starts_with(task_dir) || rest.iter().any(|r| r == "..") {
        return Err(format!("the pattern '{pattern}' reaches outside the task directory"));
    }
    Ok(Split { base, glob: if rest.is_empty() { None } else { Some(rest.join("/")) } })
}

/// Regular files below `dir`, as paths relative to it; symlinks are not followed.
fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        let name = e.file_name().to_string_lossy().to_string();
        let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        if ft.is_dir() {
            walk(&e.path(), &rel, out);
        } else if ft.is_file() {
            out.push(rel);
        }
    }
}

/// The files an output file names, as (file on disk, blob name).
///
/// Errors: a reason, for a pattern that is not valid or reaches out of the task directory.
fn matches(task_dir: &Path, wd: &Path, spec: &OutputFileSpec) -> Result<Vec<(PathBuf, String)>, String> {
    let split = split_pattern(task_dir, wd, &spec.pattern)?;
    let prefix = spec.path.as_deref().map(|p| p.trim_matches('/')).filter(|p| !p.is_empty());
    let Some(glob) = split.glob else {
        let is_file = std::fs::symlink_metadata(&split.base).is_ok_and(|m| m.is_file());
        if !is_file {
            return Ok(Vec::new());
        }
        let name = split.base.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        return Ok(vec![(split.base.clone(), prefix.map(str::to_string).unwrap_or(name))]);
    };
    let matcher = globset::GlobBuilder::new(&glob).literal_separator(true).build().map_err(|e| e.to_string())?.compile_matcher();
    let mut files = Vec::new();
    walk(&split.base, "", &mut files);
    files.sort();
    Ok(files
        .into_iter()
        .filter(|rel| matcher.is_match(rel))
        .map(|rel| {
            let name = match prefix {
                Some(p) => format!("{p}/{rel}"),
                None => rel.clone(),
            };
            (split.base.join(&rel), name)
        })
        .collect())
}

/// The blob attributes for `uploadHeaders` (Content-Type/-Encoding/-Language/-Disposition,
/// Cache-Control, `x-ms-meta-*`); other headers are not applied.
fn attributes(headers: &[(String, String)]) -> object_store::Attributes {
    use object_store::Attribute;
    let mut a = object_store::Attributes::new();
    for (name, value) in headers {
        let n = name.to_ascii_lowercase();
        let n = n.strip_prefix("x-ms-blob-").map(str::to_string).unwrap_or(n);
        let key = match n.as_str() {
            "content-type" => Attribute::ContentType,
            "content-encoding" => Attribute::ContentEncoding,
            "content-language" => Attribute::ContentLanguage,
            "content-disposition" => Attribute::ContentDisposition,
            "cache-control" => Attribute::CacheControl,
            other => match other.strip_prefix("x-ms-meta-") {
                Some(meta) => Attribute::Metadata(meta.to_string().into()),
                None => continue,
            },
        };
        a.insert(key, value.clone().into());
    }
    a
}

/// Uploads the output files whose condition matches (`succeeded`: the process exited with 0),
/// logging to `fileuploadout.txt` / `fileuploaderr.txt` in `task_dir`.
///
/// Errors: `FileUploadError` naming the first pattern that failed (every output file is still
/// tried).
pub async fn upload_all(task_dir: &Path, wd: &Path, outputs: &[OutputFileSpec], succeeded: bool) -> Result<usize, TransferError> {
    let mut out = Vec::<String>::new();
    let mut err = Vec::<String>::new();
    let mut first: Option<TransferError> = None;
    let mut uploaded = 0;
    for spec in outputs.iter().filter(|s| s.condition.applies(succeeded)) {
        let fail = |why: String| TransferError {
            kind: crate::agent::protocol::FailureKind::FileUpload,
            code: "FileUploadError",
            message: "One or more output files could not be uploaded".into(),
            details: vec![
                ("FilePattern".into(), spec.pattern.clone()),
                ("Url".into(), redact(&spec.container.url)),
                ("Reason".into(), why),
            ],
        };
        if spec.identity {
            let why = "the destination names a managed identity (identityReference); openbatch compute nodes have none".to_string();
            err.push(format!("{}: {why}", spec.pattern));
            first.get_or_insert(fail(why));
            continue;
        }
        let files = match matches(task_dir, wd, spec) {
            Ok(f) => f,
            Err(why) => {
                err.push(format!("{}: {why}", spec.pattern));
                first.get_or_insert(fail(why));
                continue;
            }
        };
        if files.is_empty() {
            out.push(format!("{}: no files matched", spec.pattern));
            continue;
        }
        let store = match blob::container_store(&spec.container) {
            Ok(s) => s,
            Err(why) => {
                err.push(format!("{}: {why}", spec.pattern));
                first.get_or_insert(fail(why));
                continue;
            }
        };
        let attrs = attributes(&spec.headers);
        for (file, name) in files {
            match blob::upload(&store, &file, &name, attrs.clone()).await {
                Ok(n) => {
                    uploaded += 1;
                    out.push(format!("uploaded {} ({n} bytes) to {}/{name}", file.display(), redact(&spec.container.url)));
                }
                Err(why) => {
                    err.push(format!("{} to {}/{name}: {why}", file.display(), redact(&spec.container.url)));
                    first.get_or_insert(fail(format!("{}: {why}", file.display())));
                }
            }
        }
    }
    let write = |name: &str, lines: &[String]| {
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(task_dir.join(name)) {
            for l in lines {
                let _ = writeln!(f, "{l}");
            }
        }
    };
    if !outputs.is_empty() {
        write("fileuploadout.txt", &out);
        write("fileuploaderr.txt", &err);
    }
    match first {
        Some(e) => Err(e),
        None => Ok(uploaded),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(pattern: &str, path: Option<&str>) -> OutputFileSpec {
        OutputFileSpec {
            pattern: pattern.into(),
            container: ContainerRef { url: "http://127.0.0.1:1/acct/c".into(), account_key: None },
            path: path.map(str::to_string),
            headers: Vec::new(),
            condition: UploadCondition::TaskCompletion,
            identity: false,
        }
    }

    #[test]
    fn patterns_match_as_batch_documents() {
        let dir = tempfile::tempdir().unwrap();
        let task = dir.path().join("task");
        let wd = task.join("wd");
        for f in ["out/a.txt", "out/b.log", "out/sub/c.txt", "top.txt", "x1.dat", "x22.dat"] {
            let p = wd.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        std::fs::write(task.join("stdout.txt"), "o").unwrap();
        std::fs::write(task.join("stderr.txt"), "e").unwrap();
        let names = |pattern: &str, path: Option<&str>| -> Vec<String> {
            let mut v: Vec<String> = matches(&task, &wd, &spec(pattern, path)).unwrap().into_iter().map(|(_, n)| n).collect();
            v.sort();
            v
        };
        assert_eq!(names("out/*.txt", None), ["a.txt"]);
        assert_eq!(names("out/**/*.txt", Some("res")), ["res/a.txt", "res/sub/c.txt"]);
        assert_eq!(names("**/*.txt", None), ["out/a.txt", "out/sub/c.txt", "top.txt"]);
        assert_eq!(names("x?.dat", None), ["x1.dat"]);
        assert_eq!(names("x[0-9][0-9].dat", None), ["x22.dat"]);
        assert_eq!(names("top.txt", Some("results/top-renamed.txt")), ["results/top-renamed.txt"]);
        assert_eq!(names("top.txt", None), ["top.txt"]);
        assert_eq!(names("../std*.txt", Some("logs")), ["logs/stderr.txt", "logs/stdout.txt"]);
        assert!(names("nothing/*.bin", None).is_empty());
        assert!(names("missing.txt", None).is_empty());
        assert!(matches(&task, &wd, &spec("../../*", None)).is_err());
        assert!(matches(&task, &wd, &spec("/etc/passwd", None)).is_err());
    }

    #[test]
    fn checks_and_specs() {
        let of = json!({"filePattern": "*.txt", "destination": {"container": {"containerUrl": "https://a.blob.core.windows.net/c?sig=s", "path": "p",
            "uploadHeaders": [{"name": "Content-Type", "value": "text/plain"}]}}, "uploadOptions": {"uploadCondition": "TaskSuccess"}});
        assert_eq!(check("outputFiles[0]", &of), Ok(()));
        let s = specs(Some(std::slice::from_ref(&of)));
        assert_eq!(s[0].condition, UploadCondition::TaskSuccess);
        assert_eq!(s[0].headers, vec![("Content-Type".to_string(), "text/plain".to_string())]);
        let missing = json!({"filePattern": "*.txt", "destination": {"container": {"containerUrl": "https://a.blob.core.windows.net/c"}}});
        assert_eq!(check("outputFiles[0]", &missing).unwrap_err().0, "outputFiles[0].uploadOptions.uploadCondition");
        let a = attributes(&[
            ("x-ms-meta-owner".into(), "me".into()),
            ("Content-Type".into(), "text/csv".into()),
            ("X-Other".into(), "1".into()),
        ]);
        assert_eq!(a.len(), 2);
    }
}
