//! The `occi-so` binary: the command line (`serve`, `template`,
//! `plugins`) and the wiring of the crates into a server. It holds no
//! logic of its own beyond reading the settings and assembling the parts:
//! the framework core (`occi-so-framework`), the plugin runtime
//! (`occi-so-runtime`), the HTTP edge (`occi-so-http`), the stack backends
//! (`occi-so-backend`) and the compiled plugins (`occi-so-plugin-*`).

mod backend;
mod builtin;
mod cli;
mod config;
mod daemon;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    cli::run(cli)
}
