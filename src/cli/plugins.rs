//! `occi-so plugins list|show|validate|register|unregister`.
//!
//! `validate DIR` runs locally: the manifest and its templates go through
//! the same loader the server uses (the `heat` engine), then every stack's
//! parameters are computed from sample attributes (each attribute's
//! default, else its `example`, else `--attribute name=value`) and the
//! templates are checked with them as Heat checks a stack create. The
//! other subcommands talk to a running server's admin API.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use heat::{ParameterValues, StackIdentity};
use occi_so_sdk::{Attributes, Operation, Orchestrator};
use serde_json::{json, Value};

use occi_so_runtime::declarative::{InstanceField, Source, Step, StepVerb};
use occi_so_runtime::{load, Definition};

/// `println!` that ignores a closed stdout (`occi-so plugins list | head`).
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// Plugin subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PluginsCommand {
    /// List the plugins a running server has registered.
    List {
        /// The server.
        #[command(flatten)]
        server: ServerArgs,
        /// Print the admin API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one plugin of a running server (kind, attributes, actions, source).
    Show {
        /// The plugin's name.
        name: String,
        /// The server.
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Check a declarative plugin folder locally: manifest, templates,
    /// environments, and the templates with sample attributes.
    Validate {
        /// The plugin folder (holding plugin.yaml).
        dir: PathBuf,
        /// A sample attribute value `name=value` (repeatable; overrides
        /// the manifest's default and example).
        #[arg(short = 'a', long = "attribute", value_parser = parse_pair)]
        attributes: Vec<(String, String)>,
    },
    /// Register a plugin with a running server: a declarative folder (its
    /// path on the server's machine, or `--upload` to send its files), or
    /// a remote service orchestrator (`--remote URL --term TERM`).
    Register(Box<RegisterArgs>),
    /// Unregister a plugin (refused while it has live instances, unless --force).
    Unregister {
        /// The plugin's name.
        name: String,
        /// Unregister even with live instances (they stay, their stacks too,
        /// until the plugin is registered again).
        #[arg(long)]
        force: bool,
        /// The server.
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// What `plugins register` takes.
#[derive(Debug, clap::Args)]
pub struct RegisterArgs {
    /// The declarative plugin folder.
    #[arg(required_unless_present = "remote", conflicts_with = "remote")]
    dir: Option<PathBuf>,
    /// Send the folder's files instead of its path (for a server on
    /// another machine); the server keeps them in its state directory.
    #[arg(long, requires = "dir")]
    upload: bool,
    /// A remote SO's base URL.
    #[arg(long, value_name = "URL", requires = "term")]
    remote: Option<String>,
    /// The kind term to serve the remote SO under.
    #[arg(long)]
    term: Option<String>,
    /// The kind scheme [default: the MCN service-manager scheme].
    #[arg(long)]
    scheme: Option<String>,
    /// The kind title [default: the remote kind's].
    #[arg(long)]
    title: Option<String>,
    /// The collection location [default: /TERM/].
    #[arg(long)]
    location: Option<String>,
    /// The registry name [default: the term].
    #[arg(long)]
    name: Option<String>,
    /// The remote collection [default: /orchestrator/].
    #[arg(long)]
    collection: Option<String>,
    /// `shared` (one remote path per instance) or `single` (one
    /// instance per remote endpoint) [default: shared].
    #[arg(long)]
    mode: Option<String>,
    /// Longest wait for a remote operation [default: 30m].
    #[arg(long)]
    timeout: Option<String>,
    /// A token to read the remote's query interface with (not stored).
    #[arg(long, value_name = "TOKEN")]
    remote_token: Option<String>,
    /// The tenant sent with --remote-token.
    #[arg(long, value_name = "TENANT")]
    remote_tenant: Option<String>,
    /// The server.
    #[command(flatten)]
    server: ServerArgs,
}

/// How to reach a server's admin API.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// The server's base URL.
    #[arg(long, env = "OCCI_SO_SERVER", default_value = "http://127.0.0.1:8051")]
    pub server: String,
    /// The admin token.
    #[arg(long, env = "OCCI_SO_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// A file whose first line is the admin token.
    #[arg(long, env = "OCCI_SO_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected name=value, got {s:?}")),
    }
}

/// Runs a plugins subcommand. Exit codes: 0 done, 1 refused or invalid,
/// 2 unusable arguments or an unreachable server.
pub fn run(cmd: PluginsCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("occi-so plugins: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async move {
        match cmd {
            PluginsCommand::Validate { dir, attributes } => validate(&dir, &attributes).await,
            PluginsCommand::List { server, json } => list(&server, json).await,
            PluginsCommand::Show { name, server } => show(&server, &name).await,
            PluginsCommand::Register(args) => {
                let RegisterArgs {
                    dir,
                    upload,
                    remote,
                    term,
                    scheme,
                    title,
                    location,
                    name,
                    collection,
                    mode,
                    timeout,
                    remote_token,
                    remote_tenant,
                    server,
                } = *args;
                let body = match (dir, remote) {
                    (Some(dir), None) => match folder_body(&dir, upload) {
                        Ok(b) => b,
                        Err(e) => {
                            eprintln!("occi-so plugins register: {e}");
                            return ExitCode::from(2);
                        }
                    },
                    (None, Some(url)) => {
                        let mut kind = json!({ "term": term });
                        for (k, v) in [("scheme", scheme), ("title", title), ("location", location)]
                        {
                            if let Some(v) = v {
                                kind[k] = json!(v);
                            }
                        }
                        let mut r = json!({ "url": url, "kind": kind });
                        for (k, v) in [
                            ("name", name),
                            ("collection", collection),
                            ("mode", mode),
                            ("timeout", timeout),
                            ("token", remote_token),
                            ("tenant", remote_tenant),
                        ] {
                            if let Some(v) = v {
                                r[k] = json!(v);
                            }
                        }
                        json!({ "remote": r })
                    }
                    _ => {
                        eprintln!("occi-so plugins register: give a folder or --remote URL");
                        return ExitCode::from(2);
                    }
                };
                register(&server, &body).await
            }
            PluginsCommand::Unregister {
                name,
                force,
                server,
            } => unregister(&server, &name, force).await,
        }
    })
}

// ---- validate (local) ----

async fn validate(dir: &Path, given: &[(String, String)]) -> ExitCode {
    let d = dir.to_path_buf();
    let loaded = match tokio::task::spawn_blocking(move || load::load(&d)).await {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let def = loaded.definition;
    let mut attributes = match def.sample_attributes() {
        Ok(a) => a,
        Err(e) if given.is_empty() => {
            eprintln!(
                "error: {}: {e}; give one with --attribute NAME=VALUE",
                dir.display()
            );
            return ExitCode::FAILURE;
        }
        Err(_) => Attributes::new(),
    };
    // Given values are checked against the kind as the server checks them.
    let schema = match occi_so_framework::schema::Schema::new(def.info.kind.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    let mut pairs: Vec<(String, Value)> = attributes.clone().into_iter().collect();
    for (k, v) in given {
        pairs.retain(|(n, _)| n != k);
        pairs.push((k.clone(), Value::String(v.clone())));
    }
    attributes = match schema.for_create(&pairs) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: sample attributes: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = def.validate(&Operation::Design, &attributes).await {
        eprintln!("error: with the sample attributes: {e}");
        return ExitCode::FAILURE;
    }
    let mut report = Vec::new();
    let mut failed = false;
    let mut steps: Vec<(&str, &Step)> = def.deploy.iter().map(|s| ("deploy", s)).collect();
    steps.extend(def.provision.iter().map(|s| ("provision", s)));
    if let Some(u) = &def.update {
        steps.extend(u.iter().map(|s| ("update", s)));
    }
    for (term, a) in &def.actions {
        steps.extend(a.iter().map(|s| (term.as_str(), s)));
    }
    for (phase, step) in steps {
        if step.verb == StepVerb::Delete || (step.verb == StepVerb::Update && !step.replace) {
            continue;
        }
        match check_step(&def, step, &attributes) {
            Ok(line) => report.push(format!(
                "    {phase}: {} {}: {line}",
                verb(step.verb),
                step.role
            )),
            Err(e) => {
                failed = true;
                eprintln!("error: {phase}: {} {}: {e}", verb(step.verb), step.role);
            }
        }
    }
    if failed {
        return ExitCode::FAILURE;
    }
    print_summary(dir, &def, &attributes);
    for l in report {
        say!("{l}");
    }
    ExitCode::SUCCESS
}

fn verb(v: StepVerb) -> &'static str {
    match v {
        StepVerb::Create => "create",
        StepVerb::Update => "update",
        StepVerb::Delete => "delete",
    }
}

/// The step's template with the sample parameter values, as Heat checks
/// a stack create. Outputs of other stacks are not known before deploy.
fn check_step(def: &Definition, step: &Step, attributes: &Attributes) -> Result<String, String> {
    let mut values = ParameterValues::new();
    let mut unknown = Vec::new();
    for (name, source) in &step.parameters {
        let v = match source {
            Source::Attribute(a) => attributes.get(a).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
            Source::Literal(s) => Some(s.clone()),
            Source::Instance(InstanceField::Id) => Some("validate".into()),
            Source::Instance(InstanceField::Location) => {
                Some(format!("{}validate", def.info.kind.location()))
            }
            Source::Instance(InstanceField::Tenant) => Some("validate".into()),
            Source::Uuid => Some(uuid::Uuid::new_v4().to_string()),
            Source::Output { .. } => {
                unknown.push(name.clone());
                None
            }
        };
        if let Some(v) = v {
            values.insert(name.clone(), v);
        }
    }
    let identity = StackIdentity {
        stack_name: Some(format!("so-{}-validate-{}", def.info.kind.term, step.role)),
        ..StackIdentity::default()
    };
    match step.template.parsed.define(&values, &identity) {
        Ok(d) => Ok(format!(
            "{} with {} parameter value(s): valid ({} resources)",
            step.template.file,
            values.0.len(),
            d.resources().count()
        )),
        Err(errors) => {
            let real: Vec<String> = errors
                .iter()
                .filter(|e| {
                    !unknown
                        .iter()
                        .any(|p| e.message == format!("The Parameter ({p}) was not provided."))
                })
                .map(|e| e.to_string())
                .collect();
            if real.is_empty() {
                Ok(format!(
                    "{} valid as far as known before deploy (outputs of other stacks: {})",
                    step.template.file,
                    unknown.join(", ")
                ))
            } else {
                Err(real.join("\n  "))
            }
        }
    }
}

fn print_summary(dir: &Path, def: &Definition, attributes: &Attributes) {
    let info = &def.info;
    say!("{}: valid", dir.display());
    say!(
        "  plugin     {} {}{}",
        info.name,
        info.version,
        info.description
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default()
    );
    say!(
        "  kind       {} at {}",
        info.kind.id(),
        info.kind.location()
    );
    let inputs: Vec<&str> = info
        .kind
        .attributes
        .iter()
        .filter(|a| !a.output)
        .map(|a| a.name.as_str())
        .collect();
    say!(
        "  attributes {}",
        if inputs.is_empty() {
            "-".into()
        } else {
            inputs.join(", ")
        }
    );
    let outputs: Vec<&str> = info
        .kind
        .attributes
        .iter()
        .filter(|a| a.output)
        .map(|a| a.name.as_str())
        .collect();
    if !outputs.is_empty() {
        say!("  outputs    {}", outputs.join(", "));
    }
    let stacks: Vec<String> = def
        .stacks
        .iter()
        .map(|(r, s)| format!("{r} ({})", s.template.file))
        .collect();
    say!("  stacks     {}", stacks.join(", "));
    let steps = |s: &[Step]| -> String {
        if s.is_empty() {
            "-".into()
        } else {
            s.iter()
                .map(|s| format!("{} {}", verb(s.verb), s.role))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    say!("  deploy     {}", steps(&def.deploy));
    say!("  provision  {}", steps(&def.provision));
    say!(
        "  update     {}",
        def.update
            .as_deref()
            .map(steps)
            .unwrap_or_else(|| "patch the parameters whose attributes changed".into())
    );
    say!(
        "  dispose    {}",
        def.dispose
            .as_deref()
            .map(|s| format!("{}, then delete what is left", steps(s)))
            .unwrap_or_else(|| "delete every stack, last first".into())
    );
    for (term, a) in &def.actions {
        say!("  action     {term}: {}", steps(a));
    }
    let shown: Vec<String> = attributes
        .iter()
        .map(|(k, v)| {
            if def.secrets.contains(k) {
                format!("{k}=******")
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    say!(
        "  sample     {}",
        if shown.is_empty() {
            "-".into()
        } else {
            shown.join(" ")
        }
    );
    say!("  digest     {}", def.fingerprint);
    say!("  checked with the sample attributes:");
}

// ---- admin API client ----

fn token(server: &ServerArgs) -> Result<String, String> {
    if let Some(t) = &server.admin_token {
        return Ok(t.trim().to_string());
    }
    if let Some(f) = &server.admin_token_file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| format!("--admin-token-file {}: {e}", f.display()))?;
        return text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string)
            .ok_or_else(|| format!("--admin-token-file {}: empty", f.display()));
    }
    Err("give --admin-token, --admin-token-file, or OCCI_SO_ADMIN_TOKEN(_FILE)".into())
}

/// One admin API call: the status and the JSON answer.
async fn admin(
    server: &ServerArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), ExitCode> {
    let token = token(server).map_err(|e| {
        eprintln!("occi-so plugins: {e}");
        ExitCode::from(2)
    })?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| {
            eprintln!("occi-so plugins: {e}");
            ExitCode::from(2)
        })?;
    let url = format!("{}{path}", server.server.trim_end_matches('/'));
    let mut rb = client.request(method, &url).bearer_auth(token);
    if let Some(b) = body {
        rb = rb.json(b);
    }
    let r = rb.send().await.map_err(|e| {
        eprintln!("occi-so plugins: cannot reach {url}: {e}");
        ExitCode::from(2)
    })?;
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    let v = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Ok((status, v))
}

fn refused(status: u16, v: &Value) -> ExitCode {
    let message = v
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string());
    eprintln!("error: HTTP {status}: {message}");
    ExitCode::FAILURE
}

fn source_text(v: &Value) -> String {
    match v.get("type").and_then(Value::as_str) {
        Some("declarative") => format!("folder {}", v["path"].as_str().unwrap_or("?")),
        Some("remote") => format!("remote {}", v["url"].as_str().unwrap_or("?")),
        Some(other) => other.to_string(),
        None => "?".into(),
    }
}

async fn list(server: &ServerArgs, raw: bool) -> ExitCode {
    let (status, v) = match admin(server, reqwest::Method::GET, "/admin/plugins", None).await {
        Ok(x) => x,
        Err(c) => return c,
    };
    if status != 200 {
        return refused(status, &v);
    }
    if raw {
        say!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    let rows: Vec<[String; 6]> = v["plugins"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    let mut state = p["state"].as_str().unwrap_or("").to_string();
                    if p["default"].as_bool() == Some(true) {
                        state.push_str(" (default)");
                    }
                    [
                        p["name"].as_str().unwrap_or("").to_string(),
                        p["version"].as_str().unwrap_or("").to_string(),
                        p["location"].as_str().unwrap_or("").to_string(),
                        p["instances"].to_string(),
                        state,
                        source_text(&p["source"]),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    let header = [
        "NAME",
        "VERSION",
        "LOCATION",
        "INSTANCES",
        "STATE",
        "SOURCE",
    ]
    .map(String::from);
    let mut widths = [0usize; 6];
    for r in std::iter::once(&header).chain(rows.iter()) {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.len());
        }
    }
    for r in std::iter::once(&header).chain(rows.iter()) {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 5 {
                    c.clone()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect();
        say!("{}", line.join("  ").trim_end());
    }
    for p in v["plugins"].as_array().into_iter().flatten() {
        if let Some(e) = p["error"].as_str() {
            say!(
                "\n{}: its latest version was refused (the previous one serves): {e}",
                p["name"].as_str().unwrap_or("")
            );
        }
    }
    for r in v["rejected"].as_array().into_iter().flatten() {
        say!(
            "\nrefused folder {}: {}",
            r["path"].as_str().unwrap_or(""),
            r["error"]
                .as_str()
                .unwrap_or(if r["disabled"].as_bool() == Some(true) {
                    "unregistered by an administrator"
                } else {
                    ""
                })
        );
    }
    ExitCode::SUCCESS
}

async fn show(server: &ServerArgs, name: &str) -> ExitCode {
    match admin(
        server,
        reqwest::Method::GET,
        &format!("/admin/plugins/{name}"),
        None,
    )
    .await
    {
        Ok((200, v)) => {
            say!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok((s, v)) => refused(s, &v),
        Err(c) => c,
    }
}

/// The registration body for a folder: its path, or its files.
fn folder_body(dir: &Path, upload: bool) -> Result<Value, String> {
    if !upload {
        let abs = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        return Ok(json!({ "path": abs }));
    }
    let mut files = BTreeMap::new();
    collect(dir, dir, &mut files)?;
    let manifest = files
        .remove(occi_so_runtime::manifest::FILE_NAME)
        .ok_or_else(|| format!("{}: no plugin.yaml", dir.display()))?;
    Ok(json!({ "manifest": manifest, "files": files }))
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for e in entries.flatten() {
        let name = e.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let p = e.path();
        if p.is_dir() {
            if name == "target" {
                continue;
            }
            collect(root, &p, out)?;
        } else if p.is_file() {
            let rel = p
                .strip_prefix(root)
                .map_err(|e| e.to_string())?
                .to_string_lossy()
                .replace('\\', "/");
            match std::fs::read_to_string(&p) {
                Ok(t) => {
                    out.insert(rel, t);
                }
                Err(_) => eprintln!("note: {} is not UTF-8 text; not uploaded", p.display()),
            }
        }
    }
    Ok(())
}

async fn register(server: &ServerArgs, body: &Value) -> ExitCode {
    match admin(server, reqwest::Method::POST, "/admin/plugins", Some(body)).await {
        Ok((201, v)) => {
            say!(
                "registered {} {}: kind {} at {} ({})",
                v["name"].as_str().unwrap_or(""),
                v["version"].as_str().unwrap_or(""),
                v["kind"]["id"].as_str().unwrap_or(""),
                v["kind"]["location"].as_str().unwrap_or(""),
                v["source_text"].as_str().unwrap_or("")
            );
            ExitCode::SUCCESS
        }
        Ok((s, v)) => refused(s, &v),
        Err(c) => c,
    }
}

async fn unregister(server: &ServerArgs, name: &str, force: bool) -> ExitCode {
    let path = if force {
        format!("/admin/plugins/{name}?force=true")
    } else {
        format!("/admin/plugins/{name}")
    };
    match admin(server, reqwest::Method::DELETE, &path, None).await {
        Ok((204, _)) => {
            say!("unregistered {name}");
            ExitCode::SUCCESS
        }
        Ok((s, v)) => refused(s, &v),
        Err(c) => c,
    }
}
