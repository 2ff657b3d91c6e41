//! `occi-so serve` (issue 5).

use std::process::ExitCode;

/// Options of `occi-so serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "OCCI_SO_LISTEN", default_value = "127.0.0.1:8051")]
    pub listen: String,
}

/// Runs the server.
pub fn run(args: ServeArgs) -> ExitCode {
    eprintln!(
        "occi-so serve {}: the server lands with issue 5",
        args.listen
    );
    ExitCode::FAILURE
}
