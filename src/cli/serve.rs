//! `occi-so serve`: run the OCCI server.

use std::process::ExitCode;

pub use crate::config::ServeArgs;

/// Runs the server until SIGTERM/SIGINT. Exit codes: 0 after a clean
/// shutdown, 2 for unusable settings, 1 when the server cannot start.
pub fn run(args: ServeArgs) -> ExitCode {
    let settings = match args.resolve() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("occi-so serve: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = crate::daemon::init_logging(&settings) {
        eprintln!("occi-so serve: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("occi-so")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(crate::daemon::run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "occi-so serve could not start");
            ExitCode::FAILURE
        }
    }
}
