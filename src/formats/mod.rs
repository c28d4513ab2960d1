//! CI report formats — SARIF, JUnit XML, GitHub workflow commands and GitLab code quality —
//! written from the same [`InputReport`]s as the text and JSON reports, so every format tells the
//! same story.
//!
//! Shared conventions:
//! - a finding's location is its template source path when known, else the input file;
//! - a finding "rejects" when it is at or above the `--fail-on` its evaluation used
//!   ([`crate::engine::Evaluation::rejects`]); formats that have a notion of "this fails the build"
//!   (SARIF level, JUnit failure, GitHub `::error`, GitLab severity) follow that, so `--fail-on
//!   warning` shows in every format, not only in the exit code;
//! - suppressed findings never count as failures: SARIF carries them with a `suppressions`
//!   entry, JUnit as skipped test cases, GitHub and GitLab leave them out;
//! - nothing but rule messages is printed, so Secret data never reaches a report.

pub mod github;
pub mod gitlab;
pub mod junit;
pub mod sarif;

use crate::report::{self, InputReport};
use crate::rules::{Finding, RuleId, Severity};

/// Where the rule documentation lives; a rule's help is this plus `#<rule-id>`.
pub const RULES_DOC_URL: &str = "https://github.com/ess-guard/ess-guard/blob/main/docs/rules.md";
/// The project's home, for SARIF `informationUri`.
pub const INFORMATION_URI: &str = "https://github.com/ess-guard/ess-guard";

/// A report format of `check` (and `lint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Text,
    Json,
    Sarif,
    Junit,
    Github,
    Gitlab,
}

impl ReportFormat {
    pub const ALL: [ReportFormat; 6] = [
        ReportFormat::Text,
        ReportFormat::Json,
        ReportFormat::Sarif,
        ReportFormat::Junit,
        ReportFormat::Github,
        ReportFormat::Gitlab,
    ];

    /// The name users choose it by (`check -o sarif`).
    pub fn name(self) -> &'static str {
        match self {
            ReportFormat::Text => "text",
            ReportFormat::Json => "json",
            ReportFormat::Sarif => "sarif",
            ReportFormat::Junit => "junit",
            ReportFormat::Github => "github",
            ReportFormat::Gitlab => "gitlab",
        }
    }
}

/// Writes `reports` in `format`.
pub fn render(format: ReportFormat, reports: &[InputReport]) -> String {
    match format {
        ReportFormat::Text => report::text(reports),
        ReportFormat::Json => report::json(reports),
        ReportFormat::Sarif => sarif::render(reports),
        ReportFormat::Junit => junit::render(reports),
        ReportFormat::Github => github::render(reports),
        ReportFormat::Gitlab => gitlab::render(reports),
    }
}

/// The documentation link of a rule.
pub fn help_uri(rule: RuleId) -> String {
    format!("{RULES_DOC_URL}#{}", rule.id())
}

/// The input's name as a path (`-` is stdin).
pub fn input_path(input: &str) -> &str {
    if input == "-" {
        "stdin"
    } else {
        input
    }
}

/// The file a finding points at: its template source, else the input.
pub fn finding_path<'a>(finding: &'a Finding, input: &'a str) -> &'a str {
    finding
        .source
        .as_deref()
        .unwrap_or_else(|| input_path(input))
}

/// The severity a finding has for the build: a finding that rejects under `--fail-on` is an
/// error, whatever its rule's own severity.
pub fn effective_severity(report: &InputReport, finding: &Finding) -> Severity {
    if report.evaluation.rejects(finding) {
        Severity::Error
    } else {
        finding.severity
    }
}

/// `message Fix: remediation`, the one-line text every CI format shows.
pub fn message_with_fix(finding: &Finding) -> String {
    format!("{} Fix: {}", finding.message, finding.remediation)
}

/// A stable fingerprint of a finding: FNV-1a (64 bit) over rule, input, resource and message,
/// as 16 hex digits. It does not depend on the ess-guard version or on the order of findings, so
/// CI systems can follow one finding across runs.
pub fn fingerprint(report: &InputReport, finding: &Finding) -> String {
    let mut hash = Fnv1a::default();
    for part in [
        finding.rule.id(),
        report.input.as_str(),
        finding.resource.as_deref().unwrap_or(""),
        finding.message.as_str(),
    ] {
        hash.write(part.as_bytes());
        // A separator byte that never occurs in UTF-8, so ("ab", "c") and ("a", "bc") differ.
        hash.write(&[0xff]);
    }
    format!("{:016x}", hash.0)
}

/// FNV-1a, 64 bit (<http://www.isthe.com/chongo/tech/comp/fnv/>): tiny, stable across
/// platforms and releases, which `std`'s `DefaultHasher` does not promise.
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        let hash = |s: &str| {
            let mut h = Fnv1a::default();
            h.write(s.as_bytes());
            h.0
        };
        assert_eq!(hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash("foobar"), 0x8594_4171_f739_67e8);
    }
}
