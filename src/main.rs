//! idtok: print, decode and verify Google-signed OpenID Connect ID tokens.
//! `main` parses, runs, reports the error once and returns the exit code.

use std::process::ExitCode;

use clap::Parser;

use idtok::error::Error;
use idtok::{cli, run};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return report(&Error::Bug(format!("cannot start the async runtime: {e}"))),
    };
    match runtime.block_on(run::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

/// Prints the error and its hints to stderr; returns its exit code.
fn report(error: &Error) -> ExitCode {
    if let Error::Usage(e) = error {
        // clap's own format: `error: ...` with usage.
        let _ = e.print();
        return ExitCode::from(error.exit() as u8);
    }
    eprintln!("idtok: error: {error}");
    for hint in error.hints() {
        eprintln!("hint: {hint}");
    }
    ExitCode::from(error.exit() as u8)
}
