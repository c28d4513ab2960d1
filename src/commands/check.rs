//! `ess-guard check`: guard one or more renders and print a report.
//!
//! Inputs are checked in parallel (at most `available_parallelism` at a time); the report keeps
//! the order of the inputs. Exit code: the worst outcome over all inputs —
//! 0 every input allowed, 1 some input rejected, and an input that could not be checked at all
//! (bad input 2, marker state unknown 3, output failure 4) wins over both. The reports of the
//! inputs that could be checked are still printed to stdout, and each error goes to stderr, so
//! one broken file in a directory does not hide the verdicts of the others.

use std::path::Path;

use crate::cli::CheckArgs;
use crate::error::{Error, EXIT_REJECTED};
use crate::guard;
use crate::input;
use crate::parallel;
use crate::report::InputReport;
use crate::source::{FixedState, StateSource};

/// What checking one input gave.
struct Checked {
    report: InputReport,
    /// The unified diff of the changes, with `--show-changes`.
    diff: String,
}

pub fn run(mut args: CheckArgs) -> Result<u8, Error> {
    // CI validation is `check`'s job: every document is parsed and validated, not only the kinds
    // the guard reads (post-render keeps the fast path; Helm re-validates what it applies).
    args.guard.full_parse = true;
    let inputs = input::expand(&args.inputs)?;
    let intent = guard::intent(&(&args.intent).into())?;
    let state_map = match &args.state_map {
        Some(path) => Some(input::read_state_map(path)?),
        None => None,
    };
    let has_default_source = state_map.is_none()
        || args.state.state.is_some()
        || args.state.state_file.is_some()
        || args.state.live;
    if has_default_source {
        // Wrong state flags are a usage error for the whole call: say so once, before any work.
        guard::state_source(&(&args.state).into(), false)?;
    }

    let (inputs_ref, state_map, args_ref) = (&inputs, &state_map, &args);
    let outcomes = parallel::ordered_map(
        (0..inputs.len()).collect(),
        parallel::workers(usize::MAX),
        |worker| {
            // Each worker builds its own default source (sources need not be thread-safe).
            let mut default_source: Option<Box<dyn StateSource>> = None;
            move |i: usize| -> Result<Checked, Error> {
                let (inputs, args) = (inputs_ref, args_ref);
                let name = &inputs[i];
                let mapped;
                let source: &dyn StateSource = match state_map.as_ref().and_then(|m| m.get(name)) {
                    Some(state) => {
                        mapped = FixedState(*state);
                        &mapped
                    }
                    None if has_default_source => {
                        if default_source.is_none() {
                            default_source =
                                Some(guard::state_source(&(&args.state).into(), false)?);
                        }
                        default_source.as_deref().ok_or_else(|| {
                            Error::Usage(format!("worker {worker}: no state source"))
                        })?
                    }
                    None => {
                        return Err(Error::Usage(format!(
                            "{name}: not in --state-map and no --state/--state-file/--live given"
                        )))
                    }
                };
                let bytes = input::read(name)?;
                let guarded = guard::run(
                    name,
                    bytes,
                    source,
                    &(&args.state).into(),
                    intent,
                    &(&args.guard).into(),
                    args.fail_on.into(),
                )?;
                let diff = match (&guarded.output, args.show_changes) {
                    (Some(_), true) => crate::inject::explain(&guarded.stream, &guarded.plan, 3)
                        .map_err(|e| Error::Output(format!("{name}: {e}")))?,
                    _ => String::new(),
                };
                Ok(Checked {
                    report: guarded.report,
                    diff,
                })
            }
        },
    );

    let mut reports: Vec<InputReport> = Vec::with_capacity(inputs.len());
    let mut diffs = String::new();
    let mut errors: Vec<Error> = Vec::new();
    for outcome in outcomes {
        match outcome {
            Ok(checked) => {
                reports.push(checked.report);
                diffs.push_str(&checked.diff);
            }
            Err(e) => errors.push(e),
        }
    }
    if reports.is_empty() && errors.len() == 1 {
        // Nothing to report: the one error is the result, exactly as for a single input.
        if let Some(e) = errors.pop() {
            return Err(e);
        }
    }
    if !reports.is_empty() {
        let text = crate::formats::render(args.output.format, &reports);
        crate::output::write_stdout(text.as_bytes())?;
    }
    if !diffs.is_empty() {
        crate::output::report(&diffs, false, None::<&Path>)?;
    }
    let mut code = if reports.iter().any(InputReport::rejected) {
        EXIT_REJECTED
    } else {
        0
    };
    for e in &errors {
        crate::output::error_line(&e.to_string());
        code = code.max(e.exit_code());
    }
    Ok(code)
}
