//! `ess-guard check`: guard one or more renders and print a report.

use std::path::Path;

use crate::cli::{CheckArgs, CheckFormat};
use crate::error::{Error, EXIT_REJECTED};
use crate::guard;
use crate::input;
use crate::report::{self, InputReport};

pub fn run(args: CheckArgs) -> Result<u8, Error> {
    let inputs = input::expand(&args.inputs)?;
    let intent = guard::intent(&args.intent)?;
    let state_map = match &args.state_map {
        Some(path) => Some(input::read_state_map(path)?),
        None => None,
    };
    let default_source = if state_map.is_some() && args.state.state.is_none() && args.state.state_file.is_none() && !args.state.live {
        None
    } else {
        Some(guard::state_source(&args.state, false)?)
    };
    let mut reports: Vec<InputReport> = Vec::with_capacity(inputs.len());
    let mut diffs = String::new();
    for name in &inputs {
        let bytes = input::read(name)?;
        let mapped;
        let source: &dyn crate::source::StateSource = match state_map.as_ref().and_then(|m| m.get(name)) {
            Some(state) => {
                mapped = crate::source::FixedState(*state);
                &mapped
            }
            None => default_source.as_deref().ok_or_else(|| {
                Error::Usage(format!("{name}: not in --state-map and no --state/--state-file/--live given"))
            })?,
        };
        let guarded = guard::run(name, bytes, source, &args.state, intent, &args.guard, args.fail_on)?;
        if args.show_changes {
            if let Some(output) = &guarded.output {
                diffs.push_str(&crate::diff::unified(&guarded.stream.input, output, name, &format!("{name} (ess-guard)"), 3));
            }
        }
        reports.push(guarded.report);
    }
    let text = match args.format {
        CheckFormat::Text => report::text(&reports),
        CheckFormat::Json => report::json(&reports),
        other => crate::formats::render(other, &reports),
    };
    crate::output::write_stdout(text.as_bytes())?;
    if !diffs.is_empty() {
        crate::output::report(&diffs, false, None::<&Path>)?;
    }
    Ok(if reports.iter().any(InputReport::rejected) { EXIT_REJECTED } else { 0 })
}
