//! Reports: one model ([`InputReport`]) written as text for people and JSON for machines. Other
//! formats (SARIF, JUnit, CI annotations) are written from the same model in [`crate::formats`].
//! Secret values never reach a report: findings only carry messages written by the rules.

use std::fmt::Write as _;

use serde::Serialize;

use crate::engine::{Evaluation, Verdict};
use crate::rules::Severity;

/// One change ess-guard made (or would make) to the render.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub resource: String,
    pub description: String,
}

/// The report for one input.
#[derive(Debug, Clone, Serialize)]
pub struct InputReport {
    pub input: String,
    /// `helm3`, `helm4` or `template`.
    pub format: &'static str,
    #[serde(flatten)]
    pub evaluation: Evaluation,
    /// The rule ids found, for quick filtering (`jq .rules`).
    pub rules: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// Findings silenced by a suppression annotation, reported apart.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suppressed: Vec<crate::suppress::Suppressed>,
}

impl InputReport {
    pub fn new(input: &str, format: &'static str, evaluation: Evaluation) -> InputReport {
        let mut report = InputReport {
            input: input.to_string(),
            format,
            evaluation,
            rules: Vec::new(),
            changes: Vec::new(),
            suppressed: Vec::new(),
        };
        report.refresh_rules();
        report
    }

    /// Recomputes [`InputReport::rules`] after findings were added: each id once, in order of
    /// first appearance.
    pub fn refresh_rules(&mut self) {
        self.rules.clear();
        for f in &self.evaluation.findings {
            if !self.rules.contains(&f.rule.id()) {
                self.rules.push(f.rule.id());
            }
        }
    }

    pub fn rejected(&self) -> bool {
        self.evaluation.verdict == Verdict::Rejected
    }
}

/// A human report. The first line is the verdict so that Helm 3, which shows a post-renderer's
/// stderr inside its own error, puts the reason up front.
pub fn text(reports: &[InputReport]) -> String {
    let mut out = String::new();
    for r in reports {
        let e = &r.evaluation;
        let verdict = match e.verdict {
            Verdict::Allowed => "allowed",
            Verdict::Rejected => "REJECTED",
        };
        let first_error = e.findings.iter().find(|f| f.severity == Severity::Error);
        match first_error {
            Some(f) if e.verdict == Verdict::Rejected => {
                let _ = writeln!(out, "ess-guard: {verdict}: [{}] {}", f.rule, f.message);
            }
            _ => {
                let _ = writeln!(out, "ess-guard: {verdict}: {}", r.input);
            }
        }
        let requested = match e.step {
            Some(step) => format!(
                "{} → marker {} (from {})",
                step.describe(),
                step.target(),
                e.step_origin
            ),
            None if e.findings.iter().any(|f| f.rule.id() == "ambiguous-step") => {
                "step 2 or step 3 (ambiguous)".to_string()
            }
            None if !e.readings.is_empty() => format!(
                "{} (hooks not visible; each reading judged)",
                e.readings
                    .iter()
                    .map(|s| s.describe())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            None => "no marker (Synapse disabled)".to_string(),
        };
        let _ = writeln!(out, "  input:     {} ({})", r.input, r.format);
        let _ = writeln!(out, "  marker:    {} (from {})", e.current, e.state_origin);
        let _ = writeln!(out, "  requested: {requested}");
        let _ = writeln!(out, "  rules:     {}", e.chart_rules);
        for f in &e.findings {
            let _ = writeln!(out, "  {}[{}]: {}", f.severity, f.rule, f.message);
            if let Some(resource) = &f.resource {
                let _ = writeln!(
                    out,
                    "    at: {resource}{}",
                    f.source
                        .as_deref()
                        .map(|s| format!(" ({s})"))
                        .unwrap_or_default()
                );
            }
            let _ = writeln!(out, "    fix: {}", f.remediation);
        }
        for c in &r.changes {
            let _ = writeln!(out, "  change: {}: {}", c.resource, c.description);
        }
        if !r.suppressed.is_empty() {
            let _ = writeln!(out, "  suppressed: {} finding(s)", r.suppressed.len());
            for s in &r.suppressed {
                let f = &s.finding;
                let _ = writeln!(out, "    {}[{}]: {}", f.severity, f.rule, f.message);
                let _ = writeln!(out, "      reason: {}", s.reason);
            }
        }
    }
    out
}

/// The JSON report: one object per input, in an object with the overall verdict.
pub fn json(reports: &[InputReport]) -> String {
    let verdict = if reports.iter().any(InputReport::rejected) {
        Verdict::Rejected
    } else {
        Verdict::Allowed
    };
    let value = serde_json::json!({
        "verdict": verdict,
        "inputs": reports,
    });
    serde_json::to_string_pretty(&value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
        + "\n"
}
