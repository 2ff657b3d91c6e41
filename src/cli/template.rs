//! `occi-so template validate|render`: check or render a HOT template the
//! way the OpenStack client and Heat would, without a cloud.
//!
//! Like `openstack stack create`, `get_file` targets and nested-template
//! types (`type: ./x.yaml`) are read relative to the template's own file,
//! environment files (`-e`) are merged in order and their
//! `resource_registry` templates read relative to each environment file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use heat::files::{file_url, gather_environment_files, gather_template_files};
use heat::{
    Environment, Errors, Files, Limits, Options, ParameterValues, RenderOptions, StackIdentity,
    StackTemplate, Strictness,
};

/// Template subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TemplateCommand {
    /// Validate a template as Heat's `POST /validate` does (with `-P`, also
    /// the parameter values, as Heat does when it creates a stack).
    Validate(TemplateArgs),
    /// Render a template with its parameters: parameters, conditions,
    /// files and pure functions resolved; get_resource/get_attr kept.
    Render {
        /// What to render.
        #[command(flatten)]
        args: TemplateArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "yaml")]
        format: Format,
    },
}

/// Output format of `render`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

/// What both subcommands read.
#[derive(Debug, clap::Args)]
pub struct TemplateArgs {
    /// The template file.
    pub file: PathBuf,
    /// An environment file (repeatable; later files win).
    #[arg(short = 'e', long = "environment")]
    pub environments: Vec<PathBuf>,
    /// A parameter value `key=value` (repeatable).
    #[arg(short = 'P', long = "parameter", value_parser = parse_param)]
    pub parameters: Vec<(String, String)>,
    /// Give exactly Heat's verdict: do not report the mistakes Heat
    /// silently accepts (misspelt function names, functions of another
    /// template version, references to undefined names).
    #[arg(long)]
    pub heat_compatible: bool,
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}

/// Runs a template subcommand.
pub fn run(cmd: TemplateCommand) -> ExitCode {
    match cmd {
        TemplateCommand::Validate(args) => validate(&args),
        TemplateCommand::Render { args, format } => render(&args, format),
    }
}

fn validate(args: &TemplateArgs) -> ExitCode {
    let (tmpl, params) = match load(args) {
        Ok(x) => x,
        Err(e) => return report(&e),
    };
    let result = if args.parameters.is_empty() {
        tmpl.validate(&params).map(|r| {
            let n = r.parameters.len();
            format!(
                "{}: valid ({n} parameter{})",
                args.file.display(),
                if n == 1 { "" } else { "s" }
            )
        })
    } else {
        tmpl.define(&params, &StackIdentity::default()).map(|d| {
            let levels = d.dependencies().create_levels().unwrap_or_default();
            format!(
                "{}: valid with these parameter values ({} resources in {} creation steps)",
                args.file.display(),
                d.resources().count(),
                levels.len()
            )
        })
    };
    match result {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => report(&e),
    }
}

fn render(args: &TemplateArgs, format: Format) -> ExitCode {
    let (tmpl, params) = match load(args) {
        Ok(x) => x,
        Err(e) => return report(&e),
    };
    match tmpl.render(&params, &RenderOptions::default()) {
        Ok(r) => {
            let text = match format {
                Format::Yaml => r.to_yaml(),
                Format::Json => r.to_json(),
            };
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
            if !r.hidden_parameters.is_empty() {
                let names: Vec<&str> = r.hidden_parameters.0.keys().map(String::as_str).collect();
                eprintln!(
                    "note: hidden parameters are kept as get_param and must be passed to Heat as parameters: {}",
                    names.join(", ")
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => report(&e),
    }
}

fn report(errors: &Errors) -> ExitCode {
    for e in errors {
        eprintln!("error: {e}");
    }
    ExitCode::FAILURE
}

fn io_errors(path: &Path, e: std::io::Error) -> Errors {
    let mut err = heat::Error::new(
        heat::ErrorKind::HttpBadRequest,
        format!("cannot read {}: {e}", path.display()),
        heat::Path::root(),
    );
    err.document = Some(path.display().to_string());
    err.into()
}

fn read_url(url: &str) -> Result<String, String> {
    let Some(path) = url.strip_prefix("file://") else {
        return Err(format!("only local files can be read, not {url}"));
    };
    // Bounded by the bytes read (a device or FIFO reports no length and
    // is refused before any read).
    let limit = Limits::default().max_bytes as u64 * 20;
    occi_so_sdk::files::read_regular_text(Path::new(path), limit).map_err(|e| e.to_string())
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Reads the template, environments and files, and builds the stack template.
fn load(args: &TemplateArgs) -> Result<(StackTemplate, ParameterValues), Errors> {
    let limits = Limits::default();
    let mut files = Files::new();
    let mut environment = Environment::new();
    for env_path in &args.environments {
        let text = read_limited(env_path, &limits)?;
        let mut env = Environment::parse_with(&text, &limits).map_err(|mut e| {
            e.document = Some(env_path.display().to_string());
            Errors::from(e)
        })?;
        let url = file_url(&absolute(env_path));
        gather_environment_files(&mut env, &url, &mut read_url, &mut files)
            .map_err(Errors::from)?;
        environment.merge(&env);
    }
    let text = read_limited(&args.file, &limits)?;
    let name = args.file.display().to_string();
    let template = heat::Template::parse_with(&text, Some(&name), &limits)?;
    let url = file_url(&absolute(&args.file));
    gather_template_files(&template.to_document(), &url, &mut read_url, &mut files)
        .map_err(Errors::from)?;
    let options = Options {
        limits,
        strictness: if args.heat_compatible {
            Strictness::Heat
        } else {
            Strictness::Strict
        },
        ..Options::default()
    };
    let params: BTreeMap<String, String> = args.parameters.iter().cloned().collect();
    let tmpl = StackTemplate::new(template, environment, files, options)?;
    Ok((tmpl, ParameterValues::from(&params)))
}

fn read_limited(path: &Path, limits: &Limits) -> Result<String, Errors> {
    use occi_so_sdk::files::{read_regular_text, ReadError};
    match read_regular_text(path, limits.max_bytes as u64) {
        Ok(text) => Ok(text),
        Err(ReadError::TooLarge { .. }) => {
            let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            let mut e = heat::Error::new(
                heat::ErrorKind::RequestLimitExceeded,
                format!(
                    "Request limit exceeded: Template size ({} bytes) exceeds maximum allowed size ({} bytes).",
                    size.max(limits.max_bytes as u64 + 1),
                    limits.max_bytes
                ),
                heat::Path::root(),
            );
            e.document = Some(path.display().to_string());
            Err(e.into())
        }
        Err(ReadError::Io { source, .. }) => Err(io_errors(path, source)),
        Err(other) => {
            let mut err = heat::Error::new(
                heat::ErrorKind::HttpBadRequest,
                format!("cannot read {other}"),
                heat::Path::root(),
            );
            err.document = Some(path.display().to_string());
            Err(err.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory with the given files.
    fn scratch(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("occi-so-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    fn args(file: PathBuf, envs: Vec<PathBuf>, params: &[(&str, &str)]) -> TemplateArgs {
        TemplateArgs {
            file,
            environments: envs,
            parameters: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            heat_compatible: false,
        }
    }

    #[test]
    fn files_and_nested_templates_resolve_relative_to_their_file() {
        let dir = scratch(
            "relative",
            &[
                ("t/main.yaml", "heat_template_version: 2016-10-14\nparameters:\n  n: {type: number, default: 1}\nresources:\n  cfg: {type: OS::Heat::Value, properties: {value: {get_file: scripts/boot.sh}}}\n  sub: {type: ./lib/sub.yaml, properties: {size: {get_param: n}}}\n  alias: {type: My::Thing}\n"),
                ("t/scripts/boot.sh", "#!/bin/sh\necho hi\n"),
                ("t/lib/sub.yaml", "heat_template_version: 2016-10-14\nparameters:\n  size: {type: number}\nresources:\n  v: {type: OS::Heat::Value, properties: {value: {get_file: data.txt}}}\n"),
                ("t/lib/data.txt", "nested data"),
                ("env/e.yaml", "resource_registry:\n  My::Thing: ../t/lib/sub.yaml\nparameters:\n  n: 4\n"),
            ],
        );
        let a = args(dir.join("t/main.yaml"), vec![dir.join("env/e.yaml")], &[]);
        let (tmpl, params) = load(&a).unwrap();
        tmpl.validate(&params).unwrap();
        let r = tmpl.render(&params, &RenderOptions::default()).unwrap();
        assert_eq!(
            r.template["resources"]["cfg"]["properties"]["value"],
            "#!/bin/sh\necho hi\n"
        );
        assert_eq!(r.template["resources"]["sub"]["properties"]["size"], 4);
        assert_eq!(r.template["resources"]["sub"]["type"], "./lib/sub.yaml");
        let nested = tmpl.files()["./lib/sub.yaml"].clone();
        assert!(nested.contains("file://"), "{nested}");
        assert!(r.template["resources"]["alias"]["type"]
            .as_str()
            .unwrap()
            .ends_with("/t/lib/sub.yaml"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn every_error_has_its_line() {
        let dir = scratch(
            "errors",
            &[("t.yaml", "heat_template_version: 2016-10-14\nparameters:\n  flavor:\n    type: string\n    constraints: [{allowed_values: [small]}]\nresources:\n  a: {type: OS::Heat::Value, properties: {value: {get_parm: flavor}}}\n  b: {type: OS::Heat::Nope}\n")],
        );
        let a = args(dir.join("t.yaml"), vec![], &[("flavor", "huge")]);
        let (tmpl, params) = load(&a).unwrap();
        let errs = tmpl.define(&params, &StackIdentity::default()).unwrap_err();
        let text = errs.to_string();
        assert!(text.contains("t.yaml:7:"), "{text}");
        assert!(text.contains("did you mean \"get_param\""), "{text}");
        assert!(
            text.contains("t.yaml:3:3: parameters.flavor: Parameter 'flavor' is invalid"),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let dir = scratch("missing", &[("t.yaml", "heat_template_version: 2016-10-14\nresources:\n  a: {type: OS::Heat::Value, properties: {value: {get_file: nope.sh}}}\n")]);
        let err = load(&args(dir.join("t.yaml"), vec![], &[])).unwrap_err();
        assert!(err.to_string().contains("nope.sh"), "{err}");
        let err = load(&args(dir.join("absent.yaml"), vec![], &[])).unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn devices_and_fifos_are_refused_not_read() {
        let dir = scratch("devices", &[("t.yaml", "heat_template_version: 2016-10-14\nresources:\n  a: {type: OS::Heat::Value, properties: {value: {get_file: /dev/zero}}}\n")]);
        let err = load(&args(dir.join("t.yaml"), vec![], &[])).unwrap_err();
        assert!(
            err.to_string()
                .contains("/dev/zero: not a regular file (a character device)"),
            "{err}"
        );
        let fifo = dir.join("pipe.yaml");
        if std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success())
        {
            let err = load(&args(fifo, vec![], &[])).unwrap_err();
            assert!(
                err.to_string().contains("not a regular file (a FIFO)"),
                "{err}"
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn parameters_parse_as_key_value() {
        assert_eq!(parse_param("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        for bad in ["novalue", "=v"] {
            assert_eq!(
                parse_param(bad).unwrap_err(),
                format!("expected key=value, got {bad:?}")
            );
        }
    }
}
