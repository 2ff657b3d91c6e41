//! Building the `files` map the way the OpenStack client does before it
//! calls Heat: every `get_file` target and nested-template `type`
//! (`x.yaml`, `x.template`) is read relative to the document that names it;
//! nested templates are processed in turn, their references rewritten to
//! absolute URLs and stored as JSON (as python-heatclient stores them); the
//! environment's `resource_registry` templates likewise.
//!
//! The crate stays free of I/O: the caller passes a `read` function that
//! fetches an absolute `file://` (or other) URL.

use serde_json::{Map, Value};

use crate::environment::Environment;
use crate::error::{Error, ErrorKind, Path};
use crate::eval::Files;
use crate::yaml::{self, Limits};

/// Reads a document by absolute URL.
pub type Reader<'a> = dyn FnMut(&str) -> Result<String, String> + 'a;

/// The base URL (directory, ending in `/`) of a document URL.
pub fn base_url(url: &str) -> String {
    match url.rfind('/') {
        Some(i) => url[..=i].to_string(),
        None => String::new(),
    }
}

/// A local path as a `file://` URL (absolute paths only).
pub fn file_url(path: &std::path::Path) -> String {
    format!("file://{}", path.display())
}

fn has_scheme(s: &str) -> bool {
    match s.find("://") {
        Some(i) => {
            s[..i]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && i > 0
        }
        None => false,
    }
}

/// Python's `urljoin(base, reference)` for the cases templates use:
/// absolute URLs stay, absolute paths keep the base's scheme, relative
/// paths are resolved against the base directory with `.` and `..` removed.
pub fn join(base: &str, reference: &str) -> String {
    if has_scheme(reference) {
        return reference.to_string();
    }
    let (scheme_host, base_path) = match base.find("://") {
        Some(i) => {
            let rest = &base[i + 3..];
            let slash = rest.find('/').unwrap_or(rest.len());
            (base[..i + 3 + slash].to_string(), rest[slash..].to_string())
        }
        None => (String::new(), base.to_string()),
    };
    let joined = if reference.starts_with('/') {
        reference.to_string()
    } else {
        format!("{}{}", base_url(&base_path), reference)
    };
    let mut parts: Vec<&str> = Vec::new();
    let trailing = joined.ends_with('/');
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut path = format!("/{}", parts.join("/"));
    if trailing && path.len() > 1 {
        path.push('/');
    }
    format!("{scheme_host}{path}")
}

fn is_template_ref(s: &str) -> bool {
    s.ends_with(".yaml") || s.ends_with(".template")
}

fn is_template(text: &str) -> Option<Value> {
    let v = yaml::load(text, &Limits::default()).ok()?;
    let m = v.as_object()?;
    let has_version = [
        "heat_template_version",
        "HeatTemplateFormatVersion",
        "AWSTemplateFormatVersion",
    ]
    .iter()
    .any(|k| m.contains_key(*k));
    has_version.then_some(v)
}

fn io_error(url: &str, msg: &str, doc: &str, path: Path) -> Error {
    let mut e = Error::new(
        ErrorKind::HttpBadRequest,
        format!("Could not fetch contents for {url}: {msg}"),
        path,
    );
    e.document = Some(doc.to_string());
    e
}

/// Loads what a template refers to into `files`. References in the root
/// template keep their literal names as `files` keys (so its text, and the
/// line numbers of its errors, stay as written); nested templates are
/// rewritten to absolute URLs, as the OpenStack client does.
pub fn gather_template_files(
    template: &Value,
    template_url: &str,
    read: &mut Reader<'_>,
    files: &mut Files,
) -> Result<(), Error> {
    let base = base_url(template_url);
    let mut refs = Vec::new();
    collect(template, &Path::root(), &mut refs);
    for (literal, path) in refs {
        if files.contains_key(&literal) {
            continue;
        }
        let url = join(&base, &literal);
        let content = read(&url).map_err(|m| io_error(&url, &m, template_url, path.clone()))?;
        let stored = load_nested(&url, content, read, files, 0)?;
        files.insert(literal, stored);
    }
    Ok(())
}

/// Reads a file; a template is processed recursively and stored as JSON.
fn load_nested(
    url: &str,
    content: String,
    read: &mut Reader<'_>,
    files: &mut Files,
    depth: usize,
) -> Result<String, Error> {
    let Some(mut tmpl) = is_template(&content) else {
        return Ok(content);
    };
    if depth > 10 {
        return Err(Error::validation(
            format!("nested templates refer to each other too deeply (at {url})"),
            Path::root(),
        ));
    }
    rewrite_nested(&mut tmpl, url, read, files, depth)?;
    Ok(serde_json::to_string(&tmpl).unwrap_or(content))
}

fn rewrite_nested(
    v: &mut Value,
    doc_url: &str,
    read: &mut Reader<'_>,
    files: &mut Files,
    depth: usize,
) -> Result<(), Error> {
    let base = base_url(doc_url);
    match v {
        Value::Array(items) => {
            for item in items {
                rewrite_nested(item, doc_url, read, files, depth)?;
            }
        }
        Value::Object(m) => {
            for (k, item) in m.iter_mut() {
                let is_ref = match (k.as_str(), &*item) {
                    ("get_file", Value::String(_)) => true,
                    ("type", Value::String(s)) => is_template_ref(s),
                    _ => false,
                };
                if is_ref {
                    let literal = item.as_str().unwrap_or_default().to_string();
                    let url = join(&base, &literal);
                    if !files.contains_key(&url) {
                        let content =
                            read(&url).map_err(|m| io_error(&url, &m, doc_url, Path::root()))?;
                        let stored = load_nested(&url, content, read, files, depth + 1)?;
                        files.insert(url.clone(), stored);
                    }
                    *item = Value::String(url);
                } else {
                    rewrite_nested(item, doc_url, read, files, depth)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// `get_file` targets and template `type`s with literal string values.
fn collect(v: &Value, path: &Path, out: &mut Vec<(String, Path)>) {
    match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect(item, &path.index(i), out);
            }
        }
        Value::Object(m) => {
            for (k, item) in m {
                match (k.as_str(), item) {
                    ("get_file", Value::String(s)) => out.push((s.clone(), path.key(k.as_str()))),
                    ("type", Value::String(s)) if is_template_ref(s) => {
                        out.push((s.clone(), path.key(k.as_str())))
                    }
                    _ => collect(item, &path.key(k.as_str()), out),
                }
            }
        }
        _ => {}
    }
}

/// Resolves an environment's `resource_registry` templates relative to
/// the environment file (or its `base_url`), loads them into `files`, and
/// rewrites the registry to their absolute URLs.
pub fn gather_environment_files(
    env: &mut Environment,
    env_url: &str,
    read: &mut Reader<'_>,
    files: &mut Files,
) -> Result<(), Error> {
    let rr = &mut env.resource_registry;
    let base = rr
        .get("base_url")
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| base_url(env_url));
    fn visit(
        m: &mut Map<String, Value>,
        base: &str,
        read: &mut Reader<'_>,
        files: &mut Files,
        env_url: &str,
    ) -> Result<(), Error> {
        let base = m
            .get("base_url")
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| base.to_string());
        for (k, v) in m.iter_mut() {
            if k == "base_url" || k == "hooks" || k == "restricted_actions" {
                continue;
            }
            match v {
                Value::Object(inner) => visit(inner, &base, read, files, env_url)?,
                Value::String(s) if !s.contains("::") => {
                    let url = join(&format!("{}/", base.trim_end_matches('/')), s);
                    if !files.contains_key(&url) {
                        let content = read(&url).map_err(|msg| {
                            io_error(
                                &url,
                                &msg,
                                env_url,
                                Path::keys(["resource_registry", k.as_str()]),
                            )
                        })?;
                        let stored = load_nested(&url, content, read, files, 0)?;
                        files.insert(url.clone(), stored);
                    }
                    *v = Value::String(url);
                }
                _ => {}
            }
        }
        Ok(())
    }
    visit(rr, &base, read, files, env_url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urljoin_cases() {
        assert_eq!(join("file:///a/b/t.yaml", "x.yaml"), "file:///a/b/x.yaml");
        assert_eq!(join("file:///a/b/", "../c/x.sh"), "file:///a/c/x.sh");
        assert_eq!(join("file:///a/b/", "/etc/x"), "file:///etc/x");
        assert_eq!(join("file:///a/b/", "http://h/x.yaml"), "http://h/x.yaml");
        assert_eq!(base_url("file:///a/b/t.yaml"), "file:///a/b/");
    }

    #[test]
    fn gathers_like_the_client() {
        let root = json!({"heat_template_version": "2015-04-30", "resources": {
            "n": {"type": "sub/nested.yaml"},
            "c": {"type": "OS::Heat::SoftwareConfig", "properties": {"config": {"get_file": "scripts/run.sh"}}}}});
        let mut read = |url: &str| -> Result<String, String> {
            match url {
                "file:///t/sub/nested.yaml" => Ok("heat_template_version: 2015-04-30\nresources:\n  x: {type: OS::Heat::SoftwareConfig, properties: {config: {get_file: a.sh}}}\n".into()),
                "file:///t/sub/a.sh" => Ok("echo a".into()),
                "file:///t/scripts/run.sh" => Ok("echo run".into()),
                other => Err(format!("no such file {other}")),
            }
        };
        let mut files = Files::new();
        gather_template_files(&root, "file:///t/root.yaml", &mut read, &mut files).unwrap();
        assert_eq!(files["scripts/run.sh"], "echo run");
        assert_eq!(files["file:///t/sub/a.sh"], "echo a");
        let nested: Value = serde_json::from_str(&files["sub/nested.yaml"]).unwrap();
        assert_eq!(
            nested["resources"]["x"]["properties"]["config"]["get_file"],
            "file:///t/sub/a.sh"
        );
    }
}
