//! `occi-so plugins ...` (issue 6).

use std::process::ExitCode;

/// Plugin subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PluginsCommand {
    /// List the plugins a server has registered.
    List,
}

/// Runs a plugins subcommand.
pub fn run(cmd: PluginsCommand) -> ExitCode {
    eprintln!("{cmd:?}: the plugin framework lands with issue 6");
    ExitCode::FAILURE
}
