//! `occi-so template validate|render` (issue 3).

use std::process::ExitCode;

/// Template subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TemplateCommand {
    /// Validate a template as Heat's `POST /validate` does.
    Validate {
        /// The template file.
        file: std::path::PathBuf,
    },
}

/// Runs a template subcommand.
pub fn run(cmd: TemplateCommand) -> ExitCode {
    eprintln!("{cmd:?}: the template engine lands with issue 3");
    ExitCode::FAILURE
}
