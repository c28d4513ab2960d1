//! `ess-guard audit`: every ESS release of one or more clusters, one screen.
//!
//! read → model → decide → report, per cluster:
//! * read: one LIST each of the marker ConfigMaps
//!   (`app.kubernetes.io/managed-by=matrix-tools-deployment-markers`), the deployed Helm
//!   release records (`owner=helm,status=deployed`: only the newest deployed revision of each
//!   release is decoded) and the StatefulSets labelled `app.kubernetes.io/component=matrix-server`,
//!   in one namespace or all. The only other read is one GET per release that runs Synapse
//!   but has no labelled marker, to tell "no marker" from "a marker without the label"; a
//!   fleet whose markers are all in order costs three calls whatever its size.
//! * model: the releases, keyed by namespace and name, from the markers and the Helm records
//!   of the `matrix-stack` chart.
//! * decide: the marker is read with the guard's own reader ([`ConfigMapFacts`]); where it is
//!   and what comes next come from the state machine ([`state::next_step`]) and `plan`'s text
//!   ([`crate::commands::plan::command`]), so `audit` and `plan` can never disagree.
//! * report: table, JSON or the Prometheus text format.
//!
//! Secret data is decoded only to read the release's chart version and its values' switches;
//! none of it is printed.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::facts::Requested;
use crate::inject::RESTORE_REPLICAS;
use crate::kube_access::{Cluster, ConfigMapView, KubeError, ListedRelease, StatefulSetView};
use crate::rules::{Finding, RuleId, Severity};
use crate::shared_namespace::{self, SCALE_DOWN_SELECTOR};
use crate::source::ConfigMapFacts;
use crate::state::{self, Current, MarkerState, Step, MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use crate::suppress::Suppressed;

/// The chart whose releases are audited.
pub const CHART: &str = "matrix-stack";

/// The stored marker as audit sees it: a state, or a value the chart does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    Known(MarkerState),
    Unknown,
}

impl Marker {
    pub fn as_str(&self) -> &'static str {
        match self {
            Marker::Known(s) => s.as_str(),
            Marker::Unknown => "unknown",
        }
    }
}

impl Serialize for Marker {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Every value the `marker` column can take (the Prometheus gauge has one series per value).
pub const MARKER_VALUES: [&str; 5] = [
    "absent",
    "legacy_auth",
    "syn2mas_migrated",
    "delegated_auth",
    "unknown",
];

/// One release's line of the audit.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseAudit {
    pub namespace: String,
    pub release: String,
    /// From the Helm release record; `None` without one (e.g. installed by other means).
    pub chart_version: Option<String>,
    pub marker: Marker,
    /// How the marker was learnt, e.g. `ConfigMap ess/ess-markers`.
    pub marker_origin: String,
    pub position: &'static str,
    pub next_step: Option<Step>,
    /// The exact `helm upgrade` `ess-guard plan -r <release> -n <namespace>` prints.
    pub next_command: Option<String>,
    pub problems: Vec<Finding>,
    pub suppressed: Vec<Suppressed>,
}

impl ReleaseAudit {
    pub fn worst(&self) -> Option<Severity> {
        self.problems.iter().map(|f| f.severity).max()
    }
}

/// One cluster's audit.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterAudit {
    /// The kubeconfig context used (`in-cluster` for the pod's service account); `None` only
    /// when connecting failed before the current context was resolved.
    pub context: Option<String>,
    pub server: Option<String>,
    /// `all namespaces` or the namespace.
    pub scope: String,
    pub api_calls: u64,
    /// Why the cluster could not be audited; its releases are then unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub releases: Vec<ReleaseAudit>,
}

/// What the three LISTs returned (plus the fallback GETs), the input of [`assess`].
#[derive(Debug, Default)]
pub struct Listed {
    pub markers: Vec<ConfigMapView>,
    pub releases: Vec<ListedRelease>,
    pub statefulsets: Vec<(String, StatefulSetView)>,
}

/// The release a marker ConfigMap belongs to: the chart names it `<release>-markers`.
fn marker_release(cm: &ConfigMapView) -> Option<String> {
    cm.name.strip_suffix("-markers").map(str::to_string)
}

/// Reads a cluster: the three LISTs, then [`assess`], then the fallback GETs for releases
/// that run Synapse without a labelled marker.
pub fn audit_cluster(
    cluster: &Cluster,
    all: bool,
    chart_ref: &str,
) -> Result<Vec<ReleaseAudit>, KubeError> {
    let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}");
    let mut listed = Listed {
        markers: cluster.list_configmaps(&selector, all)?,
        releases: cluster.list_deployed_releases(all)?,
        statefulsets: cluster.list_statefulsets_scoped(SCALE_DOWN_SELECTOR, all)?,
    };
    // The GET is optional (the least-privilege role lists only): without it the release is
    // reported as having no marker, with a note that an unlabelled one was not looked for.
    let mut unchecked = BTreeSet::new();
    for (namespace, release) in unmarked_synapse_releases(&listed) {
        match cluster.get_configmap_in(&namespace, &format!("{release}-markers")) {
            Ok(Some(cm)) => listed.markers.push(cm),
            Ok(None) => {}
            Err(KubeError::Forbidden { .. }) => {
                unchecked.insert((namespace, release));
            }
            Err(e) => return Err(e),
        }
    }
    let mut releases = assess(&listed, chart_ref);
    for r in &mut releases {
        if unchecked.contains(&(r.namespace.clone(), r.release.clone())) {
            r.problems.push(Finding::new(
                RuleId::MarkerEvidenceUnchecked,
                format!("no labelled marker ConfigMap, and whether an unlabelled {}-markers exists could not be checked (get configmaps is not allowed)", r.release),
            ));
        }
    }
    Ok(releases)
}

/// The Helm facts (merged with the chart defaults) of a decoded matrix-stack record.
fn helm_facts(rel: &ListedRelease) -> Option<crate::facts::Facts> {
    let decoded = rel.decoded.as_ref().ok()?;
    crate::values::facts_from_values(&decoded.config, &crate::values::chart_defaults()).ok()
}

fn is_matrix_stack(rel: &ListedRelease) -> bool {
    // An unreadable record is kept (reported), whatever its chart.
    rel.decoded.as_ref().map_or(true, |d| d.chart_name == CHART)
}

/// Releases (namespace, name) whose Helm values run Synapse but that have no labelled marker.
fn unmarked_synapse_releases(listed: &Listed) -> Vec<(String, String)> {
    let marked: BTreeSet<(String, String)> = listed
        .markers
        .iter()
        .filter_map(|cm| marker_release(cm).map(|r| (cm.namespace.clone(), r)))
        .collect();
    listed
        .releases
        .iter()
        .filter(|r| is_matrix_stack(r))
        .filter(|r| helm_facts(r).is_some_and(|f| f.synapse_enabled))
        .map(|r| (r.namespace.clone(), r.release.clone()))
        .filter(|k| !marked.contains(k))
        .collect()
}

/// Decides every release of one cluster from what was listed.
pub fn assess(listed: &Listed, chart_ref: &str) -> Vec<ReleaseAudit> {
    let mut keys: BTreeSet<(String, String)> = BTreeSet::new();
    let mut markers: BTreeMap<(String, String), &ConfigMapView> = BTreeMap::new();
    for cm in &listed.markers {
        if let Some(r) = marker_release(cm) {
            let key = (cm.namespace.clone(), r);
            keys.insert(key.clone());
            markers.insert(key, cm);
        }
    }
    let mut helm: BTreeMap<(String, String), &ListedRelease> = BTreeMap::new();
    for rel in listed.releases.iter().filter(|r| is_matrix_stack(r)) {
        let key = (rel.namespace.clone(), rel.release.clone());
        keys.insert(key.clone());
        helm.insert(key, rel);
    }
    let mut sts_by_ns: BTreeMap<&str, Vec<StatefulSetView>> = BTreeMap::new();
    for (ns, sts) in &listed.statefulsets {
        sts_by_ns.entry(ns.as_str()).or_default().push(sts.clone());
    }

    keys.into_iter()
        .map(|(namespace, release)| {
            let key = (namespace.clone(), release.clone());
            let in_ns = sts_by_ns
                .get(namespace.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            assess_release(
                &namespace,
                &release,
                markers.get(&key).copied(),
                helm.get(&key).copied(),
                in_ns,
                chart_ref,
            )
        })
        .collect()
}

fn assess_release(
    namespace: &str,
    release: &str,
    marker_cm: Option<&ConfigMapView>,
    helm: Option<&ListedRelease>,
    sts_in_ns: &[StatefulSetView],
    chart_ref: &str,
) -> ReleaseAudit {
    let mut problems: Vec<Finding> = Vec::new();
    let facts = helm.and_then(helm_facts);
    let own_sts: Vec<&StatefulSetView> = sts_in_ns
        .iter()
        .filter(|s| shared_namespace::belongs_to(s, release))
        .collect();
    let chart_version = match helm.map(|h| &h.decoded) {
        Some(Ok(d)) => Some(d.chart_version.clone()),
        Some(Err(e)) => {
            problems.push(Finding::new(
                RuleId::HelmReleaseUnreadable,
                format!("the deployed Helm release record of {release} cannot be read: {e}"),
            ));
            None
        }
        None => None,
    };

    // The marker, read and classified the way every other command reads it (one reader,
    // `source::ConfigMapFacts`, and one classification, `engine::classify`).
    let (mut marker, mut marker_origin) = (
        Marker::Known(MarkerState::Absent),
        "no marker ConfigMap".to_string(),
    );
    let mut current = Current::Known(MarkerState::Absent);
    if let Some(cm) = marker_cm {
        let origin = format!("ConfigMap {namespace}/{}", cm.name);
        let observed = ConfigMapFacts::from(cm).into_observed(origin.clone());
        marker = match observed.current.known() {
            Some(state) => Marker::Known(state),
            None => Marker::Unknown,
        };
        for finding in crate::engine::classify(&observed) {
            problems.push(finding.at(Some(format!("ConfigMap {namespace}/{}", cm.name)), None));
        }
        current = observed.current;
        marker_origin = origin;
    }

    // No marker: the same evidence the live source uses (the Helm values, then Synapse).
    if marker == Marker::Known(MarkerState::Absent) {
        let legacy = match facts.as_ref().map(|f| &f.requested) {
            Some(Requested::Step(Step::Legacy)) => Some("the Helm values run Synapse without MAS"),
            Some(_) => None,
            None if !own_sts.is_empty() => Some("its Synapse StatefulSets exist"),
            None => None,
        };
        if let Some(evidence) = legacy {
            marker = Marker::Known(MarkerState::LegacyAuth);
            marker_origin = format!("no marker ConfigMap; {evidence}");
            problems.push(Finding::new(
                RuleId::LegacyInferred,
                format!("no marker stored for {release}, but {evidence}: treated as legacy_auth"),
            ));
        }
        if marker_cm.is_none()
            && facts
                .as_ref()
                .is_some_and(|f| f.synapse_enabled && f.mas_enabled)
        {
            problems.push(Finding::new(
                RuleId::MarkersDisabled,
                format!("release {release} runs Synapse and MAS but stores no marker: nothing in the cluster guards its migration"),
            ));
        }
    }

    // A step 2 that stopped half-way: Synapse at 0 with ess-guard's restore annotation.
    for sts in &own_sts {
        if sts.replicas == Some(0) {
            if let Some(want) = sts.annotations.get(RESTORE_REPLICAS) {
                problems.push(
                    Finding::new(
                        RuleId::StuckMigration,
                        format!("StatefulSet {} is at 0 replicas and records {want} to restore: the step-2 migration stopped half-way", sts.name),
                    )
                    .at(Some(format!("StatefulSet {namespace}/{}", sts.name)), None)
                    .fix(format!("ess-guard recover -r {release} -n {namespace} (then --apply)")),
                );
            }
        }
    }

    // Step 2 still ahead and other releases' Synapse in the namespace.
    let mut suppressed = Vec::new();
    let step2_ahead = matches!(
        marker,
        Marker::Known(MarkerState::Absent | MarkerState::LegacyAuth)
    );
    let runs_synapse = !own_sts.is_empty() || facts.as_ref().is_some_and(|f| f.synapse_enabled);
    if step2_ahead && runs_synapse {
        let (found, s) = shared_namespace::findings(release, namespace, sts_in_ns);
        problems.extend(found);
        suppressed = s;
    }

    let (position, next_step, next_command) = match &marker {
        Marker::Known(state) => {
            // As `plan` decides it: the deployed revision's step settles "after step 1".
            let deployed = match facts.as_ref().map(|f| &f.requested) {
                Some(Requested::Step(step)) => Some(*step),
                _ => None,
            };
            let next = state::next_step_after(*state, deployed);
            (
                crate::commands::plan::position(&Current::Known(*state)),
                next,
                next.map(|s| {
                    crate::commands::plan::command(s, release, namespace, chart_ref, None)
                }),
            )
        }
        Marker::Unknown => (crate::commands::plan::position(&current), None, None),
    };
    problems.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.rule.cmp(&b.rule)));
    ReleaseAudit {
        namespace: namespace.to_string(),
        release: release.to_string(),
        chart_version,
        marker,
        marker_origin,
        position,
        next_step,
        next_command,
        problems,
        suppressed,
    }
}

/// The exit code: 3 when a cluster could not be audited, else 1 when a release has an
/// error-level problem, else 0.
pub fn exit_code(clusters: &[ClusterAudit]) -> u8 {
    if clusters.iter().any(|c| c.error.is_some()) {
        3
    } else if clusters
        .iter()
        .flat_map(|c| &c.releases)
        .any(|r| r.worst() == Some(Severity::Error))
    {
        1
    } else {
        0
    }
}

fn context_name(c: &ClusterAudit) -> &str {
    c.context.as_deref().unwrap_or("(current)")
}

/// The table for people: one line per release, then the details (next command, problems).
pub fn table(clusters: &[ClusterAudit]) -> String {
    use std::fmt::Write as _;
    let mut rows: Vec<[String; 6]> = vec![[
        "CONTEXT".into(),
        "NAMESPACE".into(),
        "RELEASE".into(),
        "CHART".into(),
        "MARKER".into(),
        "PROBLEMS".into(),
    ]];
    for c in clusters {
        for r in &c.releases {
            let problems: Vec<String> = r
                .problems
                .iter()
                .map(|f| format!("{}[{}]", f.severity, f.rule))
                .collect();
            rows.push([
                context_name(c).to_string(),
                r.namespace.clone(),
                r.release.clone(),
                r.chart_version.clone().unwrap_or_else(|| "-".into()),
                r.marker.as_str().to_string(),
                if problems.is_empty() {
                    "-".into()
                } else {
                    problems.join(",")
                },
            ]);
        }
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    for c in clusters {
        if let Some(e) = &c.error {
            let _ = writeln!(out, "\ncontext {}: NOT AUDITED: {e}", context_name(c));
        }
        for r in &c.releases {
            let _ = writeln!(
                out,
                "\n{}/{} (context {}): {} (from {})",
                r.namespace,
                r.release,
                context_name(c),
                r.marker.as_str(),
                r.marker_origin
            );
            let _ = writeln!(out, "  position: {}", r.position);
            match (&r.next_step, &r.next_command) {
                (Some(step), Some(cmd)) => {
                    let _ = writeln!(out, "  next:     {}", step.describe());
                    for line in cmd.lines() {
                        let _ = writeln!(out, "    {line}");
                    }
                }
                _ => {
                    let _ = writeln!(out, "  next:     -");
                }
            }
            for f in &r.problems {
                let _ = writeln!(out, "  {}[{}]: {}", f.severity, f.rule, f.message);
                let _ = writeln!(out, "    fix: {}", f.remediation);
            }
            for s in &r.suppressed {
                let _ = writeln!(
                    out,
                    "  suppressed {}[{}]: {}\n    reason: {}",
                    s.finding.severity, s.finding.rule, s.finding.message, s.reason
                );
            }
        }
        let _ = writeln!(
            out,
            "\ncontext {}: {} release(s) in {}, {} API call(s)",
            context_name(c),
            c.releases.len(),
            c.scope,
            c.api_calls
        );
    }
    out
}

/// JSON: the clusters with their releases, and the exit code.
pub fn json(clusters: &[ClusterAudit]) -> Result<String, String> {
    let doc = serde_json::json!({
        "clusters": clusters,
        "exit_code": exit_code(clusters),
    });
    serde_json::to_string_pretty(&doc)
        .map(|s| s + "\n")
        .map_err(|e| e.to_string())
}

/// A Prometheus label value, escaped as the text format requires.
fn prom(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus text format (for the node-exporter textfile collector or any scraper).
pub fn prometheus(clusters: &[ClusterAudit]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    out.push_str("# HELP ess_guard_release_marker_state 1 for the marker state the release is in, 0 for the others.\n");
    out.push_str("# TYPE ess_guard_release_marker_state gauge\n");
    for c in clusters {
        for r in &c.releases {
            for state in MARKER_VALUES {
                let _ = writeln!(
                    out,
                    "ess_guard_release_marker_state{{context=\"{}\",namespace=\"{}\",release=\"{}\",state=\"{state}\"}} {}",
                    prom(context_name(c)),
                    prom(&r.namespace),
                    prom(&r.release),
                    u8::from(r.marker.as_str() == state)
                );
            }
        }
    }
    out.push_str(
        "# HELP ess_guard_release_problems Problems ess-guard found per release and severity.\n",
    );
    out.push_str("# TYPE ess_guard_release_problems gauge\n");
    for c in clusters {
        for r in &c.releases {
            for sev in [Severity::Error, Severity::Warning, Severity::Note] {
                let n = r.problems.iter().filter(|f| f.severity == sev).count();
                let _ = writeln!(
                    out,
                    "ess_guard_release_problems{{context=\"{}\",namespace=\"{}\",release=\"{}\",severity=\"{sev}\"}} {n}",
                    prom(context_name(c)),
                    prom(&r.namespace),
                    prom(&r.release)
                );
            }
        }
    }
    out.push_str("# HELP ess_guard_audit_cluster_up 1 when the cluster could be audited.\n");
    out.push_str("# TYPE ess_guard_audit_cluster_up gauge\n");
    for c in clusters {
        let _ = writeln!(
            out,
            "ess_guard_audit_cluster_up{{context=\"{}\"}} {}",
            prom(context_name(c)),
            u8::from(c.error.is_none())
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_access::HelmRelease;
    use serde_json::json;

    fn cm(ns: &str, release: &str, value: Option<&str>, labelled: bool) -> ConfigMapView {
        let mut labels = BTreeMap::new();
        if labelled {
            labels.insert(MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string());
        }
        ConfigMapView {
            name: format!("{release}-markers"),
            namespace: ns.into(),
            labels,
            data: value
                .map(|v| BTreeMap::from([(state::MARKER_KEY.to_string(), v.to_string())]))
                .unwrap_or_default(),
            binary_data_keys: Vec::new(),
            immutable: false,
            resource_version: None,
        }
    }

    fn helm(ns: &str, release: &str, config: serde_json::Value) -> ListedRelease {
        ListedRelease {
            namespace: ns.into(),
            release: release.into(),
            decoded: Ok(HelmRelease {
                name: release.into(),
                version: 3,
                status: "deployed".into(),
                config,
                chart_name: CHART.into(),
                chart_version: "26.8.2".into(),
            }),
        }
    }

    fn sts(
        ns: &str,
        release: &str,
        replicas: i32,
        restore: Option<&str>,
    ) -> (String, StatefulSetView) {
        let name = format!("{release}-synapse-main");
        (
            ns.into(),
            StatefulSetView {
                name: name.clone(),
                labels: BTreeMap::from([
                    (
                        "app.kubernetes.io/component".to_string(),
                        "matrix-server".to_string(),
                    ),
                    (
                        "k8s.element.io/synapse-instance".to_string(),
                        format!("{release}-synapse"),
                    ),
                ]),
                annotations: restore
                    .map(|r| BTreeMap::from([(RESTORE_REPLICAS.to_string(), r.to_string())]))
                    .unwrap_or_default(),
                replicas: Some(replicas),
                resource_version: None,
            },
        )
    }

    fn rules(r: &ReleaseAudit) -> Vec<&'static str> {
        r.problems.iter().map(|f| f.rule.id()).collect()
    }

    #[test]
    fn every_stage_gets_plans_next_command() {
        let listed = Listed {
            markers: vec![
                cm("a", "l", Some("legacy_auth"), true),
                cm("b", "m", Some("syn2mas_migrated"), true),
                cm("c", "d", Some("delegated_auth"), true),
            ],
            ..Listed::default()
        };
        let out = assess(&listed, "CHART");
        let by: Vec<(&str, &str, Option<Step>)> = out
            .iter()
            .map(|r| (r.release.as_str(), r.marker.as_str(), r.next_step))
            .collect();
        assert_eq!(
            by,
            [
                ("l", "legacy_auth", Some(Step::DryRun)),
                ("m", "syn2mas_migrated", Some(Step::Finalize)),
                ("d", "delegated_auth", None)
            ]
        );
        assert_eq!(
            out[0].next_command.as_deref(),
            Some(crate::commands::plan::command(Step::DryRun, "l", "a", "CHART", None).as_str())
        );
    }

    #[test]
    fn problems_have_rule_ids() {
        let mas = json!({"matrixAuthenticationService": {"enabled": true}});
        let listed = Listed {
            markers: vec![
                cm("x", "bad", Some("delegated"), true),
                cm("x", "unl", Some("legacy_auth"), false),
                cm("y", "stuck", Some("legacy_auth"), true),
                cm("z", "a", Some("legacy_auth"), true),
            ],
            releases: vec![helm("w", "nomarker", mas)],
            statefulsets: vec![
                sts("y", "stuck", 0, Some("2")),
                sts("z", "a", 1, None),
                sts("z", "b", 1, None),
            ],
        };
        let out = assess(&listed, "C");
        let find = |name: &str| out.iter().find(|r| r.release == name).expect(name);
        assert_eq!(rules(find("bad")), ["unknown-marker-value"]);
        assert_eq!(find("bad").marker, Marker::Unknown);
        assert!(find("bad").next_command.is_none());
        assert_eq!(rules(find("unl")), ["unmanaged-marker"]);
        assert_eq!(rules(find("stuck")), ["stuck-migration"]);
        assert!(find("stuck").problems[0]
            .remediation
            .contains("ess-guard recover -r stuck -n y"));
        assert_eq!(rules(find("nomarker")), ["markers-disabled"]);
        assert_eq!(rules(find("a")), ["shared-namespace-scale-down"]);
        assert!(find("a").problems[0].message.contains("b-synapse-main"));
        assert_eq!(
            exit_code(&[ClusterAudit {
                context: None,
                server: None,
                scope: "all namespaces".into(),
                api_calls: 3,
                error: None,
                releases: out.clone(),
            }]),
            1
        );
        let prom = prometheus(&[ClusterAudit {
            context: Some("k".into()),
            server: None,
            scope: "all".into(),
            api_calls: 3,
            error: None,
            releases: out,
        }]);
        assert!(prom.contains("ess_guard_release_marker_state{context=\"k\",namespace=\"x\",release=\"bad\",state=\"unknown\"} 1"));
        assert!(prom.contains("ess_guard_release_marker_state{context=\"k\",namespace=\"x\",release=\"bad\",state=\"legacy_auth\"} 0"));
    }

    #[test]
    fn absent_marker_with_legacy_values_is_inferred_and_other_charts_are_ignored() {
        let mut other = helm("n", "grafana", json!({}));
        if let Ok(d) = &mut other.decoded {
            d.chart_name = "grafana".into();
        }
        let listed = Listed {
            releases: vec![
                helm(
                    "n",
                    "old",
                    json!({"matrixAuthenticationService": {"enabled": false}}),
                ),
                other,
            ],
            ..Listed::default()
        };
        let out = assess(&listed, "C");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].marker, Marker::Known(MarkerState::LegacyAuth));
        assert_eq!(rules(&out[0]), ["legacy-inferred"]);
        assert_eq!(
            unmarked_synapse_releases(&listed),
            [("n".to_string(), "old".to_string())]
        );
    }
}
