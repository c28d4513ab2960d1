//! The wrong-cluster trap. Helm passes a post-renderer neither its `--kube-context` nor the
//! release, so ess-guard may read a different cluster than the one Helm deploys to (the default
//! context). There the marker is missing, the state reads `absent`, and every step would be
//! allowed. Two defences live here:
//!
//! * every live read is described the same way — context, API server URL, namespace and
//!   ConfigMap, as data and as text ([`crate::source::ReadFrom`], made by
//!   [`Cluster::read_from`]) — so each report says which cluster was read;
//! * when the marker is absent, the release's Helm history (Secrets labelled
//!   `owner=helm,name=<release>`) is looked up on the same cluster ([`check_release`]): none
//!   there means the read probably went to the wrong cluster. By default that is a warning
//!   (rule `no-release-on-cluster`, kept by the engine only for renders that run syn2mas, since a
//!   fresh install is otherwise normal); `--expect-release` makes it an error (exit 3).

use crate::error::Error;
use crate::facts::InputNote;
use crate::kube_access::Cluster;
use crate::rules::RuleId;

/// How to point ess-guard at the release's cluster, for messages.
const POINT_AT_CLUSTER: &str = "point ess-guard at the release's cluster with --kube-context/--kubeconfig and --namespace (under Helm or helmfile: --post-renderer-args=--kube-context=<context>; in Argo CD: the sidecar's kubeconfig)";

/// What is known about the release's Helm history on the cluster read, when the marker is
/// absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseHistory {
    /// Release records exist here (or the release's Synapse runs here): the right cluster.
    Present,
    /// No release record: a fresh install, or the wrong cluster.
    Missing,
    /// The look-up failed (e.g. 403 on listing Secrets); the reason, for messages.
    Unknown(String),
}

impl ReleaseHistory {
    /// Lists `release`'s Helm release Secrets on `cluster` (names and labels only).
    pub fn look_up(cluster: &Cluster, release: &str) -> ReleaseHistory {
        match cluster.has_release_history(release) {
            Ok(true) => ReleaseHistory::Present,
            Ok(false) => ReleaseHistory::Missing,
            Err(e) => ReleaseHistory::Unknown(e.to_string()),
        }
    }
}

/// The verdict on an absent marker whose release shows no sign of life on the cluster read
/// (no history, no Synapse StatefulSet):
///
/// * history missing: a `no-release-on-cluster` note (the engine keeps it for renders that run
///   syn2mas), or with `expect_release` an error (exit 3) naming the cluster and how to point
///   ess-guard at the right one;
/// * history unknown: with `expect_release` an error, since the expectation cannot be verified
///   (ess-guard fails closed); otherwise nothing here (the caller already warned that the
///   look-up failed).
pub fn judge(
    cluster: &Cluster,
    release: &str,
    configmap: &str,
    history: &ReleaseHistory,
    expect_release: bool,
    notes: &mut Vec<InputNote>,
) -> Result<(), Error> {
    let place = format!(
        "namespace {} at {} (context {})",
        cluster.namespace(),
        cluster.server_url(),
        cluster.context()
    );
    match history {
        ReleaseHistory::Present => Ok(()),
        ReleaseHistory::Missing if expect_release => Err(Error::State(format!(
            "--expect-release: no Helm release {release} (no Secret labelled owner=helm,name={release}) and no marker ConfigMap {configmap} in {place}: ess-guard is probably reading the wrong cluster; {POINT_AT_CLUSTER}"
        ))),
        ReleaseHistory::Missing => {
            notes.push(InputNote {
                rule: RuleId::NoReleaseOnCluster,
                message: format!(
                    "no marker ConfigMap {configmap} and no Helm release {release} in {place}, yet this render runs syn2mas: if the release lives on another cluster, ess-guard read the wrong one and every step looks allowed; {POINT_AT_CLUSTER}, and add --expect-release to make this an error"
                ),
                resource: None,
                source: None,
            });
            Ok(())
        }
        ReleaseHistory::Unknown(e) if expect_release => Err(Error::State(format!(
            "--expect-release: no marker ConfigMap {configmap} in {place}, and whether Helm release {release} exists there could not be checked: {e}"
        ))),
        ReleaseHistory::Unknown(_) => Ok(()),
    }
}

/// `--expect-release` without a release name cannot be honoured: a usage error.
pub fn release_required(configmap: &str) -> Error {
    Error::Usage(format!(
        "--expect-release needs the release name to look for its history (marker ConfigMap {configmap}): pass --release NAME"
    ))
}
