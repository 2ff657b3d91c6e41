//! Loading a declarative plugin folder: the manifest, its templates and
//! environments, read once, parsed and validated with the `heat` engine,
//! and cross-checked (every parameter the manifest sets is declared, every
//! parameter without a default is set, secrets go to hidden parameters,
//! outputs exist and come from stacks created earlier). Any mistake is a
//! [`LoadError`] naming the file and line.
//!
//! Loading is synchronous file I/O: call it from `spawn_blocking`.

use occi_so_sdk::files::ReadError;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use heat::files::{file_url, gather_environment_files, gather_template_files};
use heat::{Environment, Limits, Options, ParameterValues, StackTemplate};
use indexmap::IndexMap;
use occi_so_sdk::{
    ActionSpec, AttributeSpec, AttributeType, KindSpec, Phase, PluginInfo, PluginSource,
};
use sha2::{Digest, Sha256};

use super::declarative::{
    Definition, InstanceField, OutputMap, Source, Step, StepVerb, TemplateDef,
};
pub use super::manifest::LoadError;
use super::manifest::{self, AttributeDecl, Located, Manifest, PhaseName, StepDecl, TypeName};
use occi_so_framework::schema::{Schema, CORE_SUMMARY, CORE_TITLE};

/// Default Heat stack timeout (minutes).
const DEFAULT_TIMEOUT_MINS: u32 = 60;

/// Most files one plugin folder may pull in (templates, environments, `get_file`s).
const MAX_FILES: usize = 200;

/// Why a file of the plugin folder cannot be read (the caller names the
/// file and where the manifest refers to it).
#[derive(Debug, thiserror::Error)]
enum FileError {
    /// The OS refused (no such file, permission denied...).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A symbolic link or path leads out of the folder.
    #[error("it lies outside the plugin folder")]
    Outside,
    /// The file exceeds the size limit (bytes).
    #[error("it is larger than {0} bytes")]
    TooLarge(u64),
    /// A device, FIFO, socket or directory.
    #[error("it is not a regular file ({0})")]
    NotRegular(&'static str),
    /// One file more than [`MAX_FILES`].
    #[error("the plugin reads more than {MAX_FILES} files")]
    TooManyFiles,
    /// The file is not UTF-8.
    #[error("it is not UTF-8 text")]
    NotText,
    /// The manifest gives an empty path.
    #[error("the path is empty")]
    EmptyPath,
    /// The manifest gives an absolute path or one with `..`.
    #[error("{0:?} must be a path inside the plugin folder (no absolute paths, no '..')")]
    NotInside(String),
    /// A template reads a URL that is not a `file://` one.
    #[error("only files inside the plugin folder can be read, not {0}")]
    NotAFile(String),
}

/// Reads files inside one plugin folder only.
struct Folder {
    /// As given (for messages).
    shown: PathBuf,
    /// Canonical (for containment checks).
    root: PathBuf,
    /// Every file read, by canonical path, for the fingerprint.
    read: BTreeMap<PathBuf, Vec<u8>>,
}

impl Folder {
    fn open(dir: &Path, shown: &Path) -> Result<Folder, LoadError> {
        let root = std::fs::canonicalize(dir).map_err(|e| {
            LoadError::file(
                shown.display().to_string(),
                format!("cannot open the folder: {e}"),
            )
        })?;
        if !root.is_dir() {
            return Err(LoadError::file(
                shown.display().to_string(),
                "is not a folder",
            ));
        }
        Ok(Folder {
            shown: shown.to_path_buf(),
            root,
            read: BTreeMap::new(),
        })
    }

    /// How a relative file is named in messages.
    fn show(&self, rel: &str) -> String {
        self.shown.join(rel).display().to_string()
    }

    /// Reads an absolute path that must lie inside the folder.
    fn read_abs(&mut self, path: &Path) -> Result<String, FileError> {
        let canon = std::fs::canonicalize(path)?;
        if !canon.starts_with(&self.root) {
            return Err(FileError::Outside);
        }
        let limit = Limits::default().max_bytes as u64 * 4;
        if !self.read.contains_key(&canon) && self.read.len() >= MAX_FILES {
            return Err(FileError::TooManyFiles);
        }
        // Bounded by the bytes read, never by the reported length (0 for
        // devices, FIFOs and /proc files); non-regular files refused.
        let bytes = occi_so_sdk::files::read_regular(&canon, limit).map_err(|e| match e {
            ReadError::TooLarge { limit, .. } => FileError::TooLarge(limit),
            ReadError::NotRegular { kind, .. } => FileError::NotRegular(kind),
            ReadError::Io { source, .. } => FileError::Io(source),
            ReadError::NotText { .. } => FileError::NotText,
            ReadError::TimedOut { within, .. } => FileError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("not read within {within:?}"),
            )),
        })?;
        let text = String::from_utf8(bytes.clone()).map_err(|_| FileError::NotText)?;
        self.read.insert(canon, bytes);
        Ok(text)
    }

    /// A relative path of the manifest, checked to stay inside the folder.
    fn resolve(&self, rel: &str) -> Result<PathBuf, FileError> {
        let p = Path::new(rel);
        if rel.is_empty() {
            return Err(FileError::EmptyPath);
        }
        if p.is_absolute()
            || p.components()
                .any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)))
        {
            return Err(FileError::NotInside(rel.to_string()));
        }
        Ok(self.root.join(p))
    }

    fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for (path, bytes) in &self.read {
            h.update(path.to_string_lossy().as_bytes());
            h.update([0]);
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        }
        let d = h.finalize();
        let hex: String = d.iter().take(12).map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }
}

/// What a load gives: the definition and the files it was built from.
pub struct Loaded {
    /// The plugin, ready to register.
    pub definition: Arc<Definition>,
}

/// Loads the plugin folder `dir` (which holds `plugin.yaml`).
pub fn load(dir: &Path) -> Result<Loaded, LoadError> {
    load_as(dir, dir)
}

/// Loads `dir`, naming its files `shown/...` in messages and in the
/// plugin's source (an upload is checked in a scratch folder first).
pub(crate) fn load_as(dir: &Path, shown: &Path) -> Result<Loaded, LoadError> {
    let mut folder = Folder::open(dir, shown)?;
    let manifest_path = folder.root.join(manifest::FILE_NAME);
    let shown_manifest = folder.shown.join(manifest::FILE_NAME);
    if !manifest_path.is_file() {
        return Err(LoadError::file(
            shown_manifest.display().to_string(),
            "no plugin.yaml in this folder",
        ));
    }
    let text = folder
        .read_abs(&manifest_path)
        .map_err(|e| LoadError::file(shown_manifest.display().to_string(), e.to_string()))?;
    let located = manifest::parse(&text, &shown_manifest)?;
    let mut builder = Builder {
        located: &located,
        folder: &mut folder,
        templates: HashMap::new(),
    };
    let definition = builder.build()?;
    let fingerprint = folder.fingerprint();
    let definition = Definition {
        fingerprint,
        ..definition
    };
    Ok(Loaded {
        definition: Arc::new(definition),
    })
}

fn key(path: &heat::Path, k: &str) -> heat::Path {
    path.key(k)
}

fn valid_term(t: &str) -> bool {
    let mut chars = t.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

struct Builder<'a> {
    located: &'a Located,
    folder: &'a mut Folder,
    /// Parsed (template, environments) pairs, shared by the steps using them.
    templates: HashMap<(String, Vec<String>), Arc<TemplateDef>>,
}

/// Where a step's parameters were written, for messages.
struct StepOrigin {
    /// Path of the stack's `parameters`.
    stack: heat::Path,
    /// Path of the step's own `parameters`, if it is a step.
    step: Option<heat::Path>,
}

impl Builder<'_> {
    fn m(&self) -> &Manifest {
        &self.located.manifest
    }

    fn err(&self, path: &heat::Path, message: impl Into<String>) -> LoadError {
        self.located.error(path, message)
    }

    fn build(&mut self) -> Result<Definition, LoadError> {
        let m = self.m().clone();
        let root = heat::Path::root();
        if !valid_term(&m.name) {
            return Err(self.err(
                &key(&root, "name"),
                format!("{:?} must be a term ([A-Za-z0-9][A-Za-z0-9._-]*)", m.name),
            ));
        }
        let kind = self.kind(&m)?;
        // Stacks: every template with its default environment.
        let mut stacks: IndexMap<String, (Arc<TemplateDef>, u32)> = IndexMap::new();
        if m.stacks.is_empty() {
            return Err(self.err(&key(&root, "stacks"), "a plugin needs at least one stack"));
        }
        for (role, s) in &m.stacks {
            let p = heat::Path::keys(["stacks", role.as_str()]);
            if !valid_term(role) {
                return Err(self.err(&p, format!("stack role {role:?} must be a term")));
            }
            let t = self.template(&s.template, &s.environment.list(), &p)?;
            let timeout = s.timeout.unwrap_or(DEFAULT_TIMEOUT_MINS);
            if timeout == 0 {
                return Err(self.err(&key(&p, "timeout"), "must be at least 1 (minutes)"));
            }
            stacks.insert(role.clone(), (t, timeout));
        }
        let secrets: BTreeSet<String> = m
            .attributes
            .iter()
            .filter(|(_, a)| a.secret)
            .map(|(n, _)| n.clone())
            .collect();
        let attribute_names: BTreeSet<String> = m.attributes.keys().cloned().collect();
        // Phases.
        let lc = &m.lifecycle;
        let deploy_decl: Vec<StepDecl> = match &lc.deploy {
            Some(steps) => steps.clone(),
            None => m
                .stacks
                .keys()
                .map(|role| StepDecl {
                    create: Some(role.clone()),
                    update: None,
                    delete: None,
                    template: None,
                    environment: manifest::Files::None,
                    parameters: IndexMap::new(),
                })
                .collect(),
        };
        let mut ctx = StepsContext {
            stacks: &stacks,
            attributes: &attribute_names,
            action_attributes: BTreeSet::new(),
            secrets: &secrets,
            created: BTreeSet::new(),
            phase: "deploy",
        };
        let deploy = self.steps(
            &deploy_decl,
            &heat::Path::keys(["lifecycle", "deploy"]),
            &mut ctx,
            lc.deploy.is_some(),
        )?;
        if deploy.iter().all(|s| s.verb != StepVerb::Create) {
            return Err(self.err(
                &heat::Path::keys(["lifecycle", "deploy"]),
                "deploy creates no stack",
            ));
        }
        let deployed = ctx.created.clone();
        let later = |this: &mut Self, phase: &'static str, decl: &Option<Vec<StepDecl>>| {
            let mut c = StepsContext {
                stacks: &stacks,
                attributes: &attribute_names,
                action_attributes: BTreeSet::new(),
                secrets: &secrets,
                created: deployed.clone(),
                phase,
            };
            match decl {
                Some(steps) => this
                    .steps(steps, &heat::Path::keys(["lifecycle", phase]), &mut c, true)
                    .map(Some),
                None => Ok(None),
            }
        };
        let provision = later(self, "provision", &lc.provision)?.unwrap_or_default();
        let update = later(self, "update", &lc.update)?;
        let dispose = later(self, "dispose", &lc.dispose)?;
        // The default update patches stacks by their own parameters: check
        // those too (outputs from stacks created before).
        let mut stack_params = IndexMap::new();
        for (role, s) in &m.stacks {
            let p = heat::Path::keys(["stacks", role.as_str(), "parameters"]);
            let mut sources = IndexMap::new();
            for (name, raw) in &s.parameters {
                let src = self.source(raw, &key(&p, name), &attribute_names, &BTreeSet::new())?;
                sources.insert(name.clone(), src);
            }
            stack_params.insert(role.clone(), sources);
        }
        // Actions.
        let mut actions = BTreeMap::new();
        for (term, a) in &m.actions {
            let p = heat::Path::keys(["actions", term.as_str()]);
            let mut c = StepsContext {
                stacks: &stacks,
                attributes: &attribute_names,
                action_attributes: a.attributes.keys().cloned().collect(),
                secrets: &secrets,
                created: deployed.clone(),
                phase: "action",
            };
            if a.steps.is_empty() {
                return Err(self.err(&key(&p, "steps"), "an action needs at least one step"));
            }
            let steps = self.steps(&a.steps, &key(&p, "steps"), &mut c, true)?;
            actions.insert(term.clone(), steps);
        }
        // Outputs shown as attributes.
        let outputs = match &m.outputs {
            None => None,
            Some(map) => {
                let mut v = Vec::new();
                for (attr, o) in map {
                    let p = heat::Path::keys(["outputs", attr.as_str(), "from"]);
                    let (role, key_name) = self.output_ref(&o.from, &p, &stacks)?;
                    v.push(OutputMap {
                        attribute: attr.clone(),
                        role,
                        key: key_name,
                    });
                }
                Some(v)
            }
        };
        let info = PluginInfo {
            name: m.name.clone(),
            version: m.version.0.clone(),
            description: m.description.clone(),
            source: PluginSource::Declarative {
                path: self.folder.shown.display().to_string(),
            },
            kind,
        };
        Ok(Definition {
            info,
            folder: self.folder.shown.clone(),
            fingerprint: String::new(),
            stacks: stacks
                .iter()
                .map(|(role, (t, timeout))| {
                    (
                        role.clone(),
                        super::declarative::StackDef {
                            template: t.clone(),
                            parameters: stack_params.get(role).cloned().unwrap_or_default(),
                            timeout_mins: *timeout,
                        },
                    )
                })
                .collect(),
            deploy,
            provision,
            update,
            dispose,
            actions,
            outputs,
            secrets,
            examples: m
                .attributes
                .iter()
                .filter_map(|(n, a)| a.example.clone().map(|e| (n.clone(), e)))
                .collect(),
        })
    }

    /// The OCCI kind: attributes, output attributes and actions, checked
    /// as the server checks kinds.
    fn kind(&self, m: &Manifest) -> Result<KindSpec, LoadError> {
        let kp = heat::Path::keys(["kind"]);
        if !valid_term(&m.kind.term) {
            return Err(self.err(
                &key(&kp, "term"),
                format!("{:?} is not a valid OCCI term", m.kind.term),
            ));
        }
        if !m.kind.scheme.ends_with('#') || !m.kind.scheme.contains("://") {
            return Err(self.err(
                &key(&kp, "scheme"),
                format!("{:?} must be an absolute URI ending in '#'", m.kind.scheme),
            ));
        }
        let mut attributes = Vec::new();
        for (name, a) in &m.attributes {
            let p = heat::Path::keys(["attributes", name.as_str()]);
            attributes.push(self.attribute(name, a, &p)?);
        }
        if let Some(outputs) = &m.outputs {
            for (name, o) in outputs {
                let p = heat::Path::keys(["outputs", name.as_str()]);
                if !valid_term(name) {
                    return Err(self.err(&p, "not a valid attribute name"));
                }
                if m.attributes.contains_key(name) {
                    return Err(self.err(
                        &p,
                        format!(
                            "{name} is also an input attribute; an output needs a name of its own"
                        ),
                    ));
                }
                let mut spec = AttributeSpec::new(name.clone(), AttributeType::String).output();
                spec.description = o
                    .description
                    .clone()
                    .or_else(|| Some(format!("stack output {}", o.from)));
                attributes.push(spec);
            }
        }
        let default_action_scheme = format!("{}/action#", m.kind.scheme.trim_end_matches('#'));
        let mut actions = Vec::new();
        for (term, a) in &m.actions {
            let p = heat::Path::keys(["actions", term.as_str()]);
            if !valid_term(term) {
                return Err(self.err(&p, format!("action term {term:?} is not valid")));
            }
            let scheme = a
                .scheme
                .clone()
                .unwrap_or_else(|| default_action_scheme.clone());
            if !scheme.ends_with('#') || !scheme.contains("://") {
                return Err(self.err(
                    &key(&p, "scheme"),
                    format!("{scheme:?} must be an absolute URI ending in '#'"),
                ));
            }
            if matches!(term.as_str(), "deploy" | "provision" | "notify")
                && scheme == occi_so_sdk::MCN_SERVICE_SCHEME
            {
                return Err(self.err(&p, format!("action {term} is built in")));
            }
            let mut params = Vec::new();
            for (name, ad) in &a.attributes {
                let ap = heat::Path::keys(["actions", term.as_str(), "attributes", name.as_str()]);
                params.push(self.attribute(name, ad, &ap)?);
            }
            let applies_in = a
                .applies_in
                .clone()
                .unwrap_or_else(|| vec![PhaseName::Deployed, PhaseName::Provisioned])
                .into_iter()
                .map(|p| match p {
                    PhaseName::Initialised => Phase::Initialised,
                    PhaseName::Deployed => Phase::Deployed,
                    PhaseName::Provisioned => Phase::Provisioned,
                })
                .collect();
            actions.push(ActionSpec {
                term: term.clone(),
                scheme,
                title: a.title.clone(),
                attributes: params,
                applies_in,
            });
        }
        let kind = KindSpec {
            term: m.kind.term.clone(),
            scheme: m.kind.scheme.clone(),
            title: m.kind.title.clone(),
            location: m.kind.location.clone(),
            related: vec![],
            attributes,
            actions,
        };
        // The server's own checks (locations, reserved paths, duplicates).
        let probe = PluginInfo {
            name: m.name.clone(),
            version: m.version.0.clone(),
            description: None,
            source: PluginSource::Compiled,
            kind: kind.clone(),
        };
        if let Err(e) = occi_so_framework::registry::check_kind(&probe) {
            let path = match &e {
                occi_so_framework::registry::RegistryError::Invalid { message, .. }
                    if message.contains("location") =>
                {
                    key(&kp, "location")
                }
                _ => kp.clone(),
            };
            let message = match e {
                occi_so_framework::registry::RegistryError::Invalid { message, .. } => message,
                other => other.to_string(),
            };
            return Err(self.err(&path, message));
        }
        // Patterns compile and defaults fit their own definitions.
        let mut checked = kind.clone();
        checked.actions.clear();
        if let Err(e) = Schema::new(checked) {
            let p = heat::Path::keys(["attributes", e.attribute()]);
            return Err(self.err(&p, e.to_string()));
        }
        for a in &kind.actions {
            let probe = KindSpec {
                attributes: a.attributes.clone(),
                actions: vec![],
                ..kind.clone()
            };
            if let Err(e) = Schema::new(probe) {
                let p = heat::Path::keys(["actions", a.term.as_str(), "attributes", e.attribute()]);
                return Err(self.err(&p, e.to_string()));
            }
        }
        Ok(kind)
    }

    fn attribute(
        &self,
        name: &str,
        a: &AttributeDecl,
        p: &heat::Path,
    ) -> Result<AttributeSpec, LoadError> {
        if !valid_term(name) {
            return Err(self.err(p, format!("attribute name {name:?} is not valid")));
        }
        if name.starts_with("occi.core.")
            || name.starts_with("occi.so.")
            || name.starts_with("occi.mcn.stack.")
        {
            return Err(self.err(p, format!("{name} is reserved (set by the server)")));
        }
        let ty = match (a.ty, &a.values) {
            (TypeName::Enum, Some(v)) if !v.is_empty() => AttributeType::Enum(v.clone()),
            (TypeName::Enum, _) => {
                return Err(self.err(&key(p, "values"), "an enum attribute lists its values"))
            }
            (_, Some(_)) => {
                return Err(self.err(&key(p, "values"), "values are for type: enum only"))
            }
            (TypeName::String, None) => AttributeType::String,
            (TypeName::Number, None) => AttributeType::Number,
            (TypeName::Integer, None) => AttributeType::Integer,
            (TypeName::Boolean, None) => AttributeType::Boolean,
            (TypeName::List, None) => AttributeType::List,
            (TypeName::Object, None) => AttributeType::Object,
        };
        if (a.min.is_some() || a.max.is_some())
            && !matches!(ty, AttributeType::Number | AttributeType::Integer)
        {
            return Err(self.err(p, "min and max are for number and integer attributes"));
        }
        if a.pattern.is_some() && !matches!(ty, AttributeType::String) {
            return Err(self.err(&key(p, "pattern"), "a pattern is for string attributes"));
        }
        if a.secret && a.default.is_some() {
            return Err(self.err(
                &key(p, "default"),
                "a secret attribute has no default (it would be readable in the manifest)",
            ));
        }
        Ok(AttributeSpec {
            name: name.to_string(),
            ty,
            required: a.required,
            mutable: !a.immutable,
            default: a.default.clone(),
            description: a.description.clone(),
            secret: a.secret,
            pattern: a.pattern.clone(),
            min: a.min,
            max: a.max,
            output: false,
        })
    }

    /// Reads, parses and validates a template with its environments (once
    /// per combination).
    fn template(
        &mut self,
        rel: &str,
        environments: &[String],
        at: &heat::Path,
    ) -> Result<Arc<TemplateDef>, LoadError> {
        let cache_key = (rel.to_string(), environments.to_vec());
        if let Some(t) = self.templates.get(&cache_key) {
            return Ok(t.clone());
        }
        let limits = Limits::default();
        let mut files = heat::Files::new();
        let mut environment = Environment::new();
        for (i, env_rel) in environments.iter().enumerate() {
            let env_at = match environments.len() {
                1 => key(at, "environment"),
                _ => key(at, "environment").index(i),
            };
            let path = self
                .folder
                .resolve(env_rel)
                .map_err(|e| self.err(&env_at, e.to_string()))?;
            let text = self.folder.read_abs(&path).map_err(|e| {
                self.err(
                    &env_at,
                    format!("cannot read {}: {e}", self.folder.show(env_rel)),
                )
            })?;
            let shown = self.folder.show(env_rel);
            let mut env = Environment::parse_with(&text, &limits)
                .map_err(|e| heat_error(&shown, &text, e))?;
            let url = file_url(&path);
            let folder = &mut *self.folder;
            // heat's file reader takes the error as text.
            let mut read = |u: &str| read_url(folder, u).map_err(|e| e.to_string());
            gather_environment_files(&mut env, &url, &mut read, &mut files)
                .map_err(|e| heat_error(&shown, &text, e))?;
            environment.merge(&env);
        }
        let template_at = key(at, "template");
        let path = self
            .folder
            .resolve(rel)
            .map_err(|e| self.err(&template_at, e.to_string()))?;
        let text = self.folder.read_abs(&path).map_err(|e| {
            self.err(
                &template_at,
                format!("cannot read {}: {e}", self.folder.show(rel)),
            )
        })?;
        let shown = self.folder.show(rel);
        let template = heat::Template::parse_with(&text, Some(&shown), &limits)
            .map_err(|e| heat_errors(&shown, e))?;
        {
            let url = file_url(&path);
            let folder = &mut *self.folder;
            // heat's file reader takes the error as text.
            let mut read = |u: &str| read_url(folder, u).map_err(|e| e.to_string());
            gather_template_files(&template.to_document(), &url, &mut read, &mut files)
                .map_err(|e| heat_error(&shown, &text, e))?;
        }
        let parsed = StackTemplate::new(
            template,
            environment.clone(),
            files.clone(),
            Options::default(),
        )
        .map_err(|e| heat_errors(&shown, e))?;
        parsed
            .validate(&ParameterValues::new())
            .map_err(|e| heat_errors(&shown, e))?;
        let environment_text = if environments.is_empty() {
            None
        } else {
            Some(environment.to_value().to_string())
        };
        let def = Arc::new(TemplateDef {
            file: rel.to_string(),
            shown,
            text,
            parsed,
            files,
            environment: environment_text,
        });
        self.templates.insert(cache_key, def.clone());
        Ok(def)
    }

    fn output_ref(
        &self,
        text: &str,
        p: &heat::Path,
        stacks: &IndexMap<String, (Arc<TemplateDef>, u32)>,
    ) -> Result<(String, String), LoadError> {
        let Some((role, output)) = text.split_once('.') else {
            return Err(self.err(
                p,
                format!("{text:?} must be <stack>.<output>, e.g. database.url"),
            ));
        };
        let Some((t, _)) = stacks.get(role) else {
            return Err(self.err(
                p,
                format!(
                    "no stack {role:?} (stacks: {})",
                    stacks.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        };
        if !t.parsed.template().outputs.contains_key(output) {
            return Err(self.err(p, format!("template {} has no output {output:?}", t.shown)));
        }
        Ok((role.to_string(), output.to_string()))
    }

    /// Reads one parameter source.
    fn source(
        &self,
        raw: &serde_yaml::Value,
        p: &heat::Path,
        attributes: &BTreeSet<String>,
        action_attributes: &BTreeSet<String>,
    ) -> Result<Source, LoadError> {
        use serde_yaml::Value as Y;
        match raw {
            Y::String(s) => Ok(Source::Literal(s.clone())),
            Y::Number(n) => Ok(Source::Literal(n.to_string())),
            Y::Bool(b) => Ok(Source::Literal(b.to_string())),
            Y::Null => Err(self.err(p, "a parameter needs a value or a source")),
            Y::Sequence(_) => Err(self.err(p, "a list value is written as {value: [...]}")),
            Y::Tagged(_) => Err(self.err(p, "YAML tags are not supported here")),
            Y::Mapping(m) => {
                if m.len() != 1 {
                    return Err(self.err(
                        p,
                        "a source is one of {attribute: NAME}, {output: STACK.OUTPUT}, {value: ...}, {instance: id|location|tenant}, {generate: uuid}",
                    ));
                }
                let Some((Y::String(k), v)) = m.iter().next() else {
                    return Err(self.err(p, "a source key is a word"));
                };
                let text = |v: &Y| match v {
                    Y::String(s) => Some(s.clone()),
                    _ => None,
                };
                let vp = key(p, k);
                match k.as_str() {
                    "attribute" => {
                        let name = text(v).ok_or_else(|| self.err(&vp, "an attribute name"))?;
                        let known = attributes.contains(&name)
                            || action_attributes.contains(&name)
                            || name == CORE_TITLE
                            || name == CORE_SUMMARY;
                        if !known {
                            let mut all: Vec<&str> = attributes.iter().map(String::as_str).collect();
                            all.extend(action_attributes.iter().map(String::as_str));
                            return Err(self.err(
                                &vp,
                                format!("no attribute {name:?} is defined (defined: {})", all.join(", ")),
                            ));
                        }
                        Ok(Source::Attribute(name))
                    }
                    "output" => {
                        let r = text(v).ok_or_else(|| self.err(&vp, "<stack>.<output>"))?;
                        let Some((role, output)) = r.split_once('.') else {
                            return Err(self.err(&vp, format!("{r:?} must be <stack>.<output>")));
                        };
                        Ok(Source::Output {
                            role: role.to_string(),
                            key: output.to_string(),
                        })
                    }
                    "value" => {
                        let json: serde_json::Value = serde_yaml::from_value(v.clone())
                            .map_err(|e| self.err(&vp, e.to_string()))?;
                        Ok(Source::Literal(match json {
                            serde_json::Value::String(s) => s,
                            other => other.to_string(),
                        }))
                    }
                    "instance" => match text(v).as_deref() {
                        Some("id") => Ok(Source::Instance(InstanceField::Id)),
                        Some("location") => Ok(Source::Instance(InstanceField::Location)),
                        Some("tenant") => Ok(Source::Instance(InstanceField::Tenant)),
                        _ => Err(self.err(&vp, "one of id, location, tenant")),
                    },
                    "generate" => match text(v).as_deref() {
                        Some("uuid") => Ok(Source::Uuid),
                        _ => Err(self.err(&vp, "only `generate: uuid` is known")),
                    },
                    other => Err(self.err(
                        &vp,
                        format!("unknown source {other:?} (attribute, output, value, instance, generate)"),
                    )),
                }
            }
        }
    }

    fn steps(
        &mut self,
        decl: &[StepDecl],
        at: &heat::Path,
        ctx: &mut StepsContext<'_>,
        written: bool,
    ) -> Result<Vec<Step>, LoadError> {
        let m = self.m().clone();
        let mut out = Vec::new();
        for (i, d) in decl.iter().enumerate() {
            // A default phase has no lines of its own: point at the stacks.
            let p = if written {
                at.index(i)
            } else {
                heat::Path::keys(["stacks"])
            };
            let verbs: Vec<(StepVerb, &String)> = [
                (StepVerb::Create, d.create.as_ref()),
                (StepVerb::Update, d.update.as_ref()),
                (StepVerb::Delete, d.delete.as_ref()),
            ]
            .into_iter()
            .filter_map(|(v, r)| r.map(|r| (v, r)))
            .collect();
            let (verb, role) = match verbs.as_slice() {
                [(v, r)] => (*v, (*r).clone()),
                _ => {
                    return Err(self.err(
                        &p,
                        "a step is exactly one of create: STACK, update: STACK, delete: STACK",
                    ))
                }
            };
            let verb_key = match verb {
                StepVerb::Create => "create",
                StepVerb::Update => "update",
                StepVerb::Delete => "delete",
            };
            let Some((stack_template, _)) = ctx.stacks.get(&role) else {
                return Err(self.err(
                    &key(&p, verb_key),
                    format!(
                        "no stack {role:?} (stacks: {})",
                        ctx.stacks.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            };
            let stack_decl = &m.stacks[&role];
            match verb {
                StepVerb::Create => {
                    if ctx.phase != "deploy" && ctx.phase != "provision" && ctx.phase != "action" {
                        return Err(self.err(&p, format!("{} does not create stacks", ctx.phase)));
                    }
                    if ctx.created.contains(&role) && ctx.phase == "deploy" {
                        return Err(self.err(&p, format!("stack {role} is created twice")));
                    }
                    if d.template.is_some() {
                        return Err(self.err(
                            &key(&p, "template"),
                            "a create step uses its stack's template (give another stack instead)",
                        ));
                    }
                }
                StepVerb::Update | StepVerb::Delete => {
                    if !ctx.created.contains(&role) {
                        return Err(self.err(
                            &key(&p, verb_key),
                            format!("stack {role} is not created by deploy before this step"),
                        ));
                    }
                    if verb == StepVerb::Delete
                        && (d.template.is_some()
                            || !d.environment.is_empty()
                            || !d.parameters.is_empty())
                    {
                        return Err(self.err(
                            &p,
                            "a delete step takes no template, environment or parameters",
                        ));
                    }
                }
            }
            // The template and environment this step runs with.
            let replace =
                verb == StepVerb::Update && (d.template.is_some() || !d.environment.is_empty());
            let template = if d.template.is_some() || !d.environment.is_empty() {
                let rel = d
                    .template
                    .clone()
                    .unwrap_or_else(|| stack_decl.template.clone());
                let envs = if d.environment.is_empty() {
                    stack_decl.environment.list()
                } else {
                    d.environment.list()
                };
                self.template(&rel, &envs, &p)?
            } else {
                stack_template.clone()
            };
            // Parameters: the stack's, then the step's.
            let origin = StepOrigin {
                stack: heat::Path::keys(["stacks", role.as_str(), "parameters"]),
                step: Some(key(&p, "parameters")),
            };
            let mut parameters: IndexMap<String, (Source, heat::Path)> = IndexMap::new();
            for (name, raw) in &stack_decl.parameters {
                let pp = key(&origin.stack, name);
                let s = self.source(raw, &pp, ctx.attributes, &ctx.action_attributes)?;
                parameters.insert(name.clone(), (s, pp));
            }
            if let Some(sp) = &origin.step {
                for (name, raw) in &d.parameters {
                    let pp = key(sp, name);
                    let s = self.source(raw, &pp, ctx.attributes, &ctx.action_attributes)?;
                    parameters.insert(name.clone(), (s, pp));
                }
            }
            if verb != StepVerb::Delete {
                self.check_parameters(&template, &parameters, ctx, &role, verb, replace, &p)?;
            }
            if verb == StepVerb::Create {
                ctx.created.insert(role.clone());
            }
            out.push(Step {
                verb,
                role: role.clone(),
                replace,
                template,
                timeout_mins: ctx.stacks[&role].1,
                parameters: parameters.into_iter().map(|(k, (s, _))| (k, s)).collect(),
            });
        }
        Ok(out)
    }

    /// Every parameter set is declared, literal values suit it, outputs
    /// come from stacks already created, secrets go to hidden parameters,
    /// and (for a create or full update) every parameter without a
    /// default gets a value.
    #[allow(clippy::too_many_arguments)]
    fn check_parameters(
        &self,
        template: &TemplateDef,
        parameters: &IndexMap<String, (Source, heat::Path)>,
        ctx: &StepsContext<'_>,
        role: &str,
        verb: StepVerb,
        replace: bool,
        at: &heat::Path,
    ) -> Result<(), LoadError> {
        let declared = &template.parsed.template().parameters;
        for (name, (source, p)) in parameters {
            let Some(schema) = declared.get(name) else {
                return Err(self.err(
                    p,
                    format!(
                        "template {} declares no parameter {name:?} (it declares: {})",
                        template.shown,
                        declared.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            };
            match source {
                Source::Literal(v) => {
                    if let Err(e) = schema.coerce(&serde_json::Value::String(v.clone())) {
                        return Err(self.err(
                            p,
                            format!("Parameter '{name}' of {} is invalid: {e}", template.shown),
                        ));
                    }
                }
                Source::Attribute(a) if ctx.secrets.contains(a) && !schema.hidden => {
                    return Err(self.err(
                        p,
                        format!(
                            "attribute {a} is secret, so parameter {name:?} of {} must be `hidden: true`",
                            template.shown
                        ),
                    ));
                }
                Source::Output {
                    role: from,
                    key: output,
                } => {
                    let Some((t, _)) = ctx.stacks.get(from) else {
                        return Err(self.err(p, format!("no stack {from:?}")));
                    };
                    if from == role {
                        return Err(self.err(p, "a stack cannot take its own output"));
                    }
                    if !ctx.created.contains(from) {
                        return Err(self.err(
                            p,
                            format!(
                                "stack {from} is not created before stack {role} in {}",
                                ctx.phase
                            ),
                        ));
                    }
                    if !t.parsed.template().outputs.contains_key(output) {
                        return Err(
                            self.err(p, format!("template {} has no output {output:?}", t.shown))
                        );
                    }
                }
                _ => {}
            }
        }
        if verb == StepVerb::Create || replace {
            let env = template.parsed.environment();
            for (name, schema) in declared {
                let given = parameters.contains_key(name)
                    || schema.default.is_some()
                    || env.parameters.contains_key(name)
                    || env.parameter_defaults.contains_key(name);
                if !given {
                    let mut probe = heat::Error::validation(
                        "",
                        heat::Path::keys(["parameters", name.as_str()]),
                    );
                    template.parsed.template().source().locate(&mut probe);
                    let line = probe.position;
                    return Err(self.err(
                        at,
                        format!(
                            "parameter {name:?} of {}{} has no default and the manifest gives it no value for stack {role}",
                            template.shown,
                            line.map(|l| format!(" (line {})", l.line)).unwrap_or_default()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

struct StepsContext<'a> {
    stacks: &'a IndexMap<String, (Arc<TemplateDef>, u32)>,
    attributes: &'a BTreeSet<String>,
    action_attributes: BTreeSet<String>,
    secrets: &'a BTreeSet<String>,
    created: BTreeSet<String>,
    phase: &'static str,
}

/// A `file://` URL read through the folder (inside it only).
fn read_url(folder: &mut Folder, url: &str) -> Result<String, FileError> {
    let Some(path) = url.strip_prefix("file://") else {
        return Err(FileError::NotAFile(url.to_string()));
    };
    folder.read_abs(Path::new(path))
}

/// The first heat error as a load error (file, line, Heat's message).
fn heat_errors(shown: &str, errors: heat::Errors) -> LoadError {
    match errors.0.into_iter().next() {
        Some(e) => from_heat(shown, e),
        None => LoadError::file(shown, "invalid template"),
    }
}

fn heat_error(shown: &str, text: &str, mut e: heat::Error) -> LoadError {
    if e.position.is_none() && !e.path.is_root() {
        e.position = heat::yaml::PositionIndex::build(text).find(&e.path);
    }
    e.document = Some(shown.to_string());
    from_heat(shown, e)
}

fn from_heat(shown: &str, e: heat::Error) -> LoadError {
    let file = match &e.document {
        Some(d) if d != "environment" => d.clone(),
        _ => shown.to_string(),
    };
    let message = if !e.path.is_root() && !e.message.starts_with(&e.path.to_string()) {
        format!("{}: {}", e.path, e.message)
    } else {
        e.message.clone()
    };
    LoadError {
        file,
        line: e.position.map(|p| p.line),
        column: e.position.map(|p| p.column),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use occi_so_sdk::{Operation, Orchestrator, PluginError};
    use serde_json::json;

    const DB: &str = "heat_template_version: 2018-08-31\nparameters:\n  name:\n    type: string\n    constraints:\n      - allowed_pattern: \"[a-z]+\"\n  password:\n    type: string\n    hidden: true\n    default: \"\"\nresources:\n  v: {type: OS::Heat::Value, properties: {value: {get_param: name}}}\noutputs:\n  url: {value: {get_attr: [v, value]}}\n";
    const WEB: &str = "heat_template_version: 2018-08-31\nparameters:\n  db_url:\n    type: string\n  count:\n    type: number\n    default: 1\n    constraints:\n      - range: {min: 1, max: 3}\nresources:\n  v: {type: OS::Heat::Value, properties: {value: {get_param: db_url}}}\noutputs:\n  url: {value: {get_attr: [v, value]}}\n";
    const MANIFEST: &str = "manifest_version: 1\nname: two\nversion: 1.0.0\nkind:\n  term: two\n  scheme: http://example.org/occi/two#\nattributes:\n  two.name:\n    type: string\n    required: true\n  two.password:\n    secret: true\n  two.count:\n    type: integer\n    default: 1\nstacks:\n  db:\n    template: db.yaml\n    parameters:\n      name: {attribute: two.name}\n      password: {attribute: two.password}\n  web:\n    template: web.yaml\n    parameters:\n      db_url: {output: db.url}\n      count: {attribute: two.count}\n";

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let p = d.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        d
    }

    fn good() -> Vec<(&'static str, String)> {
        vec![
            ("plugin.yaml", MANIFEST.to_string()),
            ("db.yaml", DB.to_string()),
            ("web.yaml", WEB.to_string()),
        ]
    }

    fn load_with(files: &[(&'static str, String)]) -> Result<Arc<Definition>, LoadError> {
        let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
        let d = folder(&refs);
        load(d.path()).map(|l| l.definition)
    }

    fn replace(files: &mut [(&'static str, String)], file: &str, from: &str, to: &str) {
        let f = files.iter_mut().find(|(n, _)| *n == file).unwrap();
        assert!(f.1.contains(from), "{from:?} not in {file}");
        f.1 = f.1.replace(from, to);
    }

    #[test]
    fn a_two_stack_plugin_loads_with_default_phases() {
        let def = load_with(&good()).unwrap();
        assert_eq!(def.info.name, "two");
        let steps: Vec<(StepVerb, &str)> = def
            .deploy
            .iter()
            .map(|s| (s.verb, s.role.as_str()))
            .collect();
        assert_eq!(steps, [(StepVerb::Create, "db"), (StepVerb::Create, "web")]);
        assert!(def.provision.is_empty() && def.update.is_none() && def.dispose.is_none());
        assert!(def.secrets.contains("two.password"));
        assert!(def.fingerprint.starts_with("sha256:"));
        assert!(def.info.kind.attribute("two.password").unwrap().secret);
    }

    #[test]
    fn the_example_plugin_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/webapp");
        let def = load(&dir).unwrap().definition;
        assert_eq!(def.info.kind.location(), "/webapp/");
        assert!(
            def.provision[0].replace,
            "provision is a full update with its environment"
        );
        assert!(
            def.info
                .kind
                .attribute("mcn.endpoint.webapp")
                .unwrap()
                .output
        );
        assert!(def.actions.contains_key("restart"));
    }

    #[test]
    fn a_broken_template_names_its_file_and_line() {
        let mut f = good();
        replace(&mut f, "web.yaml", "OS::Heat::Value", "OS::Heat::Valeu");
        let e = load_with(&f).unwrap_err();
        assert!(e.file.ends_with("web.yaml"), "{e}");
        assert_eq!(e.line, Some(11), "{e}");
        assert!(e.message.contains("OS::Heat::Valeu"), "{e}");
    }

    #[test]
    fn manifest_mistakes_name_the_manifest_line() {
        let mut f = good();
        replace(
            &mut f,
            "plugin.yaml",
            "db_url: {output: db.url}",
            "db_url: {output: db.uri}",
        );
        let e = load_with(&f).unwrap_err();
        assert!(e.file.ends_with("plugin.yaml"), "{e}");
        assert_eq!(e.line, Some(25), "{e}");
        assert!(e.message.contains("no output \"uri\""), "{e}");

        let mut f = good();
        replace(
            &mut f,
            "plugin.yaml",
            "count: {attribute: two.count}",
            "cnt: {attribute: two.count}",
        );
        let e = load_with(&f).unwrap_err();
        assert!(e.message.contains("declares no parameter \"cnt\""), "{e}");

        let mut f = good();
        replace(
            &mut f,
            "plugin.yaml",
            "{attribute: two.count}",
            "{attribute: two.cuont}",
        );
        let e = load_with(&f).unwrap_err();
        assert!(e.message.contains("no attribute \"two.cuont\""), "{e}");

        let mut f = good();
        replace(
            &mut f,
            "plugin.yaml",
            "      db_url: {output: db.url}\n",
            "",
        );
        let e = load_with(&f).unwrap_err();
        assert!(
            e.message.contains("\"db_url\"") && e.message.contains("no default"),
            "{e}"
        );
        assert!(
            e.message.contains("(line 3)"),
            "the template line is named: {e}"
        );

        let mut f = good();
        replace(
            &mut f,
            "plugin.yaml",
            "count: {attribute: two.count}",
            "count: 7",
        );
        let e = load_with(&f).unwrap_err();
        assert!(
            e.message.contains("Parameter 'count'"),
            "literal values are checked: {e}"
        );
    }

    #[test]
    fn secrets_must_go_to_hidden_parameters() {
        let mut f = good();
        replace(&mut f, "db.yaml", "    hidden: true\n", "");
        let e = load_with(&f).unwrap_err();
        assert!(e.message.contains("must be `hidden: true`"), "{e}");
    }

    #[test]
    fn outputs_come_from_stacks_created_before() {
        let mut f = good();
        f[0].1
            .push_str("lifecycle:\n  deploy:\n    - create: web\n    - create: db\n");
        let e = load_with(&f).unwrap_err();
        assert!(e.message.contains("not created before stack web"), "{e}");
    }

    #[test]
    fn files_outside_the_folder_are_refused() {
        let mut f = good();
        replace(
            &mut f,
            "plugin.yaml",
            "template: db.yaml",
            "template: ../db.yaml",
        );
        let e = load_with(&f).unwrap_err();
        assert!(e.message.contains("inside the plugin folder"), "{e}");
        let mut f = good();
        replace(
            &mut f,
            "web.yaml",
            "value: {get_param: db_url}",
            "value: {get_file: /etc/hostname}",
        );
        let e = load_with(&f).unwrap_err();
        assert!(e.message.contains("outside the plugin folder"), "{e}");
    }

    #[tokio::test]
    async fn requests_are_checked_against_the_templates() {
        let def = load_with(&good()).unwrap();
        let ok = occi_so_sdk::Attributes::from([
            ("two.name".to_string(), json!("shop")),
            ("two.count".to_string(), json!(2)),
        ]);
        def.validate(&Operation::Design, &ok).await.unwrap();
        let mut bad = ok.clone();
        bad.insert("two.name".into(), json!("Shop"));
        match def.validate(&Operation::Design, &bad).await.unwrap_err() {
            PluginError::InvalidAttribute { name, message } => {
                assert_eq!(name, "two.name");
                assert!(
                    message.contains("Heat parameter 'name' of db.yaml"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        let mut bad = ok.clone();
        bad.insert("two.count".into(), json!(9));
        let changed = occi_so_sdk::Attributes::from([("two.count".to_string(), json!(9))]);
        let e = def
            .validate(&Operation::Update { changed }, &bad)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("two.count"), "{e}");
        let mut secret = ok.clone();
        secret.insert("two.password".into(), json!("hunter2"));
        def.validate(&Operation::Design, &secret).await.unwrap();
    }
}
