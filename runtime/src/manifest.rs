//! The declarative plugin manifest, `plugin.yaml`: its serde model and
//! the parsing step that gives every mistake a `file:line:column`.
//!
//! The format is versioned by `manifest_version` (now `1`); the JSON
//! Schema in `docs/plugin-manifest.schema.json` describes the same shape
//! for editors and CI. Unknown keys are refused, so a typo never silently
//! falls back to a default.

use std::collections::BTreeMap;
use std::path::Path;

use heat::yaml::PositionIndex;
use indexmap::IndexMap;
use serde::Deserialize;

/// The manifest versions this build reads.
pub(crate) const SUPPORTED_VERSIONS: &[u32] = &[1];

/// The manifest file name inside a plugin folder.
pub const FILE_NAME: &str = "plugin.yaml";

/// Largest manifest accepted (bytes).
pub(crate) const MAX_BYTES: usize = 256 * 1024;

/// A mistake in a plugin folder: the file, the place in it when known,
/// and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", location(.line, .column))]
pub struct LoadError {
    /// The file at fault (as the folder was given, joined with the file's
    /// path inside it).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

fn location(line: &Option<usize>, column: &Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

impl LoadError {
    /// An error about a whole file.
    pub(crate) fn file(file: impl Into<String>, message: impl Into<String>) -> Self {
        LoadError {
            file: file.into(),
            line: None,
            column: None,
            message: message.into(),
        }
    }
}

/// The parsed manifest with what is needed to point at its lines.
pub(crate) struct Located {
    /// The manifest.
    pub manifest: Manifest,
    /// The file, for messages.
    pub file: String,
    index: PositionIndex,
}

impl Located {
    /// An error at `path` (keys and indices into the manifest).
    pub(crate) fn error(&self, path: &heat::Path, message: impl Into<String>) -> LoadError {
        let position = self.index.find(path);
        let message = message.into();
        let message = if path.is_root() {
            message
        } else {
            format!("{path}: {message}")
        };
        LoadError {
            file: self.file.clone(),
            line: position.map(|p| p.line),
            column: position.map(|p| p.column),
            message,
        }
    }
}

/// Parses a manifest text; `file` names it in errors.
pub(crate) fn parse(text: &str, file: &Path) -> Result<Located, LoadError> {
    let file = file.display().to_string();
    if text.len() > MAX_BYTES {
        return Err(LoadError::file(
            file,
            format!("the manifest is larger than {MAX_BYTES} bytes"),
        ));
    }
    if text.trim().is_empty() {
        return Err(LoadError::file(file, "the manifest is empty"));
    }
    // The version first, so a newer manifest gets "unsupported version"
    // rather than a complaint about keys this build does not know.
    let version: Result<VersionOnly, _> = serde_yaml::from_str(text);
    let index = PositionIndex::build(text);
    let version_error = |message: String| {
        let p = index.find(&heat::Path::keys(["manifest_version"]));
        LoadError {
            file: file.clone(),
            line: p.map(|p| p.line),
            column: p.map(|p| p.column),
            message,
        }
    };
    match version {
        Ok(VersionOnly {
            manifest_version: Some(v),
        }) if !SUPPORTED_VERSIONS.contains(&v) => {
            return Err(version_error(format!(
                "manifest_version: {v} is not supported by this occi-so (supported: {})",
                SUPPORTED_VERSIONS
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
        Ok(VersionOnly {
            manifest_version: None,
        }) => {
            return Err(LoadError::file(
                file,
                "manifest_version is missing (write `manifest_version: 1` at the top)",
            ))
        }
        _ => {}
    }
    let manifest: Manifest = serde_yaml::from_str(text).map_err(|e| {
        let loc = e.location();
        LoadError {
            file: file.clone(),
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
            message: strip_location(&e.to_string()),
        }
    })?;
    Ok(Located {
        manifest,
        file,
        index,
    })
}

/// serde_yaml appends " at line L column C" to its messages; the error
/// already carries the place.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[derive(Deserialize)]
struct VersionOnly {
    #[serde(default)]
    manifest_version: Option<u32>,
}

/// `plugin.yaml`, version 1.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
    /// The manifest format version (`1`), checked through `VersionOnly`
    /// before this is read; declared so that `deny_unknown_fields` takes it.
    #[allow(dead_code, reason = "checked before, through VersionOnly")]
    pub manifest_version: u32,
    /// Registry name, e.g. `webapp` (`[A-Za-z0-9][A-Za-z0-9._-]*`).
    pub name: String,
    /// The plugin's own version.
    pub version: Version,
    /// One line on what it deploys.
    #[serde(default)]
    pub description: Option<String>,
    /// The OCCI kind it serves.
    pub kind: KindDecl,
    /// The kind's attributes, by OCCI name.
    #[serde(default)]
    pub attributes: IndexMap<String, AttributeDecl>,
    /// Stack outputs shown as attributes, by attribute name.
    #[serde(default)]
    pub outputs: Option<IndexMap<String, OutputDecl>>,
    /// The instance's stacks, by role, in creation order.
    pub stacks: IndexMap<String, StackDecl>,
    /// What each lifecycle phase does (defaults described on each field).
    #[serde(default)]
    pub lifecycle: LifecycleDecl,
    /// Custom actions, by term.
    #[serde(default)]
    pub actions: IndexMap<String, ActionDecl>,
}

/// A version written as `1.0.0`, `1.2` or `3` (YAML may read the latter
/// two as numbers).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Version(pub String);

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_yaml::Value::deserialize(d)?;
        match v {
            serde_yaml::Value::String(s) => Ok(Version(s)),
            serde_yaml::Value::Number(n) => Ok(Version(n.to_string())),
            _ => Err(serde::de::Error::custom(
                "version must be a string such as \"1.0.0\"",
            )),
        }
    }
}

/// The OCCI kind.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KindDecl {
    /// Kind term.
    pub term: String,
    /// Kind scheme (an absolute URI ending in `#`).
    pub scheme: String,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Collection location (default `/{term}/`).
    #[serde(default)]
    pub location: Option<String>,
}

/// The type of an attribute as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TypeName {
    /// Any string.
    String,
    /// Any number.
    Number,
    /// A whole number.
    Integer,
    /// `true` / `false`.
    Boolean,
    /// One of `values`.
    Enum,
    /// A JSON list.
    List,
    /// A JSON object.
    Object,
}

/// One attribute of the kind (or parameter of an action).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AttributeDecl {
    /// Value type (default `string`).
    #[serde(rename = "type", default = "string_type")]
    pub ty: TypeName,
    /// The allowed values of an `enum`.
    #[serde(default)]
    pub values: Option<Vec<String>>,
    /// Must be given at creation (unless it has a default).
    #[serde(default)]
    pub required: bool,
    /// May not change after creation.
    #[serde(default)]
    pub immutable: bool,
    /// Used when the caller gives none.
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    /// A value `occi-so plugins validate` uses when there is no default.
    #[serde(default)]
    pub example: Option<serde_json::Value>,
    /// Human description.
    #[serde(default)]
    pub description: Option<String>,
    /// A password or key: accepted, passed on as a hidden Heat
    /// parameter, never rendered or logged.
    #[serde(default)]
    pub secret: bool,
    /// Regular expression a string must match (whole value).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Inclusive lower bound (numbers).
    #[serde(default)]
    pub min: Option<f64>,
    /// Inclusive upper bound (numbers).
    #[serde(default)]
    pub max: Option<f64>,
}

fn string_type() -> TypeName {
    TypeName::String
}

/// A stack output shown as an attribute.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutputDecl {
    /// `<stack role>.<output key>`.
    pub from: String,
    /// Human description.
    #[serde(default)]
    pub description: Option<String>,
}

/// One or several environment files.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(untagged)]
pub(crate) enum Files {
    /// None.
    #[default]
    None,
    /// One file.
    One(String),
    /// Several, merged in order (later ones win).
    Many(Vec<String>),
}

impl Files {
    /// The file names in order.
    pub(crate) fn list(&self) -> Vec<String> {
        match self {
            Files::None => Vec::new(),
            Files::One(s) => vec![s.clone()],
            Files::Many(v) => v.clone(),
        }
    }
    /// Whether none is given.
    pub(crate) fn is_empty(&self) -> bool {
        self.list().is_empty()
    }
}

/// One stack of an instance.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StackDecl {
    /// The HOT template, relative to the plugin folder.
    pub template: String,
    /// Environment files, relative to the plugin folder.
    #[serde(default)]
    pub environment: Files,
    /// Heat parameter → where its value comes from (kept raw here; see
    /// `load` for the source forms).
    #[serde(default)]
    pub parameters: IndexMap<String, serde_yaml::Value>,
    /// Heat stack timeout in minutes (default 60).
    #[serde(default)]
    pub timeout: Option<u32>,
}

/// What the lifecycle phases do; a phase left out does its default.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LifecycleDecl {
    /// Default: create every stack in the order of `stacks`.
    #[serde(default)]
    pub deploy: Option<Vec<StepDecl>>,
    /// Default: nothing.
    #[serde(default)]
    pub provision: Option<Vec<StepDecl>>,
    /// Default: in stack order, PATCH the parameters whose sources changed
    /// (changed attributes, or outputs of a stack updated before).
    #[serde(default)]
    pub update: Option<Vec<StepDecl>>,
    /// Default: delete every stack, last created first.
    #[serde(default)]
    pub dispose: Option<Vec<StepDecl>>,
}

/// One step of a phase or action: exactly one of `create`, `update`,
/// `delete`, naming a stack role.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StepDecl {
    /// Create the stack of this role (and wait until it is complete).
    #[serde(default)]
    pub create: Option<String>,
    /// Update the stack of this role: with `template` (or `environment`)
    /// a full update (PUT), else a PATCH of its parameters.
    #[serde(default)]
    pub update: Option<String>,
    /// Delete the stack of this role.
    #[serde(default)]
    pub delete: Option<String>,
    /// The template for this step (update only).
    #[serde(default)]
    pub template: Option<String>,
    /// Environment files for this step (create, update).
    #[serde(default)]
    pub environment: Files,
    /// Extra parameter sources for this step, over the stack's.
    #[serde(default)]
    pub parameters: IndexMap<String, serde_yaml::Value>,
}

/// A phase name in `applies_in`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PhaseName {
    /// Before deploy.
    Initialised,
    /// Deployed.
    Deployed,
    /// Provisioned.
    Provisioned,
}

/// A custom action.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActionDecl {
    /// Action scheme (default: the kind's scheme without `#`, plus `/action#`).
    #[serde(default)]
    pub scheme: Option<String>,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Phases in which it applies (default: deployed, provisioned).
    #[serde(default)]
    pub applies_in: Option<Vec<PhaseName>>,
    /// Its parameters (`X-OCCI-Attribute` of the call).
    #[serde(default)]
    pub attributes: IndexMap<String, AttributeDecl>,
    /// What it does.
    pub steps: Vec<StepDecl>,
}

/// Files of a plugin folder by relative path, as uploaded (text only).
pub type Upload = BTreeMap<String, String>;

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "manifest_version: 1\nname: t\nversion: 1\nkind: {term: t, scheme: 'http://e.org/occi#'}\nstacks:\n  main: {template: t.yaml}\n";

    #[test]
    fn a_minimal_manifest_parses() {
        let m = parse(MINIMAL, Path::new("p/plugin.yaml")).unwrap().manifest;
        assert_eq!(m.name, "t");
        assert_eq!(m.version, Version("1".into()));
        assert_eq!(m.stacks["main"].template, "t.yaml");
        assert!(m.lifecycle.deploy.is_none());
    }

    #[test]
    fn unknown_keys_name_the_file_and_line() {
        let text = MINIMAL.replace("stacks:", "stakcs: {}\nstacks:");
        let e = parse(&text, Path::new("p/plugin.yaml")).err().unwrap();
        assert_eq!(e.file, "p/plugin.yaml");
        assert_eq!(e.line, Some(5), "{e}");
        assert!(e.message.contains("unknown field `stakcs`"), "{e}");
        assert!(e.to_string().starts_with("p/plugin.yaml:5:"), "{e}");
    }

    #[test]
    fn versions_are_checked_first() {
        let e = parse(
            &MINIMAL.replace("manifest_version: 1", "manifest_version: 7\nfuture: x"),
            Path::new("plugin.yaml"),
        )
        .err()
        .unwrap();
        assert!(e.message.contains("not supported"), "{e}");
        assert_eq!(e.line, Some(1));
        let e = parse("name: x\n", Path::new("plugin.yaml")).err().unwrap();
        assert!(e.message.contains("manifest_version is missing"), "{e}");
    }

    #[test]
    fn semantic_errors_point_at_their_key() {
        let l = parse(MINIMAL, Path::new("plugin.yaml")).unwrap();
        let e = l.error(
            &heat::Path::keys(["stacks", "main", "template"]),
            "no such file",
        );
        assert_eq!((e.line, e.column), (Some(6), Some(10)), "{e}");
        assert_eq!(e.message, "stacks.main.template: no such file");
    }
}
