//! JUnit XML, as CI test reporters (GitLab, Jenkins, Azure DevOps, GitHub test-report actions)
//! read it: one `<testsuite>` per input, one `<testcase>` per rule and resource. A finding that
//! rejects under `--fail-on` is a `<failure>`; one that does not (a warning under the default
//! `--fail-on error`, a note) passes with its text in `<system-out>`; a suppressed finding is
//! `<skipped>`. Every suite also has a `verdict` test case, so it is never empty and a CI
//! history can follow each input across runs.

use std::fmt::Write as _;

use super::{input_path, message_with_fix};
use crate::engine::Verdict;
use crate::report::InputReport;
use crate::rules::{Finding, Severity};

/// One test case: its name and how it ended.
struct Case {
    name: String,
    outcome: Outcome,
}

enum Outcome {
    Passed {
        out: String,
    },
    Failed {
        message: String,
        kind: &'static str,
        body: String,
    },
    Skipped {
        message: String,
    },
}

/// Groups findings by (rule, resource), keeping the order of first appearance.
fn group<'a>(findings: impl Iterator<Item = &'a Finding>) -> Vec<(String, Vec<&'a Finding>)> {
    let mut groups: Vec<(String, Vec<&Finding>)> = Vec::new();
    for f in findings {
        let name = format!("{} {}", f.rule, f.resource.as_deref().unwrap_or("release"));
        match groups.iter_mut().find(|(n, _)| *n == name) {
            Some((_, fs)) => fs.push(f),
            None => groups.push((name, vec![f])),
        }
    }
    groups
}

fn cases(report: &InputReport) -> Vec<Case> {
    let e = &report.evaluation;
    let mut cases = Vec::new();
    let lines = |fs: &[&Finding]| {
        fs.iter()
            .map(|f| format!("{}: {}", f.severity, message_with_fix(f)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (name, fs) in group(e.findings.iter()) {
        let outcome = if fs.iter().any(|f| e.rejects(f)) {
            let worst = fs
                .iter()
                .map(|f| f.severity)
                .max()
                .unwrap_or(Severity::Error);
            Outcome::Failed {
                message: fs
                    .iter()
                    .map(|f| f.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
                kind: worst.as_str(),
                body: lines(&fs),
            }
        } else {
            Outcome::Passed { out: lines(&fs) }
        };
        cases.push(Case { name, outcome });
    }
    for (name, ss) in group(report.suppressed.iter().map(|s| &s.finding)) {
        let reasons: Vec<&str> = report
            .suppressed
            .iter()
            .filter(|s| ss.iter().any(|f| std::ptr::eq(*f, &s.finding)))
            .map(|s| s.reason.as_str())
            .collect();
        cases.push(Case {
            name,
            outcome: Outcome::Skipped {
                message: format!("suppressed: {}", reasons.join("; ")),
            },
        });
    }
    let rejecting: Vec<&str> = {
        let mut ids: Vec<&str> = e
            .findings
            .iter()
            .filter(|f| e.rejects(f))
            .map(|f| f.rule.id())
            .collect();
        ids.dedup();
        ids
    };
    let summary = format!(
        "marker {} (from {}); --fail-on {}",
        e.current,
        e.state_origin,
        e.fail_on.as_str()
    );
    let outcome = match e.verdict {
        Verdict::Allowed => Outcome::Passed {
            out: format!("allowed: {summary}"),
        },
        Verdict::Rejected => Outcome::Failed {
            message: format!("upgrade rejected by {}", rejecting.join(", ")),
            kind: "verdict",
            body: format!("rejected: {summary}"),
        },
    };
    cases.push(Case {
        name: "verdict".to_string(),
        outcome,
    });
    cases
}

/// The JUnit XML document for `reports`.
pub fn render(reports: &[InputReport]) -> String {
    let suites: Vec<(&InputReport, Vec<Case>)> = reports.iter().map(|r| (r, cases(r))).collect();
    let count = |cases: &[Case], pick: fn(&Outcome) -> bool| {
        cases.iter().filter(|c| pick(&c.outcome)).count()
    };
    let failed = |o: &Outcome| matches!(o, Outcome::Failed { .. });
    let skipped = |o: &Outcome| matches!(o, Outcome::Skipped { .. });
    let total =
        |pick: fn(&Outcome) -> bool| suites.iter().map(|(_, cs)| count(cs, pick)).sum::<usize>();

    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"ess-guard\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\">",
        total(|_| true),
        total(failed),
        total(skipped)
    );
    for (report, cases) in &suites {
        let input = escape(input_path(&report.input));
        let _ = writeln!(
            out,
            "  <testsuite name=\"{input}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\">",
            cases.len(),
            count(cases, failed),
            count(cases, skipped)
        );
        let e = &report.evaluation;
        out.push_str("    <properties>\n");
        let step = e.step.map(|s| s.describe()).unwrap_or("none");
        let marker = e.current.to_string();
        for (name, value) in [
            ("marker", marker.as_str()),
            ("state-origin", e.state_origin.as_str()),
            ("step", step),
            ("format", report.format),
            ("fail-on", e.fail_on.as_str()),
        ] {
            let _ = writeln!(
                out,
                "      <property name=\"{name}\" value=\"{}\"/>",
                escape(value)
            );
        }
        out.push_str("    </properties>\n");
        for case in cases {
            let _ = write!(
                out,
                "    <testcase classname=\"{input}\" name=\"{}\"",
                escape(&case.name)
            );
            match &case.outcome {
                Outcome::Passed { out: text } => {
                    let _ = writeln!(
                        out,
                        ">\n      <system-out>{}</system-out>\n    </testcase>",
                        escape_content(text)
                    );
                }
                Outcome::Failed {
                    message,
                    kind,
                    body,
                } => {
                    let _ = writeln!(
                        out,
                        ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                        escape(message),
                        escape(kind),
                        escape_content(body)
                    );
                }
                Outcome::Skipped { message } => {
                    let _ = writeln!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        escape(message)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Escapes text for an XML attribute value. Line breaks and tabs become character references
/// (attribute-value normalisation would otherwise turn them into spaces); other control
/// characters, which XML 1.0 cannot carry at all, become U+FFFD.
pub fn escape(text: &str) -> String {
    escape_xml(text, true)
}

/// Escapes text for XML element content: as [`escape`], but line feeds and tabs stay as they are.
pub fn escape_content(text: &str) -> String {
    escape_xml(text, false)
}

fn escape_xml(text: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' if !attribute => out.push(c),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(
            escape(r#"a<b & "c" 'd'>"#),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;"
        );
        assert_eq!(escape("x\ny\u{1}"), "x&#10;y\u{FFFD}");
        assert_eq!(escape_content("x\ny\r"), "x\ny&#13;");
    }
}
