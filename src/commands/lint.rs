//! `ess-guard lint`: Flux HelmRelease manifests → findings ([`crate::flux`]) → the same report
//! formats as `check`. Exit 0 clean, 1 a finding at or above `--fail-on`, 2 bad input (or no
//! HelmRelease at all: linting the wrong file must not pass silently).

use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::Value;

use crate::cli::LintArgs;
use crate::engine::{Evaluation, FailOn, Verdict};
use crate::error::{Error, EXIT_REJECTED};
use crate::formats::ReportFormat;
use crate::report::InputReport;
use crate::state::{Current, MarkerState};

/// What the reports say about the marker: lint reads none.
const NO_MARKER: &str = "not read (lint checks HelmRelease settings)";

pub fn run(args: LintArgs) -> Result<u8, Error> {
    let fail_on: FailOn = args.fail_on.into();
    let mut reports = Vec::new();
    let mut releases = 0;
    for name in crate::input::expand(&args.inputs)? {
        let bytes = crate::input::read(&name)?;
        let docs = parse(&name, &bytes)?;
        let linted = crate::flux::lint(&docs);
        releases += linted.releases;
        let rejected = linted.findings.iter().any(|f| fail_on.rejects(f.severity));
        let evaluation = Evaluation {
            current: Current::Known(MarkerState::Absent),
            state_origin: NO_MARKER.to_string(),
            read_from: None,
            step: None,
            step_origin: "lint",
            readings: Vec::new(),
            chart_rules: "not applicable (lint reads no chart)".to_string(),
            repeats_stage2: false,
            findings: linted.findings,
            verdict: if rejected {
                Verdict::Rejected
            } else {
                Verdict::Allowed
            },
            fail_on,
        };
        reports.push(InputReport::new(&name, "helmrelease", evaluation));
    }
    if releases == 0 {
        return Err(Error::Input(format!(
            "no HelmRelease (helm.toolkit.fluxcd.io) of the matrix-stack chart in {}",
            args.inputs.join(", ")
        )));
    }
    let out = match args.output.format {
        // The check text report speaks of markers and steps; lint has neither.
        ReportFormat::Text => text(&reports),
        other => crate::formats::render(other, &reports),
    };
    crate::output::write_stdout(out.as_bytes())?;
    Ok(if reports.iter().any(InputReport::rejected) {
        EXIT_REJECTED
    } else {
        0
    })
}

/// Every YAML document of `bytes`; invalid YAML is bad input naming the document.
fn parse(name: &str, bytes: &[u8]) -> Result<Vec<Value>, Error> {
    let text =
        std::str::from_utf8(bytes).map_err(|e| Error::Input(format!("{name}: not UTF-8: {e}")))?;
    let mut docs = Vec::new();
    for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let doc = Value::deserialize(de).map_err(|e| {
            Error::Input(format!(
                "{name}: document {}: invalid YAML: {}",
                i + 1,
                crate::manifest::one_line(&e.to_string())
            ))
        })?;
        if !doc.is_null() {
            docs.push(doc);
        }
    }
    Ok(docs)
}

fn text(reports: &[InputReport]) -> String {
    let mut out = String::new();
    for r in reports {
        let e = &r.evaluation;
        let verdict = if r.rejected() { "FAILED" } else { "ok" };
        let _ = writeln!(out, "ess-guard lint: {verdict}: {}", r.input);
        for f in &e.findings {
            let _ = writeln!(out, "  {}[{}]: {}", f.severity, f.rule, f.message);
            let _ = writeln!(out, "    fix: {}", f.remediation);
        }
    }
    out
}
