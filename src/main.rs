//! The `occi-so` command line: `serve`, `template`, `plugins`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = occi_so::cli::Cli::parse();
    occi_so::cli::run(cli)
}
