//! Shared by the corpus, agreement and limit tests: finding the shared HOT
//! corpus and loading each template with its files and environment the way
//! the OpenStack client would.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use heat::files::{file_url, gather_environment_files, gather_template_files};
use heat::parameter::ConstraintKind;
use heat::{Environment, Files, ParamType, ParameterValues, Template};
use serde_json::Value;

/// `$OCCI_SO_SHARED/heat-corpus/hot`, else `<workspace root>/../shared/heat-corpus/hot`.
pub fn corpus_dir() -> Option<PathBuf> {
    let shared = match std::env::var_os("OCCI_SO_SHARED") {
        Some(s) => PathBuf::from(s),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    let dir = shared.join("heat-corpus/hot");
    dir.is_dir().then(|| dir.canonicalize().unwrap_or(dir))
}

/// One corpus template, ready to validate.
pub struct Case {
    /// Path relative to the corpus root.
    pub name: String,
    pub path: PathBuf,
    pub text: String,
    pub environment: Environment,
    pub files: Files,
    /// A file the template or its environment needs is missing from the
    /// corpus (the OpenStack client could not submit it either).
    pub load_error: Option<String>,
    /// Non-template files missing from the corpus, given empty content.
    pub missing_files: Vec<String>,
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "template")
        ) {
            out.push(p);
        }
    }
}

pub fn read_url(url: &str) -> Result<String, String> {
    let path = url
        .strip_prefix("file://")
        .ok_or_else(|| format!("not a local file: {url}"))?;
    std::fs::read_to_string(path).map_err(|e| e.to_string())
}

/// The environments a corpus template is meant to be used with (its
/// `<name>_env.yaml` sibling, as the corpus's own README says).
fn environments_for(path: &Path, root: &Path) -> Vec<PathBuf> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let sibling = path.with_file_name(format!("{stem}_env.yaml"));
    if sibling.is_file() {
        return vec![sibling];
    }
    let rel = path
        .strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .to_string();
    if rel == "mistral/templates/autoscaling_using_mistral.yaml" {
        return vec![root.join("mistral/nova_networking_server_with_ip_env.yaml")];
    }
    Vec::new()
}

/// Every template of the corpus (files with `heat_template_version`), with
/// files and environment loaded.
pub fn corpus_cases(root: &Path) -> Vec<Case> {
    let mut paths = Vec::new();
    walk(root, &mut paths);
    let mut cases = Vec::new();
    for path in paths {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let is_template = text.lines().any(|l| {
            l.trim_start_matches('\u{feff}')
                .starts_with("heat_template_version")
        });
        if !is_template {
            continue;
        }
        let name = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .to_string();
        let mut files = Files::new();
        let mut environment = Environment::new();
        let mut load_error = None;
        let mut missing = Vec::new();
        // Scripts and certificates some corpus templates get_file are not in
        // the corpus: stand in an empty file for them (Heat does not look
        // inside them when validating); a missing template stays an error.
        let mut read_url = |url: &str| -> Result<String, String> {
            match read_url(url) {
                Ok(t) => Ok(t),
                Err(e) if url.ends_with(".yaml") || url.ends_with(".template") => Err(e),
                Err(_) => {
                    missing.push(url.to_string());
                    Ok(String::new())
                }
            }
        };
        for env_path in environments_for(&path, root) {
            let env_text = std::fs::read_to_string(&env_path).unwrap_or_default();
            let mut env = Environment::parse(&env_text).expect("corpus environment parses");
            if let Err(e) =
                gather_environment_files(&mut env, &file_url(&env_path), &mut read_url, &mut files)
            {
                load_error = Some(e.to_string());
            }
            environment.merge(&env);
        }
        if let Ok(doc) = heat::yaml::load(&text, &heat::Limits::default()) {
            if let Err(e) = gather_template_files(&doc, &file_url(&path), &mut read_url, &mut files)
            {
                load_error = Some(e.to_string());
            }
        }
        cases.push(Case {
            name,
            path,
            text,
            environment,
            files,
            load_error,
            missing_files: missing,
        });
    }
    cases
}

/// A value for each parameter that has no default, meeting its constraints
/// where one of a few plausible candidates does.
pub fn sample_values(t: &Template) -> ParameterValues {
    let mut out = ParameterValues::new();
    for (name, s) in &t.parameters {
        if s.default.is_some() {
            continue;
        }
        let mut candidates: Vec<String> = Vec::new();
        for c in &s.constraints {
            match &c.kind {
                ConstraintKind::AllowedValues(v) => {
                    candidates.extend(v.first().map(heat::pyfmt::py_str))
                }
                ConstraintKind::Range { min, max } => {
                    candidates.extend(min.as_ref().or(max.as_ref()).map(|n| n.to_string()))
                }
                ConstraintKind::Modulo { offset, .. } => candidates.push(offset.to_string()),
                ConstraintKind::Length { min: Some(m), .. } => {
                    candidates.push("a".repeat(m.as_u64().unwrap_or(1) as usize))
                }
                _ => {}
            }
        }
        let defaults: &[&str] = match s.ty {
            ParamType::Number => &["1", "2", "10"],
            ParamType::Boolean => &["true"],
            ParamType::Json => &["{}"],
            ParamType::CommaDelimitedList => &["8,16", "a,b", "a"],
            ParamType::String => &[
                "abc",
                "a",
                "abc123",
                "Abc123",
                "Passw0rd!x",
                "x1",
                "10.0.0.0/24",
                "1",
                "user@example.com",
            ],
        };
        candidates.extend(defaults.iter().map(|d| d.to_string()));
        let chosen = candidates
            .iter()
            .find(|c| s.coerce(&Value::String(c.to_string())).is_ok())
            .cloned()
            .unwrap_or_else(|| candidates[0].clone());
        out.insert(name.clone(), chosen);
    }
    out
}
