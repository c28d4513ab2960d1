//! The shared-namespace scale-down hazard.
//!
//! The chart's syn2mas Job (step 2) lists StatefulSets with
//! `app.kubernetes.io/component=matrix-server` in its namespace, with no release filter, and
//! scales every one of them to 0 for the migration. Another release's Synapse in the same
//! namespace is therefore stopped too, and stays stopped if the Job exits half-way. The chart
//! cannot see this; ess-guard reports it, at step 2, with one LIST.
//!
//! Which release a StatefulSet belongs to: Helm's `meta.helm.sh/release-name` annotation when
//! present (Helm writes it on every object it manages), else the chart's
//! `k8s.element.io/synapse-instance: <release>-synapse` label, else the chart's
//! `app.kubernetes.io/instance: <release>-synapse-<process>` label. A StatefulSet none of these
//! tie to the release is someone else's: the Job scales it down all the same.
//!
//! Suppression: the finding names the other release's StatefulSet, which is not in the render,
//! so the `ess-guard.element.io/skip-shared-namespace-scale-down: "<reason>"` annotation is
//! read from that live StatefulSet (its owner accepts the downtime), with the same rules as
//! [`crate::suppress`]: a reason is required.

use std::collections::BTreeMap;

use crate::error::Error;
use crate::kube_access::{KubeError, StatefulSetView};
use crate::rules::{Finding, RuleId};
use crate::state::Step;
use crate::suppress::{Suppressed, SKIP_PREFIX};

/// The label the chart's syn2mas Job selects on (no release filter).
pub const SCALE_DOWN_SELECTOR: &str = "app.kubernetes.io/component=matrix-server";
/// Helm's ownership annotation.
pub const HELM_RELEASE_ANNOTATION: &str = "meta.helm.sh/release-name";
/// The chart's per-release Synapse label (`<release>-synapse`).
pub const SYNAPSE_INSTANCE_LABEL: &str = "k8s.element.io/synapse-instance";
const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

/// The release a matrix-server StatefulSet belongs to, as far as its metadata says.
pub fn owner(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Option<String> {
    if let Some(r) = annotations.get(HELM_RELEASE_ANNOTATION) {
        return Some(r.clone());
    }
    if let Some(r) = labels
        .get(SYNAPSE_INSTANCE_LABEL)
        .and_then(|v| v.strip_suffix("-synapse"))
    {
        return Some(r.to_string());
    }
    None
}

/// Whether the StatefulSet belongs to `release`.
pub fn belongs_to(sts: &StatefulSetView, release: &str) -> bool {
    match owner(&sts.labels, &sts.annotations) {
        Some(r) => r == release,
        None => sts
            .labels
            .get(INSTANCE_LABEL)
            .is_some_and(|i| i.starts_with(&format!("{release}-synapse-"))),
    }
}

/// Whether the input may run the chart's real migration (step 2): settled as step 2, or a
/// Helm 3 render that could be step 2 and was not settled otherwise.
pub fn may_migrate(step: Option<Step>, requested: &crate::facts::Requested) -> bool {
    match step {
        Some(Step::Migrate) => true,
        Some(_) => false,
        None => {
            matches!(requested, crate::facts::Requested::Ambiguous(o) if o.contains(&Step::Migrate))
        }
    }
}

/// The findings for the matrix-server StatefulSets listed in `namespace`: one error per
/// StatefulSet of another release (or a suppression, when that StatefulSet says why the
/// downtime is acceptable).
pub fn findings(
    release: &str,
    namespace: &str,
    listed: &[StatefulSetView],
) -> (Vec<Finding>, Vec<Suppressed>) {
    let rule = RuleId::SharedNamespaceScaleDown;
    let skip_key = format!("{SKIP_PREFIX}{}", rule.id());
    let mut out = Vec::new();
    let mut suppressed = Vec::new();
    for sts in listed.iter().filter(|s| !belongs_to(s, release)) {
        let resource = format!("StatefulSet {namespace}/{}", sts.name);
        let whose = match owner(&sts.labels, &sts.annotations) {
            Some(r) => format!("of release {r}"),
            None => "of no release ess-guard can tell".to_string(),
        };
        let replicas = sts.replicas.unwrap_or(1);
        let finding = Finding::new(
            rule,
            format!(
                "step 2 of release {release} would scale StatefulSet {} ({whose}, {replicas} replicas) to 0: the chart's syn2mas Job stops every {SCALE_DOWN_SELECTOR} StatefulSet in namespace {namespace}",
                sts.name
            ),
        )
        .at(Some(resource.clone()), None);
        match sts.annotations.get(&skip_key).map(|r| r.trim()) {
            Some(reason) if !reason.is_empty() => suppressed.push(Suppressed {
                finding,
                reason: reason.to_string(),
            }),
            Some(_) => {
                out.push(finding);
                out.push(
                    Finding::new(
                        RuleId::SuppressionWithoutReason,
                        format!("annotation {skip_key} has no reason and is ignored: {rule} findings on this resource stay reported"),
                    )
                    .at(Some(resource), None),
                );
            }
            None => out.push(finding),
        }
    }
    (out, suppressed)
}

/// The note for a check that was not made.
pub fn unchecked(why: &str) -> Finding {
    Finding::new(
        RuleId::SharedNamespaceUnchecked,
        format!("whether step 2 would also stop another release's Synapse in this namespace was not checked: {why}"),
    )
}

/// Runs the check on a LIST result: a 403 becomes the "unchecked" note, any other cluster
/// error fails closed (exit 3) like every other live read.
pub fn from_list(
    release: &str,
    namespace: &str,
    listed: Result<Vec<StatefulSetView>, KubeError>,
) -> Result<(Vec<Finding>, Vec<Suppressed>), Error> {
    match listed {
        Ok(list) => Ok(findings(release, namespace, &list)),
        Err(e @ KubeError::Forbidden { .. }) => Ok((
            vec![unchecked(&format!("listing StatefulSets was refused ({e})"))],
            Vec::new(),
        )),
        Err(e) => Err(Error::State(format!(
            "cannot list the matrix-server StatefulSets of namespace {namespace} (the step-2 shared-namespace check): {e}; to decide without the cluster, pass --state explicitly"
        ))),
    }
}

/// The check as the guard's decide step runs it: with an offline state source (`--state`,
/// `--state-file`, `--state-map`) it says it was not checked; live it makes one LIST in the
/// release namespace (the same connection settings and namespace precedence as the marker
/// read).
pub fn check(
    live: bool,
    state_args: &crate::request::StateRequest,
    target: &crate::source::MarkerTarget,
) -> Result<(Vec<Finding>, Vec<Suppressed>), Error> {
    if !live {
        return Ok((
            vec![unchecked("the marker state was given offline (--state/--state-file/--state-map), so no cluster was asked")],
            Vec::new(),
        ));
    }
    let Some(release) = &target.release else {
        return Ok((
            vec![unchecked("the release name is unknown (pass --release)")],
            Vec::new(),
        ));
    };
    let mut opts = crate::live::connect_options(state_args);
    if opts.namespace.is_none() {
        opts.namespace = target.namespace.clone();
    }
    let cluster = crate::live::connect(&opts)?;
    let namespace = cluster.namespace().to_string();
    from_list(
        release,
        &namespace,
        cluster.list_statefulsets(SCALE_DOWN_SELECTOR),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sts(name: &str, labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> StatefulSetView {
        StatefulSetView {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            replicas: Some(1),
            resource_version: None,
        }
    }

    #[test]
    fn ownership_prefers_helm_then_synapse_instance_then_instance_prefix() {
        let helm = sts(
            "x",
            &[(SYNAPSE_INSTANCE_LABEL, "a-synapse")],
            &[(HELM_RELEASE_ANNOTATION, "b")],
        );
        assert!(belongs_to(&helm, "b") && !belongs_to(&helm, "a"));
        let label = sts(
            "a-synapse-main",
            &[(SYNAPSE_INSTANCE_LABEL, "a-synapse")],
            &[],
        );
        assert!(belongs_to(&label, "a"));
        // "a" must not claim release "a-synapse-x"'s Synapse by prefix when a label says otherwise.
        let other = sts(
            "a-synapse-x-synapse-main",
            &[(SYNAPSE_INSTANCE_LABEL, "a-synapse-x-synapse")],
            &[],
        );
        assert!(!belongs_to(&other, "a"));
        let bare = sts("a-synapse-main", &[(INSTANCE_LABEL, "a-synapse-main")], &[]);
        assert!(belongs_to(&bare, "a") && !belongs_to(&bare, "b"));
    }

    #[test]
    fn other_releases_are_errors_unless_their_statefulset_gives_a_reason() {
        let skip = "ess-guard.element.io/skip-shared-namespace-scale-down";
        let list = vec![
            sts(
                "a-synapse-main",
                &[(SYNAPSE_INSTANCE_LABEL, "a-synapse")],
                &[],
            ),
            sts(
                "b-synapse-main",
                &[(SYNAPSE_INSTANCE_LABEL, "b-synapse")],
                &[],
            ),
            sts(
                "c-synapse-main",
                &[(SYNAPSE_INSTANCE_LABEL, "c-synapse")],
                &[(skip, "c is a staging copy")],
            ),
            sts(
                "d-synapse-main",
                &[(SYNAPSE_INSTANCE_LABEL, "d-synapse")],
                &[(skip, " ")],
            ),
        ];
        let (found, suppressed) = findings("a", "ns", &list);
        let errors: Vec<_> = found
            .iter()
            .filter(|f| f.rule == RuleId::SharedNamespaceScaleDown)
            .map(|f| f.resource.clone().unwrap_or_default())
            .collect();
        assert_eq!(
            errors,
            [
                "StatefulSet ns/b-synapse-main",
                "StatefulSet ns/d-synapse-main"
            ]
        );
        assert!(found
            .iter()
            .any(|f| f.rule == RuleId::SuppressionWithoutReason));
        assert_eq!(suppressed.len(), 1);
        assert_eq!(suppressed[0].reason, "c is a staging copy");
    }

    #[test]
    fn forbidden_is_a_note_and_other_errors_fail_closed() {
        let forbidden = KubeError::Forbidden {
            verb: "list".into(),
            resource: "statefulsets".into(),
            name: None,
            namespace: "ns".into(),
            user_message: "no".into(),
        };
        let (f, _) = from_list("a", "ns", Err(forbidden)).expect("a note");
        assert_eq!(f[0].rule, RuleId::SharedNamespaceUnchecked);
        let err = from_list(
            "a",
            "ns",
            Err(KubeError::Server {
                code: 500,
                message: "x".into(),
            }),
        )
        .expect_err("fails closed");
        assert_eq!(err.exit_code(), 3);
    }

    #[test]
    fn only_a_possible_step_2_is_checked() {
        use crate::facts::Requested;
        assert!(may_migrate(Some(Step::Migrate), &Requested::NoMarker));
        assert!(!may_migrate(Some(Step::Finalize), &Requested::NoMarker));
        assert!(may_migrate(
            None,
            &Requested::Ambiguous(vec![Step::Migrate, Step::Finalize])
        ));
        assert!(!may_migrate(None, &Requested::NoMarker));
    }
}
