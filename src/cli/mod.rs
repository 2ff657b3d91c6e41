//! Command-line entry points. Each subcommand lives in its own module.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod plugins;
pub mod serve;
pub mod template;

/// occi-so: an OCCI/HTTP service-orchestrator framework.
#[derive(Debug, Parser)]
#[command(name = "occi-so", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the OCCI server.
    Serve(Box<serve::ServeArgs>),
    /// Validate or render Heat (HOT) templates.
    #[command(subcommand)]
    Template(template::TemplateCommand),
    /// List, show, validate, register and unregister orchestrator plugins.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
}

/// Runs one parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Template(cmd) => template::run(cmd),
        Command::Plugins(cmd) => plugins::run(cmd),
    }
}
