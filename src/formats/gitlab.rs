//! GitLab code quality (<https://docs.gitlab.com/ci/testing/code_quality/>): a JSON array of
//! CodeClimate-style issues, shown in merge requests. Suppressed findings are left out.
//!
//! Severities: an error finding is `blocker`; a warning that rejects because of `--fail-on
//! warning` is `major`; other warnings are `minor`; notes are `info`.

use serde_json::json;

use super::{finding_path, fingerprint, message_with_fix};
use crate::report::InputReport;
use crate::rules::{Finding, Severity};

/// The code-quality severity of a finding.
pub fn severity(report: &InputReport, finding: &Finding) -> &'static str {
    match finding.severity {
        Severity::Error => "blocker",
        Severity::Warning if report.evaluation.rejects(finding) => "major",
        Severity::Warning => "minor",
        Severity::Note => "info",
    }
}

/// The code-quality report for `reports`.
pub fn render(reports: &[InputReport]) -> String {
    let issues: Vec<_> = reports
        .iter()
        .flat_map(|report| {
            report.evaluation.findings.iter().map(move |f| {
                let description = match &f.resource {
                    Some(resource) => format!("{resource}: {}", message_with_fix(f)),
                    None => message_with_fix(f),
                };
                json!({
                    "description": description,
                    "check_name": f.rule.id(),
                    "fingerprint": fingerprint(report, f),
                    "severity": severity(report, f),
                    "location": {"path": finding_path(f, &report.input), "lines": {"begin": 1}},
                })
            })
        })
        .collect();
    serde_json::to_string_pretty(&issues).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
        + "\n"
}
