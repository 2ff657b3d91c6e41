//! `occi-so serve` (issue 5).

use std::process::ExitCode;

pub use crate::config::ServeArgs;

/// Runs the server.
pub fn run(args: ServeArgs) -> ExitCode {
    eprintln!("occi-so serve {:?}: the server lands with issue 5", args.listen);
    ExitCode::FAILURE
}
