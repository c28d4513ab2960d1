//! SARIF 2.1.0 (<https://docs.oasis-open.org/sarif/sarif/v2.1.0/>), as GitHub code scanning and
//! other SARIF viewers read it: one run, every rule of the catalogue in `tool.driver.rules`, one
//! result per finding. Suppressed findings are results with an `inSource` suppression, which
//! viewers show as dismissed.

use serde_json::{json, Value};

use super::{
    effective_severity, finding_path, fingerprint, help_uri, input_path, message_with_fix,
    INFORMATION_URI,
};
use crate::report::InputReport;
use crate::rules::{Finding, RuleId, Severity};

/// The schema the log declares (OASIS SARIF 2.1.0, errata 01).
pub const SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";
/// The key of ess-guard's entry in `partialFingerprints` (versioned: a new recipe is a new key).
pub const FINGERPRINT_KEY: &str = "essGuardFinding/v1";

/// SARIF's name for a severity.
pub fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}

/// `no-rollback` → `NoRollback` (SARIF's `reportingDescriptor.name` is meant to be an
/// identifier-like name).
pub fn camel_case(id: &str) -> String {
    id.split('-')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn rule_descriptor(rule: RuleId) -> Value {
    let info = rule.info();
    json!({
        "id": info.id,
        "name": camel_case(info.id),
        "shortDescription": {"text": info.summary},
        "fullDescription": {"text": info.why},
        "help": {"text": info.fix},
        "helpUri": help_uri(rule),
        "defaultConfiguration": {"level": level(info.severity)},
        "properties": {"suppressible": rule.suppressible()},
    })
}

fn result(report: &InputReport, finding: &Finding, level: &str, rule_index: usize) -> Value {
    let mut location = json!({
        "physicalLocation": {"artifactLocation": {"uri": uri(finding_path(finding, &report.input))}},
    });
    if let Some(resource) = &finding.resource {
        let name = resource.rsplit(['/', ' ']).next().unwrap_or(resource);
        location["logicalLocations"] =
            json!([{"name": name, "fullyQualifiedName": resource, "kind": "resource"}]);
    }
    json!({
        "ruleId": finding.rule.id(),
        "ruleIndex": rule_index,
        "level": level,
        "message": {"text": message_with_fix(finding)},
        "locations": [location],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(report, finding)},
        "properties": {"input": input_path(&report.input)},
    })
}

/// The SARIF log of `reports`.
pub fn render(reports: &[InputReport]) -> String {
    let index = |rule: RuleId| {
        RuleId::ALL
            .iter()
            .position(|r| *r == rule)
            .unwrap_or_default()
    };
    let mut results = Vec::new();
    for report in reports {
        for finding in &report.evaluation.findings {
            results.push(result(
                report,
                finding,
                level(effective_severity(report, finding)),
                index(finding.rule),
            ));
        }
        for suppressed in &report.suppressed {
            let finding = &suppressed.finding;
            let mut r = result(
                report,
                finding,
                level(finding.severity),
                index(finding.rule),
            );
            r["suppressions"] = json!([{"kind": "inSource", "justification": suppressed.reason}]);
            results.push(r);
        }
    }
    let log = json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "ess-guard",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": INFORMATION_URI,
                "rules": RuleId::ALL.iter().map(|r| rule_descriptor(*r)).collect::<Vec<_>>(),
            }},
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&log).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")) + "\n"
}

/// A path as a URI reference: characters outside RFC 3986's unreserved and sub-delimiter sets
/// (and `/`, `:`, `@`) are percent-encoded, so spaces or `#` in a path cannot break the URI.
pub fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_uris() {
        assert_eq!(camel_case("no-rollback"), "NoRollback");
        assert_eq!(camel_case("helm3-no-hooks"), "Helm3NoHooks");
        assert_eq!(uri("charts/a b#c.yaml"), "charts/a%20b%23c.yaml");
        assert_eq!(uri("dir/ü.yaml"), "dir/%C3%BC.yaml");
    }
}
