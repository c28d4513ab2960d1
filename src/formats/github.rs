//! GitHub Actions workflow commands
//! (<https://docs.github.com/actions/reference/workflow-commands-for-github-actions>): one
//! `::error`/`::warning`/`::notice` line per finding, which GitHub shows as an annotation on the
//! run and, when the path is in the repository, on the file. Suppressed findings are left out;
//! a clean run prints nothing.

use std::fmt::Write as _;

use super::{effective_severity, finding_path, message_with_fix};
use crate::report::InputReport;
use crate::rules::Severity;

/// The workflow command of a severity.
pub fn command(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "notice",
    }
}

/// Escapes a command's message (GitHub's `escapeData`): `%`, CR and LF.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a command property value (GitHub's `escapeProperty`): as [`escape_data`], plus `:`
/// and `,`, which would otherwise end the value.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// The workflow commands for `reports`.
pub fn render(reports: &[InputReport]) -> String {
    let mut out = String::new();
    for report in reports {
        for f in &report.evaluation.findings {
            let message = match &f.resource {
                Some(resource) => format!("{resource}: {}", message_with_fix(f)),
                None => message_with_fix(f),
            };
            let _ = writeln!(
                out,
                "::{} file={},title={}::{}",
                command(effective_severity(report, f)),
                escape_property(finding_path(f, &report.input)),
                escape_property(&format!("ess-guard {}", f.rule)),
                escape_data(&message)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_follows_the_runner() {
        assert_eq!(
            escape_data("50% done\r\nnext: a,b"),
            "50%25 done%0D%0Anext: a,b"
        );
        assert_eq!(escape_property("C:\\a,b%\n"), "C%3A\\a%2Cb%25%0A");
    }
}
