//! `ess-guard diff`: compare two renders resource by resource (or a render with what
//! post-render would make of it). The logic is in [`crate::diff`]; this decides colour, prints
//! and returns the exit code.

use std::io::IsTerminal;

use crate::cli::DiffArgs;
use crate::diff::DiffRequest;
use crate::error::Error;

pub fn run(args: DiffArgs) -> Result<u8, Error> {
    let args = DiffRequest::from(&args);
    let no_color = std::env::var("NO_COLOR").ok();
    let term = std::env::var("TERM").ok();
    let color = args.color.enabled(
        std::io::stdout().is_terminal(),
        no_color.as_deref(),
        term.as_deref(),
    );
    let outcome = crate::diff::run(&args, color)?;
    if !outcome.stderr.is_empty() {
        crate::output::report(&outcome.stderr, false, None)?;
    }
    crate::output::write_stdout(outcome.stdout.as_bytes())?;
    Ok(outcome.exit_code)
}
