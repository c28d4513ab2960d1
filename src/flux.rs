//! Flux helm-controller: settings of a `HelmRelease` that defeat the migration guard.
//!
//! Flux's `postRenderers` run only kustomize, so ess-guard cannot sit in Flux's Helm call; the
//! documented path is `ess-guard check` on the rendered release in CI (examples/flux). What can
//! be checked on the HelmRelease itself is whether it switches the chart's own guard off:
//!
//! * `spec.install.disableHooks` / `spec.upgrade.disableHooks: true` skip every chart hook —
//!   the marker check and write, and syn2mas itself (`helmrelease-disable-hooks`);
//! * `spec.upgrade.remediation.retries > 0` with the default (or explicit) `rollback`
//!   strategy rolls a failed upgrade back to the previous manifests; Helm's rollback runs no
//!   pre-upgrade hook, so after step 2 that is a return to Synapse-only logins that the marker
//!   check never sees (`helmrelease-rollback-remediation`).
//!
//! HelmReleases of another chart (`spec.chart.spec.chart` naming something else than
//! `matrix-stack`) are skipped; one that names its chart through `spec.chartRef` is linted,
//! since the chart cannot be told from the manifest.

use serde_json::Value;

use crate::rules::{Finding, RuleId};

/// The chart the rules are about.
const CHART: &str = "matrix-stack";

/// What linting one input found.
#[derive(Debug, Default)]
pub struct Linted {
    /// HelmReleases looked at (of the matrix-stack chart, or of an unknown chart).
    pub releases: usize,
    pub findings: Vec<Finding>,
}

/// Lints the documents of one input.
pub fn lint(docs: &[Value]) -> Linted {
    let mut out = Linted::default();
    for doc in docs {
        if !is_helmrelease(doc) {
            continue;
        }
        if let Some(chart) = doc
            .pointer("/spec/chart/spec/chart")
            .and_then(Value::as_str)
        {
            if !chart.ends_with(CHART) {
                continue;
            }
        }
        out.releases += 1;
        let resource = format!(
            "HelmRelease {}/{}",
            doc.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("<namespace unset>"),
            doc.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("<unnamed>")
        );
        for action in ["install", "upgrade"] {
            if doc.pointer(&format!("/spec/{action}/disableHooks")) == Some(&Value::Bool(true)) {
                out.findings.push(
                    Finding::new(
                        RuleId::HelmReleaseDisableHooks,
                        format!(
                            "{resource}: spec.{action}.disableHooks is true, so Flux runs the chart's {action} without its hooks: no marker check, no marker write{}",
                            if action == "upgrade" { ", and syn2mas never runs at step 2" } else { "" }
                        ),
                    )
                    .at(Some(resource.clone()), None),
                );
            }
        }
        let remediation = doc.pointer("/spec/upgrade/remediation");
        let retries = remediation
            .and_then(|r| r.get("retries"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let strategy = remediation
            .and_then(|r| r.get("strategy"))
            .and_then(Value::as_str)
            .unwrap_or("rollback");
        if retries != 0 && strategy == "rollback" {
            out.findings.push(
                Finding::new(
                    RuleId::HelmReleaseRollbackRemediation,
                    format!(
                        "{resource}: spec.upgrade.remediation.retries is {retries} with strategy {strategy}{}: a failed upgrade after the migration (step 2) is rolled back to the previous, legacy manifests, and Helm's rollback runs no marker check",
                        if remediation.and_then(|r| r.get("strategy")).is_none() { " (the default)" } else { "" }
                    ),
                )
                .at(Some(resource.clone()), None),
            );
        }
    }
    out
}

fn is_helmrelease(doc: &Value) -> bool {
    doc.get("kind").and_then(Value::as_str) == Some("HelmRelease")
        && doc
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v.starts_with("helm.toolkit.fluxcd.io/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hr(spec: Value) -> Value {
        json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
               "metadata": {"name": "ess", "namespace": "ess"}, "spec": spec})
    }

    fn rules(l: &Linted) -> Vec<&'static str> {
        l.findings.iter().map(|f| f.rule.id()).collect()
    }

    #[test]
    fn disable_hooks_is_found_for_install_and_upgrade() {
        let l = lint(&[hr(json!({
            "chart": {"spec": {"chart": "matrix-stack"}},
            "install": {"disableHooks": true},
            "upgrade": {"disableHooks": true}
        }))]);
        assert_eq!(l.releases, 1);
        assert_eq!(
            rules(&l),
            ["helmrelease-disable-hooks", "helmrelease-disable-hooks"]
        );
        assert!(l.findings[0].message.contains("spec.install.disableHooks"));
        assert!(l.findings[1].message.contains("syn2mas never runs"));
        assert_eq!(
            l.findings[0].resource.as_deref(),
            Some("HelmRelease ess/ess")
        );
    }

    #[test]
    fn rollback_remediation_only_with_retries_and_the_rollback_strategy() {
        let with = |r: Value| rules(&lint(&[hr(json!({"upgrade": {"remediation": r}}))]));
        assert_eq!(
            with(json!({"retries": 3})),
            ["helmrelease-rollback-remediation"]
        );
        assert_eq!(
            with(json!({"retries": -1, "strategy": "rollback"})),
            ["helmrelease-rollback-remediation"]
        );
        assert!(with(json!({"retries": 0})).is_empty());
        assert!(with(json!({"retries": 3, "strategy": "uninstall"})).is_empty());
        assert!(with(json!({})).is_empty());
    }

    #[test]
    fn other_charts_and_other_kinds_are_skipped() {
        let other =
            hr(json!({"chart": {"spec": {"chart": "podinfo"}}, "upgrade": {"disableHooks": true}}));
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "spec": {"upgrade": {"disableHooks": true}}});
        let l = lint(&[other, cm]);
        assert_eq!(l.releases, 0);
        assert!(l.findings.is_empty());
        // chartRef: the chart is unknown, so it is linted.
        let by_ref = hr(
            json!({"chartRef": {"kind": "OCIRepository", "name": "ess"}, "upgrade": {"disableHooks": false}}),
        );
        let l = lint(&[by_ref]);
        assert_eq!(l.releases, 1);
        assert!(l.findings.is_empty());
    }
}
